"""The read-back stage: after the settle, a registered workload asks the chain's state
whether every committed transaction's effect is there (harness/workloads/).

Inclusion is not execution: a chain can put a transaction in a block and revert it, drop
its write, or answer reads from a cache. The workload knows what each of its transactions
must have done; it is handed the run's committed transactions in chain order (so it can
replay them over its own model of the contract or app) and returns what it observed. The
stage stores that in the History (`readback` line); the pure checker checks/readback.py
judges it. A read-back that cannot be done is recorded with its reason (verdict unknown),
never dropped.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from harness.model import Node
from harness.phases.context import RunContext
from harness.tracker import CommitTracker

BUDGET = 120.0        # seconds the workload's read-back may take
ERROR_CHARS = 500


def chain_order(tracker: CommitTracker, node: int) -> list[int]:
    """The run's committed transactions (global indexes) in the order of `node`'s chain:
    by height, then by position in the block (the tracker credits a block's txs in order)."""
    out: list[int] = []
    for number in sorted(tracker.views[node]):
        out.extend(i for i in tracker.views[node][number][1]
                   if not math.isnan(tracker.committed_at[i]))
    return out


def readback_node(ctx: RunContext) -> Node:
    """The first node the load went to: the one whose answers the run relied on."""
    chosen = ctx.suite.load_nodes
    index = chosen[0] if chosen else 0
    return next(n for n in ctx.nodes if n.index == index)


def send_outcomes(records: list[Any]) -> dict[int, str | None]:
    """Each sent transaction's outcome at submission: the node's refusal, or None (accepted)."""
    return {r.i: r.error for r in records if r is not None and r.submitted is not None}


async def run_readback(workload: Any, node: Node, committed: list[int],
                       budget: float = BUDGET) -> dict[str, Any]:
    """The workload's observations, or {"error": why} when it could not read back."""
    try:
        observed = await asyncio.wait_for(workload.read_back(node, committed), budget)
    except TimeoutError:
        return {"error": f"the read-back took longer than {budget:g} s"}
    except Exception as exc:  # a node that answers nonsense makes the read-back unknown, not a crash
        return {"error": f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]}
    if not isinstance(observed, dict):
        return {"error": f"the workload returned a {type(observed).__name__}, not observations"}
    return observed


async def readback(ctx: RunContext) -> None:
    """Fill ctx.readback for a registered workload (nothing for the adapters' own)."""
    if ctx.workload_impl is None or ctx.load is None or ctx.load.interrupted:
        return
    node = readback_node(ctx)
    committed = chain_order(ctx.load.tracker, node.index)
    if hasattr(ctx.workload_impl, "note_sends"):   # optional: e.g. was a must-refuse tx rejected
        ctx.workload_impl.note_sends(send_outcomes(ctx.load.records))
    started = time.monotonic()
    observed = await run_readback(ctx.workload_impl, node, committed)
    ctx.readback = {"workload": ctx.workload, "node": node.name, "committed": len(committed),
                    "seconds": round(time.monotonic() - started, 3), **observed}
    if "error" in observed:
        ctx.say(f"read-back not done: {observed['error']}")
    else:
        effects = observed.get("effects", {})
        ctx.say(f"read-back on {node.name}: {effects.get('found')} of {effects.get('expected')} "
                f"effects found, {effects.get('missing')} missing, {effects.get('wrong')} wrong")
