"""The flood probe against stub EVM nodes (aiohttp servers on 127.0.0.1) driven through the
real EVM adapter: a node whose commits slow down once the junk arrives must fail, one that
keeps committing in time must pass; and the judging rules on their own."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import coincurve
import pytest
import rlp
from aiohttp import web
from eth_hash.auto import keccak

from harness.adapters.evm import EvmAdapter
from harness.model import Node
from harness.security import registry
from harness.security.probe import NotApplicable, ProbeTarget, Reply
from harness.security.probes import flood

CHAIN_ID = 31337
# Short windows for a unit test; the bound's slack is well under the slow node's delay.
FAST = {**flood.DEFAULTS, "rate": 20.0, "factor": 5.0, "window": 1.0, "drain": 5.0, "accounts": 4,
        "junk_accounts": 4, "setup_timeout": 5.0, "p99_slack_ms": 1000.0}


class StubEvm:
    """A tiny EVM pool and chain: blocks every 0.1 s hold each sender's next ready nonces.
    Nonces far ahead wait in the queue; a replacement below +10 % is refused. `delay`: once
    a nonce-gap tx (the burst) arrived, every tx becomes ready only `delay` s after it came."""

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.next: dict[bytes, int] = defaultdict(int)
        self.pool: dict[tuple[bytes, int], tuple[str, int, float]] = {}   # -> (hash, price, ready)
        self.blocks: list[tuple[str, list[str]]] = [("0x" + "00" * 32, [])]
        self.burst = False
        self.answers: Counter = Counter()

    def sender(self, fields: list[bytes]) -> bytes:
        v, r, s = (int.from_bytes(f, "big") for f in fields[6:9])
        digest = keccak(rlp.encode(fields[:6] + [CHAIN_ID, 0, 0]))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v - CHAIN_ID * 2 - 35])
        public = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
        return keccak(public.format(compressed=False)[1:])[-20:]

    def send(self, raw_hex: str) -> tuple[Any, dict | None]:
        raw = bytes.fromhex(raw_hex[2:])
        fields = rlp.decode(raw)
        who = self.sender(fields)
        nonce, price = int.from_bytes(fields[0], "big"), int.from_bytes(fields[1], "big")
        tx_hash = "0x" + keccak(raw).hex()
        if nonce < self.next[who]:
            return None, {"code": -32003, "message": "nonce too low"}
        old = self.pool.get((who, nonce))
        if old is not None and price * 10 < old[1] * 11:
            return None, {"code": -32003, "message": "replacement transaction underpriced"}
        if nonce >= self.next[who] + flood.EVM_GAP:   # a nonce-gap tx: the burst began
            self.burst = True
        ready = time.monotonic() + (self.delay if self.burst else 0.0)
        self.pool[(who, nonce)] = (tx_hash, price, ready)
        return tx_hash, None

    def pending_nonce(self, address: bytes) -> int:
        nonce = self.next[address]
        while (address, nonce) in self.pool:
            nonce += 1
        return nonce

    def make_block(self) -> None:
        now, txs = time.monotonic(), []
        for who in list(self.next.keys() | {w for w, _ in self.pool}):
            while (entry := self.pool.get((who, self.next[who]))) is not None and entry[2] <= now:
                del self.pool[(who, self.next[who])]
                self.next[who] += 1
                txs.append(entry[0])
        self.blocks.append(("0x" + keccak(str(len(self.blocks)).encode()).hex(), txs))

    def block(self, number: int) -> dict:
        block_hash, txs = self.blocks[number]
        return {"number": hex(number), "hash": block_hash, "parentHash": self.blocks[max(0, number - 1)][0],
                "timestamp": hex(int(time.time())), "transactions": txs}

    async def handle(self, request: web.Request) -> web.Response:
        call = await request.json()
        method, params, rid = call["method"], call.get("params") or [], call.get("id")
        result, error = None, None
        if method == "eth_chainId":
            result = hex(CHAIN_ID)
        elif method == "eth_blockNumber":
            result = hex(len(self.blocks) - 1)
        elif method == "eth_getBlockByNumber":
            number = len(self.blocks) - 1 if params[0] == "latest" else int(params[0], 16)
            result = self.block(number) if number < len(self.blocks) else None
        elif method == "eth_getTransactionCount":
            result = hex(self.pending_nonce(bytes.fromhex(params[0][2:])))
        elif method == "eth_sendRawTransaction":
            result, error = self.send(params[0])
            self.answers[error["message"] if error else "accepted"] += 1
        else:
            error = {"code": -32601, "message": f"the method {method} does not exist"}
        answer = {"jsonrpc": "2.0", "id": rid, **({"error": error} if error else {"result": result})}
        return web.json_response(answer)


class WatchDies(EvmAdapter):
    """The real adapter whose block watch breaks down 2 s in (the harness's trouble)."""

    async def watch(self, node, on_block, stop, subscribe=True, poll_interval=0.1) -> str:
        try:
            await asyncio.wait_for(super().watch(node, on_block, stop, subscribe, poll_interval), 2.0)
        except TimeoutError:
            pass
        raise RuntimeError("the watch lost its connection")


async def _run_probe(stub: StubEvm, tmp_path: Path, settings: dict | None = None,
                     family: str = "evm", budget: float = 60.0, adapter_class: type = EvmAdapter) -> list:
    app = web.Application()
    app.router.add_post("/", stub.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]

    async def blocks() -> None:
        while True:
            await asyncio.sleep(0.1)
            stub.make_block()

    maker = asyncio.create_task(blocks())
    pack = SimpleNamespace(chain_id=CHAIN_ID, options={"gas_price_gwei": 10}, family="evm")
    adapter = adapter_class(pack, {}, 1, seed=5, accounts=8)
    try:
        async with aiohttp.ClientSession() as session:
            target = ProbeTarget(probe=flood.ID, severity=flood.SEVERITY, family=family, pack=pack,
                                 nodes=[Node("node0", 0, "cid", {"rpc": port})], adapter=adapter,
                                 runtime=None, settings=dict(settings or FAST),
                                 deadline=time.monotonic() + budget, run_dir=tmp_path, session=session,
                                 suite_rate=500.0)
            return await flood.run(target)
    finally:
        maker.cancel()
        await adapter.close()
        await runner.cleanup()


def _by_case(attempts: list) -> dict:
    return {a.case: a for a in attempts}


def test_registered():
    probe = registry()["flood"]
    assert (probe.order, probe.severity) == (50, "high")
    assert set(probe.defaults) == set(probe.settings_schema)


def test_a_node_that_keeps_committing_passes(tmp_path):
    stub = StubEvm()
    attempts = _by_case(asyncio.run(_run_probe(stub, tmp_path)))
    verdicts = [attempts[c].verdict for c in ("honest.before", "honest.during", "honest.after")]
    assert verdicts == ["pass"] * 3, [a.why for a in attempts.values()]
    assert "20 of 20 honest txs committed" in attempts["honest.during"].why
    junk = attempts["junk.answers"]
    assert (junk.verdict, junk.severity) == ("pass", "info")
    # the burst really went out: nonce gaps parked, underpriced replacements refused
    assert "nonce-gap: 52 of 52 accepted" in junk.why, junk.why
    assert stub.answers["replacement transaction underpriced"] == 48
    assert "eth_sendRawTransaction" in attempts["honest.during"].request
    assert "HTTP 200" in attempts["honest.during"].answer


def test_a_node_that_slows_down_under_the_burst_fails(tmp_path):
    stub = StubEvm(delay=3.0)
    attempts = _by_case(asyncio.run(_run_probe(stub, tmp_path)))
    assert attempts["honest.before"].verdict == "pass"
    for case in ("honest.during", "honest.after"):
        assert attempts[case].verdict == "fail", attempts[case].why
        assert "is above the bound" in attempts[case].why
        assert attempts[case].severity == "high"


def test_a_node_that_loses_honest_txs_under_the_burst_fails(tmp_path):
    """A delay longer than the drain: the honest txs never commit in time (success 0)."""
    stub = StubEvm(delay=30.0)
    settings = {**FAST, "drain": 1.0}
    attempts = _by_case(asyncio.run(_run_probe(stub, tmp_path, settings)))
    assert attempts["honest.during"].verdict == "fail"
    assert "0 of 20 honest txs committed" in attempts["honest.during"].why
    assert "below 0.95" in attempts["honest.during"].why


def test_a_watch_that_breaks_leaves_every_window_unknown(tmp_path):
    attempts = asyncio.run(_run_probe(StubEvm(), tmp_path, adapter_class=WatchDies))
    assert {a.verdict for a in attempts} == {"unknown"}, [(a.case, a.verdict, a.why) for a in attempts]
    assert "the watch lost its connection" in attempts[1].why


def test_other_families_are_not_applicable(tmp_path):
    with pytest.raises(NotApplicable, match="no flood cases for the fabric family"):
        asyncio.run(_run_probe(StubEvm(), tmp_path, family="fabric"))


def test_too_small_a_budget_is_unknown_not_pass(tmp_path):
    attempts = asyncio.run(_run_probe(StubEvm(), tmp_path, budget=5.0))
    assert [(a.case, a.verdict) for a in attempts] == [("setup", "unknown")]


def test_honest_rate_is_the_suite_rate_capped():
    target = SimpleNamespace(settings=dict(flood.DEFAULTS), suite_rate=500.0)
    assert flood.honest_rate(target) == 20.0
    target.suite_rate = 5.0
    assert flood.honest_rate(target) == 5.0
    target.settings["rate"] = 50.0
    assert flood.honest_rate(target) == 50.0


def _txs(kind: str, n: int, due: float = 100.0) -> list[flood.Tx]:
    node = Node("node0", 0, "cid", {"rpc": 1})
    return [flood.Tx(kind, node, b"{}", f"0x{kind}{i}", due=due, error=None,
                     reply=Reply(200, b'{"result":"0x1"}')) for i in range(n)]


def _judge(before_ms: list[float], during_ms: list[float], junk: list[flood.Tx] | None = None,
           twice: set[str] = frozenset()) -> dict:
    windows = {"before": _txs("before", len(before_ms)), "during": _txs("during", len(during_ms)),
               "after": _txs("after", len(during_ms))}
    seen = flood.Seen()
    for name, values in (("before", before_ms), ("during", during_ms), ("after", during_ms)):
        for tx, ms in zip(windows[name], values, strict=True):
            if ms is not None:
                seen.first[tx.tx_id] = tx.due + ms / 1000
                seen.count[tx.tx_id] = 2 if tx.tx_id in twice else 1
    target = ProbeTarget(probe="flood", severity="high", family="evm", pack=None, nodes=[], adapter=None,
                         runtime=None, settings=dict(flood.DEFAULTS), deadline=0, run_dir=Path("."))
    return _by_case(flood.judge(target, windows, junk or [], seen, flood.DEFAULTS, 20, 200,
                                Node("node0", 0, "cid")))


def test_judge_bounds():
    assert flood.percentile([5, 1, 3, 2, 4], 99) == 5 and flood.percentile([], 99) is None
    assert flood.p99_bound(100, 3, 2000) == 2100 and flood.p99_bound(2000, 3, 2000) == 6000
    ok = _judge([500] * 100, [2400] * 100)     # within 500 + 2000 ms
    assert ok["honest.during"].verdict == "pass"
    assert "100 of 100 honest txs committed, p99 2400 ms against 500 ms before" in ok["honest.during"].why
    slow = _judge([500] * 100, [2600] * 100)
    assert slow["honest.during"].verdict == "fail"
    lossy = _judge([500] * 100, [500] * 90 + [None] * 10)
    assert lossy["honest.after"].verdict == "fail"
    assert "10 accepted but not in a block" in lossy["honest.after"].why


def test_an_unhealthy_baseline_is_unknown():
    attempts = _judge([500] * 50 + [None] * 50, [500] * 100)
    assert {attempts[c].verdict for c in ("honest.before", "honest.during", "honest.after")} == {"unknown"}
    assert "cannot be judged" in attempts["honest.before"].why


def test_junk_that_commits_fails():
    junk = _txs("nonce-gap", 3) + _txs("duplicate", 2)
    clean = _judge([500] * 10, [500] * 10, junk)["junk.answers"]
    assert clean.verdict == "pass" and "nonce-gap: 3 of 3 accepted" in clean.why
    junk[0].tx_id = "0xbefore0"                          # a junk tx that reached a block
    assert _judge([500] * 10, [500] * 10, junk)["junk.answers"].verdict == "fail"
    dup = _txs("duplicate", 1)
    dup[0].tx_id = "0xbefore1"                           # a duplicate committed a second time
    bad = _judge([500] * 10, [500] * 10, dup, twice={"0xbefore1"})["junk.answers"]
    assert (bad.verdict, bad.severity) == ("fail", "high")


def _layout_target(family: str, adapter: Any, nodes: int = 2) -> ProbeTarget:
    return ProbeTarget(probe="flood", severity="high", family=family, pack=None,
                       nodes=[Node(f"node{i}", i, "cid", {"rpc": 1 + i}) for i in range(nodes)],
                       adapter=adapter, runtime=None, settings={**flood.DEFAULTS, "junk_accounts": 4},
                       deadline=time.monotonic() + 60, run_dir=Path("."))


def _watching() -> flood.Seen:
    seen = flood.Seen()
    seen.blocks = 1          # the watch already follows the chain
    return seen


def test_cometbft_junk_is_malformed_or_a_duplicate_of_an_honest_tx_already_sent():
    import base64
    import json

    target = _layout_target("cometbft", SimpleNamespace(seed=3, broadcast_method="broadcast_tx_sync"))
    windows, junk = asyncio.run(flood.cometbft_streams(target, _watching(), 10.0, 100.0))
    assert [len(windows[w]) for w in flood.WINDOWS] == [50, 50, 50]
    before = {tx.body for tx in windows["before"]}
    kinds = Counter(tx.kind for tx in junk)
    assert kinds == {"malformed": 250, "duplicate": 250}
    for tx in junk:
        raw = base64.b64decode(json.loads(tx.body)["params"]["tx"])
        if tx.kind == "malformed":
            assert b"=" not in raw            # kvstore's CheckTx refuses it
        else:
            assert tx.body in before          # sent a window before the burst
    honest = [base64.b64decode(json.loads(tx.body)["params"]["tx"]) for w in windows.values() for tx in w]
    assert len(set(honest)) == 150 and all(raw.count(b"=") == 1 for raw in honest)


class FakeBitcoinAdapter:
    """The parts of the bitcoin adapter the probe uses: keys, recipients, the fan-out."""

    def __init__(self):
        from harness.adapters import bitcoin_tx as btx

        self.keys = [btx.derive_key("utxo", 1, k) for k in range(4)]
        self.recipients = [btx.derive_key("recipient", 1, k).p2wpkh for k in range(4)]
        self.load_fee, self.utxos = 220, []

    def _rpcs(self, stage: str):
        import contextlib
        return contextlib.nullcontext([])

    def _fan_out(self, rpcs: list, count: int) -> None:
        from harness.adapters.bitcoin import Utxo

        self.utxos += [Utxo(f"{n:064x}", 0, 50_000, n % 4) for n in range(len(self.utxos), count)]


def test_bitcoin_junk_double_spends_each_rounds_anchors():
    from harness.adapters import bitcoin_tx as btx

    adapter = FakeBitcoinAdapter()
    adapter.utxos = ["spent by the load"] * 7
    target = _layout_target("bitcoin", adapter)
    windows, junk = asyncio.run(flood.bitcoin_streams(target, _watching(), 10.0, 100.0))
    assert [len(windows[w]) for w in flood.WINDOWS] == [50, 50, 50]
    # fresh UTXOs only: 150 honest + 5 rounds (one a second of the burst) × 4 anchors
    assert len(adapter.utxos) == 7 + 150 + 20

    def outpoint(tx: flood.Tx) -> bytes:
        import json
        parsed = btx.parse_tx(bytes.fromhex(json.loads(tx.body)["params"][0]))
        assert parsed.txid() == tx.tx_id
        return parsed.inputs[0].outpoint()

    honest = [outpoint(tx) for w in windows.values() for tx in w]
    assert len(set(honest)) == 150
    assert Counter(tx.kind for tx in junk) == {"anchor": 20, "double-spend": 480}
    anchors: dict[bytes, int] = {}
    for j, tx in enumerate(junk):
        point = outpoint(tx)
        assert point not in honest
        if tx.kind == "anchor":
            anchors[point] = j
        else:   # a double spend of an anchor sent earlier in the same burst
            assert point in anchors and anchors[point] < j
    assert len({tx.tx_id for tx in junk}) == 500
