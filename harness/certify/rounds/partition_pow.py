"""A proof-of-work network split into halves and healed: one chain wins, reorg depth and
orphans reported, nothing deeper than the confirmation depth lost."""

from __future__ import annotations

from typing import Any

from harness.certify.program import Program
from harness.certify.rounds import _common

ID = "partition-pow"
ORDER = 80
PROFILES = ("full",)
TITLE = {"en": "Partition of a proof-of-work network into halves", "zh": "工作量证明网络分区为两半"}


def applies(program: Program) -> str | None:
    if program.pack.consensus != "pow":
        return f"applies to pow chains (probabilistic finality); this chain is {program.pack.consensus}"
    return _common.needs_nodes(program, 4)


def suite(program: Program) -> dict[str, Any]:
    rate = _common.fault_rate(program)
    return {"description": f"4 nodes mining, {rate:g} tx/s; split into halves for 10 s, healed",
            "nodes": 4, "seed": 3, "params": program.params(miners=4),
            "load": _common.load(rate, 70), "commit": {"share": 0.5},
            "faults": [{"id": "split-halves", "action": "partition", "shape": "halves", "at": 20,
                        "duration": 10}],
            "checkers": {"safety": {"max_reorg_depth": 6},
                         "liveness": {"bound": 20, "recovery_share": 0.8, "window": 10},
                         "durability": {"max_reorg_depth": 6}, "convergence": {"bound": 30}}}
