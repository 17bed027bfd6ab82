"""Verdicts merge after Jepsen (pass < unknown < fail); a run whose worst verdict is unknown
is inconclusive and exits 4, never a pass and never silently a fail."""

from __future__ import annotations

import pytest

from harness import verdicts
from harness.errors import EXIT_INCONCLUSIVE, EXIT_PASS, EXIT_VERDICT_FAILED
from harness.standards.verdicts import grade


def test_merge_order_is_pass_then_unknown_then_fail():
    assert verdicts.worst([]) == "pass"
    assert verdicts.worst(["pass", "pass"]) == "pass"
    assert verdicts.worst(["pass", "unknown", "pass"]) == "unknown"
    assert verdicts.worst(["unknown", "fail", "pass"]) == "fail"   # fail beats unknown
    assert verdicts.worst(["fail", "unknown"]) == "fail"
    assert verdicts.worst(["inconclusive", "pass"]) == "unknown"   # the same answer in other words


def test_not_applicable_is_left_out_of_the_merge():
    assert verdicts.worst(["not-applicable", "pass"]) == "pass"
    assert verdicts.worst(["not-applicable"]) == "pass"
    assert verdicts.worst(["not-applicable"], default="not-applicable") == "not-applicable"


def test_a_word_that_is_not_a_verdict_is_refused():
    with pytest.raises(ValueError, match="not a verdict: 'maybe'"):
        verdicts.worst(["pass", "maybe"])


def _run(*judged: str, status: str = "complete", **extra) -> dict:
    return {"status": status, "checks": [{"verdict": v} for v in judged], "checkers": [], **extra}


def test_a_run_with_only_pass_and_unknown_is_inconclusive_and_exits_4():
    results = _run("pass", "unknown", "pass")
    results["verdict"] = verdicts.run_verdict(results)
    assert results["verdict"] == "inconclusive"
    assert verdicts.exit_code(results) == EXIT_INCONCLUSIVE == 4


def test_fail_beats_unknown_and_all_pass_passes():
    assert verdicts.run_verdict(_run("unknown", "fail")) == "fail"
    assert verdicts.exit_code({"verdict": "fail"}) == EXIT_VERDICT_FAILED
    assert verdicts.run_verdict(_run("pass")) == "pass"
    assert verdicts.exit_code({"verdict": "pass"}) == EXIT_PASS
    assert verdicts.run_verdict(_run("pass", status="incomplete")) == "incomplete"
    assert verdicts.exit_code({"verdict": "incomplete"}) == EXIT_VERDICT_FAILED


def test_the_audit_and_the_certification_count_but_not_applicable_requirements_do_not():
    unknown_audit = {"verdict": "unknown"}
    assert verdicts.run_verdict(_run("pass", audit=unknown_audit)) == "inconclusive"
    assert verdicts.run_verdict(_run("unknown", audit={"verdict": "fail"})) == "fail"
    def requirement(verdict: str, obligation: str = "mandatory") -> dict:
        return {"verdict": verdict, "obligation": obligation}
    # A not-applicable requirement, or an optional inconclusive one, leaves the grade a pass.
    certified = grade([requirement("pass"), requirement("not-applicable"),
                       requirement("inconclusive", "optional")])
    assert certified["verdict"] == "pass" and certified["grade"] == "B"
    assert verdicts.run_verdict(_run("pass", certification=certified)) == "pass"
    undecided = grade([requirement("pass"), requirement("inconclusive")])
    assert undecided["grade"] == "C"
    assert verdicts.run_verdict(_run("pass", certification=undecided)) == "inconclusive"
    assert grade([requirement("inconclusive"), requirement("fail")])["grade"] == "F"
    assert grade([requirement("not-applicable"), requirement("pass")])["grade"] == "A"


def test_junit_skips_an_inconclusive_case_and_fails_a_failed_one():
    import xml.etree.ElementTree as ET

    from harness.report import junit

    campaign = {"format": "bctest-campaign/1", "name": "demo", "started_at": "t", "run_id": "c1",
                "sha256": "0", "status": "complete", "chain": {},
                "cases": [{"id": "a", "status": "complete", "verdict": "inconclusive"},
                          {"id": "b", "status": "complete", "verdict": "fail"},
                          {"id": "c", "status": "complete", "verdict": "pass"}]}
    suite = junit.build(campaign).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    outcome = {case.get("name"): [child.tag for child in case] for case in suite.iter("testcase")}
    assert outcome == {"a": ["skipped"], "b": ["failure"], "c": []}
    assert ET.tostring(suite)
