"""Warmup, measure and settle on one clock: watch blocks on every node, send the
pre-signed transactions open loop, then wait for what is still pending."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hdrh.histogram import HdrHistogram

from harness.adapters.base import Adapter, Prepared
from harness.faults.nemesis import Nemesis
from harness.load.driver import SendProgress, SendRecord, plan_workers, run_senders
from harness.phases.final import wait_converged
from harness.progress import Progress, Snapshot
from harness.runtime.docker import Node
from harness.runtime.resources import ResourceSampler
from harness.suite import Suite
from harness.tracker import CommitTracker


@dataclass
class LoadOutcome:
    t0: float                                   # monotonic time of the first scheduled send
    prepared: list[Prepared]
    records: list[SendRecord | None]
    progress: SendProgress
    tracker: CommitTracker
    phases: dict[str, list[float]]              # name -> [start, end] on the run clock
    watch_methods: dict[str, str] = field(default_factory=dict)
    interrupted: str | None = None              # why the load stopped early, if it did
    settle_end: str = "timeout"                 # all-committed | timeout | interrupted
    warnings: list[str] = field(default_factory=list)
    converged: bool | None = None               # after faults: did the tips agree in time
    resources: dict | None = None               # per-node samples (runtime/resources.py)


def classifier_ref(adapter: Adapter) -> str:
    cls = type(adapter)
    return f"{cls.__module__}:{cls.__qualname__}"


class _Watchers:
    """One block watcher task per node, all feeding the tracker, and the adapter's driver
    (e.g. the block producer of a regtest chain) running beside them."""

    def __init__(self, adapter: Adapter, nodes: list[Node], tracker: CommitTracker, suite: Suite):
        self.stop = asyncio.Event()
        self.tasks = {node.name: asyncio.create_task(adapter.watch(
            node, tracker.on_block, self.stop, suite.subscribe, suite.poll_interval))
            for node in nodes}
        self.driver = asyncio.create_task(adapter.drive(nodes, self.stop))
        self.warnings: list[str] = []

    async def close(self) -> dict[str, str]:
        self.stop.set()
        try:
            await asyncio.wait_for(self.driver, 10)
        except Exception as exc:  # the driver's failure shows in what was (not) committed
            self.warnings.append(f"the chain driver failed: {type(exc).__name__}: {exc}"[:300])
        methods = {}
        for name, task in self.tasks.items():
            try:
                methods[name] = await asyncio.wait_for(task, 10)
            except Exception as exc:  # a dead watcher is evidence, not a crash of the run
                methods[name] = f"failed: {type(exc).__name__} {exc}"[:200]
        return methods


async def run_load(suite: Suite, adapter: Adapter, nodes: list[Node], prepared: list[Prepared],
                   progress_view: Progress, interrupted: Callable[[], str | None],
                   nemesis: Nemesis | None = None, converge_bound: float = 0.0,
                   sampler: ResourceSampler | None = None) -> LoadOutcome:
    """The load with the nemesis beside it on the same clock; after the settle, faults
    healed, wait (up to `converge_bound` s) for the nodes to agree on one tip."""
    spec = suite.load
    tracker = CommitTracker([p.tx_id for p in prepared], len(nodes), suite.commit_share)
    watchers = _Watchers(adapter, nodes, tracker, suite)
    latency = HdrHistogram(1, 24 * 3600 * 1_000_000, 3)
    counted = 0
    start: dict[str, float] = {}
    sends = SendProgress()

    companions_stop = asyncio.Event()  # stops the nemesis and the resource sampler
    nemesis_task: asyncio.Task | None = None

    sampler_task: asyncio.Task | None = None

    def on_start(at: float) -> None:
        nonlocal nemesis_task, sampler_task
        start["t0"] = at
        if nemesis is not None:
            nemesis_task = asyncio.create_task(nemesis.run(at, companions_stop))
        if sampler is not None:
            sampler_task = asyncio.create_task(sampler.run(at, companions_stop))

    def snapshot(phase: str) -> None:
        nonlocal counted
        t0 = start.get("t0", time.monotonic())
        # Live p99 is measured from scheduled send times; exact submit times arrive with
        # the senders' records at the end and are what results.json uses.
        for i in tracker.commit_order[counted:]:
            scheduled = t0 + i / spec.rate
            latency.record_value(max(1, int((tracker.committed_at[i] - scheduled) * 1e6)))
        counted = len(tracker.commit_order)
        p99 = latency.get_value_at_percentile(99) / 1000 if latency.get_total_count() else None
        progress_view.update(Snapshot(
            phase=phase, elapsed=max(0.0, time.monotonic() - t0), target_rate=spec.rate, sent=sends.sent,
            committed=tracker.committed, failed=sends.errors, late=sends.late, p99_ms=p99))

    def on_progress(progress: SendProgress) -> None:
        nonlocal sends
        sends = progress
        t0 = start.get("t0", time.monotonic())
        elapsed = time.monotonic() - t0
        snapshot("warmup" if elapsed < spec.warmup else "measure")

    targets = [n for n in nodes if suite.load_nodes is None or n.index in suite.load_nodes]
    plans = plan_workers(prepared, [node.url() + adapter.submit_path for node in targets], spec.rate,
                         spec.workers, spec.max_in_flight, spec.submit_timeout,
                         adapter.submit_headers, classifier_ref(adapter), spec.connections)
    outcome_interrupt: str | None = None
    try:
        records, sends = await run_senders(plans, len(prepared), lambda: interrupted() is not None,
                                           on_progress, on_start)
        outcome_interrupt = interrupted()
        t0 = start.setdefault("t0", time.monotonic())
        if nemesis_task is not None:  # the schedule heals by the end of the load
            if outcome_interrupt is not None:
                companions_stop.set()
            await nemesis_task
            await nemesis.heal_all()
        # The window ends where the schedule ended: at its full length, or (when stopped
        # early) just after the last transaction that came due.
        due = max((i for i, r in enumerate(records) if r is not None), default=-1) + 1
        measure_end = min(spec.total_seconds, due / spec.rate)
        phases = {"warmup": [0.0, min(spec.warmup, measure_end)],
                  "measure": [min(spec.warmup, measure_end), measure_end]}
        # Settle: stop when every accepted transaction committed, or at the bound.
        accepted = np.array([i for i, r in enumerate(records)
                             if r is not None and r.acked is not None and not r.error], dtype=np.int64)
        settle_start = time.monotonic()
        settle_end = "timeout"
        while True:
            if outcome_interrupt is not None:
                settle_end = "interrupted"
                break
            if not np.isnan(tracker.committed_at[accepted]).any():
                settle_end = "all-committed"
                break
            if time.monotonic() - settle_start >= spec.settle:
                break
            snapshot("settle")
            await asyncio.sleep(0.25)
            outcome_interrupt = interrupted()
        # Settle runs from the end of the measure window, so the phases tile the clock.
        phases["settle"] = [measure_end, time.monotonic() - t0]
        converged = None
        if nemesis is not None and outcome_interrupt is None:
            snapshot("converge")
            converged = await wait_converged(adapter, nodes, converge_bound, interrupted)
            phases["converge"] = [phases["settle"][1], time.monotonic() - t0]
    finally:
        companions_stop.set()
        if sampler_task is not None:
            await asyncio.wait_for(sampler_task, 30)
        if nemesis is not None:
            if nemesis_task is not None and not nemesis_task.done():
                nemesis_task.cancel()
            await nemesis.heal_all()  # on any exit: nothing stays broken
        methods = await watchers.close()
    return LoadOutcome(t0=t0, prepared=prepared, records=records, progress=sends, tracker=tracker,
                       phases=phases, watch_methods=methods, interrupted=outcome_interrupt,
                       settle_end=settle_end, warnings=watchers.warnings, converged=converged,
                       resources=sampler.history() if sampler is not None else None)
