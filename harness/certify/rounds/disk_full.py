"""A full data disk on one node for 20 s: the others go on, it recovers, nothing lost."""

from __future__ import annotations

from typing import Any

from harness.certify.program import Program
from harness.certify.rounds import _common

ID = "disk-full"
ORDER = 100
PROFILES = ("full",)
TITLE = {"en": "Full data disk on one node", "zh": "单节点数据盘写满"}


def applies(program: Program) -> str | None:
    return _common.needs_nodes(program, 4) or _common.needs_data(program)


def suite(program: Program) -> dict[str, Any]:
    rate = _common.fault_rate(program)
    return {"description": f"4 nodes, {rate:g} tx/s; node3's data disk full for 20 s",
            "nodes": 4, "seed": 4, "load": _common.load(rate, 65, nodes=["node0", "node1"]),
            "commit": {"share": 0.75 if program.pack.consensus != "pow" else 0.5},
            "faults": [{"id": "disk-full-node3", "action": "disk", "target": ["node3"], "size": "1g",
                        "restart_after": True, "at": 15, "duration": 20}],
            "checkers": dict(_common.CHECKERS)}
