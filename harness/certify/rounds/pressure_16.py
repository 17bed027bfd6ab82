"""CAICT pressure round at 16 nodes: the claimed 16-node rate (else the 4-node one)."""

from __future__ import annotations

from typing import Any

from harness.certify.program import Program
from harness.certify.rounds import _common

ID = "pressure-16"
ORDER = 50
PROFILES = ("full",)
TITLE = {"en": "Pressure round, 16 nodes", "zh": "16 节点压力轮"}


def applies(program: Program) -> str | None:
    return _common.needs_nodes(program, 16)


def suite(program: Program) -> dict[str, Any]:
    claimed = program.claims.rate(16) if program.claims else None
    rate = claimed or program.pressure_rate
    source = ("the vendor's claimed 16-node rate" if claimed
              else f"the 4-node pressure rate ({program.rate_source()})")
    return {"description": f"pressure round, 16 nodes, {rate:g} tx/s ({source})", "nodes": 16, "seed": 14,
            "ready_timeout": 240, "audit": True,
            "load": _common.load(rate, program.profile.round_duration),
            "checks": [_common.HARNESS_KEPT_RATE]}
