"""After the load: let the healed network converge, then read every node's chain.

The final read (Jepsen's) is what durability, convergence and safety judge: each
node's canonical chain from the first height the run saw to its tip, and which of the
run's transactions that chain holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from harness import audit
from harness.adapters.base import Adapter
from harness.checks import correctness
from harness.model import FinalChain, Node
from harness.phases.context import RunContext
from harness.report.console import audit_summary
from harness.tracker import CommitTracker

READ_TIMEOUT = 120.0  # seconds for one node's whole final read


async def _tips(adapter: Adapter, nodes: list[Node]) -> list[tuple[int, str] | None]:
    async def tip(node: Node) -> tuple[int, str] | None:
        try:
            height = await adapter.height(node)
            return height, (await adapter.block_at(node, height)).hash
        except Exception:  # a node that cannot answer has not converged
            return None
    return list(await asyncio.gather(*(tip(n) for n in nodes)))


async def wait_converged(adapter: Adapter, nodes: list[Node], bound: float,
                         stopped: Callable[[], str | None]) -> bool:
    """Wait (at most `bound` s) until every node's tip is at one height with one hash,
    or the tips are one block apart (a block in flight)."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline and stopped() is None:
        tips = await _tips(adapter, nodes)
        if all(t is not None for t in tips):
            heights = {t[0] for t in tips}
            if len({t for t in tips}) == 1 or (max(heights) - min(heights) == 1 and await _agree_at(
                    adapter, nodes, min(heights))):
                return True
        await asyncio.sleep(0.5)
    return False


async def _agree_at(adapter: Adapter, nodes: list[Node], height: int) -> bool:
    try:
        hashes = await asyncio.gather(*(adapter.block_at(n, height) for n in nodes))
    except Exception:
        return False
    return len({b.hash for b in hashes}) == 1


async def read_final_chains(adapter: Adapter, nodes: list[Node], tracker: CommitTracker,
                            t0: float) -> list[FinalChain]:
    """Every node's chain from the lowest height any watcher reported, to its tip."""
    if not tracker.blocks:
        return [FinalChain(node=n.index, at=time.monotonic() - t0, chain=[], holds=[],
                           error="no block was reported during the run: nothing to read back")
                for n in nodes]
    first = min(b.number for b in tracker.blocks)
    return list(await asyncio.gather(*(_read(adapter, n, first, tracker, t0) for n in nodes)))


async def _read(adapter: Adapter, node: Node, first: int, tracker: CommitTracker,
                t0: float) -> FinalChain:
    at = time.monotonic() - t0
    chain: list[tuple[int, str]] = []
    holds: set[int] = set()
    error = None
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            tip = await adapter.height(node)
            for number in range(first, tip + 1):
                block = await adapter.block_at(node, number)
                chain.append((number, block.hash))
                holds.update(i for i in (tracker.index.get(t.lower()) for t in block.tx_ids)
                             if i is not None)
    except Exception as exc:  # evidence for the checkers (unknown), never a crash of the run
        error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    return FinalChain(node=node.index, at=at, chain=chain, holds=sorted(holds), error=error)


async def final_read(ctx: RunContext) -> None:
    """The final read, when a checker or the audit will judge it (not after an interrupt)."""
    if not (correctness.needs_final_read(ctx.suite.checker_config()) or ctx.suite.audit) \
            or ctx.interrupted:
        return
    ctx.say("reading every node's chain back (final read)")
    ctx.finals = await read_final_chains(ctx.adapter, ctx.nodes, ctx.load.tracker, ctx.load.t0)


async def authenticity_audit(ctx: RunContext) -> None:
    """Recompute one node's chain (hash links, tx roots, signatures) from its raw blocks."""
    if not ctx.suite.audit or ctx.interrupted:
        return
    ctx.audited = await audit_one(ctx.adapter, ctx.nodes, ctx.finals, ctx.load.tracker)
    ctx.say(audit_summary(ctx.audited))


async def audit_one(adapter: Adapter, nodes: list[Node], finals: list[FinalChain],
                    tracker: CommitTracker) -> dict[str, Any]:
    source = next((f for f in finals if f.chain and not f.error), None)
    if source is None:
        return {"verdict": "unknown", "node": None, "error": "no node's chain could be read back"}
    node = next(n for n in nodes if n.index == source.node)
    try:
        result = await audit.audit(adapter, node, [number for number, _ in source.chain],
                                   tx_ids=list(tracker.index))
    except Exception as exc:  # evidence (unknown), not a crash of the run
        return {"verdict": "unknown", "node": node.name, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {**result.to_dict(), "node": node.name, "error": None,
            "heights": [source.chain[0][0], source.chain[-1][0]]}
