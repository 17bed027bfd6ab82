"""Requirement catalogues and verdicts: validation errors name the requirement and field;
verdicts are a pure function of the cases' results."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from harness import standards
from harness.errors import InputError
from harness.standards import catalogue, verdicts

ROOT = Path(__file__).resolve().parents[2]
CASES = {"pressure-4", "bft-threshold", "crash-restart", "spike-4", "stability-4", "pressure-16",
         "partition-pow"}


def requirement(**overrides):
    base = {"id": "R-1", "title": {"zh": "要求", "en": "a requirement"}, "category": "performance",
            "obligation": "mandatory", "source": {"document": "JR/T 0193-2020", "clause": "7.1"},
            "method": {"cases": ["pressure-4"], "steps": [{"zh": "步骤", "en": "step"}],
                       "expected": {"zh": "预期", "en": "expected"}},
            "threshold": {"metric": "success_ratio", "op": ">=", "value": 0.95}}
    return {**base, **overrides}


def write(tmp_path: Path, requirements) -> Path:
    path = tmp_path / "cat.yaml"
    meta = {"id": "c", "version": "1", "title": {"zh": "目录", "en": "c"}}
    path.write_text(yaml.safe_dump({"catalogue": meta, "requirements": requirements}, allow_unicode=True))
    return path


@pytest.mark.parametrize("name", ["performance", "reliability", "function"])
def test_shipped_catalogues_load(name):
    loaded = catalogue.load(ROOT / "standards" / f"{name}.yaml")
    assert loaded.requirements and len(loaded.sha256) == 64
    assert all(r["title"]["zh"] and r["title"]["en"] for r in loaded.requirements)


@pytest.mark.parametrize(("requirements", "field", "expected"), [
    ([requirement(), requirement()], "requirements[1].id", "unique requirement id"),
    ([requirement(threshold={"metric": "tps_magic", "op": ">=", "value": 1})],
     "requirements[0].threshold.metric", "a known metric for requirement R-1"),
    ([requirement(threshold={"metric": "success_ratio", "op": "~=", "value": 1})],
     "requirements[0].threshold.op", "one of"),
    ([requirement(threshold={"metric": "checker_safety", "op": ">=", "value": "pass"})],
     "requirements[0].threshold.op", "== or !="),
    ([requirement(threshold={"metric": "checker_safety", "op": "==", "value": 1})],
     "requirements[0].threshold.value", "a verdict string"),
    ([requirement(method={"cases": ["nowhere"], "steps": [{"zh": "a", "en": "b"}],
                          "expected": {"zh": "a", "en": "b"}})],
     "requirements[0].method.cases[0]", "no suite is named 'nowhere'"),
])
def test_bad_catalogues_name_requirement_and_field(tmp_path, requirements, field, expected):
    with pytest.raises(InputError) as error:
        catalogue.load(write(tmp_path, requirements), CASES)
    assert error.value.field == field
    assert expected in error.value.expected


def results(**measure):
    figures = {"throughput": 190.0, "send_rate": 200.0, "success_ratio": 0.99, "failed": 0,
               "latency": {"p50": 1200.0, "p99": 4000.0}, **measure}
    return {"run_id": "r1", "status": "complete", "node_count": 4, "chain": {"consensus": "bft"},
            "load": {"workload": "kv", "rate": 200}, "phases": {"measure": figures},
            "time_to_ready_seconds": 5.0, "artifacts": {"history": "history.jsonl"},
            "checkers": [{"id": "safety", "verdict": "pass", "why": None, "evidence": {}}]}


def test_verdicts_pass_fail_inconclusive_and_not_applicable():
    cases = {"pressure-4": results()}
    judged = {r["id"]: r for r in verdicts.judge({"catalogue": {"id": "c", "version": "1", "title": {}},
                                                  "requirements": [
        requirement(id="ok"),
        requirement(id="slow", threshold={"metric": "latency_p99", "op": "<=", "value": 1000, "unit": "ms"}),
        requirement(id="missing", method={**requirement()["method"], "cases": ["spike-4"]}),
        requirement(id="unmeasured", threshold={"metric": "ledger_growth_bytes_per_tx", "op": "<=",
                                                "value": 1}),
        requirement(id="no-query-phase", threshold={"metric": "query_throughput", "op": ">=", "value": 1}),
        requirement(id="pow-only", conditions={"consensus": ["pow"]}),
        requirement(id="sixteen", conditions={"nodes": [16]}),
        requirement(id="checker", threshold={"metric": "checker_safety", "op": "==", "value": "pass"}),
    ]}, cases)["requirements"]}
    assert judged["ok"]["verdict"] == "pass"
    assert judged["ok"]["measured"] == {"pressure-4": {"success_ratio": 0.99}}
    assert judged["ok"]["evidence"][0]["history"] == "history.jsonl"
    assert judged["slow"]["verdict"] == "fail"
    assert judged["slow"]["why"] == "latency_p99 = 4000.0 ms in case pressure-4, expected <= 1000 ms"
    assert judged["missing"]["verdict"] == "inconclusive"
    assert "spike-4 was not run" in judged["missing"]["why"]
    assert judged["unmeasured"]["verdict"] == "inconclusive"
    assert judged["unmeasured"]["why"].endswith("ledger_growth_bytes_per_tx was not measured in this run")
    # the read workload is measured, but only by a run with a query phase
    assert judged["no-query-phase"]["verdict"] == "inconclusive"
    assert "no query phase" in judged["no-query-phase"]["why"]
    assert judged["pow-only"]["verdict"] == "not-applicable"
    assert "this chain is bft" in judged["pow-only"]["why"]
    assert judged["sixteen"]["verdict"] == "inconclusive" and "ran 4 nodes" in judged["sixteen"]["why"]
    assert judged["checker"]["verdict"] == "pass"


def test_incomplete_case_and_unknown_checker_are_inconclusive():
    stopped = {**results(), "status": "incomplete", "status_reason": "interrupted by SIGINT"}
    r = verdicts.judge_requirement(requirement(), {"pressure-4": stopped}, "bft")
    assert r["verdict"] == "inconclusive" and "SIGINT" in r["why"]
    unknown = results()
    unknown["checkers"] = [{"id": "safety", "verdict": "unknown", "why": "x", "evidence": {}}]
    r = verdicts.judge_requirement(requirement(threshold={"metric": "checker_safety", "op": "==",
                                                          "value": "pass"}), {"pressure-4": unknown}, "bft")
    assert r["verdict"] == "inconclusive"


@pytest.mark.parametrize(("mandatory", "recommended", "grade", "verdict"), [
    (["pass"], ["pass"], "A", "pass"),
    (["pass", "not-applicable"], ["fail"], "B", "pass"),
    (["pass", "inconclusive"], ["pass"], "C", "inconclusive"),
    (["fail", "inconclusive"], ["pass"], "F", "fail"),
])
def test_grade(mandatory, recommended, grade, verdict):
    judged = ([{"obligation": "mandatory", "verdict": v} for v in mandatory]
              + [{"obligation": "recommended", "verdict": v} for v in recommended])
    got = verdicts.grade(judged)
    assert (got["grade"], got["verdict"]) == (grade, verdict)
    assert sum(got["counts"].values()) == len(judged)


def test_rejudging_with_another_catalogue_needs_only_the_results():
    perf = standards.entry(catalogue.load(ROOT / "standards" / "performance.yaml"))
    reliability = standards.entry(catalogue.load(ROOT / "standards" / "reliability.yaml"))
    cases = {"pressure-4": results()}
    first = standards.judge_all([perf], copy.deepcopy(cases))
    second = standards.judge_all([reliability], copy.deepcopy(cases))
    assert {r["standard"] for r in first["requirements"]} == {"bctest-performance"}
    assert {r["standard"] for r in second["requirements"]} == {"bctest-reliability"}
    pressure = next(r for r in first["requirements"] if r["id"] == "PERF-TX-PRESSURE-4")
    assert pressure["verdict"] == "pass"   # 190 / 200 = 0.95, success 0.99
    assert first["certification"]["grade"] in ("C", "F")  # other rounds were not run
