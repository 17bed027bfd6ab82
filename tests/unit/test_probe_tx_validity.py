"""The tx_validity probe against stub nodes (aiohttp servers on 127.0.0.1): an honest node
refuses every invalid transaction and commits none; a careless one accepts them all and
commits them; a sly one refuses at submission but commits anyway. The probe must pass the
first and fail the others, per case, on every family."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import coincurve
import pytest
import rlp
from aiohttp import web
from eth_hash.auto import keccak

from harness import chainpack
from harness.adapters import bitcoin_tx as btx
from harness.adapters.bitcoin import BitcoinAdapter, Utxo
from harness.adapters.cometbft import CometbftAdapter, tx_hash
from harness.adapters.evm import EvmAdapter
from harness.adapters.evm_tx import SECP256K1_N, account_from_key, derive_account, sign_transfer
from harness.model import Node
from harness.paths import home
from harness.security import registry
from harness.security.probe import NotApplicable, ProbeTarget
from harness.security.probes import tx_validity as probe

EVM_CASES = {"bad_signature", "signature_zero_r", "high_s", "wrong_chain_id", "unprotected",
             "gas_below_intrinsic", "oversized_data", "gas_above_block_limit", "nonce_reused",
             "nonce_too_low", "insufficient_funds"}
BTC_CASES = {"spent_outpoint", "unknown_outpoint", "bad_signature", "value_above_inputs"}
CMT_CASES = {"no_separator", "two_separators", "empty_key", "empty", "bad_validator_update"}
SETTINGS = {**probe.DEFAULTS, "blocks": 1, "wait": 3}


# -- a stub node: JSON-RPC over POST /, a block every 0.1 s -----------------------------------


class Stub:
    """A chain that makes a block every 0.1 s from its pool. `mode`: honest (validates),
    careless (accepts and commits everything), sly (refuses everything invalid at submission
    but commits it all the same)."""

    def __init__(self, mode: str):
        self.mode = mode
        self.blocks: list[list[str]] = [[]]   # tx ids per height; height 0 is genesis
        self.pool: list[tuple[str, Any]] = []

    def mine(self) -> None:
        ids = [tx_id for tx_id, _ in self.pool]
        for _, effect in self.pool:
            if effect:
                effect()
        self.pool = []
        self.blocks.append(ids)

    def submit(self, tx_id: str, error: str | None, effect: Any = None) -> str | None:
        """The node's verdict on a submission (None: accepted) after its mode is applied."""
        if error is None or self.mode != "honest":
            self.pool.append((tx_id, effect if error is None else None))
        return error if self.mode != "careless" else None

    async def serve(self, handler: Any, routes: list[tuple[str, str, Any]] = ()) -> tuple[web.AppRunner, int]:
        app = web.Application(client_max_size=8 << 20)
        app.router.add_post("/", handler)
        for method, path, route in routes:
            app.router.add_route(method, path, route)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]


def rpc_reply(request_id: Any, result: Any = None, error: str | None = None,
              status: int = 200) -> web.Response:
    body = {"jsonrpc": "2.0", "id": request_id}
    body.update({"error": {"code": -32000, "message": error}} if error else {"result": result})
    return web.json_response(body, status=status)


async def run_probe(stub: Stub, adapter: Any, family: str, handler: Any, routes=(),
                    settings: dict | None = None) -> list:
    runner, port = await stub.serve(handler, routes)

    async def miner():
        while True:
            await asyncio.sleep(0.1)
            stub.mine()
    mining = asyncio.create_task(miner())
    import aiohttp
    try:
        async with aiohttp.ClientSession() as session:
            target = ProbeTarget(probe=probe.ID, severity=probe.SEVERITY, family=family,
                                 pack=SimpleNamespace(ports={"rpc": 1}),
                                 nodes=[Node("node0", 0, "c", {"rpc": port})],
                                 adapter=adapter, runtime=None, settings={**SETTINGS, **(settings or {})},
                                 deadline=time.monotonic() + 60, run_dir=Path("."), session=session)
            return await probe.run(target)
    finally:
        mining.cancel()
        await adapter.close()
        await runner.cleanup()


def verdicts(attempts: list) -> dict[str, str]:
    return {a.case: a.verdict for a in attempts}


# -- EVM ----------------------------------------------------------------------------------------


GAS_LIMIT = 30_000_000


def evm_adapter() -> EvmAdapter:
    pack = chainpack.load(home() / "chains" / "anvil")
    return EvmAdapter(pack, dict(pack.params), 1, 7, accounts=2)


def recover(raw: bytes) -> tuple[list, str | None, int | None, str | None]:
    """(fields, sender address or None, chain id or None, why the signature is invalid)."""
    fields = rlp.decode(raw)
    v, r, s = (int.from_bytes(f, "big") for f in fields[6:9])
    if v in (27, 28):
        chain, recid, signed = None, v - 27, fields[:6]
    else:
        chain, recid = (v - 35) // 2, (v - 35) % 2
        signed = fields[:6] + [chain, 0, 0]
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        return fields, None, chain, "invalid signature values"
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([recid]), keccak(rlp.encode(signed)),
            hasher=None)
    except Exception:
        return fields, None, chain, "invalid sender"
    address = "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()
    return fields, address, chain, "high s" if s > SECP256K1_N // 2 else None


class EvmStub(Stub):
    def __init__(self, mode: str, adapter: EvmAdapter):
        super().__init__(mode)
        self.chain_id = adapter.chain_id
        self.balance = {a.hex_address: 10**24 for a in adapter.senders(2)}
        self.nonce = {a.hex_address: 5 for a in adapter.senders(2)}   # 5 committed txs each
        self.pending: dict[str, int] = {}

    def check(self, raw: bytes) -> tuple[str | None, Any, str | None, int]:
        """(why it is invalid or None, its effect once mined, its sender, its nonce)."""
        fields, sender, chain, bad_sig = recover(raw)
        nonce, price, gas, _, value = (int.from_bytes(f, "big") for f in fields[:5])
        data, to = fields[5], "0x" + fields[3].hex()
        if sender is None:
            return bad_sig, None, None, nonce
        expected = self.pending.get(sender, self.nonce.get(sender, 0))

        def effect() -> None:
            self.nonce[sender] = max(self.nonce.get(sender, 0), nonce + 1)
            self.balance[sender] = self.balance.get(sender, 0) - value - gas * price
            self.balance[to] = self.balance.get(to, 0) + value
        why = None
        if bad_sig:
            why = bad_sig
        elif chain is None:
            why = "only replay-protected (EIP-155) transactions allowed over RPC"
        elif chain != self.chain_id:
            why = "invalid chain id"
        elif nonce < expected:
            why = "nonce too low"
        elif gas < 21_000 + sum(16 if b else 4 for b in data):
            why = "intrinsic gas too low"
        elif gas > GAS_LIMIT:
            why = "exceeds block gas limit"
        elif len(data) > 128 * 1024:
            why = "oversized data"
        elif self.balance.get(sender, 0) < value + gas * price:
            why = "insufficient funds for gas * price + value"
        return why, effect, sender, nonce

    async def handle(self, request: web.Request) -> web.Response:
        call = json.loads(await request.read())
        method, params, rid = call["method"], call["params"], call["id"]
        if method == "eth_chainId":
            return rpc_reply(rid, hex(self.chain_id))
        if method == "eth_blockNumber":
            return rpc_reply(rid, hex(len(self.blocks) - 1))
        if method == "eth_getTransactionCount":
            address, tag = params[0].lower(), params[1]
            count = self.nonce.get(address, 0)
            return rpc_reply(rid, hex(self.pending.get(address, count) if tag == "pending" else count))
        if method == "eth_getBlockByNumber":
            number = len(self.blocks) - 1 if params[0] == "latest" else int(params[0], 16)
            if number >= len(self.blocks):
                return rpc_reply(rid, None)
            return rpc_reply(rid, {"number": hex(number), "hash": "0x" + f"{number:064x}",
                                   "parentHash": "0x" + f"{max(number - 1, 0):064x}",
                                   "timestamp": hex(1_700_000_000 + number), "gasLimit": hex(GAS_LIMIT),
                                   "transactions": list(self.blocks[number])})
        if method == "eth_sendRawTransaction":
            raw = bytes.fromhex(params[0][2:])
            tx_id = "0x" + keccak(raw).hex()
            error, effect, sender, nonce = self.check(raw)
            verdict = self.submit(tx_id, error, effect)
            if verdict is None and sender is not None:
                self.pending[sender] = max(self.pending.get(sender, 0), nonce + 1)
            return rpc_reply(rid, None if verdict else tx_id, verdict)
        return rpc_reply(rid, error=f"method {method} not found")


def run_evm(mode: str) -> list:
    adapter = evm_adapter()
    stub = EvmStub(mode, adapter)
    return asyncio.run(run_probe(stub, adapter, "evm", stub.handle))


def test_an_honest_evm_node_passes_every_case():
    attempts = run_evm("honest")
    got = verdicts(attempts)
    assert {c.rsplit(".", 1)[0] for c in got} == EVM_CASES
    assert set(got.values()) == {"pass"}, [(a.case, a.why) for a in attempts if a.verdict != "pass"]
    refused = {a.case: a.why for a in attempts if a.case.endswith(".submit")}
    assert "high s" in refused["high_s.submit"] and "chain id" in refused["wrong_chain_id.submit"]
    assert "replay-protected" in refused["unprotected.submit"]
    assert "nonce too low" in refused["nonce_reused.submit"]
    assert "oversized" in refused["oversized_data.submit"]


def test_a_careless_evm_node_fails_every_case_at_submission_and_in_its_blocks():
    attempts = run_evm("careless")
    got = verdicts(attempts)
    assert {c for c, v in got.items() if v != "fail"} == set(), got
    committed = {a.case: a for a in attempts if a.case.endswith(".block")}
    assert len(committed) == len(EVM_CASES)
    assert all(a.why.startswith("committed: node0 block") for a in committed.values())
    assert committed["high_s.block"].severity == "critical"
    assert committed["unprotected.block"].severity == "high"
    assert committed["oversized_data.block"].severity == "medium"
    accepted = next(a for a in attempts if a.case == "high_s.submit")
    assert accepted.severity == "high" and "eth_sendRawTransaction" in accepted.request


def test_a_sly_evm_node_that_refuses_but_commits_fails_the_block_cases():
    attempts = run_evm("sly")
    got = verdicts(attempts)
    assert all(v == "pass" for c, v in got.items() if c.endswith(".submit")), got
    assert all(v == "fail" for c, v in got.items() if c.endswith(".block")), got
    assert "although its submission was refused" in next(a.why for a in attempts
                                                          if a.case == "wrong_chain_id.block")


def test_cases_it_cannot_build_are_unknown_never_pass():
    """A node that will not say its block or the sender's nonce gets unknown attempts."""
    adapter = evm_adapter()
    stub = EvmStub("honest", adapter)

    async def handler(request: web.Request) -> web.Response:
        call = json.loads(await request.read())
        if call["method"] in ("eth_getBlockByNumber", "eth_getTransactionCount") and \
                call["params"][-1] in ("latest", False):
            return rpc_reply(call["id"], error="not today")
        return await stub.handle(request)
    attempts = asyncio.run(run_probe(stub, adapter, "evm", handler))
    got = verdicts(attempts)
    assert got["gas_above_block_limit.submit"] == "unknown"
    assert got["nonce_reused.submit"] == got["nonce_too_low.submit"] == "unknown"
    assert "fail" not in got.values()


def test_a_node_answering_garbage_gets_no_pass_for_what_could_not_be_read():
    adapter = evm_adapter()
    stub = EvmStub("careless", adapter)

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"\x00<html>\xff" * 100, status=200)
    attempts = asyncio.run(run_probe(stub, adapter, "evm", handler))
    got = verdicts(attempts)
    # Only what was sent and not accepted passes; no block could be read, so no block case passes.
    assert {c for c, v in got.items() if v == "pass"} == {"insufficient_funds.submit"}, got
    assert got["insufficient_funds.block"] == "unknown" and "fail" not in got.values()
    assert all("\\x00" in a.answer for a in attempts if a.case == "insufficient_funds.submit")


def test_evm_signature_variants():
    key = derive_account("sender", 1, 0).key
    sender = account_from_key(key).hex_address
    raw, _ = sign_transfer(key, 3, 10**10, 21_000, bytes(20), 1, 1337)
    assert recover(raw)[1:] == (sender, 1337, None)
    high = probe.evm_high_s(raw, 1337)
    _, r, s = probe.evm_fields(high)
    assert s > SECP256K1_N // 2 and r == probe.evm_fields(raw)[1]
    assert recover(high)[1:] == (sender, 1337, "high s")      # same sender: malleated, not forged
    flipped = probe.evm_flip_s(raw)
    assert recover(flipped)[1] not in (None, sender) and recover(flipped)[3] is None
    unprotected = probe.evm_unprotected(key, 3, 10**10, 21_000, bytes(20), 1)
    assert probe.evm_fields(unprotected)[0] in (27, 28) and recover(unprotected)[1:3] == (sender, None)


# -- CometBFT -----------------------------------------------------------------------------------


def kvstore_valid(tx: bytes) -> bool:
    """kvstore 0.38's CheckTx (abci/example/kvstore/kvstore.go)."""
    if tx.startswith(b"val="):
        parts = tx[4:].split(b"!")
        return len(parts) == 3 and parts[2].isdigit()
    for sep, other in ((b":", b"="), (b"=", b":")):
        if tx.count(sep) == 1 and tx.count(other) == 0 and not tx.startswith(sep) and not tx.endswith(sep):
            return True
    return False


class CometStub(Stub):
    def __init__(self, mode: str):
        super().__init__(mode)
        self.raw: dict[str, bytes] = {}

    async def handle(self, request: web.Request) -> web.Response:
        call = json.loads(await request.read())
        assert call["method"] == "broadcast_tx_sync"   # CheckTx's verdict, whatever the pack's mode
        tx = base64.b64decode(call["params"]["tx"])
        self.raw[tx_hash(tx)] = tx
        verdict = self.submit(tx_hash(tx), None if kvstore_valid(tx) else "invalid tx format")
        return web.json_response({"jsonrpc": "2.0", "id": call["id"], "result": {
            "code": 2 if verdict else 0, "log": "", "hash": tx_hash(tx)}})

    async def status(self, request: web.Request) -> web.Response:
        height = str(len(self.blocks) - 1)
        return web.json_response({"result": {"sync_info": {"latest_block_height": height}}})

    async def block(self, request: web.Request) -> web.Response:
        height = int(request.query["height"])
        txs = [base64.b64encode(self.raw[i]).decode() for i in self.blocks[height]]
        return web.json_response({"result": {"block_id": {"hash": f"{height:064X}"}, "block": {
            "header": {"height": str(height), "time": "2026-01-01T00:00:00Z",
                       "last_block_id": {"hash": f"{height - 1:064X}"}}, "data": {"txs": txs}}}})


def run_comet(mode: str, settings: dict | None = None) -> list:
    pack = chainpack.load(home() / "chains" / "cometbft")
    adapter = CometbftAdapter(pack, {**pack.params, "broadcast_mode": "async"}, 1, 7, 0)
    stub = CometStub(mode)
    return asyncio.run(run_probe(stub, adapter, "cometbft", stub.handle,
                                 [("GET", "/status", stub.status), ("GET", "/block", stub.block)], settings))


def test_cometbft_malformed_txs_refused_by_checktx_pass_and_accepted_ones_fail():
    honest = run_comet("honest")
    assert {c.rsplit(".", 1)[0] for c in verdicts(honest)} == CMT_CASES
    assert set(verdicts(honest).values()) == {"pass"}, [(a.case, a.why) for a in honest]
    careless = verdicts(run_comet("careless"))
    assert set(careless.values()) == {"fail"}, careless
    sly = verdicts(run_comet("sly"))
    assert {c for c, v in sly.items() if v == "fail"} == {f"{c}.block" for c in CMT_CASES}


def test_cometbft_halting_case_only_when_asked():
    honest = verdicts(run_comet("honest", {"halting": True}))
    assert "rewritten_validator_update.submit" in honest
    # the reference kvstore accepts `val:...` (one ':' is a key:value pair): a stub doing the same
    assert honest["rewritten_validator_update.submit"] == "fail"


# -- Bitcoin ------------------------------------------------------------------------------------


def btc_adapter() -> BitcoinAdapter:
    pack = chainpack.load(home() / "chains" / "litecoin")
    return BitcoinAdapter(pack, dict(pack.params), 1, 7, 4)


class BtcStub(Stub):
    def __init__(self, mode: str, adapter: BitcoinAdapter):
        super().__init__(mode)
        self.utxos: dict[tuple[str, int], tuple[int, bytes, bool]] = {}   # value, script, coinbase
        self.spent: set[tuple[str, int]] = set()
        # Two load UTXOs (the first spent in a block by the load), three mature coinbases.
        for i in range(2):
            txid = hashlib.sha256(b"fanout%d" % i).hexdigest()
            adapter.utxos.append(Utxo(txid, 0, 50_000, i))
            self.utxos[(txid, 0)] = (50_000, adapter.keys[i].p2wpkh, False)
        self.spent.add((adapter.utxos[0].txid, 0))
        for i in range(3):
            txid = hashlib.sha256(b"coinbase%d" % i).hexdigest()
            adapter.coinbases.append((i + 1, txid, 5_000_000_000))
            self.utxos[(txid, 0)] = (5_000_000_000, adapter.funder.p2wpkh, True)

    def check(self, tx: btx.Tx) -> str | None:
        total = 0
        for i, txin in enumerate(tx.inputs):
            point = (txin.prev_txid[::-1].hex(), txin.prev_index)
            if point not in self.utxos or point in self.spent:
                return "bad-txns-inputs-missingorspent"
            value, script, _ = self.utxos[point]
            total += value
            signature, pubkey = txin.witness
            digest = tx.bip143_sighash(i, btx.p2pkh_script(btx.hash160(pubkey)), value)
            if btx.p2wpkh_script(btx.hash160(pubkey)) != script or not coincurve.PublicKey(pubkey).verify(
                    signature[:-1], digest, hasher=None):
                return "mandatory-script-verify-flag-failed (Signature must be zero)"
        if sum(o.value for o in tx.outputs) > total:
            return "bad-txns-in-belowout"
        return None

    async def handle(self, request: web.Request) -> web.Response:
        call = json.loads(await request.read())
        method, params, rid = call["method"], call["params"], call["id"]
        assert request.headers["Authorization"].startswith("Basic ")
        if method == "getblockcount":
            return rpc_reply(rid, len(self.blocks) - 1)
        if method == "getblockhash":
            return rpc_reply(rid, f"{params[0]:064x}")
        if method == "getblock":
            height = int(params[0], 16)
            return rpc_reply(rid, {"hash": params[0], "height": height, "time": 1,
                                   "previousblockhash": f"{height - 1:064x}",
                                   "tx": ["00" * 32] + self.blocks[height]})
        if method == "gettxout":
            point = (params[0], params[1])
            if point not in self.utxos or point in self.spent:
                return rpc_reply(rid, None)
            value, script, coinbase = self.utxos[point]
            return rpc_reply(rid, {"value": value / 1e8, "confirmations": 500, "coinbase": coinbase,
                                   "scriptPubKey": {"hex": script.hex()}})
        if method == "sendrawtransaction":
            tx = btx.parse_tx(bytes.fromhex(params[0]))
            verdict = self.submit(tx.txid(), self.check(tx))
            return rpc_reply(rid, None if verdict else tx.txid(), verdict, 500 if verdict else 200)
        return rpc_reply(rid, error=f"Method not found: {method}", status=404)


def run_btc(mode: str) -> list:
    adapter = btc_adapter()
    stub = BtcStub(mode, adapter)
    return asyncio.run(run_probe(stub, adapter, "bitcoin", stub.handle))


def test_bitcoin_honest_node_passes_careless_and_sly_ones_fail():
    honest = run_btc("honest")
    got = verdicts(honest)
    assert {c.rsplit(".", 1)[0] for c in got} == BTC_CASES
    assert set(got.values()) == {"pass"}, [(a.case, a.why) for a in honest if a.verdict != "pass"]
    why = {a.case: a.why for a in honest}
    assert "missingorspent" in why["spent_outpoint.submit"] and "belowout" in why["value_above_inputs.submit"]
    assert "Signature" in why["bad_signature.submit"]
    careless = verdicts(run_btc("careless"))
    assert set(careless.values()) == {"fail"}, careless
    sly = verdicts(run_btc("sly"))
    assert {c for c, v in sly.items() if v == "fail"} == {f"{c}.block" for c in BTC_CASES}


def test_bitcoin_broken_signature_stays_der_but_does_not_verify():
    key = btx.derive_key("utxo", 1, 0)
    tx = probe.btc_spend("11" * 32, 0, 50_000, key, 49_000, key.p2wpkh)
    digest = tx.bip143_sighash(0, btx.p2pkh_script(key.pubkey_hash), 50_000)
    good = tx.inputs[0].witness[0]
    assert coincurve.PublicKey(key.pubkey).verify(good[:-1], digest, hasher=None)
    bad = probe.btc_break_signature(tx).inputs[0].witness[0]
    assert len(bad) == len(good) and bad[-1] == good[-1] and bad[0] == 0x30
    assert not coincurve.PublicKey(key.pubkey).verify(bad[:-1], digest, hasher=None)


# -- families it has no cases for ---------------------------------------------------------------


def test_an_unknown_family_is_not_applicable():
    target = ProbeTarget(probe=probe.ID, severity=probe.SEVERITY, family="hyperledger", pack=None,
                         nodes=[Node("node0", 0, "c", {"rpc": 1})], adapter=None, runtime=None,
                         settings=dict(probe.DEFAULTS), deadline=time.monotonic() + 5, run_dir=Path("."))
    with pytest.raises(NotApplicable, match="hyperledger"):
        asyncio.run(probe.run(target))


def test_registered_with_its_contract():
    entry = registry()["tx_validity"]
    assert (entry.order, entry.severity) == (20, "critical")
    assert set(entry.settings_schema) == set(entry.defaults)
