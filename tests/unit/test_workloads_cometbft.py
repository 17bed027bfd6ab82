"""The CometBFT and Bitcoin workloads' own logic, no Docker: layouts and encodings, the
state models the read-back compares with, how a must-be-refused transaction is judged, the
query replies, YCSB's mixes and distribution, the multi-input / multi-output payment, and
the scenarios ABCI app's own Go tests."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness import suite as suite_module
from harness import workloads
from harness.adapters import bitcoin_tx as btx
from harness.adapters.bitcoin import Utxo, estimate_vsize
from harness.adapters.cometbft import CometError, tx_hash
from harness.workloads import (
    bitcoin_payments,
    cometbft_common,
    cometbft_einvoice,
    cometbft_evidence,
    cometbft_traceability,
    cometbft_ycsb,
)

ROOT = Path(__file__).resolve().parents[2]
KV = [cometbft_evidence, cometbft_traceability, cometbft_einvoice, cometbft_ycsb]
NODE = SimpleNamespace(name="node0", url=lambda *a: "http://127.0.0.1:1")


def adapter() -> Any:
    return SimpleNamespace(broadcast_method="broadcast_tx_sync")


def workload(module: Any, seed: int = 7, **settings: Any) -> Any:
    return module.Workload(adapter(), {**module.DEFAULTS, **settings}, seed, 1)


# ---------------------------------------------------------------- registry and suites


def test_the_workloads_are_registered_for_their_families():
    found = workloads.registry()
    for kind in ("ycsb", "evidence", "traceability", "einvoice"):
        assert found[("cometbft", kind)].query_kinds
    assert ("bitcoin", "payments") in found
    assert ("cometbft", "common") not in found      # the shared helpers are no workload


@pytest.mark.parametrize("path", sorted((ROOT / "suites" / "workloads").glob("[cb]*.yaml")),
                         ids=lambda p: p.stem)
def test_the_suites_load(path):
    suite = suite_module.load(path)
    assert suite.workload_registered and suite.nodes == 1
    assert suite.load.warmup == 1 and suite.load.duration <= 5 and suite.load.rate <= 200
    assert "readback" in suite.checker_config()


# ---------------------------------------------------------------- layouts and encodings


@pytest.mark.parametrize("module", KV, ids=lambda m: m.ID)
@pytest.mark.parametrize("count", [1, 7, 60, 250])
def test_every_send_is_a_unique_kvstore_tx(module, count):
    w = workload(module)
    prepared = w.prepare(count)
    assert len(prepared) == count and [op.index for op in w.ops] == list(range(count))
    txs = [op.tx for op in w.ops]
    # unique bytes: the mempool cache would refuse a repeat, for the wrong reason
    assert len(set(txs)) == count
    for tx in txs:   # what kvstore's CheckTx accepts, so the negative control reaches a block
        assert tx.count(b"=") == 1 and b":" not in tx and not tx.startswith(b"=") \
            and not tx.endswith(b"=")
    body = json.loads(prepared[0].body)
    assert base64.b64decode(body["params"]["tx"]) == txs[0]
    assert prepared[0].tx_id == tx_hash(txs[0])


def test_evidence_overwrites_follow_their_document():
    w = workload(cometbft_evidence, overwrite_every=5, gap=3)
    ops = w.build(100)
    first = {}
    for op in ops:
        if op.must_refuse:
            assert op.key in first and op.index - first[op.key] >= 3
            assert op.value != ops[first[op.key]].value
        else:
            assert op.key not in first
            first[op.key] = op.index
    assert sum(1 for op in ops if op.must_refuse) >= 15
    assert workload(cometbft_evidence, overwrite_every=0).build(50)[-1].must_refuse is None


def test_traceability_appends_in_order_and_forges_only_the_past():
    w = workload(cometbft_traceability, products=4, forge_every=2)
    ops = w.build(80)
    count: Counter = Counter()
    for op in ops:
        product, seq = op.key.rsplit("/", 1)
        if op.must_refuse:
            assert int(seq) < count[product], "a forgery must rewrite an event already sent"
        else:
            assert int(seq) == count[product]
            count[product] += 1
    expected = w.expect([op for op in ops if not op.must_refuse])
    assert {k: v for k, v in expected.items() if k.count("/") == 1} == {
        p: str(n) for p, n in count.items()}


def test_einvoice_lifecycle_and_second_redemptions():
    w = workload(cometbft_einvoice, double_every=3, gap=4)
    ops = w.build(100)
    invoices, doubles = w.plan(100)
    assert 3 * invoices + len(doubles) <= 100 < 3 * (invoices + 1) + len(doubles) + 2
    by_key: dict[str, list] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    for key, history in by_key.items():
        if not key.startswith("inv/"):
            continue
        actions = [op.value.split(",")[0] for op in history]
        assert actions[:3] == ["issue", "transfer", "redeem"]
        if len(history) == 4:
            assert history[3].must_refuse and actions[3] == "redeem"
            assert history[3].value != history[2].value
    seconds = [op for op in ops if op.must_refuse]
    assert len(seconds) == len(doubles) >= 8
    early = [op for op in seconds if op.index < len(ops) - len(doubles) // 2]
    assert early, "some second redemptions must reach the node while the first may wait in the mempool"
    expected = w.expect([op for op in ops if not op.must_refuse])
    invoice_states = [v for k, v in expected.items() if k.startswith("inv/")]
    assert len(invoice_states) == invoices
    assert all(v.startswith("redeemed,buyer") and v.endswith(",1,1") for v in invoice_states)


def test_einvoice_model_follows_only_what_committed():
    w = workload(cometbft_einvoice)
    ops = w.build(40)
    issue_only = [op for op in ops if op.value.startswith("issue,")][:1]
    assert list(w.expect(issue_only).values())[0].startswith("issued,issuer0,100,0,0")


# ---------------------------------------------------------------- ycsb


def test_ycsb_inserts_every_record_then_updates_popular_ones():
    w = workload(cometbft_ycsb, records=50, field_length=40)
    ops = w.build(1000)
    assert [op.key for op in ops[:50]] == [w.key(k) for k in range(50)]
    assert all(len(op.value) == 40 for op in ops)
    top = Counter(op.key for op in ops[50:]).most_common(5)
    assert top[0][1] > 5 * (950 / 50), "zipfian: the most popular record is far above average"
    uniform = workload(cometbft_ycsb, records=50, distribution="uniform").build(1000)
    assert Counter(op.key for op in uniform[50:]).most_common(1)[0][1] < 3 * (950 / 50)
    expected = w.expect(ops)
    assert len(expected) == 50
    last = {op.key: op.value for op in ops}
    assert expected == last


@pytest.mark.parametrize("mix, share", [("a", 0.5), ("b", 0.95), ("c", 1.0)])
def test_ycsb_query_phase_runs_the_mix(mix, share):
    w = workload(cometbft_ycsb, mix=mix, records=10)
    prepared = w.prepare(10)
    committed = [SimpleNamespace(tx_id=p.tx_id) for p in prepared]
    subjects = w.query_subjects("ycsb", committed)
    assert set(subjects) == {w.key(k) for k in range(10)} and len(subjects) >= 1000
    methods = Counter(json.loads(w.query_request("ycsb", w.key(1), i).body)["method"]
                      for i in range(2000))
    reads = methods["abci_query"] / 2000
    assert abs(reads - share) < 0.04, methods
    read = json.loads(next(w.query_request("ycsb", w.key(3), i) for i in range(100)
                           if b"abci_query" in w.query_request("ycsb", w.key(3), i).body).body)
    assert bytes.fromhex(read["params"]["data"]).decode() == w.key(3)
    with pytest.raises(ValueError):
        w.query_subjects("tx", committed)


# ---------------------------------------------------------------- replies and refusals


def reply(result: Any = None, error: Any = None) -> bytes:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": 1}
    if error is not None:
        body["error"] = error
    else:
        body["result"] = result
    return json.dumps(body).encode()


def test_query_replies_answer_only_with_a_value():
    error = cometbft_common.query_reply_error
    value = base64.b64encode(b"v").decode()
    assert error(200, reply({"response": {"code": 0, "value": value}})) is None
    assert error(200, reply({"response": {"code": 0, "value": None, "log": "does not exist"}})) \
        == "key not found"
    assert "query code 3" in error(200, reply({"response": {"code": 3, "log": "bad"}}))
    assert error(200, reply({"code": 0, "hash": "AB"})) is None           # a YCSB update
    assert "code 5" in error(200, reply({"code": 5, "log": "already redeemed"}))
    assert error(500, b"<html>") is not None
    assert error(200, reply(error={"code": -32603, "data": "boom"})) == "boom"
    assert error(200, reply({"response": "nonsense"})) == "reply has no response"


def test_compare_counts_missing_and_wrong():
    observed = cometbft_common.compare({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "x", "c": None})
    assert observed["effects"] == {"expected": 3, "found": 1, "missing": 1, "wrong": 1}
    assert [m["key"] for m in observed["mismatches"]] == ["b", "c"]
    many = cometbft_common.compare({str(i): "v" for i in range(50)}, {})
    assert len(many["mismatches"]) == cometbft_common.MAX_MISMATCHES


class FakeChain:
    """A node's answers to the read-back's RPCs: a kv state, the txs in blocks with their
    result codes, and CheckTx's verdict now."""

    def __init__(self, state: dict[str, str], placed: dict[bytes, tuple[int, int]],
                 check: dict[bytes, int]):
        self.state, self.placed, self.check = state, placed, check

    async def __call__(self, adapter: Any, node: Any, method: str, params: dict[str, Any],
                       timeout: float = 10.0) -> Any:
        if method == "abci_query":
            value = self.state.get(bytes.fromhex(params["data"]).decode())
            return {"response": {"code": 0, "value": base64.b64encode(value.encode()).decode()
                                 if value is not None else None}}
        if method == "abci_info":
            return {"response": {"version": "bctest-scenarios/1"}}
        if method == "tx":
            wanted = base64.b64decode(params["hash"]).hex().upper()
            for tx, (height, code) in self.placed.items():
                if tx_hash(tx) == wanted:
                    return {"height": str(height), "tx_result": {"code": code, "log": "x"}}
            raise CometError(f"tx at node0: tx ({wanted}) not found")
        if method == "check_tx":
            code = self.check.get(base64.b64decode(params["tx"]), 0)
            return {"code": code, "log": "invoice is already redeemed" if code else ""}
        raise AssertionError(method)


def test_a_refusal_is_judged_by_where_the_tx_ended_up(monkeypatch):
    ops = [cometbft_common.Op(0, "inv/a", "redeem,b,1", must_refuse="second redemption of a"),
           cometbft_common.Op(1, "inv/b", "redeem,b,1", must_refuse="second redemption of b"),
           cometbft_common.Op(2, "inv/c", "redeem,b,1", must_refuse="second redemption of c"),
           cometbft_common.Op(3, "inv/d", "redeem,b,1", must_refuse="second redemption of d"),
           cometbft_common.Op(4, "k", "v")]
    chain = FakeChain({}, {ops[0].tx: (5, 5), ops[1].tx: (6, 0)}, {ops[2].tx: 5})
    monkeypatch.setattr(cometbft_common, "rpc", chain)
    rows = asyncio.run(cometbft_common.judge_refusals(None, NODE, ops, {0, 1}))
    assert [r["refused"] for r in rows] == [True, False, True, None]
    assert "FinalizeBlock code 5" in rows[0]["outcome"]
    assert "took effect" in rows[1]["outcome"]
    assert "CheckTx refuses it now (code 5" in rows[2]["outcome"]
    assert "never tested" in rows[3]["outcome"]
    # with the load's send outcomes: refused at submission, never sent, accepted then
    sends = {2: "code 5: invoice c is already redeemed", 3: None}
    rows = asyncio.run(cometbft_common.judge_refusals(None, NODE, ops, {0, 1}, sends))
    assert [r["refused"] for r in rows] == [True, False, True, None]
    assert rows[2]["outcome"] == "in no block; refused when sent: code 5: invoice c is already redeemed"
    assert "accepted when sent" in rows[3]["outcome"]
    rows = asyncio.run(cometbft_common.judge_refusals(None, NODE, ops, {0, 1}, {}))
    assert rows[2]["refused"] is None and rows[2]["outcome"] == "never sent"


def test_einvoice_read_back_fails_a_chain_that_let_the_second_redemption_through(monkeypatch):
    w = workload(cometbft_einvoice, double_every=2)
    w.prepare(30)
    ops = w.ops
    good = w.expect([op for op in ops if not op.must_refuse])
    committed = [op.index for op in ops]
    # the scenarios app: refused seconds are in no block, state as modelled
    honest = FakeChain(good, {}, {op.tx: 5 for op in ops if op.must_refuse})
    monkeypatch.setattr(cometbft_common, "rpc", honest)
    seen = asyncio.run(w.read_back(NODE, [i for i in committed if not ops[i].must_refuse]))
    assert seen["effects"]["wrong"] == seen["effects"]["missing"] == 0
    assert all(r["refused"] is True for r in seen["must_refuse"])
    assert seen["redeemed_exactly_once"]["once"] == seen["redeemed_exactly_once"]["redeemed"] > 0
    # kvstore: every op took effect as a raw write, every second redemption with code 0
    raw = {op.key: op.value for op in ops}
    lax = FakeChain(raw, {op.tx: (3, 0) for op in ops}, {})
    monkeypatch.setattr(cometbft_common, "rpc", lax)
    seen = asyncio.run(w.read_back(NODE, committed))
    assert seen["effects"]["wrong"] > 0
    assert seen["must_refuse"] and all(r["refused"] is False for r in seen["must_refuse"])
    assert seen["redeemed_exactly_once"]["once"] == 0


# ---------------------------------------------------------------- bitcoin payments


def payments(inputs: int = 2, outputs: int = 3) -> Any:
    keys = [btx.derive_key("utxo", 1, k) for k in range(4)]
    fake = SimpleNamespace(fee_rate=2.0, utxo_value=50_000, keys=keys,
                           utxos=[Utxo(f"{n:064x}", n % 3, 50_000, n % 4) for n in range(40)])
    return bitcoin_payments.Workload(fake, {"inputs": inputs, "outputs": outputs}, 9, 4)


def test_a_payment_spends_its_inputs_and_pays_every_output():
    w = payments()
    prepared = w.prepare(10)
    assert len(prepared) == 10 and len({p.tx_id for p in prepared}) == 10
    hexed = json.loads(prepared[3].body)["params"][0]
    tx = btx.parse_tx(bytes.fromhex(hexed))
    assert tx.txid() == prepared[3].tx_id
    assert [(i.prev_txid, i.prev_index) for i in tx.inputs] == [
        (btx.txid_to_bytes(u.txid), u.vout) for u in w.spent[3]]
    assert len(tx.outputs) == 3 and all(len(i.witness) == 2 for i in tx.inputs)
    fee = 2 * 50_000 - sum(o.value for o in tx.outputs)
    assert tx.vsize() <= estimate_vsize(2, [o.script_pubkey for o in tx.outputs])
    assert math.ceil(tx.vsize() * 2.0) <= fee <= math.ceil(estimate_vsize(2, [o.script_pubkey for o
                                                                              in tx.outputs]) * 2.0)
    # no two payments share an input
    spent = [(u.txid, u.vout) for row in w.spent for u in row]
    assert len(spent) == len(set(spent)) == 20


def test_payments_refuse_settings_the_inputs_cannot_pay():
    from harness.errors import InputError

    with pytest.raises(InputError, match="cannot pay"):
        bitcoin_payments.Workload(SimpleNamespace(fee_rate=400.0, utxo_value=50_000, keys=[],
                                                  utxos=[]), {"inputs": 1, "outputs": 50}, 1, 1)


def test_payments_read_back_counts_outputs_and_spent_inputs():
    w = payments()
    w.prepare(4)
    utxo_set: dict[tuple[str, int], Any] = {}
    for i in range(4):
        for vout, (value, script) in enumerate(w.paid[i]):
            utxo_set[(w.txids[i], vout)] = {"value": value / 1e8, "scriptPubKey": {"hex": script.hex()}}

    async def call(node: Any, method: str, params: list, timeout: float = 10) -> Any:
        assert method == "gettxout" and params[2] is True
        return utxo_set.get((params[0], params[1]))

    w.adapter._call = call
    seen = asyncio.run(w.read_back(NODE, [0, 1, 2, 3]))
    assert seen["effects"] == {"expected": 20, "found": 20, "missing": 0, "wrong": 0}
    del utxo_set[(w.txids[1], 2)]                                       # an output vanished
    utxo_set[(w.txids[2], 0)]["value"] = 0.00000001                     # another is wrong
    first = w.spent[3][0]
    utxo_set[(first.txid, first.vout)] = {"value": 0.0005, "scriptPubKey": {"hex": ""}}  # unspent
    seen = asyncio.run(w.read_back(NODE, [0, 1, 2, 3]))
    assert seen["effects"] == {"expected": 20, "found": 17, "missing": 1, "wrong": 2}
    assert len(seen["mismatches"]) == 3


# ---------------------------------------------------------------- the scenarios ABCI app


def test_the_scenarios_app_go_tests_pass():
    """rules.go / app.go: the double redemption refused in CheckTx (also while the first
    waits in the mempool) and in FinalizeBlock; evidence write-once; events in order."""
    if shutil.which("go") is None:
        pytest.skip("Go is not installed: the ABCI app's tests need it")
    app = ROOT / "chains" / "cometbft" / "app"
    done = subprocess.run(["go", "test", "-count=1", "./..."], cwd=app, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly",
                               "GOTOOLCHAIN": "local"})
    if done.returncode != 0 and "cannot find module" in done.stderr + done.stdout:
        pytest.skip(f"the app's modules are not in the Go module cache: {done.stderr[-200:]}")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
