"""`load.engine: locust`: the same schedule sent by a Locust master and its workers.

Locust lives in processes of its own (harness/load/locust_worker.py is their locustfile):
it patches the interpreter with gevent at import, which neither the Docker SDK nor asyncio
survive, so this module never imports it. It writes each worker's share of the plans to
files (harness.load.planfile), starts `locust --master` and the local `locust --worker`
processes (each dies with the harness: the locustfile arms the parent-death signal), reads
the master's record stream from a pipe and merges it by global index, so the records and
progress are the built-in sender's kind (harness.load.driver.run_senders) and everything
downstream (history.jsonl, results.json, the report) is unchanged. See docs/locust.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import harness
from harness.errors import InfraError
from harness.load import planfile
from harness.load.driver import SendProgress
from harness.load.sender import WorkerPlan
from harness.model import SendRecord
from harness.suite import LocustSpec

LOCUSTFILE = Path(__file__).with_name("locust_worker.py")
PACKAGE_ROOT = Path(harness.__file__).resolve().parents[1]   # so Locust imports this harness
LINE_LIMIT = 1 << 26            # one record batch (the master's own output) fits
FINISH_GRACE = 30.0             # seconds past the last send + submit timeout before giving up
END_GRACE = 10.0                # seconds Locust gets to quit before it is killed


def available() -> str | None:
    """None when Locust can run here, else why not (without importing it)."""
    if importlib.util.find_spec("locust") is None:
        return "Locust is not installed (pip install -e '.[distributed]'; scripts/setup does)"
    return None


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def write_plans(plans: list[WorkerPlan], directory: Path) -> None:
    """Plan k of the list becomes plan-k (Locust's worker index k sends it)."""
    for position, plan in enumerate(plans):
        meta = planfile.PlanMeta(
            worker=position, count=len(plan.indexes), urls=list(plan.urls),
            headers=dict(plan.headers), classifier=plan.classifier,
            max_in_flight=plan.max_in_flight, submit_timeout=plan.submit_timeout,
            connections=plan.connections)
        planfile.write(directory, meta, plan.offsets, plan.targets, plan.bodies)


class _Locust:
    """The master and local worker processes of one run, and the pipes to the master."""

    def __init__(self, settings: LocustSpec, workers: int, plan_dir: Path, log_dir: Path) -> None:
        self.settings, self.workers, self.plan_dir, self.log_dir = settings, workers, plan_dir, log_dir
        self.master: asyncio.subprocess.Process | None = None
        self.locals: list[asyncio.subprocess.Process] = []
        self.logs: list[IO[bytes]] = []
        self.records: asyncio.StreamReader | None = None
        self.transport: asyncio.BaseTransport | None = None
        self.control: int | None = None
        self.port = settings.master_port or _free_port(settings.master_bind)

    def _log(self, name: str) -> IO[bytes]:
        handle = open(self.log_dir / f"{name}.log", "ab")
        self.logs.append(handle)
        return handle

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)
        return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1",
                "BCTEST_LOCUST_PARENT": str(os.getpid()),
                "BCTEST_LOCUST_PLANS": str(self.plan_dir), **extra}

    async def start(self) -> None:
        records_r, records_w = os.pipe()
        control_r, control_w = os.pipe()
        self.control = control_w
        try:
            log = self._log("locust-master")
            self.master = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--master", "--headless",
                "--master-bind-host", self.settings.master_bind,
                "--master-bind-port", str(self.port),
                "--expect-workers", str(self.workers),
                "--expect-workers-max-wait", str(max(1, round(self.settings.ready_timeout))),
                "-u", str(self.workers), "-r", str(self.workers), "--loglevel", "WARNING",
                "--only-summary",
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(records_w, control_r),
                env=self._env({"BCTEST_LOCUST_WORKERS": str(self.workers),
                               "BCTEST_LOCUST_RECORDS_FD": str(records_w),
                               "BCTEST_LOCUST_CONTROL_FD": str(control_r)}))
        finally:
            os.close(records_w)
            os.close(control_r)
        loop = asyncio.get_running_loop()
        self.records = asyncio.StreamReader(limit=LINE_LIMIT)
        self.transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(self.records), os.fdopen(records_r, "rb", buffering=0))
        master_host = "127.0.0.1" if self.settings.master_bind in ("0.0.0.0", "*") \
            else self.settings.master_bind
        for w in range(self.settings.workers):
            log = self._log(f"locust-worker-{w}")
            self.locals.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker",
                "--master-host", master_host, "--master-port", str(self.port),
                "--loglevel", "WARNING",
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=self._env({})))

    def stop(self) -> None:
        """Ask the master to end the schedule early (workers finish what is in flight)."""
        if self.control is not None:
            with contextlib.suppress(OSError):
                os.write(self.control, b"stop\n")

    def died(self) -> str | None:
        if self.master is not None and self.master.returncode is not None:
            return f"the Locust master exited with {self.master.returncode}"
        for w, process in enumerate(self.locals):
            if process.returncode is not None:
                return f"Locust worker process {w} exited with {process.returncode}"
        return None

    async def end(self) -> None:
        """SIGTERM the master (it tells its workers to quit), then whatever is left;
        SIGKILL after END_GRACE. Nothing Locust started outlives this."""
        if self.control is not None:
            with contextlib.suppress(OSError):
                os.close(self.control)
            self.control = None
        processes = [p for p in [self.master, *self.locals] if p is not None]
        for process in processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                if process is self.master:   # give it the chance to quit its workers first
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(process.wait(), END_GRACE / 2)
        deadline = time.monotonic() + END_GRACE
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self.transport is not None:
            self.transport.close()
        for handle in self.logs:
            handle.close()


async def run_locust(plans: list[WorkerPlan], total: int, stop_requested: Callable[[], bool],
                     on_progress: Callable[[SendProgress], None], on_start: Callable[[float], None],
                     settings: LocustSpec, log_dir: Path | None = None,
                     ) -> tuple[list[SendRecord | None], SendProgress]:
    """Send the plans through Locust (one plan a worker: settings.workers local processes
    plus settings.remote_workers started elsewhere); the same result as run_senders."""
    why = available()
    if why:
        raise InfraError(f"load.engine locust: {why}")
    expected = settings.workers + settings.remote_workers
    if len(plans) != expected:
        raise InfraError(f"load.engine locust: {len(plans)} plans for {expected} Locust workers")
    plan_dir = Path(tempfile.mkdtemp(prefix="bctest-locust-"))
    log_dir = log_dir or plan_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    locust = _Locust(settings, expected, plan_dir, log_dir)
    try:
        await asyncio.to_thread(write_plans, plans, plan_dir)
        await locust.start()
        return await _collect(locust, plans, total, stop_requested, on_progress, on_start, settings)
    finally:
        await asyncio.shield(locust.end())
        shutil.rmtree(plan_dir, ignore_errors=True)


async def _collect(locust: _Locust, plans: list[WorkerPlan], total: int,
                   stop_requested: Callable[[], bool], on_progress: Callable[[SendProgress], None],
                   on_start: Callable[[float], None], settings: LocustSpec,
                   ) -> tuple[list[SendRecord | None], SendProgress]:
    assert locust.records is not None
    records: list[SendRecord | None] = [None] * total
    progress = SendProgress()
    done: set[int] = set()
    ready: set[int] = set()
    failures: list[str] = []
    start_at: float | None = None
    stopping = False
    # Locust itself takes a few seconds to boot before its workers can report ready.
    deadline = time.monotonic() + settings.ready_timeout + 15
    last_due = max((plan.offsets[-1] for plan in plans if len(plan.offsets)), default=0.0)
    submit_timeout = max((plan.submit_timeout for plan in plans), default=10.0)
    while len(done) < len(plans) and not failures:
        if stop_requested() and not stopping:
            stopping = True
            locust.stop()
            if start_at is None:
                break       # nothing was sent: nothing to wait for
            deadline = min(deadline, time.monotonic() + submit_timeout + FINISH_GRACE)
        try:
            line = await asyncio.wait_for(locust.records.readline(), 0.1)
        except TimeoutError:
            line = None
        except (ValueError, asyncio.LimitOverrunError) as exc:
            failures.append(f"the Locust master's record stream broke: {exc}")
            break
        if line == b"" or (line is None and locust.died()):    # EOF: the master is gone
            await asyncio.sleep(0.2)
            why = locust.died() or "the Locust master closed its record stream"
            if start_at is None:
                why = (f"Locust workers not ready within {settings.ready_timeout:g} s "
                       f"({len(ready)} of {len(plans)} ready; {why})")
            failures.append(why)
            break
        if line is None:
            if time.monotonic() > deadline:
                failures.append(
                    f"Locust workers not ready within {settings.ready_timeout:g} s "
                    f"({len(ready)} of {len(plans)} ready)" if start_at is None
                    else f"Locust workers {sorted(set(range(len(plans))) - done)} did not finish")
            continue
        message = json.loads(line)
        kind = message.get("kind")
        if kind == "ready":
            ready.add(int(message["worker"]))
        elif kind == "start":
            start_at = float(message["at"])
            deadline = start_at + last_due + submit_timeout + FINISH_GRACE
            on_start(start_at)
        elif kind == "records" and start_at is not None:
            _merge(records, plans[int(message["worker"])], message, start_at)
        elif kind == "progress":
            progress.update(int(message["worker"]), message["counters"], float(message["max_lag"]))
            on_progress(progress)
        elif kind == "done":
            done.add(int(message["worker"]))
        elif kind == "failed":
            failures.append(f"Locust worker {message.get('worker')}: {message.get('reason')}")
    if failures:
        raise InfraError("load generation (Locust) failed: " + "; ".join(failures)
                         + f" (logs in {locust.log_dir})")
    return records, progress


def _merge(records: list[SendRecord | None], plan: WorkerPlan, message: dict[str, Any],
           start_at: float) -> None:
    """Worker times are seconds after its start; the start is start_at on our clock."""
    for k, (submitted, acked, error) in zip(message["k"], message["r"], strict=True):
        i = plan.indexes[k]
        records[i] = SendRecord(i, plan.offsets[k], plan.node_indexes[plan.targets[k]],
                                start_at + submitted, None if acked is None else start_at + acked,
                                error)
