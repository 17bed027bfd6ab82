"""Nothing a run starts outlives it, even when the harness itself is killed.

A SIGKILLed harness runs no cleanup code, so two layers do the work:

- Children die with their parent. A process the harness starts calls die_with_parent()
  first thing: the kernel sends it SIGKILL when the harness dies (prctl
  PR_SET_PDEATHSIG), and if the harness died before that call it exits at once. The NFQUEUE
  delayer watches its parent instead (harness.faults.nfqueue), because the parent-death
  signal follows the *thread* that started a child, and the nemesis starts delayers from
  short-lived worker threads. multiprocessing's resource tracker needs neither: it exits
  when every process holding its pipe (the harness and its spawned children) is gone,
  unlinking the semaphores they left; mark_run() starts it so that it carries the marks.
- Every process the run starts is marked: mark_run() puts BCTEST_OWNER=<pid namespace>:
  <harness pid>:<harness start time> and BCTEST_RUN_ID in the harness's environment, which
  every child inherits and which stays readable in /proc/<pid>/environ. `bctest clean`
  ends the marked processes whose owner is gone (orphans(), end()). The start time makes
  a reused pid a different owner, so a stranger holding the harness's old pid never keeps
  orphans alive, and a process is only signalled through a pidfd opened after its start
  time was checked again, so a stranger holding an orphan's old pid is never signalled.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OWNER_ENV = "BCTEST_OWNER"
RUN_ENV = "BCTEST_RUN_ID"
PROC = Path("/proc")
PR_SET_PDEATHSIG = 1
TRACKER = "multiprocessing.resource_tracker"   # in its command line


@dataclass(frozen=True)
class Owner:
    """A harness process, unambiguously: its pid means something only in its PID
    namespace, and only as long as the process started at `start` holds it."""

    pidns: str      # inode of the PID namespace, e.g. "4026531836"
    pid: int
    start: int      # clock ticks after boot (/proc/<pid>/stat field 22)

    def token(self) -> str:
        return f"{self.pidns}:{self.pid}:{self.start}"


def parse_owner(text: str) -> Owner | None:
    parts = text.strip().split(":")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    return Owner(parts[0], int(parts[1]), int(parts[2]))


def _stat(pid: int | str, proc: Path = PROC) -> list[str] | None:
    """/proc/<pid>/stat fields from the state on (the command name may hold spaces and ')')."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def start_time(pid: int | str, proc: Path = PROC) -> int | None:
    """When the process started (clock ticks after boot); None when there is no such
    process or it is a zombie (already dead, waiting to be reaped)."""
    fields = _stat(pid, proc)
    if not fields or len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def pid_namespace(pid: int | str = "self", proc: Path = PROC) -> str:
    try:
        link = os.readlink(proc / str(pid) / "ns" / "pid")   # "pid:[4026531836]"
    except OSError:
        return "unknown"
    return link.partition("[")[2].rstrip("]") or "unknown"


def this_process(proc: Path = PROC) -> Owner:
    return Owner(pid_namespace("self", proc), os.getpid(), start_time("self", proc) or 0)


def owner_alive(owner: Owner, proc: Path = PROC) -> bool:
    """Is the harness process `owner` still running? Only asked in its own PID namespace."""
    return start_time(owner.pid, proc) == owner.start


# -- in the harness: mark what the run starts ---------------------------------------------

def mark_run(run_id: str) -> Owner:
    """Call at the start of a run, before it starts any process: every child from now on
    carries this process as its owner and the run id. Returns the owner."""
    owner = this_process()
    os.environ[OWNER_ENV] = owner.token()
    os.environ[RUN_ENV] = run_id
    # Started now, the tracker inherits the marks (multiprocessing would start it lazily,
    # at the first semaphore, with whatever environment the process had then).
    from multiprocessing import resource_tracker
    resource_tracker.ensure_running()
    return owner


# -- in a child: die with the parent ------------------------------------------------------

def _set_pdeathsig(signum: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, signum: int, every: float = 0.5) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os.kill(os.getpid(), signum)
    threading.Thread(target=watch, name="bctest-parent-watch", daemon=True).start()


def die_with_parent(parent: int, signum: int = signal.SIGKILL) -> None:
    """In a child, before anything else: receive `signum` when process `parent` dies.

    The thread that started this child must outlive it (the kernel signals when that
    thread exits): true for children that are joined before their starter returns. If
    the parent died before the signal was armed, this child is an orphan already (its
    parent pid is another process's) and goes now."""
    if not _set_pdeathsig(signum):
        _watch_parent(parent, signum)
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)
        os._exit(1)   # a signal that does not end the process (ignored): leave anyway


def run_as_child(parent: int, target: Callable[..., Any], *args: Any) -> Any:
    """A multiprocessing target: die_with_parent(parent), then target(*args)."""
    die_with_parent(parent)
    return target(*args)


# -- in `bctest clean`: find and end the processes of dead runs ---------------------------

@dataclass(frozen=True)
class RunProcess:
    """A process some run started, as found in /proc."""

    pid: int
    start: int
    owner: Owner
    run_id: str
    command: str

    @property
    def tracker(self) -> bool:
        """multiprocessing's resource tracker ignores SIGTERM; it leaves (unlinking what
        the run's processes left) once they are all gone."""
        return TRACKER in self.command


def _environ(pid: str, proc: Path) -> dict[str, str]:
    try:
        raw = (proc / pid / "environ").read_bytes()
    except OSError:   # gone, or another user's: not ours to judge
        return {}
    out = {}
    for entry in raw.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep and key in (OWNER_ENV.encode(), RUN_ENV.encode()):
            out[key.decode()] = value.decode(errors="replace")
    return out


def _command(pid: str, proc: Path) -> str:
    try:
        raw = (proc / pid / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")


def marked_processes(proc: Path = PROC) -> list[RunProcess]:
    """Every process carrying a run's mark (BCTEST_OWNER) that we may read."""
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        env = _environ(entry.name, proc)
        owner = parse_owner(env.get(OWNER_ENV, ""))
        if owner is None:
            continue
        started = start_time(entry.name, proc)
        if started is None:
            continue
        found.append(RunProcess(pid=int(entry.name), start=started, owner=owner,
                                run_id=env.get(RUN_ENV, "?"), command=_command(entry.name, proc)))
    return sorted(found, key=lambda p: p.pid)


def _ancestors(proc: Path) -> set[int]:
    """This process and its ancestors: never ours to end, whatever they carry."""
    out, pid = set(), os.getpid()
    while pid > 0 and pid not in out:
        out.add(pid)
        fields = _stat(pid, proc)
        pid = int(fields[1]) if fields and len(fields) > 1 else 0
    return out


def orphans(include_live: bool = False, proc: Path = PROC) -> list[RunProcess]:
    """Marked processes whose harness is gone (with include_live, those of live runs
    too, but never the owners themselves). Processes owned from another PID namespace
    are left alone: their owner's pid means nothing here."""
    here, mine = pid_namespace("self", proc), _ancestors(proc)
    out = []
    for process in marked_processes(proc):
        owner = process.owner
        if process.pid in mine or owner.pidns != here or process.pid == owner.pid:
            continue
        if include_live or not owner_alive(owner, proc):
            out.append(process)
    return out


@dataclass
class Ended:
    process: RunProcess
    how: str        # "SIGTERM", "SIGKILL", "left by itself" (a tracker), "gone", "failed: ..."


class _Handle:
    """Signals exactly one process: through a pidfd opened before its start time is checked
    again (so a pid reused since the scan is never signalled); by pid where the kernel has
    no pidfd (Linux < 5.3), checking the start time just before."""

    def __init__(self, process: RunProcess) -> None:
        self.process, self.fd = process, None
        try:
            self.fd = os.pidfd_open(process.pid)
        except ProcessLookupError:
            pass
        except OSError:   # no pidfd here
            pass
        self.alive = not _gone(process)

    def send(self, signum: int) -> str | None:
        """None when sent; else why not ("gone", or the error)."""
        try:
            if self.fd is not None:
                signal.pidfd_send_signal(self.fd, signum)
            elif _gone(self.process):
                return "gone"
            else:
                os.kill(self.process.pid, signum)
            return None
        except ProcessLookupError:
            return "gone"
        except OSError as exc:
            return f"failed: {exc.strerror or exc}"

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


def _gone(process: RunProcess) -> bool:
    return start_time(process.pid) != process.start


def _wait(processes: list[RunProcess], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(not _gone(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.05)


def end(processes: list[RunProcess], grace: float = 5.0) -> list[Ended]:
    """SIGTERM every process but the resource trackers, give them `grace` seconds (the
    trackers leave by themselves once the rest is gone), then SIGKILL what is left."""
    handles = [_Handle(p) for p in processes]
    ended = [Ended(p, "gone") for p in processes]
    try:
        for handle, outcome in zip(handles, ended, strict=True):
            if not handle.alive:
                continue
            outcome.how = "left by itself"
            if not handle.process.tracker:
                outcome.how = handle.send(signal.SIGTERM) or "SIGTERM"
        alive = [h for h in handles if h.alive]
        _wait([h.process for h in alive], grace)
        for handle, outcome in zip(handles, ended, strict=True):
            if handle.alive and not _gone(handle.process):
                why = handle.send(signal.SIGKILL)
                outcome.how = "SIGKILL" if why is None else (outcome.how if why == "gone" else why)
        _wait([h.process for h in alive], 2.0)
        for handle, outcome in zip(handles, ended, strict=True):
            if handle.alive and not _gone(handle.process) and not outcome.how.startswith("failed"):
                outcome.how = "failed: still running after SIGKILL"
    finally:
        for handle in handles:
            handle.close()
    return ended
