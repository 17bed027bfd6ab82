"""The checker registry: checkers are found (one module each, no hand list), a checker that
raises becomes `unknown` with the exception as evidence and results.json is still written,
and adding a checker is one new file that runs, is accepted by the suite schema and becomes
a standards metric."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import harness.checks
from harness import history as history_module
from harness import results, validation, verdicts
from harness.checks import correctness
from harness.errors import InputError
from harness.standards.metrics import METRICS

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "sample_run"


def _sample() -> history_module.History:
    return history_module.read(SAMPLE / "history.jsonl")


def test_the_reference_checkers_are_discovered_in_their_fixed_order():
    assert correctness.ORDER == ("causality", "safety", "liveness", "durability", "convergence",
                                 "fault_tolerance", "supervision", "freshness", "readback")
    assert {f"checker_{c}" for c in correctness.ORDER} <= set(METRICS)


def test_the_published_suite_schema_matches_the_registry():
    """schemas/suite.schema.json is what editors validate suites with: keep its checkers
    section equal to what the registry generates (paste correctness.suite_schema())."""
    published = json.loads((validation.SCHEMA_DIR / "suite.schema.json").read_text())
    assert published["properties"]["checkers"] == correctness.suite_schema()


def test_a_checker_that_raises_is_unknown_with_the_exception_and_results_are_written(
        tmp_path, monkeypatch):
    def broken(history, config):
        raise ZeroDivisionError("division by zero in the rule")
    safety = correctness.registry()["safety"]
    monkeypatch.setitem(correctness.registry(), "safety",
                        correctness.Checker(**{**safety.__dict__, "check": broken}))
    stored = _sample()
    stored.header["checkers"] = {"safety": {}}
    written = results.write_history_and_results(tmp_path, stored)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["verdict"] == written["verdict"] == "inconclusive"
    [checker] = on_disk["checkers"]
    assert checker["id"] == "safety" and checker["verdict"] == "unknown"
    assert "raised ZeroDivisionError: division by zero in the rule" in checker["why"]
    exception = checker["evidence"]["exception"]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["message"] == "division by zero in the rule"
    assert exception["where"].endswith("in broken") and "test_checker_registry.py" in exception["where"]
    assert verdicts.exit_code(on_disk) == 4


def test_a_checker_that_answers_nonsense_is_unknown(monkeypatch):
    safety = correctness.registry()["safety"]
    monkeypatch.setitem(correctness.registry(), "safety", correctness.Checker(
        **{**safety.__dict__, "check": lambda h, c: {"id": "safety", "verdict": "maybe", "why": None,
                                                      "evidence": {}}}))
    [checker] = correctness.evaluate(_sample(), {"safety": {}})
    assert checker["verdict"] == "unknown" and "answered verdict 'maybe'" in checker["why"]


def test_the_sample_run_with_a_passing_checker_passes(tmp_path):
    stored = _sample()
    stored.header["checkers"] = {"safety": {}}
    assert results.write_history_and_results(tmp_path, stored)["verdict"] == "pass"


PARITY = '''"""A throwaway checker: every committed transaction count is checked against a limit."""

ID = "parity"
ORDER = 25
DEFAULTS = {"limit": 3}
SETTINGS = {"limit": {"type": "integer", "minimum": 0}}


def check(history, config):
    return {"id": ID, "verdict": "pass", "why": None,
            "evidence": {"limit": config["limit"], "txs": len(history.txs)}}
'''


@pytest.fixture
def parity_checker(tmp_path, monkeypatch):
    """One new file in the checks package (a second folder on its __path__)."""
    folder = tmp_path / "more_checks"
    folder.mkdir()
    (folder / "parity.py").write_text(PARITY)
    monkeypatch.setattr(harness.checks, "__path__", [*harness.checks.__path__, str(folder)])
    correctness.reload()
    validation.schema.cache_clear()
    yield
    monkeypatch.undo()
    sys.modules.pop("harness.checks.parity", None)
    correctness.reload()
    validation.schema.cache_clear()


def test_adding_a_checker_is_one_new_file(parity_checker, tmp_path, inputs):
    assert correctness.ORDER == ("causality", "safety", "liveness", "parity", "durability", "convergence",
                                 "fault_tolerance", "supervision", "freshness", "readback")
    assert "checker_parity" in METRICS
    # The suite schema accepts its settings and refuses bad ones, naming the field.
    suite = inputs.suite()
    suite["checkers"] = {"parity": {"limit": 2}}
    assert validation.load_and_validate(inputs.make_suite(tmp_path / "ok", suite), "suite")
    suite["checkers"] = {"parity": {"limit": -1}}
    with pytest.raises(InputError) as error:
        validation.load_and_validate(inputs.make_suite(tmp_path / "bad", suite), "suite")
    assert error.value.field == "checkers.parity.limit"
    # It runs over a History and results.json holds its verdict.
    stored = _sample()
    stored.header["checkers"] = {"parity": {"limit": 2}, "safety": {}}
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    written = results.write_history_and_results(run_dir, stored)
    assert [c["id"] for c in written["checkers"]] == ["safety", "parity"]
    assert written["checkers"][1]["evidence"] == {"limit": 2, "txs": len(stored.txs)}
    assert written["verdict"] == "pass"


def test_the_registry_forgets_the_throwaway_checker_afterwards():
    assert "parity" not in correctness.ORDER


def test_only_checkers_that_judge_final_chains_call_for_the_final_read():
    """causality reads the tx lines only: a run judged by it alone reads no chain back."""
    assert not correctness.needs_final_read({"causality": {}})
    assert correctness.needs_final_read({"causality": {}, "safety": {}})
    assert not correctness.needs_final_read({})
