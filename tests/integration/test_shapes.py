"""Every load shape (suites/shapes/<kind>.yaml) run for real on one anvil node: the sends
follow the shape's target second by second and window by window, the History's scheduled
times are the shape's offsets (open loop), and each named window is judged on its own."""

from __future__ import annotations

import json

import jsonschema
import pytest

from harness import suite
from harness.load.shape import KINDS
from harness.validation import schema

from .conftest import ROOT, bctest, results, run_objects


def history_txs(run_dir) -> list[dict]:
    with open(run_dir / "history.jsonl", encoding="utf-8") as lines:
        return [row for row in map(json.loads, lines) if row.get("type") == "tx"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_shape_is_sent_as_planned_and_judged_per_window(docker_client, anvil_image, tmp_path, kind):
    path = ROOT / "suites" / "shapes" / f"{kind}.yaml"
    plan = suite.load(path).load.plan()
    run_dir = tmp_path / kind
    done = bctest("run", str(path), "--out", str(run_dir))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    got = results(run_dir)
    jsonschema.validate(got, schema("results"))
    assert got["status"] == "complete"

    # Open loop on the shape's clock: every tx was due at the schedule's offset for it.
    txs = history_txs(run_dir)
    assert len(txs) == plan.count
    offsets = plan.offset_list()
    assert all(abs(tx["scheduled"] - offsets[tx["i"]]) < 1e-6 for tx in txs)

    # Sent per second follows the target per second (a few sends may slip over a boundary).
    target = plan.per_second()
    sent = {row["t"]: row["sent"] for row in got["timeseries"]}
    for second, planned in enumerate(target):
        assert abs(sent.get(second, 0) - planned) <= max(5, 0.1 * planned), (second, planned, sent)
    assert sum(sent.values()) == plan.count

    # Each window of the schedule was measured, against its own target.
    for name, (start, end) in plan.windows.items():
        if end - start < 1e-9:
            continue
        window = got["phases"][name]
        assert window["window"] == [pytest.approx(start, abs=1e-6), pytest.approx(end, abs=1e-6)]
        assert window["target_rate"] == pytest.approx(plan.target_rate(name), rel=1e-3)
        assert window["scheduled"] == plan.planned(start, end), name
        assert window["send_rate_ratio"] is None or 0.95 <= window["send_rate_ratio"] <= 1.05, (name, window)
    # The suite's checks name those windows and passed on a healthy chain.
    assert got["checks"] and all(c["verdict"] == "pass" for c in got["checks"]), got["checks"]
    if kind != "fixed":
        assert {c["phase"] for c in got["checks"]} - {"warmup", "measure"}
        assert got["load"]["shape"]["kind"] == kind and got["load"]["target"] == target
    else:
        assert "shape" not in got["load"] and set(got["phases"]) == {"warmup", "measure", "settle"}

    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "chart-throughput" in report
    if kind != "fixed":
        assert f"the {kind} load shape planned" in report
    assert run_objects(docker_client, got["run_id"]) == []
