"""The correctness checkers: a registry found, not listed, and run over a History safely.

A checker is one module under harness/checks/ that defines
  ID        its id (the suite's `checkers:` key, results.json's checkers[].id)
  ORDER     its place in the run order (lower first; ties by id)
  DEFAULTS  its settings with their default values
  SETTINGS  (optional) the JSON Schema of each setting, merged into the suite schema
  TOPOLOGY  (optional) the tier it judges ("management", "application"): a suite whose
            `topology:` has that tier runs it by default (harness/suite.py Suite.checker_config)
  check     (history, settings) -> {"id", "verdict": pass|fail|unknown, "why", "evidence"}
Adding one is adding that file (and its test): discovery, the suite schema and the
standards' `checker_<id>` metric follow from the registry.

`config` names the checkers to run (a suite's correctness section): each key a checker
id, each value that checker's settings, merged over its DEFAULTS. A checker left out is
not run; an unknown id or setting is an input error, not a silent no-op. A checker that
raises, or answers something that is not a verdict, becomes `unknown` with what went wrong
as evidence: one broken checker must not cost the run its results.json.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import harness.checks
from harness.history import History

CheckFunction = Callable[[History, dict[str, Any]], dict[str, Any]]
VERDICTS = ("pass", "fail", "unknown")


@dataclass(frozen=True)
class Checker:
    id: str
    order: int
    defaults: dict[str, Any]
    settings_schema: dict[str, Any]   # setting -> JSON Schema
    check: CheckFunction
    module: str
    reads_final_chains: bool = True   # whether the run must read every node's chain back for it
    topology: str | None = None       # the topology tier it judges: run by default when there is one


def _is_checker(module: ModuleType) -> bool:
    return (isinstance(getattr(module, "ID", None), str)
            and isinstance(getattr(module, "DEFAULTS", None), dict)
            and callable(getattr(module, "check", None)))


@cache
def registry() -> dict[str, Checker]:
    """Every checker module in the harness.checks package, in run order."""
    found: dict[str, Checker] = {}
    for info in pkgutil.iter_modules(harness.checks.__path__, "harness.checks."):
        module = importlib.import_module(info.name)
        if not _is_checker(module):
            continue  # shared helpers (chain, thresholds) and this registry
        if module.ID in found:
            raise RuntimeError(f"checker id {module.ID!r} is defined by both {found[module.ID].module} "
                               f"and {module.__name__}")
        found[module.ID] = Checker(
            id=module.ID, order=int(getattr(module, "ORDER", 1000)), defaults=dict(module.DEFAULTS),
            settings_schema=dict(getattr(module, "SETTINGS", None) or {k: {} for k in module.DEFAULTS}),
            check=module.check, module=module.__name__,
            reads_final_chains=bool(getattr(module, "READS_FINAL_CHAINS", True)),
            topology=getattr(module, "TOPOLOGY", None))
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def needs_final_read(config: dict[str, Any]) -> bool:
    """Whether any checker in `config` judges the final chains (the run's final read stage)."""
    found = registry()
    return any(found[name].reads_final_chains for name in config if name in found)


def topology_checkers(tiers: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The checkers that judge a topology's tiers (supervision, freshness); with `tiers`, those
    whose tier is among them (what a topology of those tiers gets by default)."""
    return tuple(i for i, c in registry().items()
                 if c.topology and (tiers is None or c.topology in tiers))


def reload() -> None:
    """Forget what was discovered (tests that add a checker module)."""
    registry.cache_clear()


def __getattr__(name: str) -> Any:
    # ORDER, CHECKERS and DEFAULTS read the registry each time, so they never go stale.
    if name == "ORDER":
        return tuple(registry())
    if name == "CHECKERS":
        return {i: c.check for i, c in registry().items()}
    if name == "DEFAULTS":
        return {i: dict(c.defaults) for i, c in registry().items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def suite_schema() -> dict[str, Any]:
    """The suite schema's `checkers` section: one optional object per registered checker."""
    return {"type": "object", "additionalProperties": False,
            "description": "correctness checkers over the History; each key enables one (settings or {})",
            "properties": {i: {"type": "object", "additionalProperties": False,
                               "properties": c.settings_schema}
                           for i, c in registry().items()}}


def settings(check_id: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """The checker's DEFAULTS overridden by `given`; unknown keys raise ValueError."""
    known = registry()
    if check_id not in known:
        raise ValueError(f"unknown correctness checker {check_id!r} (known: {', '.join(known)})")
    defaults = known[check_id].defaults
    unknown = sorted(set(given or {}) - set(defaults))
    if unknown:
        raise ValueError(f"{check_id}: unknown setting(s) {', '.join(unknown)} "
                         f"(known: {', '.join(defaults)})")
    return {**defaults, **(given or {})}


def _unknown(check_id: str, why: str, evidence: dict[str, Any]) -> dict[str, Any]:
    return {"id": check_id, "verdict": "unknown", "why": why, "evidence": evidence}


def _malformed(check_id: str, answer: Any) -> str | None:
    """Why `answer` is not a checker result results.json can hold (None if it is)."""
    if not isinstance(answer, dict):
        return f"returned a {type(answer).__name__}, not a result"
    if answer.get("verdict") not in VERDICTS:
        return f"answered verdict {answer.get('verdict')!r}, not one of {', '.join(VERDICTS)}"
    if answer.get("id") != check_id:
        return f"answered for id {answer.get('id')!r}"
    if not isinstance(answer.get("evidence"), dict) or not (
            answer.get("why") is None or isinstance(answer.get("why"), str)):
        return "returned no evidence object or a why that is not text"
    try:
        json.dumps(answer, allow_nan=True)
    except (TypeError, ValueError) as exc:
        return f"returned evidence that is not JSON ({exc})"
    return None


def run_checker(checker: Checker, history: History, config: dict[str, Any]) -> dict[str, Any]:
    """One checker's result; a checker that raises or answers nonsense is `unknown`, with
    the exception (type, message, the frame it was raised in) or the problem as evidence."""
    try:
        answer = checker.check(history, config)
    except Exception as exc:  # a checker's bug is evidence, not a crash of the run
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return _unknown(checker.id, f"the {checker.id} checker raised {type(exc).__name__}: {exc}"[:500],
                        {"exception": {"type": type(exc).__name__, "message": str(exc)[:1000],
                                       "where": f"{frame.filename}:{frame.lineno} in {frame.name}",
                                       "line": frame.line}})
    problem = _malformed(checker.id, answer)
    if problem:
        return _unknown(checker.id, f"the {checker.id} checker {problem}", {"answer": repr(answer)[:1000]})
    return answer


def evaluate(history: History, config: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    merged = {check_id: settings(check_id, given) for check_id, given in config.items()}
    return [run_checker(checker, history, merged[check_id])
            for check_id, checker in registry().items() if check_id in merged]
