"""Run stages alone, against a context built by hand (no engine, no chain)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import numpy as np

from harness.model import SendRecord
from harness.phases import settle
from harness.phases.companions import Hooks
from harness.phases.context import LoadState, RunContext


class FakeTracker:
    """committed_at per tx (NaN until committed), like CommitTracker's."""

    def __init__(self, count: int):
        self.committed_at = np.full(count, np.nan)


def context(records, tracker, settle_seconds=1.0, stopped=lambda: None, nemesis=None):
    suite = SimpleNamespace(load=SimpleNamespace(settle=settle_seconds), converge_bound=lambda: 0.5,
                            topology=None)
    ctx = RunContext(suite=suite, run_id="r", run_dir=None, console=None, stopped=stopped)
    ctx.nemesis = nemesis
    ctx.load = LoadState(t0=time.monotonic(), prepared=[None] * len(records), tracker=tracker,
                         records=records, phases={"warmup": [0, 1], "measure": [1, 2]})
    return ctx


def sent(i, error=None, acked=1.0):
    return SendRecord(i, i * 0.1, 0, 0.5, acked, error)


def test_settle_ends_at_once_when_every_accepted_tx_committed():
    tracker = FakeTracker(3)
    tracker.committed_at[[0, 2]] = 1.0     # tx 1 was refused: it is not waited for
    ctx = context([sent(0), sent(1, error="nonce too low"), sent(2)], tracker, settle_seconds=30)
    began = time.monotonic()
    asyncio.run(settle.settle(ctx))
    assert ctx.load.settle_end == "all-committed"
    assert time.monotonic() - began < 1.0
    assert ctx.load.phases["settle"][0] == 2          # tiles the clock: starts at the measure end


def test_settle_waits_for_a_late_commit_then_stops():
    tracker = FakeTracker(2)
    tracker.committed_at[0] = 1.0
    ctx = context([sent(0), sent(1)], tracker, settle_seconds=5)
    shown = []

    async def commit_later():
        await asyncio.sleep(0.6)
        tracker.committed_at[1] = 2.0

    async def both():
        await asyncio.gather(settle.settle(ctx, shown.append), commit_later())

    asyncio.run(both())
    assert ctx.load.settle_end == "all-committed" and shown and set(shown) == {"settle"}


def test_settle_gives_up_at_its_bound():
    tracker = FakeTracker(1)
    ctx = context([sent(0)], tracker, settle_seconds=0.5)
    asyncio.run(settle.settle(ctx))
    assert ctx.load.settle_end == "timeout"
    start, end = ctx.load.phases["settle"]
    assert end - start >= 0.5 - 1e-3 or end >= 0.5


def test_settle_stops_when_the_run_is_interrupted():
    tracker = FakeTracker(1)
    ctx = context([sent(0)], tracker, settle_seconds=30, stopped=lambda: "interrupted by SIGINT")
    asyncio.run(settle.settle(ctx))
    assert ctx.load.settle_end == "interrupted" and ctx.load.interrupted == "interrupted by SIGINT"
    assert "converge" not in ctx.load.phases


def test_unsent_and_unacknowledged_txs_are_not_waited_for():
    assert list(settle.accepted([None, sent(1, acked=None), sent(2), sent(3, error="x")])) == [2]


class Recorder:
    def __init__(self, log, name, fail=False):
        self.log, self.name, self.fail = log, name, fail

    def started(self, t0):
        self.log.append((self.name, "started", t0))

    async def load_ended(self, interrupted):
        self.log.append((self.name, "ended", interrupted))

    async def close(self):
        self.log.append((self.name, "closed"))
        if self.fail:
            raise RuntimeError("boom")


def test_hooks_tell_companions_in_order_and_close_each_once_even_if_one_fails():
    log: list = []
    hooks = Hooks()
    hooks.add(Recorder(log, "watchers"))
    hooks.add(Recorder(log, "nemesis", fail=True))
    hooks.add(Recorder(log, "sampler"))
    hooks.started(5.0)

    async def go():
        await hooks.load_ended(False)
        await hooks.close()
        await hooks.close()      # the teardown closes again: a no-op

    asyncio.run(go())
    assert log == [("watchers", "started", 5.0), ("nemesis", "started", 5.0), ("sampler", "started", 5.0),
                   ("watchers", "ended", False), ("nemesis", "ended", False), ("sampler", "ended", False),
                   ("sampler", "closed"), ("nemesis", "closed"), ("watchers", "closed")]
    assert hooks.warnings == ["Recorder failed to close: RuntimeError: boom"]


def test_tx_records_keep_a_due_unsent_tx_with_the_harness_reason():
    from harness.phases.record import NOT_SENT, tx_records

    tracker = SimpleNamespace(seen=np.full((4, 2), np.nan), block=np.full((4, 2), -1), withdrawals={})
    tracker.seen[0, 1] = 101.0
    tracker.block[0, 1] = 7
    state = LoadState(t0=100.0, prepared=[SimpleNamespace(tx_id=f"t{i}") for i in range(4)],
                      tracker=tracker, rate=2.0, targets=[0, 1],
                      records=[SendRecord(0, 0.0, 0, 100.0, 100.1, None), None,
                               SendRecord(2, 1.0, 0, 101.0, 101.1, None), None],
                      phases={"warmup": [0, 0.5], "measure": [0.5, 1.5]})
    txs = tx_records(state, nodes=2)
    # tx 1 came due (0.5 s) but its sender had stopped; tx 3 (1.5 s) never came due.
    assert [t.i for t in txs] == [0, 1, 2]
    assert txs[1].error == NOT_SENT and txs[1].node == 1 and txs[1].scheduled == 0.5
    assert txs[0].commits == [(1, 1.0, 7)] and txs[0].phase == "warmup" and txs[2].phase == "measure"
