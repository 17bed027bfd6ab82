"""The load stage: warmup and measure on one clock. The block watchers feed the commit
tracker; the pre-signed transactions go out open loop; the nemesis and the resource
sampler run beside them as companions (harness/phases/companions.py)."""

from __future__ import annotations

import functools
import time

from hdrh.histogram import HdrHistogram

from harness.faults.nemesis import Nemesis
from harness.load.driver import SendProgress, plan_workers, run_senders
from harness.phases.companions import NemesisCompanion, SamplerCompanion, Watchers
from harness.phases.context import LoadState, RunContext
from harness.progress import Progress, Snapshot
from harness.runtime.resources import ResourceSampler
from harness.tracker import CommitTracker


def classifier_ref(adapter: object) -> str:
    cls = type(adapter)
    return f"{cls.__module__}:{cls.__qualname__}"


class LiveView:
    """The console's live line: sends, commits and a p99 measured from scheduled times (the
    exact submit times arrive with the senders' records at the end; results use those)."""

    def __init__(self, view: Progress, state: LoadState, rate: float, warmup: float,
                 target: list[int] | None = None):
        self.view, self.state, self.rate, self.warmup = view, state, rate, warmup
        self.offsets = state.offsets
        self.target = target        # a load shape's planned sends per second; None: the rate
        self.latency = HdrHistogram(1, 24 * 3600 * 1_000_000, 3)
        self.counted = 0
        self.sends = SendProgress()
        self.t0: float | None = None

    def on_progress(self, sends: SendProgress) -> None:
        self.sends = sends
        elapsed = time.monotonic() - (self.t0 or time.monotonic())
        self.show("warmup" if elapsed < self.warmup else "measure")

    def target_now(self, t0: float) -> float:
        if not self.target:
            return self.rate
        second = int(max(0.0, time.monotonic() - t0))
        return float(self.target[min(second, len(self.target) - 1)])

    def show(self, phase: str) -> None:
        t0 = self.t0 or time.monotonic()
        tracker = self.state.tracker
        for i in tracker.commit_order[self.counted:]:
            late = tracker.committed_at[i] - (t0 + self.offsets[i])
            self.latency.record_value(max(1, int(late * 1e6)))
        self.counted = len(tracker.commit_order)
        p99 = self.latency.get_value_at_percentile(99) / 1000 if self.latency.get_total_count() else None
        sends = self.sends
        self.view.update(Snapshot(
            phase=phase, elapsed=max(0.0, time.monotonic() - t0), target_rate=self.target_now(t0),
            sent=sends.sent, committed=tracker.committed, failed=sends.errors, late=sends.late,
            p99_ms=p99))


async def load(ctx: RunContext, view: Progress) -> LiveView:
    """Send every pre-signed transaction on its schedule; fills ctx.load (records, t0, the
    warmup and measure windows). Returns the live view, which the settle stage goes on using."""
    suite, adapter, nodes, spec = ctx.suite, ctx.adapter, ctx.nodes, ctx.suite.load
    tracker = CommitTracker([p.tx_id for p in ctx.prepared], len(nodes), suite.commit_share,
                            suite.commit_nodes)   # a topology: the root tier commits
    targets = [(n.index, n.url() + adapter.submit_path) for n in nodes
               if suite.load_nodes is None or n.index in suite.load_nodes]
    plan = spec.plan()
    state = ctx.load = LoadState(t0=time.monotonic(), prepared=ctx.prepared, tracker=tracker,
                                 rate=spec.rate, targets=[index for index, _ in targets],
                                 offsets=plan.offset_list(), shape=plan.header())
    watchers = ctx.hooks.add(Watchers(adapter, nodes, tracker.on_block, suite.subscribe,
                                      suite.poll_interval))
    if suite.faults:
        ctx.nemesis = Nemesis(ctx.runtime, nodes, suite.faults, ctx.say)
        ctx.hooks.add(NemesisCompanion(ctx.nemesis))
    ctx.sampler = ResourceSampler(ctx.runtime, nodes)
    ctx.hooks.add(SamplerCompanion(ctx.sampler))
    ctx.watchers = watchers
    live = LiveView(view, state, spec.rate, spec.warmup, state.shape.get("target"))

    def on_start(at: float) -> None:
        state.t0 = live.t0 = at
        ctx.hooks.started(at)

    locust = spec.engine == "locust"
    workers = spec.locust.workers + spec.locust.remote_workers if locust else spec.workers
    plans = plan_workers(ctx.prepared, targets, state.offsets, workers, spec.max_in_flight,
                         spec.submit_timeout, adapter.submit_headers, classifier_ref(adapter),
                         spec.connections)
    send = run_senders
    if locust:   # Locust in processes of its own (gevent); this imports no Locust
        from harness.load.locust_engine import run_locust
        send = functools.partial(run_locust, settings=spec.locust, log_dir=ctx.run_dir / "logs")
    state.records, state.sends = await send(
        plans, len(ctx.prepared), lambda: ctx.stopped() is not None, live.on_progress, on_start)
    state.interrupted = ctx.stopped()
    if live.t0 is None:
        state.t0 = time.monotonic()
    await ctx.hooks.load_ended(state.interrupted is not None)
    # The window ends where the schedule ended: at its full length, or (when stopped
    # early) just after the last transaction that came due.
    due = max((r.i for r in state.records if r is not None), default=-1) + 1
    measure_end = min(plan.total, plan.due_before(due))
    state.phases = {"warmup": [0.0, min(spec.warmup, measure_end)],
                    "measure": [min(spec.warmup, measure_end), measure_end]}
    # The shape's named windows (step-1, spike, ...), cut where the schedule stopped.
    state.windows = {name: [a, min(b, measure_end)] for name, (a, b) in plan.windows.items()
                     if name not in state.phases and a < measure_end}
    return live
