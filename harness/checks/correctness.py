"""The correctness checkers, run over a History in a fixed order.

`config` names the checkers to run (a suite's correctness section): each key a checker
id, each value that checker's settings, merged over its DEFAULTS. A checker left out is
not run; an unknown id or setting is an input error, not a silent no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.checks import convergence, durability, fault_tolerance, liveness, safety
from harness.history import History

Checker = Callable[[History, dict[str, Any]], dict[str, Any]]

_MODULES = (safety, liveness, durability, convergence, fault_tolerance)
ORDER: tuple[str, ...] = tuple(m.ID for m in _MODULES)
CHECKERS: dict[str, Checker] = {m.ID: m.check for m in _MODULES}
DEFAULTS: dict[str, dict[str, Any]] = {m.ID: dict(m.DEFAULTS) for m in _MODULES}


def settings(check_id: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """The checker's DEFAULTS overridden by `given`; unknown keys raise ValueError."""
    if check_id not in CHECKERS:
        raise ValueError(f"unknown correctness checker {check_id!r} (known: {', '.join(ORDER)})")
    unknown = sorted(set(given or {}) - set(DEFAULTS[check_id]))
    if unknown:
        raise ValueError(f"{check_id}: unknown setting(s) {', '.join(unknown)} "
                         f"(known: {', '.join(DEFAULTS[check_id])})")
    return {**DEFAULTS[check_id], **(given or {})}


def evaluate(history: History, config: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    merged = {check_id: settings(check_id, given) for check_id, given in config.items()}
    return [CHECKERS[check_id](history, merged[check_id]) for check_id in ORDER if check_id in merged]
