"""The read workload's pure parts: the suite's `query:` section, the seeded query order,
the adapters' request bodies and answer classifiers, the figures computed from `query`
lines of a History, the History round trip, and the metrics the catalogue reads."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from harness import history as hist
from harness import metrics, suite
from harness.adapters.base import Block, Committed, Prepared
from harness.adapters.bitcoin import BitcoinAdapter
from harness.adapters.cometbft import CometbftAdapter, tx_query_body
from harness.adapters.evm import EvmAdapter
from harness.errors import InputError
from harness.history import History, QueryRecord
from harness.load.driver import SendProgress
from harness.load.sender import DROPPED, classifier
from harness.model import SendRecord
from harness.phases.query import QueryOutcome, committed_txs, query_classifier, query_order
from harness.phases.record import query_part
from harness.standards import metrics as standard_metrics
from harness.suite import QuerySpec
from harness.tracker import CommitTracker

# ---------------------------------------------------------------- suite section


def test_query_section_loads_with_defaults(tmp_path, inputs):
    doc = inputs.suite()
    doc["query"] = {"rate": 500, "duration": 4}
    loaded = suite.load(inputs.make_suite(tmp_path, doc))
    assert loaded.query == QuerySpec(rate=500.0, duration=4.0)
    assert loaded.query.count == 2000


def test_query_nodes_default_to_the_load_nodes(tmp_path, inputs):
    doc = inputs.suite()
    doc["load"]["nodes"] = ["node1", "node2"]
    doc["query"] = {"rate": 10, "duration": 1, "kind": "balance"}
    loaded = suite.load(inputs.make_suite(tmp_path, doc))
    assert loaded.query.nodes == (1, 2) and loaded.query.kind == "balance"
    doc["query"]["nodes"] = ["node3"]
    assert suite.load(inputs.make_suite(tmp_path / "b", doc)).query.nodes == (3,)


def test_no_query_section_means_no_query_phase(tmp_path, inputs):
    assert suite.load(inputs.make_suite(tmp_path, inputs.suite())).query is None


@pytest.mark.parametrize("query, field, words", [
    ({"duration": 5}, "query.rate", ["required field is missing"]),
    ({"rate": 0, "duration": 5}, "query.rate", ["> 0"]),
    ({"rate": 10, "duration": 5, "burst": 1}, "query.burst", ["unknown key 'burst'"]),
    ({"rate": 10, "duration": 5, "kind": "blocks"}, "query.kind", ["builds tx, balance queries", "blocks"]),
    ({"rate": 10, "duration": 5, "nodes": ["node9"]}, "query.nodes", ["node0..node3", "node9"]),
    ({"rate": 10, "duration": 5, "nodes": ["n1"]}, "query.nodes[0]", ["'n1'", "node[0-9]"]),
    ({"rate": 0.1, "duration": 5}, "query.duration", ["at least one query"]),
])
def test_query_section_errors_name_file_and_field(tmp_path, inputs, query, field, words):
    doc = inputs.suite()
    doc["query"] = query
    path = inputs.make_suite(tmp_path, doc)
    with pytest.raises(InputError) as info:
        suite.load(path)
    assert info.value.file == str(path) and info.value.field == field, str(info.value)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_query_kind_the_family_cannot_build_is_refused(tmp_path, inputs):
    pack = inputs.pack()
    pack["family"] = "cometbft"
    doc = inputs.suite()
    doc["query"] = {"rate": 10, "duration": 5, "kind": "balance"}
    doc.pop("workload", None)   # the cometbft adapter's own workload (kv)
    path = inputs.make_suite(tmp_path, doc, pack)
    with pytest.raises(InputError) as info:
        suite.load(path)
    assert info.value.field == "query.kind" and "builds tx queries, not balance" in str(info.value)


# ---------------------------------------------------------------- schedule and subjects


def test_query_order_is_seeded_and_spreads_over_every_subject():
    order = query_order(7, 30, seed=3)
    assert order == query_order(7, 30, seed=3)
    assert order != query_order(7, 30, seed=4)
    assert len(order) == 30
    for start in (0, 7, 14, 21):            # each full pass asks every subject once
        assert sorted(order[start:start + 7]) == list(range(7))
    assert order[:7] != list(range(7))      # shuffled, not in commit order
    assert query_order(0, 10, 1) == []


def test_committed_txs_carry_the_block_hash_the_node_reported():
    tracker = CommitTracker(["aa", "bb", "cc"], nodes=2, share=1.0)
    tracker.on_block(Block(node=0, number=5, hash="h5", parent="h4", seen=1.0, fetched=1.0,
                           tx_ids=("aa", "bb")))
    tracker.on_block(Block(node=1, number=5, hash="h5", parent="h4", seen=1.1, fetched=1.1,
                           tx_ids=("aa",)))
    # bb is on one of two nodes only: not committed at share 1.0; cc never seen
    assert committed_txs(tracker, ["aa", "bb", "cc"]) == [Committed("aa", 5, "h5")]


# ---------------------------------------------------------------- adapters: bodies and classifiers


def reply(result, error=None) -> bytes:
    body = {"jsonrpc": "2.0", "id": 1, "result": result}
    if error is not None:
        body = {"jsonrpc": "2.0", "id": 1, "error": error}
    return json.dumps(body).encode()


def test_evm_queries_read_receipts_and_balances():
    adapter = EvmAdapter.__new__(EvmAdapter)
    request = json.loads(adapter.query_request("tx", Committed("0xab", 1, "0x1"), 7).body)
    assert request["method"] == "eth_getTransactionReceipt" and request["params"] == ["0xab"]
    request = json.loads(adapter.query_request("balance", "0xdead", 8).body)
    assert request["method"] == "eth_getBalance" and request["params"] == ["0xdead", "latest"]
    assert EvmAdapter.query_error(200, reply({"status": "0x1", "blockHash": "0x" + "ab" * 32})) is None
    assert EvmAdapter.query_error(200, reply({"status": "0x1"})) == "reply is not a mined receipt"
    assert EvmAdapter.query_error(200, reply("0x0")) is None                 # a zero balance is an answer
    assert "not found" in EvmAdapter.query_error(200, reply(None))           # null receipt: not answered
    assert EvmAdapter.query_error(200, reply(None, {"code": -32000, "message": "boom"})) == "boom"
    assert EvmAdapter.query_error(502, b"") == "http 502"


def test_cometbft_tx_query_is_a_json_rpc_post_with_a_base64_hash():
    body = json.loads(tx_query_body("00FF" * 16, 3))
    assert body["method"] == "tx"
    assert base64.b64decode(body["params"]["hash"]) == bytes.fromhex("00FF" * 16)
    answer = {"hash": "00FF", "height": "12", "tx_result": {"code": 0}, "tx": "eA=="}
    assert CometbftAdapter.query_error(200, reply(answer)) is None
    assert CometbftAdapter.query_error(200, reply({})) == "reply has no transaction"
    refused = reply(None, {"code": -32603, "message": "Internal error", "data": "tx (ABCD) not found"})
    assert "not found" in CometbftAdapter.query_error(500, refused)


def test_bitcoin_tx_query_names_the_block_so_no_txindex_is_needed():
    adapter = BitcoinAdapter.__new__(BitcoinAdapter)
    request = json.loads(adapter.query_request("tx", Committed("ab" * 32, 3, "cd" * 32), 1).body)
    assert request["method"] == "getrawtransaction"
    assert request["params"] == ["ab" * 32, False, "cd" * 32]
    assert BitcoinAdapter.query_error(200, reply("0200000001")) is None
    assert BitcoinAdapter.query_error(200, reply(None)) == "reply has no transaction"
    missing = reply(None, {"code": -5, "message": "No such transaction found in the provided block"})
    assert "No such transaction" in BitcoinAdapter.query_error(500, missing)


@pytest.mark.parametrize("adapter", [EvmAdapter, CometbftAdapter, BitcoinAdapter])
def test_sender_resolves_the_query_classifier_by_reference(adapter):
    instance = adapter.__new__(adapter)
    assert classifier(query_classifier(instance)) is adapter.query_error
    # the transaction load's reference (a class) still resolves to response_error
    assert classifier(f"{adapter.__module__}:{adapter.__qualname__}") is adapter.response_error


# ---------------------------------------------------------------- History and figures


def query_header(start: float = 100.0, end: float = 110.0, rate: float = 10.0) -> dict:
    return {"phases": {"measure": [5.0, 35.0], "query": [start, end]},
            "load": {"rate": 10, "commit_share": 1.0}, "nodes": [{"name": "node0"}],
            "t0_wall": 0.0, "query": {"rate": rate, "duration": end - start, "kind": "tx"}}


def q(i: int, submitted, latency_ms: float | None, error: str | None = None,
      scheduled: float | None = None) -> QueryRecord:
    scheduled = round(100.0 + i / 10, 6) if scheduled is None else scheduled
    submitted = None if submitted is None else round(submitted, 6)
    answered = None if latency_ms is None else round(submitted + latency_ms / 1000, 6)
    return QueryRecord(i=i, id=f"0x{i:x}", node=i % 2, scheduled=scheduled, submitted=submitted,
                       answered=answered, error=error)


def query_history_fixture() -> History:
    """100 queries due at 10/s: 90 answered (latency 1..90 ms), 5 not found, 3 timed out
    (no answer), 2 dropped by the harness."""
    records = [q(i, 100.0 + i / 10, i + 1) for i in range(90)]
    records += [q(90 + k, 109.0 + k / 10, 2, error="not found (null result)") for k in range(5)]
    records += [q(95 + k, 109.5 + k / 10, None, error="TimeoutError: ") for k in range(3)]
    records += [q(98 + k, 109.8 + k / 10, None, error=DROPPED) for k in range(2)]
    return History(header=query_header(), queries=records)


def test_query_figures_follow_the_pswg_definitions():
    figures = metrics.query_figures(query_history_fixture())
    assert figures["scheduled"] == 100
    assert figures["submitted"] == 98 and figures["dropped"] == 2
    assert figures["answered"] == 90 and figures["failed"] == 8
    # the last answer (query 89 at 108.9 s + 90 ms) is inside the schedule: 10 s
    assert figures["seconds"] == 10.0
    assert figures["throughput"] == 9.0                        # answered ÷ the phase's seconds
    assert figures["send_rate"] == 9.8 and figures["send_rate_ratio"] == 0.98
    assert figures["success_ratio"] == round(90 / 98, 5)
    latency = figures["latency"]
    # HDR histogram, 3 significant digits
    assert latency["count"] == 90 and latency["min"] == pytest.approx(1.0, rel=1e-3)
    assert latency["max"] == pytest.approx(90.0, rel=1e-3)
    assert latency["p50"] == pytest.approx(45.0, rel=1e-3)
    assert latency["p99"] == pytest.approx(89.0, rel=1e-3)    # the 89th of 90 (HDR's rank rule)
    assert figures["errors"][0] == {"error": "not found (null result)", "count": 5}


def test_late_answers_stretch_the_phase_and_lag_is_reported_apart():
    # 10 queries due 100.0..100.9, each sent 50 ms late and answered 2 s later
    records = [q(i, 100.05 + i / 10, 2000) for i in range(10)]
    figures = metrics.query_figures(History(header=query_header(100.0, 101.0), queries=records))
    assert figures["seconds"] == pytest.approx(2.95, abs=1e-6)   # until the last answer at 102.95
    assert figures["throughput"] == round(10 / 2.95, 3)
    # answer − submit: the 50 ms lag is not in it
    assert figures["latency"]["p50"] == pytest.approx(2000.0, rel=1e-3)
    assert figures["on_time_ratio"] == 0.0 and figures["send_lag_p99_ms"] == 50.0


def test_the_query_warmup_is_sent_but_left_out_of_the_figures():
    # 2 s of warmup at 10/s, slow (the nodes still busy after the load), then 8 s measured
    records = [q(i, 100.0 + i / 10, 1500 if i < 20 else 3) for i in range(100)]
    header = query_header()
    header["query"]["warmup"] = 2.0
    figures = metrics.query_figures(History(header=header, queries=records))
    assert figures["window"] == [102.0, 110.0] and figures["scheduled"] == 80
    assert figures["answered"] == 80 and figures["throughput"] == 10.0
    assert figures["latency"]["max"] == pytest.approx(3.0, rel=1e-3)


def test_no_query_phase_gives_no_figures_and_the_metrics_say_why():
    assert metrics.query_figures(History(header={"phases": {"measure": [0, 1]}})) is None
    value, why = standard_metrics.read("query_throughput", {"phases": {"measure": {}}})
    assert value is None and "no query phase" in why


def test_catalogue_metrics_read_the_query_phase():
    results = {"phases": {"query": metrics.query_figures(query_history_fixture())}}
    assert standard_metrics.read("query_throughput", results) == (9.0, None)
    latency = results["phases"]["query"]["latency"]
    assert standard_metrics.read("query_latency_p99", results) == (latency["p99"], None)
    assert standard_metrics.read("query_latency_p50", results) == (latency["p50"], None)
    assert latency["p50"] < latency["p99"]
    assert standard_metrics.read("query_success_ratio", results)[0] == round(90 / 98, 5)


def test_query_lines_round_trip_through_the_history_file(tmp_path):
    original = query_history_fixture()
    original.header["run_id"] = "r"
    hist.write(tmp_path / "h.jsonl", original)
    lines = [json.loads(line) for line in (tmp_path / "h.jsonl").read_text().splitlines()]
    assert lines[0]["format"] == "bctest-history/4"
    assert sum(1 for line in lines if line["type"] == "query") == 100
    back = hist.read(tmp_path / "h.jsonl")
    assert back.queries == original.queries
    assert metrics.query_figures(back) == metrics.query_figures(original)


def test_version_1_histories_stay_readable(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text('{"type": "header", "format": "bctest-history/1", "run_id": "x"}\n'
                    '{"type": "footer", "status": "complete"}\n')
    old = hist.read(path)
    assert old.queries == [] and old.footer["status"] == "complete"


def test_query_outcome_becomes_history_lines_on_the_run_clock():
    spec = QuerySpec(rate=4.0, duration=1.0)
    prepared = [Prepared(body=b"", tx_id=f"t{i}") for i in range(4)]
    # Each record carries its scheduled offset and its node (the sender's, not rebuilt).
    records = [SendRecord(i, i / 4, i % 2, 1000.0 + i / 4, 1000.01 + i / 4, None) for i in range(3)]
    records.append(SendRecord(3, 0.75, 1, 1000.8, 1000.9, "not found (null result)"))
    outcome = QueryOutcome(spec=spec, start=1000.0, prepared=prepared, records=records,
                           progress=SendProgress(late=1, max_lag=0.05),
                           subjects=4)
    settings, lines, window, sender = query_part(outcome, t0=900.0)
    assert window == [100.0, 101.0]
    assert [line.scheduled for line in lines] == [100.0, 100.25, 100.5, 100.75]
    assert lines[1].submitted == pytest.approx(100.25) and lines[1].answered == pytest.approx(100.26)
    assert [line.node for line in lines] == [0, 1, 0, 1]
    assert lines[3].error == "not found (null result)"
    assert settings["rate"] == 4.0 and settings["subjects"] == 4 and sender["late_sends"] == 1


def test_skipped_query_phase_keeps_its_reason_and_has_no_window():
    outcome = QueryOutcome(spec=QuerySpec(rate=1, duration=1), start=None, skipped="nothing to query")
    settings, lines, window, _ = query_part(outcome, t0=0.0)
    assert settings["skipped"] == "nothing to query" and lines == [] and window is None


def test_fixture_suite_files_parse(tmp_path):
    """The shipped suites with a query section load (the schema and loader agree)."""
    root = Path(__file__).resolve().parents[2]
    for name in ("suites/performance/cometbft-pressure-4.yaml", "suites/quickstart.yaml"):
        loaded = suite.load(root / name)
        assert loaded.query is not None and loaded.query.rate > 0, name


def test_numpy_nan_is_not_committed():
    # committed_txs treats NaN commit times as "never committed" without numpy helpers
    tracker = CommitTracker(["aa"], nodes=1, share=1.0)
    assert np.isnan(tracker.committed_at[0]) and committed_txs(tracker, ["aa"]) == []


def test_a_late_read_schedule_is_warned_about():
    from harness.results import harness_warnings
    records = [q(i, 100.05 + i / 10, 5) for i in range(10)]     # every query 50 ms late
    figures = {"phases": {"query": metrics.query_figures(History(header=query_header(100.0, 101.0),
                                                                 queries=records))}}
    warnings = harness_warnings(figures, {"status": "complete"})
    assert any("0.0% of the queries left within 10 ms" in w and "query.workers" in w for w in warnings)
    on_time = [q(i, 100.0 + i / 10, 5) for i in range(10)]
    figures["phases"]["query"] = metrics.query_figures(History(header=query_header(100.0, 101.0),
                                                               queries=on_time))
    assert not any("queries left" in w for w in harness_warnings(figures, {"status": "complete"}))
