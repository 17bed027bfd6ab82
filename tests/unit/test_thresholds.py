"""Suite threshold checks: a phase metric compared with a value gives pass, fail or unknown."""

from __future__ import annotations

import pytest

from harness.checks.thresholds import OPERATORS, STRUCTURE, evaluate, measured

PHASES = {
    "measure": {"throughput": 95.0, "success_ratio": 0.99, "send_rate_ratio": None, "failed": 0,
                "latency": {"p50": 120.0, "p99": 480.0, "max": 900.0}},
    "warmup": {"throughput": 10.0, "latency": {"p99": None}},
}


def check(metric: str, op: str, value: float, phase: str = "measure", **extra) -> dict:
    return {"id": f"{metric} {op} {value}", "metric": metric, "op": op, "value": value,
            "phase": phase, **extra}


def test_passing_check():
    [v] = evaluate([check("throughput", ">=", 90)], PHASES)
    assert v["verdict"] == "pass"
    assert v["measured"] == 95.0
    assert v["why"] is None


def test_failing_check_explains_measured_and_expected():
    [v] = evaluate([check("throughput", ">=", 100)], PHASES)
    assert v["verdict"] == "fail"
    assert v["measured"] == 95.0
    assert v["why"] == "throughput = 95.0, expected >= 100"


def test_latency_metrics_read_from_latency_summary():
    verdicts = evaluate([check("latency_p99", "<", 500), check("latency_p50", "<", 100),
                         check("latency_max", "<=", 900)], PHASES)
    assert [v["verdict"] for v in verdicts] == ["pass", "fail", "pass"]
    assert [v["measured"] for v in verdicts] == [480.0, 120.0, 900.0]


@pytest.mark.parametrize("chk, why", [
    (check("throughput", ">=", 1, phase="settle"), "no throughput was measured in settle"),
    (check("send_rate_ratio", ">=", 0.9), "no send_rate_ratio was measured in measure"),
    (check("latency_p99", "<", 500, phase="warmup"), "no latency_p99 was measured in warmup"),
    (check("committed", ">", 0), "no committed was measured in measure"),
])
def test_unmeasured_metric_or_missing_phase_is_unknown(chk, why):
    [v] = evaluate([chk], PHASES)
    assert v["verdict"] == "unknown"
    assert v["measured"] is None
    assert v["why"] == why


def test_zero_is_a_measurement_not_unknown():
    [v] = evaluate([check("failed", "==", 0)], PHASES)
    assert v["verdict"] == "pass" and v["measured"] == 0


@pytest.mark.parametrize("op, value, verdict", [
    (">=", 95.0, "pass"), (">", 95.0, "fail"), ("<=", 95.0, "pass"), ("<", 95.0, "fail"),
    ("==", 95.0, "pass"), ("==", 95.1, "fail"), (">", 94.9, "pass"), ("<", 95.1, "pass"),
])
def test_every_operator(op, value, verdict):
    [v] = evaluate([check("throughput", op, value)], PHASES)
    assert v["verdict"] == verdict


def test_operators_cover_the_suite_schema_enum():
    from harness.validation import schema

    ops = schema("suite")["properties"]["checks"]["items"]["properties"]["op"]["enum"]
    assert sorted(OPERATORS) == sorted(ops)


def test_every_suite_schema_metric_exists_in_metrics_output():
    """Each metric a suite may name must be found in what harness.metrics computes."""
    from harness import metrics
    from harness.history import History, TxRecord
    from harness.validation import schema

    names = schema("suite")["properties"]["checks"]["items"]["properties"]["metric"]["enum"]
    h = History(header={"phases": {"measure": [0.0, 1.0]}, "load": {"rate": 1, "commit_share": 1},
                        "nodes": [{"name": "n0"}], "t0_wall": 0.0},
                txs=[TxRecord(i=0, id="0x1", phase="measure", node=0, scheduled=0.1,
                              submitted=0.1, acked=0.1, error=None, commits=[(0, 0.3, 1)])])
    phase = metrics.compute(h)["phases"]["measure"]
    missing = [name for name in names if name not in STRUCTURE and measured(phase, name) is None]
    assert missing == []
    # the structure metrics are the whole run's: results.json's topology figures (a topology run)
    from harness.checks import structure
    assert set(STRUCTURE) <= set(names) and set(structure.figures(h)) == set(STRUCTURE)


def test_verdicts_keep_check_fields_and_order():
    checks = [check("throughput", ">=", 1, extra_field="x"), check("failed", "<", 1)]
    verdicts = evaluate(checks, PHASES)
    assert [v["id"] for v in verdicts] == [c["id"] for c in checks]
    assert verdicts[0]["extra_field"] == "x"
    assert evaluate([], PHASES) == []
