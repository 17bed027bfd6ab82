"""Campaign files and the campaign's judgement over its cases' stored results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import campaign, standards, verdicts
from harness.errors import EXIT_INCONCLUSIVE, InputError
from harness.standards import catalogue

ROOT = Path(__file__).resolve().parents[2]


def test_a_campaign_of_shipped_suites_loads(tmp_path):
    # The reference certifications are `bctest certify chains/<pack>` (harness/certify/); a
    # campaign file is still how a test center composes its own.
    path = tmp_path / "c.yaml"
    suites = ROOT / "suites"
    path.write_text("name: c\nstandards: [performance.yaml, reliability.yaml]\ncases:\n"
                    f"  - {{id: pressure-4, suite: {suites / 'performance' / 'cometbft-pressure-4.yaml'}}}\n"
                    f"  - {{id: bft-threshold, suite: {suites / 'faults' / 'bft-threshold.yaml'}}}\n")
    cert = campaign.load(path)
    assert [c.id for c in cert.cases] == ["pressure-4", "bft-threshold"]
    assert [c.id for c in cert.standards] == ["bctest-performance", "bctest-reliability"]
    assert campaign.is_campaign(path)
    assert not campaign.is_campaign(ROOT / "suites" / "quickstart.yaml")


def test_case_id_must_match_the_suites_case(tmp_path):
    path = tmp_path / "c.yaml"
    bft = ROOT / "suites" / "faults" / "bft-threshold.yaml"
    path.write_text(f"name: c\nstandards: [{ROOT / 'standards' / 'reliability.yaml'}]\n"
                    f"cases:\n  - {{id: spike-4, suite: {bft}}}\n")
    with pytest.raises(InputError) as error:
        campaign.load(path)
    assert error.value.field == "cases[0].id" and "'bft-threshold'" in error.value.expected


def _case(run_dir: Path, case_id: str, verdict: str = "pass", **measure) -> None:
    folder = run_dir / "cases" / case_id
    folder.mkdir(parents=True)
    figures = {"throughput": 99.0, "send_rate": 100.0, "success_ratio": 1.0, "latency": {"p99": 900.0},
               **measure}
    (folder / "results.json").write_text(json.dumps({
        "run_id": f"run-{case_id}", "status": "complete", "verdict": verdict, "node_count": 4,
        "chain": {"name": "cometbft", "consensus": "bft"}, "host": {"cpus": 2},
        "load": {"workload": "kv", "rate": 100}, "phases": {"measure": figures},
        "time_to_ready_seconds": 4.0, "artifacts": {"history": "history.jsonl"}, "checkers": []}))


def test_judge_traces_evidence_to_case_folders_and_marks_missing_cases(tmp_path):
    perf = standards.entry(catalogue.load(ROOT / "standards" / "performance.yaml"))
    (tmp_path / campaign.PLAN).write_text(json.dumps({
        "format": campaign.FORMAT, "run_id": "c1", "name": "demo", "description": "", "path": "x",
        "sha256": "0" * 64, "started_at": "2026-11-28T00:00:00Z", "harness": {"version": "t"},
        "standards": [perf], "cases": [{"id": "pressure-4", "suite": {"name": "p"}},
                                       {"id": "spike-4", "suite": {"name": "s"}}]}))
    _case(tmp_path, "pressure-4")
    judged = campaign.judge(tmp_path)
    assert judged["status"] == "incomplete" and judged["verdict"] == "incomplete"
    assert [c["status"] for c in judged["cases"]] == ["complete", "not run"]
    pressure = next(r for r in judged["requirements"] if r["id"] == "PERF-TX-PRESSURE-4")
    assert pressure["verdict"] == "pass"
    assert pressure["evidence"][0]["history"] == "cases/pressure-4/history.jsonl"
    spike = next(r for r in judged["requirements"] if r["id"] == "PERF-TX-SPIKE-4")
    assert spike["verdict"] == "inconclusive" and spike["why"] == "case spike-4 was not run"
    assert judged["chain"]["name"] == "cometbft" and judged["host"] == {"cpus": 2}


def _plan(run_dir: Path, cases: list[str]) -> None:
    perf = standards.entry(catalogue.load(ROOT / "standards" / "performance.yaml"))
    (run_dir / campaign.PLAN).write_text(json.dumps({
        "format": campaign.FORMAT, "run_id": "c1", "name": "demo", "description": "", "path": "x",
        "sha256": "0" * 64, "started_at": "2026-11-28T00:00:00Z", "harness": {"version": "t"},
        "standards": [perf], "cases": [{"id": c, "suite": {"name": c}} for c in cases]}))


def test_a_campaign_whose_mandatory_evidence_is_missing_is_inconclusive_and_exits_4(tmp_path):
    # Only pressure-4 ran (and passed): mandatory requirements on other cases cannot be judged.
    _plan(tmp_path, ["pressure-4"])
    _case(tmp_path, "pressure-4")
    judged = campaign.judge(tmp_path)
    assert judged["certification"]["grade"] == "C"
    assert judged["status"] == "complete" and judged["verdict"] == "inconclusive"
    assert verdicts.exit_code(judged) == EXIT_INCONCLUSIVE


def test_a_failed_case_fails_the_campaign_over_an_inconclusive_certification(tmp_path):
    _plan(tmp_path, ["pressure-4"])
    _case(tmp_path, "pressure-4", verdict="fail")
    judged = campaign.judge(tmp_path)
    assert judged["verdict"] == "fail" and verdicts.exit_code(judged) == 1
