"""The read workload on a real anvil node: after the transfers settle, the run's own
transactions are read back (eth_getTransactionReceipt) open loop; the answers are counted
only when a receipt came back, the figures are recomputed from history.jsonl alone, and
the catalogue's query requirements are judged on them (not inconclusive)."""

from __future__ import annotations

import json

import jsonschema

from harness import history as hist
from harness.validation import schema

from .conftest import ROOT, bctest, results, run_objects, write_suite

SUITE = f"""\
name: it-query
case: pressure-4                 # the case PERF-QUERY-* name in standards/performance.yaml
chain: {ROOT / "chains" / "anvil"}
seed: 5
standards: [{ROOT / "standards" / "performance.yaml"}]
params:
  block_time: 1
load:
  rate: 50
  warmup: 1
  duration: 6
  settle: 15
query:
  kind: tx
  rate: 400
  duration: 5
"""


def test_query_phase_reads_the_runs_transactions_back_and_is_judged(docker_client, anvil_image,
                                                                     tmp_path):
    suite = write_suite(tmp_path, "query", SUITE)
    run_dir = tmp_path / "run"
    done = bctest("run", str(suite), "--out", str(run_dir))
    # mandatory requirements of the catalogue (spike, 16 nodes ...) lack evidence: inconclusive
    # (exit 4), or 1 if a mandatory one failed on this busy machine; never 2/3
    assert done.returncode in (1, 4), done.stdout[-3000:] + done.stderr[-3000:]
    got = results(run_dir)
    jsonschema.validate(got, schema("results"))
    assert got["status"] == "complete"
    query = got["phases"]["query"]
    assert query["kind"] == "tx" and query["target_rate"] == 400
    assert query["scheduled"] == 2000
    # anvil holds every committed transfer: every read is answered with a receipt
    assert query["submitted"] == 2000 and query["answered"] == 2000, query["errors"]
    assert query["failed"] == 0
    assert abs(query["send_rate"] - 400) <= 0.02 * 400
    assert 0.9 * 400 <= query["throughput"] <= 400 + 1e-6
    latency = query["latency"]
    assert latency["count"] == 2000
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"] < 10_000
    # The queries are in the History, one line each, after the load's window.
    history = hist.read(run_dir / "history.jsonl")
    assert len(history.queries) == 2000
    asked = {q.id for q in history.queries}
    committed = {tx.id for tx in history.txs if tx.commits}
    assert asked <= committed and len(asked) == min(len(committed), 2000)
    assert history.header["phases"]["query"][0] >= history.header["phases"]["settle"][1]
    assert all(q.answered is not None and q.answered >= q.submitted for q in history.queries)
    # The catalogue judges both query requirements on the measured figures.
    judged = {r["id"]: r for r in got["requirements"]}
    throughput, read_latency = judged["PERF-QUERY-THROUGHPUT"], judged["PERF-QUERY-LATENCY"]
    assert throughput["verdict"] in ("pass", "fail"), throughput
    assert throughput["measured"]["pressure-4"]["query_throughput"] == query["throughput"]
    # 400 queries/s offered: below the 1000 the requirement asks for, so it fails, and says why
    assert throughput["verdict"] == "fail" and "query_throughput" in throughput["why"]
    assert read_latency["measured"]["pressure-4"]["query_latency_p99"] == latency["p99"]
    assert read_latency["verdict"] == ("pass" if latency["p99"] <= 200 else "fail")
    printed = " ".join(done.stdout.split())
    assert f"answered {query['answered']}" in printed
    # `bctest report` recomputes the same figures from history.jsonl alone.
    before = json.loads((run_dir / "results.json").read_text())
    (run_dir / "results.json").unlink()
    assert bctest("report", str(run_dir)).returncode == done.returncode
    assert results(run_dir)["phases"]["query"] == before["phases"]["query"]
    assert "query-throughput" in (run_dir / "report.html").read_text()
    assert run_objects(docker_client, got["run_id"]) == []
