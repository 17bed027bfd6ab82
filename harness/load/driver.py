"""Runs the sender processes for one schedule and gathers what they did.

Senders are separate processes (spawned, never forked from a process holding
Docker SDK threads), so one core per sender can be used and a locust- or
gevent-patched interpreter never shares a process with asyncio.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue as queue_module
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness import lifetime
from harness.errors import InfraError
from harness.load.sender import WorkerPlan, run_worker
from harness.load.spool import bodies_for
from harness.model import Prepared, SendRecord, node_for

START_LEAD = 0.3  # seconds between "all senders ready" and the first scheduled send
BUSY = 0.85       # a sender process using this share of a core is the limit of its sends


@dataclass
class SendProgress:
    sent: int = 0
    acked: int = 0
    errors: int = 0
    late: int = 0
    dropped: int = 0
    max_lag: float = 0.0
    connections: int = 0           # most connections the senders held at once (summed)
    per_worker: dict[int, dict] = field(default_factory=dict)

    def update(self, worker: int, counters: dict, max_lag: float) -> None:
        self.per_worker[worker] = {**counters, "max_lag": max_lag}
        for key in ("sent", "acked", "errors", "late", "dropped", "connections"):
            setattr(self, key, sum(w.get(key, 0) for w in self.per_worker.values()))
        self.max_lag = max(w["max_lag"] for w in self.per_worker.values())

    def limit(self) -> str | None:
        """What held the sends back, from the senders' own figures; None when every send
        left on time. Late sends, or drops while a sender process was busy on its core, mean
        the senders were short of CPU (the harness was the limit); drops without either mean
        the nodes answered too slowly for the outstanding-request bound."""
        due = self.sent + self.dropped
        busy = max((w.get("cpu", 0.0) for w in self.per_worker.values()), default=0.0)
        if due and (self.late > 0.01 * due or (self.dropped and busy >= BUSY)):
            return (f"the harness: {self.late} of {due} due sends left more than 10 ms late "
                    f"(worst {self.max_lag * 1000:.0f} ms) and {self.dropped} were dropped, a "
                    f"sender process used {busy:.0%} of a core: the senders were short of CPU; "
                    "add load.workers or lower the rate")
        if self.dropped:
            return (f"the nodes: {self.dropped} sends dropped at max_in_flight while the senders "
                    "kept their schedule: replies came slower than the rate")
        return None


def plan_workers(prepared: list[Prepared], targets: list[tuple[int, str]], offsets: Sequence[float],
                 workers: int, max_in_flight: int, submit_timeout: float, headers: dict[str, str],
                 classifier: str, connections: int = 256) -> list[WorkerPlan]:
    """Deal transactions round-robin to workers and to the target nodes, given as (node
    index, submit url): tx i goes to target node_for(i), due at offsets[i] (seconds after
    the common start: any load shape, harness/load/shape.py)."""
    if isinstance(offsets, (int, float)):
        raise TypeError("plan_workers takes one offset per transaction (harness.load.shape: "
                        "Schedule.offset_list(), or fixed_offsets(count, rate)), not a rate")
    if len(offsets) < len(prepared):
        raise ValueError(f"{len(prepared)} transactions but {len(offsets)} offsets")
    urls = [url for _, url in targets]
    plans = []
    for w in range(workers):
        indexes = list(range(w, len(prepared), workers))
        plans.append(WorkerPlan(
            worker=w, indexes=indexes, bodies=bodies_for(prepared, indexes),   # lazy over a spool
            offsets=[float(offsets[i]) for i in indexes],
            targets=[node_for(i, len(urls)) for i in indexes], urls=urls,
            max_in_flight=max_in_flight, submit_timeout=submit_timeout, headers=headers,
            connections=connections, classifier=classifier, node_indexes=[n for n, _ in targets]))
    return plans


async def run_senders(plans: list[WorkerPlan], total: int, stop_requested: Callable[[], bool],
                      on_progress: Callable[[SendProgress], None],
                      on_start: Callable[[float], None]) -> tuple[list[SendRecord | None], SendProgress]:
    """Start one process per plan, release them together, collect records by global index."""
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    go, stop = context.Event(), context.Event()
    start_at = context.Value("d", 0.0)
    # Each sender dies with this process (SIGKILLed harness included): one left behind would
    # block for ever writing its records to a queue nobody reads. This thread joins them
    # below, so it outlives them, as the parent-death signal needs.
    processes = [context.Process(target=lifetime.run_as_child,
                                 args=(os.getpid(), run_worker, plan, messages, go, start_at, stop),
                                 name=f"bctest-sender-{plan.worker}", daemon=True)
                 for plan in plans]
    for process in processes:
        process.start()
    progress = SendProgress()
    records: list[SendRecord | None] = [None] * total
    ready: set[int] = set()
    done: set[int] = set()
    failures: list[str] = []
    try:
        while len(done) + len(failures) < len(plans):
            try:
                message = messages.get_nowait()
            except queue_module.Empty:
                if stop_requested():
                    stop.set()
                    go.set()
                dead = [p for p in processes if not p.is_alive() and p.exitcode not in (0, None)]
                if dead and not failures:
                    failures.append(f"sender process {dead[0].name} exited with {dead[0].exitcode}")
                await asyncio.sleep(0.05)
                continue
            kind, worker = message[0], message[1]
            if kind == "ready":
                ready.add(worker)
                if len(ready) == len(plans):
                    start_at.value = time.monotonic() + START_LEAD
                    on_start(start_at.value)
                    go.set()
            elif kind == "progress":
                progress.update(worker, message[2], message[3])
                on_progress(progress)
            elif kind == "done":
                plan = plans[worker]
                for k, record in enumerate(message[2]):
                    if record is not None:
                        records[plan.indexes[k]] = SendRecord(
                            plan.indexes[k], plan.offsets[k], plan.node_indexes[plan.targets[k]],
                            *record)
                done.add(worker)
            elif kind == "failed":
                failures.append(f"sender {worker}: {message[2]}")
    finally:
        stop.set()
        go.set()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    if failures:
        raise InfraError("load generation failed: " + "; ".join(failures))
    return records, progress
