"""Fault tolerance at the consensus threshold (GB/T 43575-2023 §6.4): kill f nodes, the
chain goes on; kill f+1, it halts without forking; restart them, it resumes."""

from __future__ import annotations

from typing import Any

from harness.certify.program import Program
from harness.certify.rounds import _common

ID = "bft-threshold"
ORDER = 60
PROFILES = ("full",)
TITLE = {"en": "Fault tolerance at the threshold: f nodes down, then f+1",
         "zh": "阈值容错：f 个节点故障，再 f+1 个"}


def applies(program: Program) -> str | None:
    return _common.needs_finality(program) or _common.needs_nodes(program, 4)


def suite(program: Program) -> dict[str, Any]:
    rate = _common.fault_rate(program)
    return {"description": f"4 nodes, {rate:g} tx/s; kill f then f+1 nodes; commits go on, then halt "
                           "safely, then resume",
            "nodes": 4, "seed": 1, "load": _common.load(rate, 100, nodes=["node0", "node1"]),
            "commit": {"share": 0.75},
            "faults": [{"id": "kill-f", "action": "kill", "target": "f", "at": 15, "duration": 20},
                       {"id": "kill-f+1", "action": "kill", "target": "f+1", "at": 45, "duration": 20}],
            "checkers": {**_common.CHECKERS, "fault_tolerance": {"grace": 5}},
            "checks": [{"id": "every transaction a live node accepted committed",
                        "metric": "success_ratio", "op": ">=", "value": 0.99}]}
