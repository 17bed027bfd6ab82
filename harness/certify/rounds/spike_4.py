"""CAICT spike round at 4 nodes: about twice the pressure rate, briefly."""

from __future__ import annotations

from typing import Any

from harness.certify.program import Program
from harness.certify.rounds import _common

ID = "spike-4"
ORDER = 30
PROFILES = ("full",)
TITLE = {"en": "Spike round, 4 nodes, twice the pressure rate", "zh": "4 节点峰值轮（两倍压力速率）"}


def applies(program: Program) -> str | None:
    return _common.needs_nodes(program, 4)


def suite(program: Program) -> dict[str, Any]:
    rate = 2 * program.pressure_rate
    return {"description": f"spike round, 4 nodes, {rate:g} tx/s for 30 s", "nodes": 4, "seed": 12,
            "load": _common.load(rate, 30, warmup=3), "checks": [_common.HARNESS_KEPT_RATE]}
