"""The settle stage: after the last send, wait for what is still pending; after faults,
let the healed network converge on one tip.

Settle stops when every accepted transaction has committed, at the suite's bound, or when
the run is stopped. Its window runs from the end of the measure window, so the phases tile
the run clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from harness.phases.context import RunContext
from harness.phases.final import wait_converged

POLL = 0.25   # seconds between looks at the tracker


def accepted(records: list) -> np.ndarray:
    """Indexes of the transactions a node acknowledged without an error."""
    return np.array([r.i for r in records if r is not None and r.acked is not None and not r.error],
                    dtype=np.int64)


async def settle(ctx: RunContext, show: Callable[[str], None] = lambda phase: None) -> None:
    state = ctx.load
    waiting = accepted(state.records)
    started = time.monotonic()
    state.settle_end = "timeout"
    while True:
        state.interrupted = state.interrupted or ctx.stopped()
        if state.interrupted is not None:
            state.settle_end = "interrupted"
            break
        if not np.isnan(state.tracker.committed_at[waiting]).any():
            state.settle_end = "all-committed"
            break
        if time.monotonic() - started >= ctx.suite.load.settle:
            break
        show("settle")
        await asyncio.sleep(POLL)
    measure_end = state.phases["measure"][1]
    state.phases["settle"] = [measure_end, time.monotonic() - state.t0]
    # After faults the healed network must agree again; with a topology the tiers that do not
    # commit (management, application) may trail the root tier: let them catch up before the
    # final read, so what they hold is judged, not how late the read came.
    if (ctx.nemesis is not None or ctx.suite.topology is not None) and state.interrupted is None:
        show("converge")
        state.converged = await wait_converged(ctx.adapter, ctx.nodes, ctx.suite.converge_bound(),
                                               ctx.stopped)
        state.phases["converge"] = [state.phases["settle"][1], time.monotonic() - state.t0]
