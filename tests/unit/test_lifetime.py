"""Nothing a run starts outlives it: which processes `bctest clean` may end (fake /proc),
how it ends them, and children dying with their parent (real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import lifetime
from harness.faults import nfqueue
from harness.lifetime import Owner, RunProcess

NS = "4026531836"
ROOT = Path(__file__).resolve().parents[2]


def stat_line(pid: int, start: int, state: str = "S", ppid: int = 1, comm: str = "python") -> str:
    # Fields 3.. of /proc/<pid>/stat: state, ppid, 17 others, starttime (field 22).
    return f"{pid} ({comm}) {state} {ppid} " + " ".join(["0"] * 17) + f" {start} 0 0\n"


def add(proc: Path, pid: int, start: int, env: dict[str, str] | None = None, state: str = "S",
        command: str = "python -m something", comm: str = "python", ppid: int = 1) -> None:
    folder = proc / str(pid)
    folder.mkdir()
    (folder / "stat").write_text(stat_line(pid, start, state, ppid, comm))
    (folder / "cmdline").write_bytes(command.replace(" ", "\0").encode() + b"\0")
    if env is not None:
        (folder / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in
                                                    {"PATH": "/usr/bin", **env}.items()) + b"\0")


def marks(owner: str, run: str = "r1") -> dict[str, str]:
    return {lifetime.OWNER_ENV: owner, lifetime.RUN_ENV: run}


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    """A /proc with one live harness (pid 100, started at tick 5000) and what runs left."""
    root = tmp_path / "proc"
    root.mkdir()
    (root / "self" / "ns").mkdir(parents=True)
    (root / "self" / "ns" / "pid").symlink_to(f"pid:[{NS}]")
    (root / "self" / "stat").write_text(stat_line(os.getpid(), 1))
    add(root, 100, 5000, {})                                         # the live harness itself
    add(root, 101, 5100, marks(f"{NS}:100:5000", "live"))             # its sender: live run
    add(root, 102, 6100, marks(f"{NS}:200:6000", "dead"))             # owner 200 gone
    add(root, 300, 9999, {})                                          # a stranger now holds pid 300
    add(root, 103, 7100, marks(f"{NS}:300:7000", "reused"),           # owner 300 (started 7000) gone
        command="python -B -c from multiprocessing.resource_tracker import main;main(5)")
    add(root, 104, 1, marks("4026532000:400:1", "foreign"))           # another PID namespace
    add(root, 105, 1)                                                 # environ unreadable
    add(root, 106, 8100, marks(f"{NS}:200:6000", "dead"), state="Z")  # a zombie: dead already
    add(root, 107, 8200, marks("garbage", "bad"))
    add(root, 108, 8300, marks(f"{NS}:108:8300", "self-owned"))       # an owner carrying its own mark
    add(root, 109, 8400, {"BCTEST_RUN_ID": "nodeonly"},               # a node process in a container
        comm="anvil ) S 1 (x")
    (root / "110").mkdir()                                            # vanished while listed
    (root / "net").mkdir()
    return root


def test_owner_token_round_trips_and_garbage_is_no_owner():
    owner = Owner(NS, 42, 123456)
    assert lifetime.parse_owner(owner.token()) == owner
    for bad in ("", "1:2", "a:1:2", "1:2:3:4", "1:-2:3", " : : "):
        assert lifetime.parse_owner(bad) is None


def test_start_time_reads_field_22_even_past_a_command_name_with_parens(proc):
    assert lifetime.start_time(109, proc) == 8400
    assert lifetime.start_time(106, proc) is None      # zombie
    assert lifetime.start_time(999, proc) is None      # no such process
    assert lifetime.pid_namespace("self", proc) == NS


def test_marked_processes_are_those_with_a_readable_owner_mark(proc):
    found = {p.pid: p for p in lifetime.marked_processes(proc)}
    assert sorted(found) == [101, 102, 103, 104, 108]
    assert found[103] == RunProcess(103, 7100, Owner(NS, 300, 7000), "reused", found[103].command)
    assert found[103].tracker and not found[102].tracker
    assert found[102].command == "python -m something"


def test_orphans_are_marked_processes_whose_owner_is_gone_or_reused(proc):
    assert [p.pid for p in lifetime.orphans(proc=proc)] == [102, 103]


def test_all_takes_live_runs_too_but_never_an_owner_or_another_namespace(proc):
    assert [p.pid for p in lifetime.orphans(include_live=True, proc=proc)] == [101, 102, 103]


def test_never_this_process_or_its_ancestors(proc, monkeypatch):
    monkeypatch.setattr(os, "getpid", lambda: 102)
    (proc / "102" / "stat").write_text(stat_line(102, 6100, ppid=103))
    assert lifetime.orphans(proc=proc) == []


def spawn(code: str, env_marks: bool = True) -> subprocess.Popen:
    env = {**os.environ, lifetime.OWNER_ENV: f"{NS}:1:1", lifetime.RUN_ENV: "unit"} if env_marks else None
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "up"
    return proc


def as_run_process(proc: subprocess.Popen, command: str = "python -c ...") -> RunProcess:
    return RunProcess(proc.pid, lifetime.start_time(proc.pid), Owner(NS, 1, 1), "unit", command)


STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('up', flush=True); time.sleep(60)")
POLITE = "import time; print('up', flush=True); time.sleep(60)"


def test_end_sends_sigterm_then_sigkill_and_spares_the_tracker_sigterm():
    polite, stubborn, tracker = spawn(POLITE), spawn(STUBBORN), spawn(POLITE)
    try:
        ended = lifetime.end([as_run_process(polite), as_run_process(stubborn),
                              as_run_process(tracker, "python -c " + lifetime.TRACKER)], grace=0.5)
        assert [e.how for e in ended] == ["SIGTERM", "SIGKILL", "SIGKILL"]
        assert polite.wait(5) == -signal.SIGTERM
        assert stubborn.wait(5) == -signal.SIGKILL
        assert tracker.wait(5) == -signal.SIGKILL    # never asked to terminate: it ignores that
    finally:
        for p in (polite, stubborn, tracker):
            p.kill()
            p.wait()


def test_end_never_signals_a_pid_whose_start_time_changed():
    stranger = spawn(POLITE, env_marks=False)
    try:
        reused = as_run_process(stranger)
        reused = RunProcess(reused.pid, reused.start - 1, reused.owner, "unit", "old")
        assert [e.how for e in lifetime.end([reused], grace=0.2)] == ["gone"]
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_end_works_without_pidfds(monkeypatch):
    def no_pidfd(_pid):
        raise OSError(38, "Function not implemented")
    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    polite = spawn(POLITE)
    try:
        assert [e.how for e in lifetime.end([as_run_process(polite)], grace=0.5)] == ["SIGTERM"]
        assert polite.wait(5) == -signal.SIGTERM
    finally:
        polite.kill()
        polite.wait()


PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdout=subprocess.PIPE, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
time.sleep(60)
"""
CHILD = """
import os, sys, time
from harness import lifetime
lifetime.die_with_parent(int(sys.argv[1]) or os.getppid())
print("armed", flush=True)
time.sleep(60)
"""


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lifetime.start_time(pid) is None:
            return True
        time.sleep(0.05)
    return False


def test_a_child_dies_with_its_sigkilled_parent():
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, "0"], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        pid, state = parent.stdout.readline().split()
        assert state == "armed"
        assert lifetime.start_time(int(pid)) is not None
        parent.kill()
        parent.wait()
        assert _gone(int(pid), 5), "the child outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait()


def test_a_child_whose_parent_died_before_it_armed_leaves_at_once():
    # Expecting a parent it does not have is what a child adopted before the prctl sees.
    child = subprocess.run([sys.executable, "-c", CHILD, "1"], cwd=ROOT, capture_output=True,
                           text=True, timeout=30)
    assert child.returncode == -signal.SIGKILL and "armed" not in child.stdout


def test_the_delayer_does_not_start_for_a_run_already_gone(capsys):
    assert nfqueue.serve(0, 10, 0, 0, parent=os.getppid() + 1) == 1
    assert "is gone" in capsys.readouterr().err


def test_mark_run_marks_the_environment_children_inherit(monkeypatch):
    monkeypatch.delenv(lifetime.OWNER_ENV, raising=False)
    monkeypatch.delenv(lifetime.RUN_ENV, raising=False)
    owner = lifetime.mark_run("unit-run")
    assert owner.pid == os.getpid() and owner.start == lifetime.start_time(os.getpid())
    seen = subprocess.run([sys.executable, "-c", "import os; print(os.environ['BCTEST_OWNER'], "
                           "os.environ['BCTEST_RUN_ID'])"], capture_output=True, text=True).stdout.split()
    assert seen == [owner.token(), "unit-run"]
    assert lifetime.owner_alive(owner)


class FakeObjects:
    def __init__(self, items):
        self.items = items

    def list(self, **_kw):
        return self.items


def test_leftover_runs_judge_the_owner_by_pid_and_start_time(monkeypatch, tmp_path):
    from harness.runtime import docker as rt

    monkeypatch.setenv("BCTEST_DISKS", str(tmp_path / "disks"))
    # Only the fake engine's objects: the host's real guard rules belong to whatever other
    # runs are alive on this machine right now.
    monkeypatch.setattr(rt.hostguard, "guarded_runs", lambda: set())
    here = rt.socket.gethostname()
    me = lifetime.this_process()
    reused = Owner(me.pidns, me.pid, me.start + 1)      # our pid, another process's start
    base = {rt.HOST_LABEL: here, rt.PIDNS_LABEL: rt._pid_namespace(), rt.PID_LABEL: str(me.pid)}

    def obj(run, **labels):
        return SimpleNamespace(attrs={"Labels": {rt.RUN_LABEL: run, **base, **labels}})
    client = SimpleNamespace(
        containers=FakeObjects([obj("live", **{rt.OWNER_LABEL: me.token()}),
                                obj("reused", **{rt.OWNER_LABEL: reused.token()}),
                                obj("old-label")]),           # 0.2.0 labels: pid only, alive
        networks=FakeObjects([obj("foreign", **{rt.HOST_LABEL: "elsewhere",
                                                rt.OWNER_LABEL: reused.token()})]),
        volumes=FakeObjects([]))
    assert rt.leftover_runs(client) == ["reused"]
    assert rt.leftover_runs(client, include_live=True) == ["foreign", "live", "old-label", "reused"]


def test_disk_folders_of_a_gone_owner_are_orphans_at_once_of_a_live_one_never(tmp_path, monkeypatch):
    from harness.runtime import disks

    monkeypatch.setenv("BCTEST_DISKS", str(tmp_path))
    me = lifetime.this_process()
    owners = {"mine": me, "gone": Owner(me.pidns, me.pid, me.start + 1),
              "elsewhere": Owner("1", me.pid, me.start + 1)}   # another PID namespace: by age
    for name, owner in owners.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / disks.OWNER).write_text(owner.token())
    old = time.time() - 600
    os.utime(tmp_path / "mine", (old, old))
    assert disks.orphaned_runs(set()) == ["gone"]


def test_clean_names_what_it_removed():
    from harness.runtime.docker import Removed

    removed = Removed(containers=["bctest-r-node0", "bctest-r-node1"], networks=["bctest-r"], disks=1)
    assert removed.count == 4
    assert removed.describe() == ("2 containers (bctest-r-node0, bctest-r-node1); 1 network (bctest-r); "
                                  "1 data disk (unmounted)")
    assert Removed().describe() == "nothing (already gone)"


ABANDONING = """
import multiprocessing, time
from harness import lifetime
if __name__ == "__main__":
    lifetime.mark_run("unit-orphans")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()              # a named semaphore: the resource tracker has work
    worker = context.Process(target=time.sleep, args=(60,))   # no die_with_parent
    worker.start()
    time.sleep(0.5)   # past its bootstrap: killed while still reading its spawn data, it would just exit
    print(worker.pid if worker.is_alive() else -1, flush=True)
    time.sleep(60)
"""


def test_clean_ends_an_abandoned_worker_and_the_tracker_then_leaves_by_itself():
    harness = subprocess.Popen([sys.executable, "-c", ABANDONING], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True)
    try:
        worker = int(harness.stdout.readline())
        harness.kill()
        harness.wait()
        found = [p for p in lifetime.orphans() if p.run_id == "unit-orphans"]
        assert sorted(p.tracker for p in found) == [False, True] and worker in [p.pid for p in found]
        ended = {("tracker" if e.process.tracker else "worker"): e.how for e in lifetime.end(found, grace=5)}
        assert ended == {"worker": "SIGTERM", "tracker": "left by itself"}
        assert [p for p in lifetime.orphans() if p.run_id == "unit-orphans"] == []
    finally:
        harness.kill()
        harness.wait()
        for p in lifetime.orphans():
            if p.run_id == "unit-orphans":
                os.kill(p.pid, signal.SIGKILL)
