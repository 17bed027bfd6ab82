"""One sender process: fires pre-built submissions at their scheduled instants.

Open loop: transaction i is due at start + its scheduled offset (model.scheduled_offset)
whatever the chain does, so a
slow chain never slows the schedule (no coordinated omission). When the harness
itself falls behind, the lag is counted and reported rather than hidden.
This module runs in its own process and imports nothing heavy.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from harness.httpread import read_bounded
from harness.model import DROPPED  # noqa: F401  (re-exported for the sender's callers)

MAX_REPLY_BYTES = 1 << 20  # a submission or query reply larger than this is refused unread
LATE_AFTER = 0.010        # a send more than 10 ms behind its schedule counts as late
PROGRESS_EVERY = 0.5      # seconds between progress messages to the main process


@dataclass
class WorkerPlan:
    worker: int
    indexes: list[int]        # global tx indexes this worker sends, ascending
    bodies: list[bytes]
    offsets: list[float]      # each tx's scheduled offset from the start (seconds)
    targets: list[int]        # index into urls for each tx
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


def _classifier(ref: str):
    module, _, path = ref.partition(":")
    found: Any = importlib.import_module(module)
    for attr in path.split("."):
        found = getattr(found, attr)
    return found.response_error if isinstance(found, type) else found


async def _send_all(plan: WorkerPlan, queue: Any, go: Any, start_at: Any, stop: Any) -> list[Any]:
    response_error = _classifier(plan.classifier)
    count = len(plan.indexes)
    records: list[Any] = [None] * count
    counters = {"sent": 0, "acked": 0, "errors": 0, "late": 0, "dropped": 0}
    max_lag = 0.0
    in_flight = 0
    timeout = aiohttp.ClientTimeout(total=plan.submit_timeout)
    # Bounded per node: past the chain's (or the harness's) ceiling, overdue sends wait for a
    # connection instead of opening thousands of sockets (which once killed docker-proxy).
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=plan.connections, force_close=False)
    pending: set[asyncio.Task] = set()

    async def send(k: int, session: aiohttp.ClientSession) -> None:
        nonlocal in_flight
        submitted = time.monotonic()
        error: str | None = "no reply recorded"
        try:
            async with session.post(plan.urls[plan.targets[k]], data=plan.bodies[k],
                                    headers=plan.headers) as response:
                body = await read_bounded(response.content, MAX_REPLY_BYTES)
                error = classify(response_error, response.status, body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        except Exception as exc:  # whatever the reply did, this send ends refused, never missing
            error = f"send failed: {type(exc).__name__}: {exc}"[:200]
        finally:
            records[k] = (submitted, time.monotonic(), error)
            counters["acked"] += 1
            if error:
                counters["errors"] += 1
            in_flight -= 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        # Everything is set up before we say ready, so the first sends are not late.
        queue.put(("ready", plan.worker))
        await asyncio.get_running_loop().run_in_executor(None, go.wait)
        start = start_at.value
        k = 0
        next_report = time.monotonic()
        while k < count and not stop.is_set():
            now = time.monotonic()
            while k < count:
                due = start + plan.offsets[k]
                if due > now:
                    break
                lag = now - due
                if lag > LATE_AFTER:
                    counters["late"] += 1
                max_lag = max(max_lag, lag)
                if in_flight >= plan.max_in_flight:
                    records[k] = (now, None, DROPPED)
                    counters["dropped"] += 1
                else:
                    in_flight += 1
                    counters["sent"] += 1
                    task = asyncio.create_task(send(k, session))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                k += 1
            if now >= next_report:
                queue.put(("progress", plan.worker, dict(counters), max_lag))
                next_report = now + PROGRESS_EVERY
            if k < count:
                due = start + plan.offsets[k]
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        if pending:
            await asyncio.wait(pending, timeout=plan.submit_timeout + 1)
    queue.put(("progress", plan.worker, dict(counters), max_lag))
    return records


def run_worker(plan: WorkerPlan, queue: Any, go: Any, start_at: Any, stop: Any) -> None:
    """Process entry point: announce readiness, wait for the common start, send, report."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    try:
        records = asyncio.run(_send_all(plan, queue, go, start_at, stop))
        queue.put(("done", plan.worker, records))
    except BaseException as exc:  # report, never die silently: the main process waits for us
        queue.put(("failed", plan.worker, f"{type(exc).__name__}: {exc}"))
