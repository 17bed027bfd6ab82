"""CAICT stability round at 4 nodes: 20 % of the pressure rate for a long window."""

from __future__ import annotations

from typing import Any

from harness.certify.program import Program
from harness.certify.rounds import _common

ID = "stability-4"
ORDER = 40
PROFILES = ("full",)
TITLE = {"en": "Stability round, 4 nodes, 20 % of the pressure rate, long",
         "zh": "4 节点稳定性轮（20% 压力速率，长时）"}


def applies(program: Program) -> str | None:
    return _common.needs_nodes(program, 4)


def suite(program: Program) -> dict[str, Any]:
    rate = max(1.0, 0.2 * program.pressure_rate)
    duration = program.profile.stability_duration
    return {"description": f"stability round, 4 nodes, {rate:g} tx/s for {duration:g} s", "nodes": 4,
            "seed": 13, "load": _common.load(rate, duration), "checks": [_common.HARNESS_KEPT_RATE]}
