"""The locustfile of `load.engine: locust` (docs/locust.md). Runs only inside Locust's own
processes (master and workers, started by harness.load.locust_engine or by hand on another
host), never in the harness: Locust patches the interpreter with gevent at import.

Each worker runs one SchedulePlayer user. It reads its share of the schedule (plan-<worker
index> in $BCTEST_LOCUST_PLANS, harness.load.planfile; a worker on another host, which has
no such directory, asks the master, which ships the files over the Locust connection),
tells the master it is ready, and at
the common start sends every pre-built body at its scheduled offset (open loop: a slow
chain never delays the next send; a send behind its time counts as late; past
max_in_flight it is recorded as dropped). Each reply is read with a bound and judged by the
adapter's classifier through harness.load.sender.classify, so a hostile node cannot make a
record vanish. Records stream to the master as Locust custom messages; the master writes
them, one JSON object a line, to the pipe the harness gave it ($BCTEST_LOCUST_RECORDS_FD)
and takes "stop" from its control pipe ($BCTEST_LOCUST_CONTROL_FD).

Times in records are seconds after the worker's start, so a worker on another host (its
own clock) still lands on the harness's clock; a worker on the master's host starts at the
master's exact monotonic instant (same boot id, same clock).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event
from geventhttpclient import HTTPClient
from geventhttpclient.url import URL
from locust import User, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from harness import lifetime
from harness.load import planfile
from harness.load.sender import LATE_AFTER, MAX_REPLY_BYTES, classifier, classify
from harness.model import DROPPED

PARENT_ENV = "BCTEST_LOCUST_PARENT"      # the harness's pid: local processes die with it
PLANS_ENV = "BCTEST_LOCUST_PLANS"        # the directory of plan-<w>.json/.bin
WORKERS_ENV = "BCTEST_LOCUST_WORKERS"    # master: how many plans (workers) there are
RECORDS_ENV = "BCTEST_LOCUST_RECORDS_FD"
CONTROL_ENV = "BCTEST_LOCUST_CONTROL_FD"
FLUSH_EVERY = 0.25      # seconds between record batches (and progress) to the master
START_LEAD = 0.3        # seconds between "all ready" and the first scheduled send
READ_CHUNK = 65536
SHIP_CHUNK = 1 << 20    # bytes of a plan file per message to a remote worker
SHIP_TIMEOUT = 300.0

if os.environ.get(PARENT_ENV, "").isdigit():
    # Started by a run: die with it, even when it is SIGKILLed (prctl survives Locust's exec).
    lifetime.die_with_parent(int(os.environ[PARENT_ENV]))


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


# -- worker side ---------------------------------------------------------------------------

class _WorkerState:
    go = Event()
    stop = Event()
    start: float | None = None
    shipped = Event()                  # a plan shipped by the master is complete
    shipped_dir: Path | None = None


def _on_plan_chunk(environment: Any, msg: Any, **_: Any) -> None:
    """A piece of this worker's plan file, shipped by the master (a remote worker, which
    cannot read the harness's plan directory)."""
    data = msg.data
    if _WorkerState.shipped_dir is None:
        _WorkerState.shipped_dir = Path(tempfile.mkdtemp(prefix="bctest-locust-plan-"))
        atexit.register(shutil.rmtree, _WorkerState.shipped_dir, True)
    name = Path(data["name"]).name          # plan-<w>.json / .bin, nothing else
    with open(_WorkerState.shipped_dir / name, "ab") as out:
        out.write(data["data"])
    if data.get("complete"):
        _WorkerState.shipped.set()


def _obtain_plan(runner: Any) -> planfile.PlanData:
    """This worker's share: from the harness's plan directory when it is here, else
    shipped by the master over the Locust connection."""
    index = runner.worker_index
    local = os.environ.get(PLANS_ENV)
    if local and all(p.exists() for p in planfile.paths(Path(local), index)):
        return planfile.read(Path(local), index)
    runner.send_message("bctest_plan_request", {"worker": index})
    if not _WorkerState.shipped.wait(SHIP_TIMEOUT):
        raise ValueError(f"the master did not ship plan {index} within {SHIP_TIMEOUT} s")
    assert _WorkerState.shipped_dir is not None
    return planfile.read(_WorkerState.shipped_dir, index)


def _on_go(environment: Any, msg: Any, **_: Any) -> None:
    data = msg.data
    if data.get("boot") == _boot_id():
        _WorkerState.start = float(data["at"])            # same clock as the master's
    else:
        _WorkerState.start = time.monotonic() + float(data["lead"])
    _WorkerState.go.set()


def _on_stop(environment: Any, msg: Any, **_: Any) -> None:
    _WorkerState.stop.set()
    _WorkerState.go.set()


class SchedulePlayer(User):
    """Sends one worker's share of the schedule once, then stops."""

    @task
    def play(self) -> None:
        """Locust runs a task again when it raises: this one reports and stops instead."""
        runner = self.environment.runner
        try:
            plan = _obtain_plan(runner)
        except (OSError, ValueError) as exc:
            runner.send_message("bctest_failed", {
                "worker": runner.worker_index, "reason": f"no plan: {exc}"[:500]})
            raise StopUser() from None
        try:
            self._play(plan)
        except Exception as exc:
            runner.send_message("bctest_failed", {
                "worker": runner.worker_index, "reason": f"{type(exc).__name__}: {exc}"[:500]})
        raise StopUser()

    def _play(self, plan: planfile.PlanData) -> None:
        runner = self.environment.runner
        meta = plan.meta
        response_error = classifier(meta.classifier)
        headers = {**meta.headers, "Accept-Encoding": "identity", "Connection": "keep-alive"}
        count = meta.count
        records: list[Any] = [None] * count
        outbox: list[int] = []
        counters: dict[str, Any] = {"sent": 0, "acked": 0, "errors": 0, "late": 0, "dropped": 0,
                                    "loop": "gevent"}
        state = {"in_flight": 0, "max_lag": 0.0}
        start = cpu0 = 0.0
        issued: dict[int, float] = {}     # sends started and not yet ended: k -> when (rel.)
        poster = _Poster(meta, response_error, headers, self.environment.events.request)

        def send(k: int, start: float) -> None:
            submitted = time.monotonic()
            issued[k] = submitted - start
            error: str | None = "no reply recorded"
            try:
                with gevent.Timeout(meta.submit_timeout):
                    error = poster.post(plan.targets[k], plan.body(k))
            except gevent.Timeout:
                error = f"TimeoutError: no reply within {meta.submit_timeout} s"
            except Exception as exc:  # whatever the reply did, this send ends refused
                error = f"send failed: {type(exc).__name__}: {exc}"[:200]
            finally:
                issued.pop(k, None)
                records[k] = (submitted - start, time.monotonic() - start, error)
                outbox.append(k)
                counters["acked"] += 1
                if error:
                    counters["errors"] += 1
                state["in_flight"] -= 1

        def flush(final: bool = False) -> None:
            if outbox:
                ks = outbox[:]
                del outbox[:len(ks)]
                runner.send_message("bctest_records", {
                    "worker": meta.worker, "k": ks, "r": [records[k] for k in ks]})
            # This process's CPU share since the start, as the built-in sender reports it:
            # SendProgress.limit() names the harness when drops come while a core is full.
            spent = time.monotonic() - start if start else 0.0
            if spent > 0:
                counters["cpu"] = round((time.process_time() - cpu0) / spent, 3)
            runner.send_message("bctest_progress", {
                "worker": meta.worker, "counters": dict(counters), "max_lag": state["max_lag"]})
            if final:
                runner.send_message("bctest_done", {"worker": meta.worker})

        def flusher() -> None:
            while True:
                gevent.sleep(FLUSH_EVERY)
                flush()

        runner.send_message("bctest_ready", {"worker": meta.worker})
        _WorkerState.go.wait()
        start = _WorkerState.start or time.monotonic()
        cpu0 = time.process_time()
        pool: set[gevent.Greenlet] = set()
        background = gevent.spawn(flusher)
        try:
            k = 0
            while k < count and not _WorkerState.stop.is_set():
                now = time.monotonic()
                while k < count:
                    due = start + plan.offsets[k]
                    if due > now:
                        break
                    lag = now - due
                    if lag > LATE_AFTER:
                        counters["late"] += 1
                    state["max_lag"] = max(state["max_lag"], lag)
                    if state["in_flight"] >= meta.max_in_flight:
                        records[k] = (now - start, None, DROPPED)
                        outbox.append(k)
                        counters["dropped"] += 1
                    else:
                        state["in_flight"] += 1
                        counters["sent"] += 1
                        issued[k] = now - start
                        greenlet = gevent.spawn(send, k, start)
                        pool.add(greenlet)
                        greenlet.link(pool.discard)
                    k += 1
                if k < count:
                    _WorkerState.stop.wait(max(0.0, start + plan.offsets[k] - time.monotonic()))
            gevent.joinall(list(pool), timeout=meta.submit_timeout + 1)
        finally:
            background.kill()
            gevent.killall(list(pool), timeout=2)
            # A send still pending now (its greenlet never got the CPU, or was killed) ends
            # refused with the reason: a record never vanishes.
            for k, issued_at in list(issued.items()):
                records[k] = (issued_at, None, "no reply: the Locust worker ended before this send did")
                outbox.append(k)
                counters["errors"] += 1
            issued.clear()
            flush(final=True)


class _Poster:
    """Submissions through geventhttpclient (the client under Locust's FastHttpUser), one
    keep-alive pool of meta.connections sockets per node. No redirects are followed (a
    redirect is the node's reply) and nothing is retried (a resent transaction would be a
    second submission). The reply is read up to MAX_REPLY_BYTES + 1 and judged by the
    adapter's classifier, made total by classify; Locust's statistics see every send."""

    def __init__(self, meta: planfile.PlanMeta, response_error: Any, headers: dict[str, str],
                 request_event: Any) -> None:
        self.response_error, self.headers, self.request_event = response_error, headers, request_event
        self.targets = []
        for url in meta.urls:
            parsed = URL(url)
            client = HTTPClient(parsed.host, parsed.port, concurrency=meta.connections,
                                connection_timeout=meta.submit_timeout + 1,
                                network_timeout=meta.submit_timeout + 1, headers={})
            self.targets.append((url, client, parsed.request_uri))

    def post(self, target: int, body: bytes) -> str | None:
        url, client, uri = self.targets[target]
        started, clock = time.time(), time.perf_counter()
        size = 0
        try:
            response = client.request("POST", uri, body=body, headers=self.headers)
            try:
                chunks = []
                while size <= MAX_REPLY_BYTES:
                    chunk = response.read(READ_CHUNK)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    _discard_connection(response)   # the rest is never read: close, not reuse
                error = classify(self.response_error, response.status_code, b"".join(chunks))
            finally:
                response.release()
        except gevent.Timeout:
            raise
        except Exception as exc:     # refused, reset, closed, unparsable: the node's doing
            error = f"{type(exc).__name__}: {exc}"[:200]
        self.request_event.fire(request_type="POST", name="submit",
                                response_time=(time.perf_counter() - clock) * 1000,
                                response_length=size, exception=_Refused(error) if error else None,
                                context={}, start_time=started, url=url, response=None)
        return error


class _Refused(Exception):
    """A refusal as Locust's statistics count it (its text is the classifier's reason)."""


def _discard_connection(raw: Any) -> None:
    pool, sock = getattr(raw, "_pool", None), getattr(raw, "_sock", None)
    if pool is not None and sock is not None:
        pool.release_socket(sock)
    raw._sock = raw._pool = None


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        runner.register_message("bctest_go", _on_go)
        runner.register_message("bctest_stop", _on_stop)
        runner.register_message("bctest_plan", _on_plan_chunk)
    elif isinstance(runner, MasterRunner):
        _Master(environment).install()


# -- master side ---------------------------------------------------------------------------

class _Master:
    """Relays the workers' messages to the harness and the harness's stop to the workers."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.runner = environment.runner
        self.workers = int(os.environ[WORKERS_ENV])
        self.out = os.fdopen(int(os.environ[RECORDS_ENV]), "w", buffering=1 << 16)
        self.control = int(os.environ[CONTROL_ENV])
        self.ready: set[int] = set()
        self.boot = _boot_id()

    def install(self) -> None:
        for kind in ("bctest_records", "bctest_progress", "bctest_done", "bctest_failed"):
            self.runner.register_message(kind, self.relay)
        self.runner.register_message("bctest_ready", self.on_ready)
        self.runner.register_message("bctest_plan_request", self.on_plan_request)
        gevent.spawn(self.listen)

    def write(self, line: dict) -> None:
        self.out.write(json.dumps(line, separators=(",", ":")) + "\n")
        self.out.flush()

    def relay(self, environment: Any, msg: Any, **_: Any) -> None:
        self.write({"kind": msg.type.removeprefix("bctest_"), **msg.data})

    def on_ready(self, environment: Any, msg: Any, **_: Any) -> None:
        self.ready.add(int(msg.data["worker"]))
        self.write({"kind": "ready", "worker": msg.data["worker"]})
        if len(self.ready) == self.workers:
            at = time.monotonic() + START_LEAD
            self.write({"kind": "start", "at": at})
            self.runner.send_message("bctest_go", {"at": at, "lead": START_LEAD, "boot": self.boot})

    def on_plan_request(self, environment: Any, msg: Any, **_: Any) -> None:
        gevent.spawn(self.ship, int(msg.data["worker"]), msg.node_id)

    def ship(self, worker: int, client_id: str) -> None:
        """Send a (remote) worker its plan files over the Locust connection, in chunks."""
        files = planfile.paths(Path(os.environ[PLANS_ENV]), worker)
        try:
            for n, path in enumerate(files):
                with open(path, "rb") as source:
                    while True:
                        chunk = source.read(SHIP_CHUNK)
                        last = len(chunk) < SHIP_CHUNK
                        self.runner.send_message("bctest_plan", {
                            "name": path.name, "data": chunk,
                            "complete": last and n == len(files) - 1}, client_id)
                        gevent.sleep(0)
                        if last:
                            break
        except OSError as exc:
            self.write({"kind": "failed", "worker": worker, "reason": f"cannot ship plan: {exc}"})

    def listen(self) -> None:
        """The harness's control pipe: "stop" ends the schedule early; EOF (the harness is
        gone) too."""
        from gevent.os import make_nonblocking, nb_read
        make_nonblocking(self.control)
        while True:
            data = nb_read(self.control, 4096)
            if not data or b"stop" in data:
                self.runner.send_message("bctest_stop", {})
                if not data:
                    return
