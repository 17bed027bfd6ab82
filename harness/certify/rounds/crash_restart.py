"""Recoverability (GB/T 43575-2023 §6.4; CAICT): a node killed for about ten blocks catches
up, a graceful restart, a wiped node re-syncs; nothing committed is lost."""

from __future__ import annotations

from typing import Any

from harness.certify.program import Program
from harness.certify.rounds import _common

ID = "crash-restart"
ORDER = 70
PROFILES = ("full",)
TITLE = {"en": "Crash, restart and wipe: nodes catch up, nothing lost",
         "zh": "崩溃、重启与清盘：节点追平，无数据丢失"}


def applies(program: Program) -> str | None:
    # Not gated on data_dir: a pack that omits it must not escape four mandatory requirements
    # (the wipe recreates the container, so it needs no declared data folder).
    return _common.needs_nodes(program, 4)


def suite(program: Program) -> dict[str, Any]:
    rate = _common.fault_rate(program)
    checkers = dict(_common.CHECKERS)
    if program.pack.consensus in ("bft", "cft"):
        checkers["fault_tolerance"] = {"grace": 5}
    return {"description": f"4 nodes, {rate:g} tx/s; node3 killed and restarted, node2 restarted, "
                           "node3 wiped; all catch up, nothing lost",
            "nodes": 4, "seed": 2, "load": _common.load(rate, 95, nodes=["node0", "node1"]),
            "commit": {"share": 0.75},
            "faults": [{"id": "kill-node3", "action": "kill", "target": ["node3"], "at": 15, "duration": 20},
                       {"id": "restart-node2", "action": "restart", "target": ["node2"], "at": 50},
                       {"id": "wipe-node3", "action": "wipe", "target": ["node3"], "at": 62, "duration": 5}],
            "checkers": checkers,
            "checks": [{"id": "every transaction a live node accepted committed",
                        "metric": "success_ratio", "op": ">=", "value": 0.99}]}
