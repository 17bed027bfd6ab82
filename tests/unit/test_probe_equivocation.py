"""The equivocation probe against stub CometBFT nodes (aiohttp servers on 127.0.0.1) that
do the wrong thing (never commit the double sign's evidence, fork, halt) and the right thing,
with a fake runtime whose twins are stub servers too."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web

from harness.adapters.cometbft import derive_key
from harness.errors import InfraError, InputError
from harness.model import Node
from harness.security.probe import NotApplicable, ProbeTarget
from harness.security.probes import equivocation as eq

FAST = {"blocks": 8, "seconds": 3, "join_timeout": 2, "min_blocks": 2, "partition": False,
        "aftermath": 0.3}
BLOCK = 0.05   # seconds a stub block takes


class Chain:
    """The simulated network: a height that grows with time, and what the nodes do wrong."""

    def __init__(self, nodes: int, evidence: bool = True, fork: int | None = None,
                 halted: bool = False, evidence_delay: int = 3):
        self.keys = [derive_key("validator", 1, i) for i in range(nodes)]
        self.t0 = time.monotonic()
        self.evidence, self.fork, self.halted = evidence, fork, halted
        self.evidence_delay = evidence_delay
        self.twins: dict[int, int] = {}    # key index -> height its twin joined

    def height(self) -> int:
        return 10 if self.halted else 10 + int((time.monotonic() - self.t0) / BLOCK)

    def block_hash(self, node: int, height: int) -> str:
        side = "B" if node == self.fork and height > 10 else "A"
        return f"{side}{height:063X}"

    def evidence_in(self, height: int) -> list[dict]:
        if not self.evidence:
            return []
        return [{"type": eq.EVIDENCE_TYPE, "value": {
            "vote_a": {"type": 1, "height": str(height - 1), "round": 0,
                       "block_id": {"hash": "AA"}, "validator_address": self.keys[k].address},
            "vote_b": {"type": 1, "height": str(height - 1), "round": 0,
                       "block_id": {"hash": "BB"}, "validator_address": self.keys[k].address}}}
            for k, joined in self.twins.items() if height == joined + self.evidence_delay]


def node_app(chain: Chain, index: int) -> web.Application:
    def reply(result: object) -> web.Response:
        return web.json_response({"jsonrpc": "2.0", "id": -1, "result": result})

    async def validators(_request: web.Request) -> web.Response:
        return reply({"validators": [{"address": k.address, "voting_power": "10"} for k in chain.keys],
                      "total": str(len(chain.keys))})

    async def status(_request: web.Request) -> web.Response:
        return reply({"sync_info": {"latest_block_height": str(chain.height()), "catching_up": False},
                      "validator_info": {"address": chain.keys[index].address}})

    async def block(request: web.Request) -> web.Response:
        height = int(request.query["height"])
        if height > chain.height():
            return web.json_response({"jsonrpc": "2.0", "id": -1,
                                      "error": {"code": -32603, "message": "height too high"}})
        return reply({"block_id": {"hash": chain.block_hash(index, height)},
                      "block": {"header": {"height": str(height)},
                                "evidence": {"evidence": chain.evidence_in(height)}}})

    async def blockchain(request: web.Request) -> web.Response:
        low, high = int(request.query["minHeight"]), min(int(request.query["maxHeight"]), chain.height())
        return reply({"last_height": str(chain.height()), "block_metas": [
            {"block_id": {"hash": chain.block_hash(index, h)}, "header": {"height": str(h)}}
            for h in range(high, low - 1, -1)]})

    app = web.Application()
    for path, handler in (("/validators", validators), ("/status", status), ("/block", block),
                          ("/blockchain", blockchain)):
        app.router.add_get(path, handler)
    return app


class Servers:
    def __init__(self) -> None:
        self.runners: list[web.AppRunner] = []

    async def start(self, app: web.Application) -> int:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.runners.append(runner)
        return site._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


class FakeRuntime:
    """start_twin/remove_twin as the probe uses them; a twin is a stub node of its key."""

    def __init__(self, chain: Chain, ports: dict[int, int], fail_at: int | None = None):
        self.chain, self.ports, self.fail_at = chain, ports, fail_at
        self.started: list[tuple[str, dict[str, bytes]]] = []
        self.removed: list[str] = []

    def start_twin(self, node: Node, files: dict[str, bytes], name: str) -> Node:
        if self.fail_at is not None and len(self.started) == self.fail_at:
            raise InfraError(f"cannot start {name}: engine said no")
        self.started.append((name, files))
        self.chain.twins[node.index] = self.chain.height() + 1
        return Node(name, node.index, f"cid-{name}", {"rpc": self.ports[node.index]})

    def remove_twin(self, twin: Node) -> None:
        self.removed.append(twin.name)


def adapter(nodes: int) -> SimpleNamespace:
    return SimpleNamespace(identity_seed=1, p2p_port=26656,
                           validator_keys=lambda: [derive_key("validator", 1, i) for i in range(nodes)],
                           node_keys=lambda: [derive_key("node", 1, i) for i in range(nodes)])


def probe(tmp_path: Path, chain: Chain, settings: dict, family: str = "cometbft",
          fail_at: int | None = None, options: dict | None = None
          ) -> tuple[list, FakeRuntime | None, Exception | None]:
    """Run the probe against `len(chain.keys)` stub nodes; (attempts, runtime, error raised)."""
    async def go():
        servers = Servers()
        try:
            ports = [await servers.start(node_app(chain, i)) for i in range(len(chain.keys))]
            twin_ports = {i: await servers.start(node_app(chain, i)) for i in range(len(chain.keys))}
            nodes = [Node(f"node{i}", i, f"cid{i}", {"rpc": port}, ip=f"10.0.0.{i + 2}")
                     for i, port in enumerate(ports)]
            runtime = FakeRuntime(chain, twin_ports, fail_at)
            async with aiohttp.ClientSession() as session:
                target = ProbeTarget(probe=eq.ID, severity=eq.SEVERITY, family=family,
                                     pack=SimpleNamespace(ports={"rpc": 26657}, options=options or {}),
                                     nodes=nodes, adapter=adapter(len(nodes)), runtime=runtime,
                                     settings={**eq.DEFAULTS, **FAST, **settings},
                                     deadline=time.monotonic() + 60, run_dir=tmp_path,
                                     say=lambda _text: None, session=session)
                try:
                    return await eq.run(target), runtime, None
                except (InfraError, InputError, NotApplicable) as exc:
                    return [], runtime, exc
        finally:
            await servers.close()
    return asyncio.run(go())


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch):
    monkeypatch.setattr(eq, "POLL", 0.05)
    monkeypatch.setattr(eq, "RESERVE", 1.0)


def by_case(attempts: list) -> dict:
    return {a.case: a for a in attempts}


def test_honest_network_commits_the_evidence_keeps_going_and_agrees(tmp_path):
    attempts, runtime, error = probe(tmp_path, Chain(4), {})
    assert error is None
    cases = by_case(attempts)
    assert set(cases) == {"evidence.node3", "liveness", "safety"}
    assert cases["evidence.node3"].verdict == "pass", cases["evidence.node3"].why
    assert derive_key("validator", 1, 3).address in cases["evidence.node3"].answer
    assert cases["liveness"].verdict == "pass" and cases["safety"].verdict == "pass"
    assert all(a.severity == "critical" for a in attempts)
    assert runtime.removed == ["twin3"]


def test_the_twin_gets_a_p2p_key_of_its_own_and_peers_with_every_node(tmp_path):
    _attempts, runtime, _error = probe(tmp_path, Chain(4), {"twins": [1]})
    (name, files), = runtime.started
    assert name == "twin1"
    node_ids = {derive_key("node", 1, i).node_id for i in range(4)}
    assert files["node_id"].decode() not in node_ids
    assert json.loads(files["node_key.json"])["priv_key"]["type"] == "tendermint/PrivKeyEd25519"
    peers = files["persistent_peers"].decode().split(",")
    assert sorted(peers) == sorted(f"{derive_key('node', 1, i).node_id}@node{i}:26656" for i in range(4))
    assert "priv_validator_key.json" not in files and "genesis.json" not in files   # the node's own


def test_a_double_sign_never_committed_as_evidence_fails(tmp_path):
    attempts, runtime, _error = probe(tmp_path, Chain(4, evidence=False), {})
    evidence = by_case(attempts)["evidence.node3"]
    assert evidence.verdict == "fail" and "no DuplicateVoteEvidence" in evidence.why
    assert runtime.removed == ["twin3"]


def test_evidence_later_than_the_bound_fails(tmp_path):
    attempts, _runtime, _error = probe(tmp_path, Chain(4, evidence_delay=12), {"blocks": 5})
    evidence = by_case(attempts)["evidence.node3"]
    assert evidence.verdict in ("fail",), evidence.why


def test_a_fork_fails_safety(tmp_path):
    attempts, _runtime, _error = probe(tmp_path, Chain(4, fork=2), {})
    safety = by_case(attempts)["safety"]
    assert safety.verdict == "fail" and "node2 B" in safety.why


def test_a_halted_network_fails_liveness(tmp_path):
    attempts, _runtime, _error = probe(tmp_path, Chain(4, halted=True), {})
    cases = by_case(attempts)
    assert cases["liveness"].verdict == "fail"
    assert cases["evidence.node3"].verdict in ("fail", "unknown")   # never "pass"


def test_a_third_of_the_power_is_the_negative_control(tmp_path):
    forked, _runtime, _error = probe(tmp_path, Chain(4, fork=3, evidence=False), {"twins": [0, 1]})
    cases = by_case(forked)
    assert set(cases) == {"evidence.node0", "evidence.node1", "liveness", "safety", "aftermath"}
    assert all(a.severity == "info" for a in forked)
    assert cases["safety"].verdict == "pass" and "expected safety loss" in cases["safety"].why
    assert cases["evidence.node0"].verdict == "pass" and "recorded" in cases["evidence.node0"].title
    kept, _runtime, _error = probe(tmp_path, Chain(4), {"twins": [0, 1]})
    assert by_case(kept)["safety"].verdict == "unknown"   # the control did not show its loss


def test_twins_are_removed_when_starting_one_fails(tmp_path):
    chain = Chain(7)   # 2 of 7: below a third
    attempts, runtime, error = probe(tmp_path, chain, {"twins": [2, 5]}, fail_at=1)
    assert isinstance(error, InfraError) and attempts == []
    assert runtime.removed == ["twin2"]


@pytest.mark.parametrize("twins", [[4], [-1], [0, 0], [], ["1"], [True]])
def test_bad_twins_setting_is_one_input_error(tmp_path, twins):
    _attempts, runtime, error = probe(tmp_path, Chain(4), {"twins": twins})
    assert isinstance(error, InputError) and "twins" in str(error)
    assert runtime.started == []


def test_other_families_are_not_applicable(tmp_path):
    for family, options in (("bitcoin", {}), ("evm", {}), ("mychain", {})):
        _attempts, _runtime, error = probe(tmp_path, Chain(4), {}, family=family, options=options)
        assert isinstance(error, NotApplicable) and family in str(error)


def test_split_gives_both_sides_more_than_two_thirds():
    nodes = [Node(f"node{i}", i, "") for i in range(4)]
    side = eq._split(nodes[2:], 20, 40, lambda _n: 10)
    assert [n.name for n in side] == ["node3"]
    assert eq._split(nodes[1:], 10, 40, lambda _n: 10) == []   # 1 of 4: no split is needed


# -- geth Clique -------------------------------------------------------------------------------


CLIQUE_HEADER = {
    "parentHash": "0x" + "11" * 32, "sha3Uncles": "0x" + "22" * 32, "miner": "0x" + "00" * 20,
    "stateRoot": "0x" + "33" * 32, "transactionsRoot": "0x" + "44" * 32,
    "receiptsRoot": "0x" + "55" * 32, "logsBloom": "0x" + "00" * 256, "difficulty": "0x2",
    "gasLimit": "0x5f5e100", "gasUsed": "0x0", "timestamp": "0x6553f100",
    "mixHash": "0x" + "00" * 32, "nonce": "0x0000000000000000", "baseFeePerGas": "0x7",
}


def sealed_block(number: int, key: bytes) -> dict:
    """A Clique header sealed by `key` as geth does: the signature over keccak(rlp(header
    with extraData minus the seal)) appended to extraData."""
    import coincurve
    import rlp
    from eth_hash.auto import keccak

    from harness.audit.evm import FORK_FIELDS, HEADER_FIELDS, INTEGER_FIELDS, _bytes, _int

    block = {**CLIQUE_HEADER, "number": hex(number), "extraData": "0x" + "00" * 32,
             "hash": f"0x{number:064x}"}
    names = HEADER_FIELDS + tuple(f for f in FORK_FIELDS if block.get(f) is not None)
    fields = [_int(block[n]) if n in INTEGER_FIELDS else _bytes(block[n]) for n in names]
    seal = coincurve.PrivateKey(key).sign_recoverable(keccak(rlp.encode(fields)), hasher=None)
    block["extraData"] += seal.hex()
    return block


def test_the_clique_signer_is_recovered_from_the_seal():
    from harness.adapters.evm_tx import derive_account

    signer = derive_account("signer", 1, 2)
    block = sealed_block(85, signer.key)
    assert eq.clique_signer(block) == signer.hex_address.lower()
    assert eq.clique_signer({**block, "extraData": "0x" + "00" * 40}) is None    # no seal
    assert eq.clique_signer({**block, "number": "zz"}) is None                   # hostile header
    assert eq.clique_signer({"extraData": 7}) is None


def test_sealed_blocks_are_read_from_the_twins_log(tmp_path):
    log = tmp_path / "twin3.log"
    log.write_bytes(b"junk \xff\n2026 INFO Successfully sealed new block            number=1,085 "
                    b"sealhash=ef5c0a..46d3a1 hash=098eaf..d74dad elapsed=484ms\n"
                    b"INFO Successfully sealed new block number=zz hash=1..2\n")
    assert eq._sealed_by(log) == {1085: "098eaf..d74dad"}
    assert eq._sealed_by(tmp_path / "missing.log") == {}
    assert eq._abbreviates("098eaf..d74dad", "0x098EAF" + "0" * 52 + "d74dad")
    assert not eq._abbreviates("098eaf..d74dad", "0x" + "1" * 64) and not eq._abbreviates("..", "0x")


def clique_app(keys: list[bytes], t0: float, twin: bool = False, silent: bool = False) -> web.Application:
    def height() -> int:
        return 10 + int((time.monotonic() - t0) / BLOCK)

    async def handle(request: web.Request) -> web.Response:
        call = await request.json()
        if silent:
            return web.Response(status=503)
        if call["method"] == "eth_blockNumber":
            result: object = hex(height())
        else:
            tag = call["params"][0]
            number = height() if tag == "latest" else int(tag, 16)
            result = sealed_block(number, keys[number % len(keys)])
            if twin:
                result["hash"] = f"0x{number + 1:064x}"   # the twin holds another block
        return web.json_response({"jsonrpc": "2.0", "id": call["id"], "result": result})

    app = web.Application()
    app.router.add_post("/", handle)
    return app


class FakeClique(FakeRuntime):
    def __init__(self, ports: dict[int, int], log_dir: Path, sealed: dict[int, str]):
        super().__init__(Chain(1), ports)
        self.log_dir, self.sealed = log_dir, sealed

    def log_path(self, node: Node) -> Path:
        return self.log_dir / f"{node.name}.log"

    def remove_twin(self, twin: Node) -> None:
        self.removed.append(twin.name)
        self.log_path(twin).write_text("".join(
            f"INFO Successfully sealed new block number={h} sealhash=aa..bb hash={short}\n"
            for h, short in self.sealed.items()))


def clique_probe(tmp_path: Path, sealed: dict[int, str], twin_silent: bool = False,
                 twin_differs: bool = False) -> list:
    from harness.adapters.evm_tx import derive_account

    signers = [derive_account("signer", 1, i) for i in range(4)]

    async def go():
        servers, t0 = Servers(), time.monotonic()
        try:
            ports = [await servers.start(clique_app([s.key for s in signers], t0)) for _ in range(4)]
            twin_port = await servers.start(clique_app([s.key for s in signers], t0,
                                                       twin=twin_differs, silent=twin_silent))
            nodes = [Node(f"node{i}", i, f"cid{i}", {"rpc": port}) for i, port in enumerate(ports)]
            runtime = FakeClique({3: twin_port}, tmp_path, sealed)
            async with aiohttp.ClientSession() as session:
                target = ProbeTarget(probe=eq.ID, severity=eq.SEVERITY, family="evm",
                                     pack=SimpleNamespace(ports={"rpc": 8545}, options={"clique": True}),
                                     nodes=nodes, runtime=runtime, settings={**eq.DEFAULTS, **FAST},
                                     adapter=SimpleNamespace(identity_seed=1, signers=lambda: signers),
                                     deadline=time.monotonic() + 60, run_dir=tmp_path,
                                     say=lambda _text: None, session=session)
                attempts = await eq.run(target)
            assert runtime.removed == ["twin3"]
            (_name, files), = runtime.started
            assert set(files) == {"nodekey"}   # its own p2p key; the signer key is node3's
            return attempts
        finally:
            await servers.close()
    return asyncio.run(go())


def test_clique_records_the_blocks_one_key_sealed_twice(tmp_path):
    # Heights 3 mod 4 are node3's key's turn: 11 lost to the original's block, 15 the same block.
    attempts = clique_probe(tmp_path, {11: "aaaaaa..bbbbbb", 15: f"{15:064x}"[:6] + ".." + f"{15:064x}"[-6:]})
    cases = by_case(attempts)
    assert set(cases) == {"clique.double_seal", "clique.liveness", "clique.convergence"}
    seal = cases["clique.double_seal"]
    assert seal.verdict == "pass" and seal.severity == "info"
    assert "at 1 (11) node0 holds a different block sealed by the same key" in seal.why
    assert "at 1 the twin's block is the one node0 holds" in seal.why
    assert cases["clique.liveness"].verdict == "pass" and cases["clique.convergence"].verdict == "pass"
    assert "polling saw" not in seal.why


def test_clique_records_two_blocks_of_one_height_seen_by_polling(tmp_path):
    seal = by_case(clique_probe(tmp_path, {}, twin_differs=True))["clique.double_seal"]
    assert seal.verdict == "pass" and "two blocks sealed by one key" in seal.why


def test_clique_twin_that_shows_nothing_is_unknown(tmp_path):
    attempts = clique_probe(tmp_path, {}, twin_silent=True)
    assert by_case(attempts)["clique.double_seal"].verdict == "unknown"
