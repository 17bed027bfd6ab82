"""Threshold checks from the suite (`checks:`): a metric of a phase compared with a value.

The structure metrics of a topology run (STRUCTURE: supervision completeness and lag, the
application tier's block lag) are the whole run's, whatever the check's phase says; on a
run without a topology they are unmeasured, so such a check is unknown."""

from __future__ import annotations

import operator
from typing import Any

OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
             "==": operator.eq}


STRUCTURE = ("supervision_completeness", "supervision_lag_p99_ms", "application_lag_p99_ms")


def measured(phase: dict[str, Any], metric: str) -> float | None:
    if metric.startswith("latency_"):
        return phase["latency"].get(metric.removeprefix("latency_"))
    return phase.get(metric)


def evaluate(checks: list[dict[str, Any]], phases: dict[str, dict[str, Any]],
             structure: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    verdicts = []
    for check in checks:
        if check["metric"] in STRUCTURE:
            value, where = (structure or {}).get(check["metric"]), "this run (it had no topology)" \
                if structure is None else "this run"
        else:
            phase = phases.get(check["phase"])
            value, where = measured(phase, check["metric"]) if phase else None, check["phase"]
        if value is None:
            verdict, why = "unknown", f"no {check['metric']} was measured in {where}"
        elif OPERATORS[check["op"]](value, check["value"]):
            verdict, why = "pass", None
        else:
            verdict, why = "fail", f"{check['metric']} = {value}, expected {check['op']} {check['value']}"
        verdicts.append({**check, "measured": value, "verdict": verdict, "why": why})
    return verdicts
