"""One sender process: fires pre-built submissions at their scheduled instants.

Open loop: send k is due at start + offsets[k] whatever the chain does, so a slow chain
never slows the schedule (no coordinated omission). When the harness itself falls
behind, the lag is counted and reported rather than hidden; past max_in_flight
outstanding sends a due send is dropped (recorded as DROPPED), and past the pool's
connections per node it waits for a free one, so an overload levels off at what the
process can do instead of collapsing into a connection storm.

The hot path is a timer callback and harness.load.http1's protocol: no Task, no
future per send. uvloop is used when installed. This module runs in its own process
and imports nothing heavy.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import importlib
import math
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.load.http1 import Pool
from harness.model import DROPPED  # re-exported for the sender's callers

MAX_REPLY_BYTES = 1 << 20  # a submission or query reply larger than this is refused unread
LATE_AFTER = 0.010        # a send more than 10 ms behind its schedule counts as late
PROGRESS_EVERY = 0.5      # seconds between progress messages to the main process
WARM_MAX = 32             # connections per node opened before the start, at most
TICK = 0.001              # the dispatcher's shortest sleep (the loops' timer resolution)


@dataclass
class WorkerPlan:
    worker: int
    indexes: Sequence[int]    # global tx indexes this worker sends, ascending
    bodies: Sequence[bytes]   # any indexable sequence (a list, or a lazy view of a spool)
    offsets: Sequence[float]  # each tx's scheduled offset from the start (seconds, monotone)
    targets: Sequence[int]    # index into urls for each tx
    urls: list[str]
    max_in_flight: int
    submit_timeout: float
    headers: dict[str, str]
    classifier: str           # "module:Class" (its static response_error(status, body)) or
                              # "module:Class.method" (e.g. query_error for the read workload)
    connections: int = 256    # open connections per node
    node_indexes: list[int] = field(default_factory=list)   # node index of each url


def classify(response_error: Any, status: int, body: bytes) -> str | None:
    """The adapter's verdict on one reply, made total: a reply the classifier cannot read
    (an exception, a non-string answer, an empty reason, an oversized body) is a refusal
    with the reason, so a node can never turn a rejection into a missing record."""
    if len(body) > MAX_REPLY_BYTES:
        return f"reply larger than {MAX_REPLY_BYTES} bytes"
    try:
        error = response_error(status, body)
    except Exception as exc:  # RecursionError on deep JSON, TypeError on odd shapes...
        return f"unclassifiable reply ({type(exc).__name__}): {body[:80]!r}"[:200]
    if error is None:
        return None
    text = error if isinstance(error, str) else repr(error)
    return text[:200] or "refused (empty reason)"


def classifier(ref: str) -> Any:
    """The reply classifier a plan names: "module:Class" (its static response_error) or
    "module:Class.method" (e.g. a query_error). Shared with the Locust worker."""
    module, _, path = ref.partition(":")
    found: Any = importlib.import_module(module)
    for attr in path.split("."):
        found = getattr(found, attr)
    return found.response_error if isinstance(found, type) else found


class _Sender:
    """The send loop of one process: a timer callback dispatches every send that is due
    (no Task per request), the pools write it out and call back with the reply."""

    def __init__(self, plan: WorkerPlan, queue: Any, stop: Any):
        self.plan, self.queue, self.stop = plan, queue, stop
        self.response_error = classifier(plan.classifier)
        self.count = len(plan.indexes)
        self.records: list[Any] = [None] * self.count
        self.counters: dict[str, Any] = {"sent": 0, "acked": 0, "errors": 0, "late": 0,
                                         "dropped": 0, "connections": 0, "queued": 0,
                                         "loop": type(asyncio.get_running_loop()).__module__}
        self.max_lag = 0.0
        self.in_flight = 0
        self.k = 0                     # the next send to dispatch
        self.start = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.dispatching = True
        self.finished = asyncio.get_running_loop().create_future()
        self.timeout_reason = f"TimeoutError: no reply within {plan.submit_timeout:g} s"
        # Bounded per node: past the chain's (or the harness's) ceiling, overdue sends wait
        # for a connection instead of opening thousands of sockets (which once killed
        # docker-proxy); the wait counts in their latency.
        self.pools = [Pool(url, plan.headers, plan.connections, plan.submit_timeout,
                           MAX_REPLY_BYTES, self.on_reply) for url in plan.urls]

    def on_reply(self, k: int, submitted: float, status: int | None, body: bytes | str) -> None:
        error = classify(self.response_error, status, body) if status is not None else body
        self.records[k] = (submitted, time.monotonic(), error)
        counters = self.counters
        counters["acked"] += 1
        if error:
            counters["errors"] += 1
        self.in_flight -= 1
        if not self.dispatching and self.in_flight == 0 and not self.finished.done():
            self.finished.set_result(None)

    def tick(self) -> None:
        """Dispatch every send now due; come back when the next one is. A failure here (a
        plan whose bodies cannot be read...) ends the process's sending with that error,
        never a dispatcher that silently stopped while the process waits."""
        try:
            self._tick()
        except Exception as exc:
            self.dispatching = False
            if not self.finished.done():
                self.finished.set_exception(exc)

    def _tick(self) -> None:
        self.timer = None
        if self.stop.is_set():
            self.end_dispatch()
            return
        plan, counters, records = self.plan, self.counters, self.records
        offsets, targets, bodies, pools = plan.offsets, plan.targets, plan.bodies, self.pools
        start, count, limit, k = self.start, self.count, plan.max_in_flight, self.k
        clock = time.monotonic
        now = clock()
        while k < count:
            due = start + offsets[k]
            if due > now:
                now = clock()          # a long batch: look at the clock again before waiting
                if due > now:
                    break
            lag = now - due
            if lag > LATE_AFTER:
                counters["late"] += 1
            if lag > self.max_lag:
                self.max_lag = lag
            if self.in_flight >= limit:
                # Full, and nothing is answered within a tick: every send due now is dropped,
                # in one step (past its ceiling the harness must not spend its CPU on drops)
                end = max(k + 1, bisect.bisect_right(offsets, now - start, k, count))
                records[k:end] = [(now, None, DROPPED)] * (end - k)
                counters["dropped"] += end - k
                on_time = bisect.bisect_left(offsets, now - start - LATE_AFTER, k + 1, end)
                counters["late"] += on_time - (k + 1)   # sends k+1.. behind by > LATE_AFTER
                k = end
                continue
            else:
                self.in_flight += 1
                counters["sent"] += 1
                pool = pools[targets[k]]
                if not pool.idle:
                    counters["queued"] += 1
                pool.submit(k, now, bodies[k])
            k += 1
        self.k = k
        for pool in pools:
            if pool.crowded(now):
                pool.grow()
        if k >= count:
            self.end_dispatch()
        else:
            # Never less than TICK: a shorter timer spins the loop (uvloop rounds it to 0 ms)
            # while the sends between ticks go out together, each at most TICK late.
            delay = start + offsets[k] - clock()
            self.timer = asyncio.get_running_loop().call_later(max(TICK, delay), self.tick)

    def end_dispatch(self) -> None:
        self.dispatching = False
        if self.in_flight == 0 and not self.finished.done():
            self.finished.set_result(None)

    def report(self) -> None:
        self.counters["connections"] = sum(p.peak for p in self.pools)
        # the process's CPU while sending (1.0 = one core): near 1, the harness is the limit
        spent = time.monotonic() - self.start
        if self.start and spent > 0.1:
            self.counters["cpu"] = round((time.process_time() - self.cpu0) / spent, 3)
        self.queue.put(("progress", self.plan.worker, dict(self.counters), self.max_lag))

    def housekeeping(self) -> None:
        """Every PROGRESS_EVERY: report; and end sends past the submit timeout (checked
        often enough that a timeout is late by at most a tenth of it)."""
        now = time.monotonic()
        for pool in self.pools:
            pool.expire(now, self.timeout_reason)
            if pool.crowded(now):
                pool.grow()
        if now >= self.next_report:
            self.report()
            self.next_report = now + PROGRESS_EVERY

    async def warm(self) -> None:
        """Open about what the first second's rate needs per node (at ~2 ms a reply)."""
        offsets, targets = self.plan.offsets, self.plan.targets
        first: dict[int, int] = {}
        for k in range(self.count):
            if offsets[k] > 1.0:
                break
            first[targets[k]] = first.get(targets[k], 0) + 1
        await asyncio.gather(*(pool.warm(min(WARM_MAX, 1 + math.ceil(first.get(n, 0) * 0.002)),
                                         within=2.0) for n, pool in enumerate(self.pools)),
                             return_exceptions=True)

    async def run(self, go: Any, start_at: Any) -> list[Any]:
        loop = asyncio.get_running_loop()
        await self.warm()
        # Everything is set up before we say ready, so the first sends are not late.
        self.queue.put(("ready", self.plan.worker))
        await loop.run_in_executor(None, go.wait)
        self.start = start_at.value
        self.cpu0 = time.process_time()
        self.next_report = time.monotonic()
        sweep = min(PROGRESS_EVERY, max(0.01, self.plan.submit_timeout / 10))

        def periodic() -> None:
            self.housekeeping()
            handles["periodic"] = loop.call_later(sweep, periodic)

        handles = {"periodic": loop.call_later(sweep, periodic)}
        self.tick()
        try:
            # every send has a deadline the sweep enforces; this bound is a last resort
            drain_until = None
            while not self.finished.done():
                if self.dispatching:
                    await asyncio.wait([self.finished], timeout=1.0)
                    continue
                if drain_until is None:
                    drain_until = time.monotonic() + self.plan.submit_timeout + 1
                left = drain_until - time.monotonic()
                if left <= 0:
                    break
                await asyncio.wait([self.finished], timeout=left)
            if self.finished.done():
                self.finished.result()      # the dispatcher's failure, if it failed
        finally:
            handles["periodic"].cancel()
            if self.timer is not None:
                self.timer.cancel()
            for pool in self.pools:
                pool.abandon("no reply recorded before the sender ended")
                pool.close()
        self.report()
        return self.records


async def _send_all(plan: WorkerPlan, queue: Any, go: Any, start_at: Any, stop: Any) -> list[Any]:
    return await _Sender(plan, queue, stop).run(go, start_at)


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (a leaner I/O path), else asyncio's own loop;
    BCTEST_SENDER_LOOP=asyncio forces the latter (to compare, or to rule uvloop out)."""
    if os.environ.get("BCTEST_SENDER_LOOP", "auto") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_worker(plan: WorkerPlan, queue: Any, go: Any, start_at: Any, stop: Any) -> None:
    """Process entry point: announce readiness, wait for the common start, send, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    try:
        # few cycles are made here; the default thresholds would scan the records list
        # (hundreds of thousands of tuples) again and again
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            records = runner.run(_send_all(plan, queue, go, start_at, stop))
        queue.put(("done", plan.worker, records))
    except BaseException as exc:  # report, never die silently: the main process waits for us
        queue.put(("failed", plan.worker, f"{type(exc).__name__}: {exc}"))
