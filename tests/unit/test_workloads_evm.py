"""The EVM workloads' own logic without a chain: ABI encoding against eth-abi, every call
against the committed contract ABI, the models the read-back replays, the query
classifiers, and the committed bytecode against its source (recompiled with solc-js)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import eth_abi
import pytest
import rlp
from eth_account import Account as EthAccount
from eth_hash.auto import keccak

from harness import workloads
from harness.adapters.evm_tx import derive_account
from harness.workloads import evm_einvoice, evm_kit, evm_smallbank, evm_ycsb
from harness.workloads.evm_cpuheavy import hash_chain

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
EVM = sorted(kind for family, kind in workloads.registry() if family == "evm")


def adapter(accounts: int = 4) -> SimpleNamespace:
    return SimpleNamespace(senders=lambda n: [derive_account("sender", 7, i) for i in range(n)],
                           gas_price=10**10, chain_id=31337)


def made(kind: str, settings: dict | None = None, accounts: int = 4):
    spec = workloads.find("evm", kind)
    workload = spec.create(adapter(accounts), settings or {}, 99, accounts)
    for name in workload.CONTRACTS:
        workload.address[name] = "0x" + keccak(name.encode())[-20:].hex()
    return workload


def test_the_evm_workloads_are_the_blockbench_set_and_the_scenarios():
    assert EVM == ["cpuheavy", "donothing", "einvoice", "erc20", "evidence", "ioheavy", "smallbank",
                   "traceability", "ycsb"]


@pytest.mark.parametrize("types, values", [
    (["uint256", "bytes32"], [5, b"\x01" * 32]),
    (["address", "uint256"], ["0x" + "ab" * 20, 2**200]),
    (["int256", "int256"], [-1, -(2**255)]),
    (["address[]", "uint256"], [["0x" + "11" * 20, "0x" + "22" * 20], 10**24]),
    (["bytes32[]", "bytes32[]"], [[b"\x03" * 32], [b"\x04" * 32]]),
])
def test_abi_encoding_matches_eth_abi(types, values):
    assert evm_kit.encode(types, values) == eth_abi.encode(types, values)


def test_mapping_slots_follow_solidity_layout():
    key = b"\x07" * 32
    assert evm_kit.mapping_slot(key, 3) == int.from_bytes(keccak(key + (3).to_bytes(32, "big")), "big")
    address = "0x" + "ab" * 20
    assert evm_kit.mapping_slot(address, 0, "address") == int.from_bytes(
        keccak(bytes(12) + bytes.fromhex("ab" * 20) + bytes(32)), "big")
    assert evm_kit.to_int256(2**256 - 5) == -5 and evm_kit.to_int256(5) == 5


@pytest.mark.parametrize("kind", EVM)
def test_every_call_is_a_function_of_the_committed_contract_and_signed_by_its_account(kind):
    workload = made(kind)
    prepared = workload.prepare(40)
    assert len(prepared) == 40 == len(workload.calls) == len(set(workload.tx_ids))
    artifact = evm_kit.artifact(workload.CONTRACTS[0])
    selectors = {keccak(f"{f['name']}({','.join(i['type'] for i in f['inputs'])})".encode())[:4]
                 for f in artifact.abi if f["type"] == "function"}
    for i, (p, call) in enumerate(zip(prepared, workload.calls, strict=True)):
        assert call.data[:4] in selectors, (kind, call.op)
        raw = bytes.fromhex(json.loads(p.body)["params"][0][2:])
        nonce, _, gas, to, value, data, *_ = rlp.decode(raw)
        assert "0x" + to.hex() == workload.address[workload.CONTRACTS[0]] and data == call.data
        assert int.from_bytes(nonce, "big") == i // 4 and not value
        sender = EthAccount.recover_transaction(raw)
        assert sender.lower() == workload.senders[i % 4].hex_address


def test_the_committed_artifacts_are_of_the_committed_sources():
    for path in sorted((CONTRACTS / "build").glob("*.json")):
        doc = json.loads(path.read_text())
        source = (CONTRACTS / doc["source"]).read_bytes()
        assert doc["source_sha256"] == hashlib.sha256(source).hexdigest(), path.name
        assert doc["compiler"].startswith("solc-js 0.8.28+commit.7893614a"), path.name
        assert doc["bytecode"].startswith("0x") and len(doc["deployedBytecode"]) > 2


def test_the_committed_bytecode_is_what_solc_js_compiles_from_the_source():
    """scripts/compile-contracts --check recompiles every contract with the pinned solc-js
    and compares byte for byte with contracts/build/."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed (scripts/setup installs it with npm)")
    if not (CONTRACTS / "node_modules" / "solc" / "package.json").is_file():
        pytest.skip("the npm package solc is not installed in contracts/node_modules "
                    "(run scripts/compile-contracts --install, or scripts/setup)")
    done = subprocess.run([str(ROOT / "scripts" / "compile-contracts"), "--check"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hash_chain_is_keccak_iterated():
    assert hash_chain(1, 0) == (1).to_bytes(32, "big")
    assert hash_chain(1, 2) == keccak(keccak((1).to_bytes(32, "big")))


def test_smallbank_model_follows_the_contract_rules():
    c, s = {}, {}
    evm_smallbank.apply(("depositChecking", 1, 50), c, s)
    evm_smallbank.apply(("transactSavings", 1, 20), c, s)
    evm_smallbank.apply(("writeCheck", 1, 100), c, s)       # overdraft: 101 taken
    assert c[1] == -51 and s[1] == 20
    evm_smallbank.apply(("sendPayment", 1, 2, 9), c, s)
    evm_smallbank.apply(("amalgamate", 1, 2), c, s)
    assert (c[1], s[1], c[2]) == (0, 0, 9 - 60 + 20)


def test_einvoice_lifecycle_puts_a_double_redemption_after_every_nth_invoice():
    steps = [evm_einvoice.lifecycle(k, 2) for k in range(10)]
    assert steps == [(0, "issue"), (0, "transfer"), (0, "redeem"), (0, "redeem-again"), (1, "issue"),
                     (1, "transfer"), (1, "redeem"), (2, "issue"), (2, "transfer"), (2, "redeem")]


def test_einvoice_model_redeems_exactly_once():
    invoices = {}
    issuer, inv, buyer, payee = b"\x01" * 20, b"i" * 32, b"b" * 32, b"p" * 32
    took = evm_einvoice.replay([("issue", inv, buyer, 100, issuer), ("redeem", inv, payee, None, issuer),
                                ("transfer", inv, buyer, payee, issuer),
                                ("redeem", inv, payee, None, issuer),
                                ("redeem-again", inv, payee, None, issuer)], invoices)
    assert took == [True, False, True, True, False]   # not the holder yet; then once only
    assert evm_einvoice.replay([("redeem", inv, payee, None, b"\x02" * 20)], invoices) == [False]
    assert invoices[inv].redemptions == 1 and invoices[inv].state == 2


class FakeChain:
    """State answers from the workload's own model, optionally tampered with."""

    def __init__(self, workload, storage, receipts):
        workload.state_block = self.block
        workload.storage = storage
        workload.receipts = receipts

    async def block(self, node):
        return "0x10"


def _einvoice_state(workload, committed, double_status="0x0", extra_redemption=False):
    invoices = {}
    evm_einvoice.replay([workload.calls[i].op for i in committed], invoices)
    words = {}
    for inv_id, inv in invoices.items():
        base = evm_kit.mapping_slot(inv_id, 0)
        word = inv.word() + ((1 << 200) if extra_redemption else 0)
        words.update({base: word, base + 1: int.from_bytes(inv.holder, "big"), base + 2: inv.amount})
    words[1] = len(invoices)
    words[2] = sum(inv.state == 2 for inv in invoices.values())

    async def storage(node, contract, slots, block):
        return [words.get(s, 0) for s in slots]

    async def receipts(node, indexes):
        return {i: {"status": double_status} for i in indexes}
    return storage, receipts


def test_einvoice_read_back_passes_when_the_double_redemptions_reverted():
    workload = made("einvoice", {"double_every": 1}, accounts=2)
    workload.prepare(16)
    committed = list(range(16))
    FakeChain(workload, *_einvoice_state(workload, committed))
    got = asyncio.run(workload.read_back(None, committed))
    assert got["effects"]["missing"] == got["effects"]["wrong"] == 0 and got["effects"]["found"] > 0
    assert len(got["must_refuse"]) == 4 and all(r["refused"] is True for r in got["must_refuse"])
    json.dumps(got)


def test_einvoice_read_back_sees_a_double_redemption_that_took_effect():
    workload = made("einvoice", {"double_every": 1}, accounts=2)
    workload.prepare(16)
    committed = list(range(16))
    FakeChain(workload, *_einvoice_state(workload, committed, "0x1", extra_redemption=True))
    got = asyncio.run(workload.read_back(None, committed))
    assert got["effects"]["wrong"] > 0
    assert all(r["refused"] is False for r in got["must_refuse"])


def test_einvoice_double_redemption_rejected_at_submission_or_never_sent():
    workload = made("einvoice", {"double_every": 1}, accounts=2)
    workload.prepare(16)
    doubles = [i for i, c in enumerate(workload.calls) if c.op[0] == "redeem-again"]
    committed = [i for i in range(16) if i not in doubles]
    workload.note_sends({doubles[0]: "execution reverted: not redeemable", doubles[1]: None})
    FakeChain(workload, *_einvoice_state(workload, committed))
    got = asyncio.run(workload.read_back(None, committed))
    outcome = {r["i"]: r for r in got["must_refuse"]}
    assert outcome[doubles[0]]["refused"] is True and "rejected" in outcome[doubles[0]]["outcome"]
    assert outcome[doubles[1]]["refused"] is True and "never included" in outcome[doubles[1]]["outcome"]
    assert outcome[doubles[2]]["refused"] is None and outcome[doubles[2]]["outcome"] == "never sent"


def test_erc20_read_back_counts_a_reverted_transfer_as_wrong_balances():
    """The chain included transfer 4 but reverted it: its two balances and the transfer count
    differ from the replay of every committed transfer."""
    workload = made("erc20", {"recipients": 3})
    workload.prepare(12)
    balances: dict[str, int] = {a.hex_address: evm_kit.artifact("Token") and 10**24
                                for a in workload.senders}
    for i in range(12):
        if i == 4:
            continue
        _, source, to, amount = workload.calls[i].op
        balances[source] -= amount
        balances[to] = balances.get(to, 0) + amount
    words = {evm_kit.mapping_slot(a, 0, "address"): v for a, v in balances.items()}
    words[3] = 11

    async def storage(node, contract, slots, block):
        return [words.get(s, 0) for s in slots]
    FakeChain(workload, storage, None)
    got = asyncio.run(workload.read_back(None, list(range(12))))
    assert got["effects"]["wrong"] == 3 and got["effects"]["missing"] == 0, got
    assert {m["what"].split("(")[0] for m in got["mismatches"]} == {"balanceOf", "transfers "}
    words[3] = 12
    source, to = workload.calls[4].op[1:3]
    words[evm_kit.mapping_slot(source, 0, "address")] -= 1
    words[evm_kit.mapping_slot(to, 0, "address")] += 1
    got = asyncio.run(workload.read_back(None, list(range(12))))
    assert got["effects"]["found"] == got["effects"]["expected"] > 0


def test_query_classifiers_accept_only_real_answers():
    ok = json.dumps({"jsonrpc": "2.0", "id": 1, "result": "0x" + "11" * 32}).encode()
    zero = json.dumps({"jsonrpc": "2.0", "id": 1, "result": "0x" + "00" * 32}).encode()
    error = json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"message": "execution reverted"}}).encode()
    ycsb = evm_ycsb.Workload.query_error
    assert ycsb(200, ok) is None and "zero" in ycsb(200, zero) and ycsb(200, error)
    assert ycsb(500, ok) == "http 500" and ycsb(200, b"[") == "reply is not JSON"
    from harness.workloads.evm_evidence import Workload as Evidence
    from harness.workloads.evm_traceability import Workload as Trace
    record = json.dumps({"result": "0x" + "00" * 12 + "ab" * 20 + "cd" * 32 + "00" * 31 + "05"}).encode()
    assert Evidence.query_error(200, record) is None
    assert "no record" in Evidence.query_error(200, json.dumps({"result": "0x" + "00" * 96}).encode())
    history = "0x" + eth_abi.encode(["bytes32[]", "bytes32"], [[b"\x01" * 32, b"\x02" * 32],
                                                               b"\x03" * 32]).hex()
    assert Trace.query_error(200, json.dumps({"result": history}).encode()) is None
    empty = "0x" + eth_abi.encode(["bytes32[]", "bytes32"], [[], bytes(32)]).hex()
    assert "no events" in Trace.query_error(200, json.dumps({"result": empty}).encode())
    assert "malformed" in Trace.query_error(200, json.dumps({"result": "0x" + "ff" * 96}).encode())


def test_ycsb_zipfian_keys_are_skewed_and_in_range():
    import random
    pick = evm_ycsb.zipf_sampler(100, random.Random(1))
    drawn = [pick() for _ in range(5000)]
    assert all(0 <= d < 100 for d in drawn)
    top = max(drawn.count(d) for d in set(drawn))
    assert top > 5000 / 100 * 5           # the hottest key is far above uniform


def test_tally_reports_json_safe_mismatches():
    tally = evm_kit.Tally()
    tally.see("a", 2**255, 0)
    tally.see("b", (b"\x01", 3), (b"\x02", 3), absent=(b"", 0))
    tally.see("c", 1, 1)
    got = tally.report("test")
    assert got["effects"] == {"expected": 3, "found": 1, "missing": 1, "wrong": 1}
    assert got["mismatches"][0]["expected"] == str(2**255)
    assert got["mismatches"][1]["expected"] == ["0x01", 3]
    json.dumps(got)
