"""Threshold checks from the suite (`checks:`): a metric of a phase compared with a value."""

from __future__ import annotations

import operator
from typing import Any

OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
             "==": operator.eq}


def measured(phase: dict[str, Any], metric: str) -> float | None:
    if metric.startswith("latency_"):
        return phase["latency"].get(metric.removeprefix("latency_"))
    return phase.get(metric)


def evaluate(checks: list[dict[str, Any]], phases: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    verdicts = []
    for check in checks:
        phase = phases.get(check["phase"])
        value = measured(phase, check["metric"]) if phase else None
        if value is None:
            verdict, why = "unknown", f"no {check['metric']} was measured in {check['phase']}"
        elif OPERATORS[check["op"]](value, check["value"]):
            verdict, why = "pass", None
        else:
            verdict, why = "fail", f"{check['metric']} = {value}, expected {check['op']} {check['value']}"
        verdicts.append({**check, "measured": value, "verdict": verdict, "why": why})
    return verdicts
