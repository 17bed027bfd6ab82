"""Pieces the rounds share."""

from __future__ import annotations

from typing import Any

from harness.certify.program import Program

HARNESS_KEPT_RATE = {"id": "harness kept the target rate", "metric": "send_rate_ratio", "op": ">=",
                     "value": 0.98}
CHECKERS = {"safety": {}, "liveness": {"bound": 20, "recovery_share": 0.8, "window": 10},
            "durability": {}, "convergence": {"bound": 30}}
FAULT_RATE_SHARE = 0.25   # fault rounds load the chain at a quarter of its pressure rate …
FAULT_RATE_MAX = 50.0     # … and never above the reference suites' 50 tx/s


def load(rate: float, duration: float, warmup: float = 5, settle: float = 30,
         nodes: list[str] | None = None) -> dict[str, Any]:
    section: dict[str, Any] = {"rate": round(rate, 2), "warmup": warmup, "duration": duration,
                               "settle": settle}
    if nodes:
        section["nodes"] = nodes
    return section


def fault_rate(program: Program) -> float:
    return max(1.0, min(FAULT_RATE_MAX, FAULT_RATE_SHARE * program.pressure_rate))


def needs_nodes(program: Program, nodes: int) -> str | None:
    if program.fits(nodes):
        return None
    upper = program.pack.max_nodes if program.pack.max_nodes is not None else "any"
    return (f"needs {nodes} nodes; the pack runs {program.pack.min_nodes}..{upper} "
            f"(chain.yaml consensus.min_nodes/max_nodes)")


def needs_finality(program: Program) -> str | None:
    if program.pack.consensus in ("bft", "cft"):
        return None
    return (f"applies to bft and cft chains (a fault-tolerance threshold); "
            f"this chain is {program.pack.consensus}")


def needs_data(program: Program) -> str | None:
    if program.keeps_data:
        return None
    return "the pack declares no data_dir: the chain keeps no ledger on disk to lose or fill"
