"""`bctest worker`: take queued submissions one at a time, certify each, file the result.

One worker per host (a lock in the data folder): certification rounds measure the host, and
two campaigns at once would measure each other. Several hosts share a PostgreSQL queue.

Each attempt runs `bctest certify` as a child process that dies with the worker (the
kernel's parent-death signal) and stays in the worker's process group (Ctrl-C reaches it);
the worker renews its lease while the child runs. A worker killed outright leaves its row
running under a dead lease: the next worker on the host (or, on another host, once the
heartbeat is stale) queues it again with the attempt counted, and first removes what the
dead run left in the engine (`bctest clean`).
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import lifetime, signing, submission
from harness.errors import InfraError, InputError
from harness.queue import ATTEMPT_LIMIT, HEARTBEAT_TIMEOUT, Entry, SqlQueue, Worker, open_queue

VENDOR_NAMESPACE = "bctest-vendor/"
LOCK = "worker.lock"
Log = Callable[[str], None]
CertifyCommand = Callable[[Entry, submission.Submission, Path], list[str]]


def certify_command(entry: Entry, sub: submission.Submission, out: Path) -> list[str]:
    """The certification of one attempt, as the vendor could run it themselves. The worker
    removed any image of the pack's tag first, so certify loads the submission's own tarball."""
    command = [sys.executable, "-m", "harness.cli", "certify", str(sub.pack.folder),
               "--profile", sub.profile, "--vendor", sub.vendor, "--submission", entry.id,
               "--out", str(out)]
    if sub.claims is not None:
        command += ["--claims", str(sub.claims)]
    return command


def remove_vendor_image(tag: str, log: Log) -> None:
    """docker image rm of a vendor's tag, so the next vendor's run cannot see it. Only
    bctest-vendor/ tags: never a reference or foreign image."""
    if not tag.startswith(VENDOR_NAMESPACE):
        return
    import docker

    from harness.runtime.docker import connect
    try:
        connect().images.remove(tag)
        log(f"removed image {tag}")
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        log(f"warning: could not remove image {tag}: {str(exc).splitlines()[0]}")


def clean_dead_runs(log: Log) -> None:
    """`bctest clean` (without --all): the processes and engine objects of dead runs."""
    from harness.runtime.docker import connect, leftover_runs, remove_run_objects

    for item in lifetime.end(lifetime.orphans()):
        if item.how != "gone":
            log(f"run {item.process.run_id}: ended process {item.process.pid} ({item.how})")
    client = connect()
    for run_id in leftover_runs(client):
        log(f"run {run_id}: removed {remove_run_objects(client, run_id).describe()}")


@dataclass
class Options:
    data: Path
    queue_url: str | None = None
    once: bool = False
    poll: float = 10.0
    heartbeat_every: float = 10.0
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT
    attempt_limit: int = ATTEMPT_LIMIT
    command: CertifyCommand = certify_command            # injected by the unit tests
    remove_image: Callable[[str, Log], None] = remove_vendor_image
    clean: Callable[[Log], None] = clean_dead_runs
    log: Log = field(default=lambda line: print(line, flush=True))


def _host_lock_path() -> Path:
    """One file for the whole host, whatever --data each worker uses."""
    run_lock = Path("/run/lock")
    folder = run_lock if run_lock.is_dir() and os.access(run_lock, os.W_OK) else Path(tempfile.gettempdir())
    return folder / "bctest-worker.lock"


class HostLock:
    """flocks on DATA/worker.lock and on one host-wide file: one worker per host, whatever
    data folder each was given (two would measure each other). The kernel lets go when the
    holder dies, however it dies."""

    def __init__(self, data: Path, host: Path | None = None):
        data.mkdir(parents=True, exist_ok=True)
        self.path = data / LOCK
        self.fds: list[int] = []
        try:
            for path in (self.path, host or _host_lock_path()):
                self.fds.append(self._take(path))
        except InputError:
            self.release()
            raise

    @staticmethod
    def _take(path: Path) -> int:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise InputError(str(path), None, f"one worker per host: worker pid {other} is "
                             "already running on this host") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def release(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def require_key() -> None:
    key = signing.key_dir() / signing.PRIVATE
    if not key.is_file():
        raise InputError(str(key), None, "a signing key: a worker signs every certification it "
                         "files; create one with `bctest keys init`")


@dataclass(frozen=True)
class Outcome:
    state: str        # certified, rejected, or queued (another attempt; failed at the limit)
    message: str


CERTIFIED_EXITS = {0: "passed", 1: "a verdict failed", 4: "inconclusive"}


def outcome(code: int, out: Path) -> Outcome:
    """What certify's exit code means for the submission."""
    if code in CERTIFIED_EXITS:
        if (out / signing.SIGNATURE).is_file():
            return Outcome("certified", f"certify exit {code} ({CERTIFIED_EXITS[code]}), signed")
        return Outcome("queued", f"certify exit {code} but the folder is not signed "
                       f"({signing.SIGNATURE} missing)")
    if code == 2:
        return Outcome("rejected", "certify exit 2: the submission is invalid (see the attempt's log)")
    if code == 130 or code < 0:
        how = f"signal {-code}" if code < 0 else "interrupted"
        return Outcome("queued", f"certify {how}")
    return Outcome("queued", f"certify exit {code} (infrastructure failure, see the attempt's log)")


def _die_with(parent: int) -> Callable[[], None]:
    return lambda: lifetime.die_with_parent(parent)


class Run:
    def __init__(self, options: Options, queue: SqlQueue):
        self.options, self.queue, self.me = options, queue, Worker.this()
        self.log = options.log

    def recover(self) -> None:
        for item in self.queue.recover(self.me, timeout=self.options.heartbeat_timeout):
            self.log(f"{item.entry.short}: worker {item.entry.worker_pid} on {item.entry.worker_host} "
                     f"died in attempt {item.entry.attempts}; now {item.state}")
        self.options.clean(self.log)

    def attempt(self, entry: Entry) -> Entry | None:
        """One attempt at a claimed submission; the entry as filed (None: lease lost)."""
        results = self.options.data / "results" / entry.vendor / entry.id
        out = results / f"attempt-{entry.attempts}"
        self.log(f"{entry.short}: {entry.vendor} {entry.chain} {entry.version} ({entry.profile}), "
                 f"attempt {entry.attempts}")
        stored = submission.stored_folder(self.options.data, entry.id)
        if not stored.is_dir():   # the test center's problem (an unshared data folder), not the vendor's
            return self.queue.finish(entry.id, self.me, "queued", None, f"{stored} is not on this host "
                                     "(several hosts on one queue need a shared data folder)")
        try:
            sub = submission.load(stored)
        except InputError as exc:
            return self.queue.finish(entry.id, self.me, "rejected", None, str(exc)[:4000])
        if sub.digest != entry.id:
            return self.queue.finish(entry.id, self.me, "rejected", None, f"{stored} no longer holds "
                                     f"the content submitted (sha256 {sub.digest})")
        self.options.remove_image(entry.image, self.log)   # a stale image of that tag is not the vendor's
        try:
            results.mkdir(parents=True, exist_ok=True)
            command = self.options.command(entry, sub, out)
            with open(results / f"attempt-{entry.attempts}.log", "ab") as log:
                child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=_die_with(os.getpid()))
            code = self._wait(entry, child)
            if code is None:
                return None
            result = outcome(code, out)
            self.log(f"{entry.short}: {result.message}")
            return self.queue.finish(entry.id, self.me, result.state,
                                     str(out) if out.exists() else None, result.message)
        except OSError as exc:
            return self.queue.finish(entry.id, self.me, "queued", None, f"could not run certify: {exc}")
        finally:
            self.options.remove_image(entry.image, self.log)

    def _wait(self, entry: Entry, child: subprocess.Popen) -> int | None:
        try:
            while True:
                try:
                    return child.wait(timeout=self.options.heartbeat_every)
                except subprocess.TimeoutExpired:
                    if not self.queue.heartbeat(entry.id, self.me):
                        self.log(f"{entry.short}: lease lost (another worker recovered it); "
                                 "ending this attempt")
                        child.kill()
                        child.wait()
                        return None
        except KeyboardInterrupt:
            # Ctrl-C reached the child too (same process group); a SIGTERM only us: pass it on
            # as SIGTERM (a worker started in the background has SIGINT ignored, and so have
            # its children: a SIGINT would not reach certify).
            if child.poll() is None and _terminated:
                child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=120)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            self.queue.finish(entry.id, self.me, "queued", None, "the worker was interrupted")
            raise


_terminated: list[bool] = []   # set when the worker got SIGTERM (not Ctrl-C)


def _sigterm(*_: object) -> None:
    _terminated.append(True)
    raise KeyboardInterrupt


def run(options: Options, queue: SqlQueue | None = None) -> int:
    """The worker's loop; with options.once at most one submission, then return."""
    require_key()
    lock = HostLock(options.data)
    own_queue = queue is None
    queue = queue or open_queue(options.queue_url, options.data, options.attempt_limit)
    previous = signal.signal(signal.SIGTERM, _sigterm)   # stop like Ctrl-C: the attempt is re-queued
    _terminated.clear()
    try:
        worker = Run(options, queue)
        options.log(f"worker {worker.me.pid} on {worker.me.host}: queue {queue.url}")
        while True:
            worker.recover()
            entry = queue.claim(worker.me)
            if entry is not None:
                filed = worker.attempt(entry)
                if filed is not None:
                    options.log(f"{filed.short}: {filed.state}")
            if options.once:
                return 0
            if entry is None:
                time.sleep(options.poll)
    except OSError as exc:
        raise InfraError(f"worker: {exc}") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if own_queue:
            queue.close()
        lock.release()

