"""The replay probe against stub nodes (aiohttp servers on 127.0.0.1) that keep a toy ledger
of their own: the right thing (a tx committed once, one of two conflicting txs, a foreign
chain id refused) must pass; each wrong thing (a resubmitted tx committed twice, both of two
conflicting txs committed, two nodes committing different ones, a foreign-chain tx taken or
mined) must fail; what the probe cannot see must stay unknown."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import coincurve
import pytest
import rlp
from aiohttp import web
from eth_hash.auto import keccak

from harness import chainpack
from harness.adapters import bitcoin_tx as btx
from harness.adapters.bitcoin import BitcoinAdapter
from harness.adapters.cometbft import CometbftAdapter
from harness.adapters.evm import EvmAdapter
from harness.model import Node
from harness.security.probe import NotApplicable, ProbeTarget
from harness.security.probes import replay

ROOT = Path(__file__).resolve().parents[2]
FAST = {**replay.DEFAULTS, "commit_timeout": 5, "settle_blocks": 2, "settle_timeout": 5}


# -- toy ledgers -------------------------------------------------------------------------------


class Ledger:
    """Blocks of tx ids made lazily (a block per `interval` of requests), and a pool."""

    def __init__(self, interval: float | None = 0.05):
        self.blocks: list[tuple[str, str, list[str]]] = [("0x" + "00" * 32, "", [])]
        self.pool: list[Any] = []
        self.interval = interval
        self.last = time.monotonic()

    def tick(self) -> None:
        if self.interval is not None and time.monotonic() - self.last >= self.interval:
            self.mine()

    def mine(self) -> str:
        self.last = time.monotonic()
        included = self.include()
        parent = self.blocks[-1][0]
        block_hash = "0x" + hashlib.sha256(f"{parent}{len(self.blocks)}{included}".encode()).hexdigest()
        self.blocks.append((block_hash, parent, included))
        return block_hash

    def include(self) -> list[str]:
        raise NotImplementedError

    def committed(self, tx_id: str) -> bool:
        return any(tx_id in txs for _, _, txs in self.blocks)


class EvmLedger(Ledger):
    """Nonces per sender. The wrong things: `replays` (a tx already in a block is taken and
    mined again), `conflicts` (a second tx with a used nonce is taken and mined too),
    `any_chain` (a tx signed for another chain id is taken and mined), `pool_any_chain`
    (taken, never mined)."""

    def __init__(self, chain_id: int, replays=False, conflicts=False, any_chain=False,
                 pool_any_chain=False, interval: float | None = 0.05):
        super().__init__(interval)
        self.chain_id = chain_id
        self.replays, self.conflicts, self.any_chain = replays, conflicts, any_chain
        self.pool_any_chain = pool_any_chain
        self.nonces: dict[str, int] = defaultdict(int)

    @staticmethod
    def decode(raw: bytes) -> tuple[str, int, int]:
        fields = rlp.decode(raw)
        v = int.from_bytes(fields[6], "big")
        chain_id, recovery = (v - 35) // 2, (v - 35) % 2
        digest = keccak(rlp.encode(fields[:6] + [chain_id, 0, 0]))
        signature = fields[7].rjust(32, b"\0") + fields[8].rjust(32, b"\0") + bytes([recovery])
        public = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
        sender = "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()
        return sender, int.from_bytes(fields[0], "big"), chain_id

    def submit(self, raw: bytes) -> tuple[str | None, str | None]:
        tx_id = "0x" + keccak(raw).hex()
        sender, nonce, chain_id = self.decode(raw)
        if chain_id != self.chain_id and not (self.any_chain or self.pool_any_chain):
            return None, "invalid chain id"
        if self.committed(tx_id) and not self.replays:
            return None, "nonce too low"
        if not self.conflicts and not self.committed(tx_id):
            if nonce < self.nonces[sender]:
                return None, "nonce too low"
            if any(s == sender and n == nonce for _, s, n, _ in self.pool):
                return None, "replacement transaction underpriced"
        self.pool.append((tx_id, sender, nonce, chain_id))
        return tx_id, None

    def include(self) -> list[str]:
        taken, kept = [], []
        for tx in self.pool:
            tx_id, sender, _nonce, chain_id = tx
            if chain_id != self.chain_id and self.pool_any_chain and not self.any_chain:
                kept.append(tx)
                continue
            taken.append(tx_id)
            self.nonces[sender] += 1    # a broken chain that mines a nonce twice advances twice
        self.pool = kept
        return taken

    def answer(self, method: str, params: list[Any]) -> Any:
        self.tick()
        if method == "eth_sendRawTransaction":
            return self.submit(bytes.fromhex(params[0][2:]))
        if method == "eth_blockNumber":
            return hex(len(self.blocks) - 1), None
        if method == "eth_chainId":
            return hex(self.chain_id), None
        if method == "eth_gasPrice":
            return "0x1", None
        if method == "eth_getTransactionCount":
            latest = self.nonces[params[0].lower()]
            pending = latest + sum(1 for _, s, _, _ in self.pool if s == params[0].lower())
            return hex(pending if params[1] == "pending" else latest), None
        if method == "eth_getBlockByNumber":
            number = int(params[0], 16)
            if number >= len(self.blocks):
                return None, None
            block_hash, parent, txs = self.blocks[number]
            return {"number": hex(number), "hash": block_hash, "parentHash": parent or "0x" + "00" * 32,
                    "timestamp": hex(1_700_000_000 + number), "transactions": list(txs)}, None
        return None, f"method {method} not found"


class BitcoinLedger(Ledger):
    """Regtest-like: blocks only on generatetoaddress; outpoints spent once. The wrong things:
    `replays` (a tx already in a block is taken and mined again), `conflicts` (a second spend
    of one outpoint is taken and mined too)."""

    def __init__(self, coinbases: list[str], password_header: str, replays=False, conflicts=False):
        super().__init__(interval=None)
        self.unspent = {(txid, 0) for txid in coinbases}
        self.spent: set[tuple[str, int]] = set()
        self.auth = password_header
        self.replays, self.conflicts = replays, conflicts

    def submit(self, raw: bytes) -> tuple[str | None, str | None]:
        tx = btx.parse_tx(raw)
        tx_id = tx.txid()
        outpoints = [(t.prev_txid[::-1].hex(), t.prev_index) for t in tx.inputs]
        if self.committed(tx_id) and not self.replays:
            return None, "Transaction already in block chain"
        if not self.conflicts and not self.committed(tx_id):
            if any(o in self.spent or (o not in self.unspent and self.answer("gettxout", list(o))[0] is None)
                   for o in outpoints):
                return None, "bad-txns-inputs-missingorspent"
            if any(o in p for _, p in self.pool for o in outpoints):
                return None, "txn-mempool-conflict"
        self.pool.append((tx_id, outpoints))
        return tx_id, None

    def include(self) -> list[str]:
        taken = [tx_id for tx_id, _ in self.pool]
        for _, outpoints in self.pool:
            self.spent.update(outpoints)
        self.pool = []
        return taken

    def answer(self, method: str, params: list[Any]) -> Any:
        if method == "sendrawtransaction":
            return self.submit(bytes.fromhex(params[0]))
        if method == "getblockcount":
            return len(self.blocks) - 1, None
        if method == "getblockhash":
            return self.blocks[params[0]][0][2:], None
        if method == "getblock":
            for height, (block_hash, parent, txs) in enumerate(self.blocks):
                if block_hash[2:] == params[0]:
                    coinbase = f"{height:064x}"
                    listed = [coinbase, *txs] if params[1] == 1 else \
                        [{"txid": coinbase, "vout": [{"value": 12.5}]}, *({"txid": t} for t in txs)]
                    return {"hash": block_hash[2:], "height": height, "previousblockhash": parent[2:],
                            "tx": listed, "time": 1_700_000_000 + height}, None
            return None, "Block not found"
        if method == "gettxout":
            outpoint = (params[0], params[1])
            mined = int(params[0], 16) if params[0] == f"{int(params[0], 16):064x}" else None
            if mined is not None and 0 < mined < len(self.blocks) and params[1] == 0 \
                    and outpoint not in self.spent and not any(outpoint in p for _, p in self.pool):
                return {"confirmations": len(self.blocks) - mined, "value": 12.5, "coinbase": True}, None
            if outpoint in self.unspent and outpoint not in self.spent \
                    and not any(outpoint in p for _, p in self.pool):
                return {"confirmations": 500, "value": 50.0, "coinbase": True}, None
            return None, None
        if method == "generatetoaddress":
            return [self.mine()[2:] for _ in range(params[0])], None
        return None, f"Method not found: {method}"


class CometLedger(Ledger):
    """kvstore-like: any key=value tx is valid. The wrong thing: `no_cache` (a tx already
    committed is taken again and committed again)."""

    def __init__(self, no_cache=False):
        super().__init__(interval=0.05)
        self.no_cache = no_cache
        self.cache: set[str] = set()

    def submit(self, tx: bytes) -> tuple[str | None, str | None]:
        tx_id = hashlib.sha256(tx).hexdigest().upper()
        if tx_id in self.cache and not self.no_cache:
            return None, "tx already exists in cache"
        self.cache.add(tx_id)
        self.pool.append((tx_id, tx))
        return tx_id, None

    def include(self) -> list[str]:
        self.payloads = getattr(self, "payloads", {})
        for tx_id, tx in self.pool:
            self.payloads[tx_id] = tx
        taken = [tx_id for tx_id, _ in self.pool]
        self.pool = []
        return taken


# -- stub nodes --------------------------------------------------------------------------------


async def serve(ledger: Ledger, family: str) -> tuple[web.AppRunner, int]:
    async def rpc(request: web.Request) -> web.Response:
        if family == "bitcoin" and request.headers.get("Authorization") != ledger.auth:
            return web.Response(status=401)
        doc = json.loads(await request.read())
        if family == "cometbft":
            ledger.tick()
            tx_id, error = ledger.submit(base64.b64decode(doc["params"]["tx"]))
            if error:
                return web.json_response({"jsonrpc": "2.0", "id": doc["id"], "error": {
                    "code": -32603, "message": "Internal error", "data": error}})
            return web.json_response({"jsonrpc": "2.0", "id": doc["id"], "result": {
                "code": 0, "hash": tx_id, "log": ""}})
        result, error = ledger.answer(doc["method"], doc["params"])
        if error:
            return web.json_response({"jsonrpc": "2.0", "id": doc["id"],
                                      "error": {"code": -32000, "message": error}},
                                     status=500 if family == "bitcoin" else 200)
        return web.json_response({"jsonrpc": "2.0", "id": doc["id"], "result": result})

    async def status(request: web.Request) -> web.Response:
        ledger.tick()
        return web.json_response({"jsonrpc": "2.0", "id": -1, "result": {
            "sync_info": {"latest_block_height": str(len(ledger.blocks) - 1)}}})

    async def block(request: web.Request) -> web.Response:
        ledger.tick()
        height = int(request.query["height"])
        block_hash, parent, txs = ledger.blocks[height]
        payloads = getattr(ledger, "payloads", {})
        return web.json_response({"jsonrpc": "2.0", "id": -1, "result": {
            "block_id": {"hash": block_hash},
            "block": {"header": {"height": str(height), "time": "2026-01-01T00:00:00Z",
                                 "last_block_id": {"hash": parent}},
                      "data": {"txs": [base64.b64encode(payloads[t]).decode() for t in txs]}}}})

    app = web.Application()
    app.router.add_post("/", rpc)
    app.router.add_get("/status", status)
    app.router.add_get("/block", block)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


def evm_adapter() -> EvmAdapter:
    pack = chainpack.load(ROOT / "chains" / "anvil")
    return EvmAdapter(pack, dict(pack.params), 1, 3, accounts=8)


def bitcoin_adapter(nodes: int) -> BitcoinAdapter:
    pack = chainpack.load(ROOT / "chains" / "litecoin")
    adapter = BitcoinAdapter(pack, dict(pack.params), nodes, 3, accounts=8)
    adapter.coinbases = [(h, f"{h:02x}" * 32, 50 * 10**8) for h in range(1, 6)]
    return adapter


def comet_adapter(nodes: int) -> CometbftAdapter:
    pack = chainpack.load(ROOT / "chains" / "cometbft")
    return CometbftAdapter(pack, dict(pack.params), nodes, 1, 1)


def probe(family: str, adapter: Any, ledgers: list[Ledger], settings: dict[str, Any] | None = None,
          budget: float = 60) -> list:
    """Run the probe against one stub node per ledger (a ledger listed twice: two nodes that
    share one chain)."""
    async def go() -> list:
        runners, nodes = [], []
        try:
            for i, ledger in enumerate(ledgers):
                runner, port = await serve(ledger, family)
                runners.append(runner)
                nodes.append(Node(f"node{i}", i, f"cid{i}", {"rpc": port}))
            async with aiohttp.ClientSession() as session:
                target = ProbeTarget(probe=replay.ID, severity=replay.SEVERITY, family=family,
                                     pack=adapter.pack, nodes=nodes, adapter=adapter, runtime=None,
                                     settings=dict(settings or FAST), deadline=time.monotonic() + budget,
                                     run_dir=Path("."), say=lambda _: None, session=session)
                return await replay.run(target)
        finally:
            await adapter.close()
            for runner in runners:
                await runner.cleanup()
    return asyncio.run(go())


def verdicts(attempts: list, case: str) -> dict[str, str]:
    return {a.node: a.verdict for a in attempts if a.case == case}


def why(attempts: list, case: str) -> str:
    return " | ".join(a.why for a in attempts if a.case == case)


# -- EVM ---------------------------------------------------------------------------------------


def test_evm_the_right_thing_passes_every_case_on_one_node():
    attempts = probe("evm", evm_adapter(), [EvmLedger(31337)])
    assert {a.case for a in attempts} == {"resubmit", "conflict", "chain_id"}
    assert all(a.verdict == "pass" for a in attempts), [(a.case, a.why) for a in attempts]
    assert "both sent to the network's only node" in why(attempts, "conflict")
    assert "refused it (nonce too low)" in why(attempts, "resubmit")
    assert "signed for chain id 31338" in next(a.title for a in attempts if a.case == "chain_id")


def test_evm_the_right_thing_passes_on_two_nodes_of_one_chain():
    ledger = EvmLedger(31337)
    attempts = probe("evm", evm_adapter(), [ledger, ledger])
    assert verdicts(attempts, "conflict") == {"node0": "pass", "node1": "pass"}
    assert "sent at once to node0 and node1" in why(attempts, "conflict")
    assert all(a.verdict == "pass" for a in attempts), [(a.case, a.why) for a in attempts]


def test_evm_a_resubmitted_tx_committed_twice_fails():
    attempts = probe("evm", evm_adapter(), [EvmLedger(31337, replays=True)])
    assert verdicts(attempts, "resubmit") == {"node0": "fail"}
    assert "accepted it" in why(attempts, "resubmit") and "is in blocks [" in why(attempts, "resubmit")
    assert all(a.severity == "critical" for a in attempts if a.case == "resubmit")


def test_evm_both_conflicting_txs_committed_fails():
    attempts = probe("evm", evm_adapter(), [EvmLedger(31337, conflicts=True)])
    assert verdicts(attempts, "conflict") == {"node0": "fail"}
    assert "both committed on node0: a double spend" in why(attempts, "conflict")


def test_evm_two_nodes_committing_different_conflicting_txs_fail():
    attempts = probe("evm", evm_adapter(), [EvmLedger(31337), EvmLedger(31337)])
    assert verdicts(attempts, "conflict") == {"node0": "fail", "node1": "fail"}
    assert "the nodes committed different ones" in why(attempts, "conflict")


def test_evm_a_tx_for_another_chain_id_mined_fails_critical():
    attempts = probe("evm", evm_adapter(), [EvmLedger(31337, any_chain=True)])
    [attempt] = [a for a in attempts if a.case == "chain_id"]
    assert attempt.verdict == "fail" and attempt.severity == "critical"
    assert "replayable across chains" in attempt.why and "nonce is 1, expected 0" in attempt.why


def test_evm_a_tx_for_another_chain_id_taken_but_not_mined_fails_medium():
    attempts = probe("evm", evm_adapter(), [EvmLedger(31337, pool_any_chain=True)])
    [attempt] = [a for a in attempts if a.case == "chain_id"]
    assert attempt.verdict == "fail" and attempt.severity == "medium"
    assert "answered it as accepted" in attempt.why


def test_evm_a_chain_that_commits_nothing_is_unknown_never_a_pass():
    attempts = probe("evm", evm_adapter(), [EvmLedger(31337, interval=None)],
                     {**FAST, "commit_timeout": 1, "settle_timeout": 1})
    assert verdicts(attempts, "resubmit") == {"node0": "unknown"}
    assert verdicts(attempts, "conflict") == {"node0": "unknown"}
    assert "did not commit" in why(attempts, "resubmit")


def test_evm_a_node_that_stays_behind_is_unknown_where_absence_would_prove_something():
    stalled = EvmLedger(31337, interval=None)      # never makes a block: never reaches the settle height
    attempts = probe("evm", evm_adapter(), [EvmLedger(31337), stalled], {**FAST, "settle_timeout": 2})
    assert verdicts(attempts, "resubmit") == {"node0": "pass", "node1": "unknown"}
    assert verdicts(attempts, "conflict") == {"node0": "pass", "node1": "unknown"}
    assert verdicts(attempts, "chain_id") == {"node0": "pass", "node1": "unknown"}
    assert "node1 reached only height 0 of" in why(attempts, "conflict")


def test_evm_a_node_whose_blocks_cannot_be_read_is_unknown():
    class Unreadable(EvmLedger):
        def answer(self, method: str, params: list[Any]) -> Any:
            if method == "eth_getBlockByNumber" and self.committed_once:
                return None, "block reads are closed"
            return super().answer(method, params)
    ledger = Unreadable(31337)
    ledger.committed_once = False
    real_include = ledger.include

    def include() -> list[str]:   # blocks become unreadable after the first resubmission commit
        taken = real_include()
        if taken:
            ledger.committed_once = True
        return taken
    ledger.include = include
    attempts = probe("evm", evm_adapter(), [ledger], {**FAST, "commit_timeout": 1})
    assert attempts and all(a.verdict == "unknown" for a in attempts), [(a.case, a.why) for a in attempts]


# -- Bitcoin -----------------------------------------------------------------------------------


def test_bitcoin_the_right_thing_passes_on_two_nodes():
    adapter = bitcoin_adapter(2)
    ledger = BitcoinLedger([c[1] for c in adapter.coinbases], adapter.submit_headers["Authorization"])
    attempts = probe("bitcoin", adapter, [ledger, ledger])
    assert {a.case for a in attempts} == {"resubmit", "conflict"}   # no chain id in Bitcoin txs
    assert all(a.verdict == "pass" for a in attempts), [(a.case, a.why) for a in attempts]
    assert "Transaction already in block chain" in why(attempts, "resubmit")
    assert len(adapter.coinbases) == 3   # the two coinbases the probe spent are no one else's


def test_bitcoin_a_resubmitted_tx_mined_twice_fails():
    adapter = bitcoin_adapter(1)
    ledger = BitcoinLedger([c[1] for c in adapter.coinbases], adapter.submit_headers["Authorization"],
                           replays=True)
    attempts = probe("bitcoin", adapter, [ledger])
    assert verdicts(attempts, "resubmit") == {"node0": "fail"}


def test_bitcoin_both_spends_of_one_outpoint_mined_fails():
    adapter = bitcoin_adapter(2)
    ledger = BitcoinLedger([c[1] for c in adapter.coinbases], adapter.submit_headers["Authorization"],
                           conflicts=True)
    attempts = probe("bitcoin", adapter, [ledger, ledger])
    assert verdicts(attempts, "conflict") == {"node0": "fail", "node1": "fail"}
    assert "a double spend" in why(attempts, "conflict")


def test_bitcoin_without_spendable_coins_within_the_mining_budget_is_unknown():
    adapter = bitcoin_adapter(1)
    ledger = BitcoinLedger([], adapter.submit_headers["Authorization"])   # every coinbase spent
    attempts = probe("bitcoin", adapter, [ledger], {**FAST, "mine_blocks": 10})
    assert [(a.case, a.verdict) for a in attempts] == [("setup", "unknown")]
    assert "settings.mine_blocks allows 10" in attempts[0].why


def test_bitcoin_with_the_runs_coinbases_spent_the_probe_mines_and_matures_fresh_ones():
    adapter = bitcoin_adapter(1)
    ledger = BitcoinLedger([], adapter.submit_headers["Authorization"])
    attempts = probe("bitcoin", adapter, [ledger])
    assert all(a.verdict == "pass" for a in attempts), [(a.case, a.why) for a in attempts]
    assert len(ledger.blocks) > adapter.maturity + 2 and adapter.coinbases == []


# -- CometBFT kvstore -------------------------------------------------------------------------


def test_cometbft_the_right_thing_passes_and_conflicts_do_not_apply():
    ledger = CometLedger()
    attempts = probe("cometbft", comet_adapter(4), [ledger] * 4)
    assert {a.case for a in attempts} == {"resubmit"}
    assert verdicts(attempts, "resubmit") == {f"node{i}": "pass" for i in range(4)}
    assert "tx already exists in cache" in why(attempts, "resubmit")


def test_cometbft_a_tx_committed_twice_without_the_mempool_cache_fails():
    attempts = probe("cometbft", comet_adapter(1), [CometLedger(no_cache=True)])
    assert verdicts(attempts, "resubmit") == {"node0": "fail"}


# -- any other family ----------------------------------------------------------------------------


def test_an_unknown_family_is_not_applicable():
    target = ProbeTarget(probe=replay.ID, severity=replay.SEVERITY, family="vendor-chain", pack=None,
                         nodes=[], adapter=None, runtime=None, settings=dict(replay.DEFAULTS),
                         deadline=time.monotonic() + 5, run_dir=Path("."))
    with pytest.raises(NotApplicable, match="no replay cases for the vendor-chain family"):
        asyncio.run(replay.run(target))
