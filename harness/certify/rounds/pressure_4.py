"""CAICT pressure round at 4 nodes: the claimed rate, commits keeping pace with sends;
with the authenticity audit and (full profile) the read workload."""

from __future__ import annotations

from typing import Any

from harness.certify.program import Program
from harness.certify.rounds import _common

ID = "pressure-4"
ORDER = 20
PROFILES = ("smoke", "quick", "full")
TITLE = {"en": "Pressure round, 4 nodes, at the claimed rate", "zh": "4 节点压力轮（按声明速率）"}


def applies(program: Program) -> str | None:
    return None   # a single-node chain runs it at 1 node: its 4-node thresholds are then n/a


def suite(program: Program) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "description": f"pressure round, {program.round_nodes} node(s), {program.pressure_rate:g} tx/s "
                       f"({program.rate_source()}) for {program.profile.round_duration:g} s",
        "nodes": program.round_nodes, "seed": 11, "audit": True,
        "load": _common.load(program.pressure_rate, program.profile.round_duration, settle=30),
        "checks": [_common.HARNESS_KEPT_RATE]}
    from harness import adapters
    kinds = getattr(adapters.adapter_class(program.pack.family, str(program.pack.manifest)),
                    "query_kinds", ())
    if program.profile.name == "full" and kinds:
        doc["query"] = {"kind": kinds[0], "rate": 800, "warmup": 10, "duration": 20, "workers": 2}
    return doc
