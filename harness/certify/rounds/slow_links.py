"""Slow links: 300 ± 50 ms node-to-node delay on every node for 20 s; no loss, no fork."""

from __future__ import annotations

from typing import Any

from harness.certify.program import Program
from harness.certify.rounds import _common

ID = "slow-links"
ORDER = 90
PROFILES = ("full",)
TITLE = {"en": "Slow links: 300 ± 50 ms between nodes", "zh": "慢链路：节点间 300 ± 50 毫秒时延"}


def applies(program: Program) -> str | None:
    return _common.needs_nodes(program, 4)


def suite(program: Program) -> dict[str, Any]:
    rate = _common.fault_rate(program)
    return {"description": f"4 nodes, {rate:g} tx/s; 300 ± 50 ms delay between nodes for 20 s",
            "nodes": 4, "seed": 3, "load": _common.load(rate, 65),
            "commit": {"share": 0.75 if program.pack.consensus != "pow" else 0.5},
            "faults": [{"id": "slow-links", "action": "delay", "target": "all", "delay_ms": 300,
                        "jitter_ms": 50, "at": 15, "duration": 20}],
            "checkers": dict(_common.CHECKERS)}
