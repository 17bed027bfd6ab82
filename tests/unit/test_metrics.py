"""Figures computed from a hand-built History: counts, rates, throughput window, HDR
latency percentiles, the threshold commit time, per-node and detector figures."""

from __future__ import annotations

import pytest

from harness import history as hist
from harness import metrics
from harness.history import BlockRecord, History, TxRecord
from harness.load.sender import DROPPED


def header(nodes: int = 1, share: float = 1.0, rate: float = 10.0,
           warmup=(0.0, 10.0), measure=(10.0, 20.0)) -> dict:
    return {"phases": {"warmup": list(warmup), "measure": list(measure)},
            "load": {"rate": rate, "commit_share": share},
            "nodes": [{"name": f"node{i}"} for i in range(nodes)],
            "t0_wall": 1_000.0}


def tx(i: int, phase: str, submitted: float | None, commits=(), error: str | None = None) -> TxRecord:
    return TxRecord(i=i, id=f"0x{i:x}", phase=phase, node=0,
                    scheduled=submitted if submitted is not None else 10.0,
                    submitted=submitted, acked=submitted, error=error, commits=list(commits))


def measure_history() -> History:
    """100 commits with latencies 1..100 ms, 5 failed, 3 dropped, 2 unconfirmed, 1 unsent."""
    txs = []
    for k in range(100):
        sent = 10.0 + k * 0.05
        txs.append(tx(k, "measure", sent, [(0, sent + (k + 1) / 1000, 1 + k // 10)]))
    txs += [tx(100 + k, "measure", 12.0, error="nonce too low") for k in range(5)]
    txs += [tx(105 + k, "measure", 12.5, error=DROPPED) for k in range(3)]
    txs += [tx(108 + k, "measure", 13.0) for k in range(2)]
    txs.append(tx(110, "measure", None))
    return History(header=header(), txs=txs, footer={"watch_methods": {"node0": "subscribe"}})


@pytest.fixture(scope="module")
def figures() -> dict:
    return metrics.compute(measure_history())


def test_phase_counts(figures):
    m = figures["phases"]["measure"]
    assert m["scheduled"] == 111
    assert m["submitted"] == 107          # failed + unconfirmed count as sent; dropped/unsent do not
    assert m["committed"] == 100
    assert m["failed"] == 5
    assert m["dropped"] == 3
    assert m["unconfirmed"] == 2
    assert m["success_ratio"] == round(100 / 107, 5)
    assert m["errors"] == [{"error": "nonce too low", "count": 5}]
    assert m["window"] == [10.0, 20.0] and m["seconds"] == 10.0


def test_send_rate_is_submitted_over_phase_length(figures):
    m = figures["phases"]["measure"]
    assert m["target_rate"] == 10.0
    assert m["send_rate"] == pytest.approx(10.7)
    assert m["send_rate_ratio"] == pytest.approx(1.07)


def test_throughput_is_commits_per_second_of_window(figures):
    assert figures["phases"]["measure"]["throughput"] == pytest.approx(10.0)


def test_latency_percentiles_from_hdr_histogram(figures):
    lat = figures["phases"]["measure"]["latency"]
    assert lat["count"] == 100
    for name, expected in [("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("max", 100),
                           ("min", 1), ("mean", 50.5)]:
        assert lat[name] == pytest.approx(expected, rel=1e-3), name
    assert lat["stddev"] == pytest.approx(28.866, rel=1e-2)


def test_empty_phase_reports_zero_counts_and_no_latency(figures):
    w = figures["phases"]["warmup"]
    assert (w["submitted"], w["committed"], w["failed"], w["dropped"]) == (0, 0, 0, 0)
    assert w["send_rate"] == 0 and w["throughput"] == 0
    assert w["success_ratio"] is None
    assert w["latency"]["count"] == 0 and w["latency"]["p99"] is None


def test_throughput_counts_only_commits_inside_window():
    h = History(header=header(), txs=[
        tx(0, "warmup", 9.5, [(0, 10.5, 1)]),    # warmup tx landing in measure: counts there
        tx(1, "measure", 15.0, [(0, 15.2, 2)]),  # inside
        tx(2, "measure", 19.0, [(0, 21.0, 3)]),  # lands after the window: committed, not throughput
        tx(3, "measure", 19.5, [(0, 20.0, 3)]),  # exactly at the end: window is half-open
        tx(4, "measure", 11.0, [(0, 11.5, 2)], error="reverted"),  # failed: never counts
        tx(5, "warmup", 2.0, [(0, 3.0, 1)]),     # lands in warmup
    ])
    phases = metrics.compute(h)["phases"]
    assert phases["measure"]["throughput"] == pytest.approx(2 / 10)
    assert phases["measure"]["committed"] == 3
    assert phases["measure"]["failed"] == 1
    assert phases["warmup"]["throughput"] == pytest.approx(1 / 10)
    assert phases["warmup"]["committed"] == 2


def test_threshold_commit_time_with_three_nodes_share_one_uses_latest_node():
    h = History(header=header(nodes=3, share=1.0), txs=[
        tx(0, "measure", 11.0, [(0, 11.1, 5), (1, 11.3, 5), (2, 11.2, 5)]),
        tx(1, "measure", 11.0, [(0, 11.1, 5), (2, 11.2, 5)]),   # only 2 of 3 nodes
    ])
    out = metrics.compute(h)
    m = out["phases"]["measure"]
    assert out["threshold_nodes"] == 3
    assert m["committed"] == 1 and m["unconfirmed"] == 1
    assert m["latency"]["max"] == pytest.approx(300, rel=1e-3)
    assert m["latency"]["min"] == pytest.approx(300, rel=1e-3)


def test_threshold_commit_time_with_share_half_uses_second_node():
    h = History(header=header(nodes=3, share=0.5), txs=[
        tx(0, "measure", 11.0, [(2, 11.9, 5), (0, 11.1, 5), (1, 11.4, 5)]),
        tx(1, "measure", 11.0, [(1, 11.05, 5)]),
    ])
    out = metrics.compute(h)
    m = out["phases"]["measure"]
    assert out["threshold_nodes"] == 2
    assert m["committed"] == 1
    assert m["latency"]["p50"] == pytest.approx(400, rel=1e-3)


def test_commit_time_helper():
    record = tx(0, "measure", 1.0, [(0, 3.0, 1), (1, 2.0, 1), (2, 5.0, 2)])
    assert metrics.commit_time(record, 1) == 2.0
    assert metrics.commit_time(record, 2) == 3.0
    assert metrics.commit_time(record, 3) == 5.0
    assert metrics.commit_time(record, 4) is None


def test_timeseries_buckets_sends_by_submit_second_and_commits_by_commit_second():
    h = History(header=header(warmup=(0.0, 1.0), measure=(1.0, 3.0)), txs=[
        tx(0, "measure", 1.2, [(0, 2.7, 1)]),
        tx(1, "measure", 1.9, [(0, 2.1, 1)]),
        tx(2, "measure", 2.5, error="bad"),
        tx(3, "measure", 2.6, error=DROPPED),
    ])
    series = metrics.compute(h)["timeseries"]
    assert [s["t"] for s in series] == [0, 1, 2, 3]
    assert [s["sent"] for s in series] == [0, 2, 1, 0]
    assert [s["failed"] for s in series] == [0, 0, 1, 0]
    assert [s["committed"] for s in series] == [0, 0, 2, 0]
    assert series[2]["p50_ms"] == pytest.approx(850.0)
    assert series[1]["p50_ms"] is None


def test_node_figures_use_blocks_commits_and_footer_watch_methods():
    h = History(header=header(nodes=2, share=0.5), txs=[
        tx(0, "measure", 11.0, [(0, 11.5, 4), (1, 11.6, 4)]),
        tx(1, "measure", 11.0, [(1, 11.7, 5)]),
    ], blocks=[
        BlockRecord(node=0, number=4, hash="0x4", parent="0x3", seen=11.5, fetched=11.52,
                    timestamp=1011.0, txs=1),
        BlockRecord(node=1, number=4, hash="0x4", parent="0x3", seen=11.6, fetched=11.61,
                    timestamp=1011.0, txs=1),
        BlockRecord(node=1, number=5, hash="0x5", parent="0x4", seen=11.7, fetched=11.74,
                    timestamp=None, txs=1),
    ], footer={"watch_methods": {"node0": "subscribe", "node1": "poll"}})
    out = metrics.compute(h)
    nodes = out["nodes"]
    assert [n["name"] for n in nodes] == ["node0", "node1"]
    assert [n["blocks_seen"] for n in nodes] == [1, 2]
    assert [n["head"] for n in nodes] == [4, 5]
    assert [n["txs_held"] for n in nodes] == [1, 2]
    assert [n["commit_method"] for n in nodes] == ["subscribe", "poll"]

    detection = out["commit_detection"]
    assert detection["methods"] == {"node0": "subscribe", "node1": "poll"}
    assert detection["fetch_delay_ms"]["max"] == pytest.approx(40.0, abs=1e-3)
    assert detection["fetch_delay_ms"]["mean"] == pytest.approx((20 + 10 + 40) / 3, abs=1e-3)
    # t0_wall 1000 + seen 11.5 - block timestamp 1011.0 = 0.5 s; 0.6 s for node1
    assert detection["seen_after_block_timestamp_ms"]["max"] == pytest.approx(600.0, abs=1e-3)
    assert detection["seen_after_block_timestamp_ms"]["mean"] == pytest.approx(550.0, abs=1e-3)


def test_node_without_blocks_has_no_head():
    out = metrics.compute(History(header=header(nodes=2), footer={}))
    assert [n["head"] for n in out["nodes"]] == [None, None]
    assert [n["commit_method"] for n in out["nodes"]] == [None, None]
    assert out["commit_detection"]["fetch_delay_ms"] == {"mean": None, "p99": None, "max": None}


def test_compute_is_the_same_after_history_round_trip(tmp_path):
    original = measure_history()
    path = tmp_path / "history.jsonl"
    hist.write(path, original)
    assert metrics.compute(hist.read(path)) == metrics.compute(original)


def test_on_time_ratio_counts_late_sends_that_send_rate_ratio_hides():
    """Ten due sends all went out (send_rate_ratio 1.0) but three left 50 ms late."""
    txs = [TxRecord(i=k, id=f"0x{k:x}", phase="measure", node=0, scheduled=10.0 + k,
                    submitted=10.0 + k + (0.05 if k < 3 else 0.002), acked=None, error=None, commits=[])
           for k in range(10)]
    m = metrics.compute(History(header=header(rate=1.0), txs=txs, footer={}))["phases"]["measure"]
    assert m["send_rate_ratio"] == 1.0
    assert m["on_time_ratio"] == 0.7
    assert m["send_lag_p99_ms"] == pytest.approx(50.0)


def test_resource_figures_over_the_measure_window_skip_a_restart():
    # [t, cpu_seconds, memory_bytes, rx_bytes, tx_bytes]; the counters reset at t=14 (restart)
    samples = [[9.0, 0.0, 0, 0, 0], [10.0, 1.0, 100 * 2**20, 0, 0], [11.0, 1.5, 120 * 2**20, 2**20, 2**21],
               [12.0, 2.5, 110 * 2**20, 2**21, 2**22], [14.0, 0.1, 50 * 2**20, 0, 0],
               [15.0, 0.4, 60 * 2**20, 2**20, 2**20]]
    figures = metrics.resource_figures(samples, [10.0, 20.0])
    assert figures["cpu_mean_percent"] == pytest.approx((50 + 100 + 30) / 3, abs=0.1)
    assert figures["cpu_max_percent"] == 100.0
    assert figures["memory_max_mb"] == 120.0
    assert figures["samples"] == 5
    assert metrics.resource_figures(samples[:1], None) is None
    history = History(header=header(), txs=[], footer={"resources": {"nodes": {"node0": samples}}})
    assert metrics.cpu_series(history)["node0"][:2] == [[10.0, 100.0], [11.0, 50.0]]
