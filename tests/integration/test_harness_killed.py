"""Nothing a run starts outlives it, even when the harness itself is killed.

A real run (two CometBFT validators under load, the NFQUEUE delayer holding their
packets, node1 on its own loop-mounted data disk) gets SIGKILL mid-measure with both
faults active. Its children (senders, resource tracker, delayers) must go by themselves
within seconds; `bctest clean` must then leave no process, container, network, volume,
loop mount or host iptables rule of the run.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import lifetime
from harness.faults import netns
from harness.runtime import disks, hostguard

from .conftest import ROOT, bctest, run_objects, write_suite

SUITE = """
name: harness-killed
description: two CometBFT validators, NFQUEUE delay on both, node1's data disk part-filled
chain: cometbft
nodes: 2
seed: 9
params:
  timeout_commit: 1s
  broadcast_mode: sync
load:
  rate: 20
  warmup: 2
  duration: 90
  settle: 5
faults:
  - id: slow
    action: delay
    target: all
    delay_ms: 20
    via: nfqueue
    at: 3
    duration: 80
  - id: disk
    action: disk
    target: [node1]
    size: 8m
    at: 3
    duration: 80
checks:
  - id: anything committed
    metric: success_ratio
    op: ">="
    value: 0.0
"""


STRAY = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print('up', flush=True); time.sleep(120)")


def _processes_of(run_id: str, marked_only: bool, but: int = 0) -> list[str]:
    """Processes whose environment names the run (node processes in its containers carry
    BCTEST_RUN_ID too; the harness's own children also carry BCTEST_OWNER)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == but:
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"{lifetime.RUN_ENV}={run_id}".encode() not in env:
            continue
        if marked_only and not any(e.startswith(f"{lifetime.OWNER_ENV}=".encode()) for e in env):
            continue
        out.append(f"{entry.name} {command.strip()[:150]}")
    return out


def _owner_of(run_id: str) -> str:
    """The BCTEST_OWNER mark the run's children carry."""
    for process in lifetime.marked_processes():
        if process.run_id == run_id:
            return process.owner.token()
    raise AssertionError(f"no marked process of run {run_id}")


def _semaphores(pid: int) -> list[str]:
    """The POSIX named semaphores a process has mapped (multiprocessing's locks)."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return sorted({line.split()[-1] for line in maps if "/dev/shm/sem." in line})


def _mounts_under(folder: Path) -> list[str]:
    prefix = str(folder.resolve())
    return [line for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(prefix)]


def _loops_on(folder: Path) -> list[str]:
    done = subprocess.run(["losetup", "-a"], capture_output=True, text=True)
    return [line for line in done.stdout.splitlines() if str(folder.resolve()) in line]


def _host_rules() -> str:
    return "\n".join(subprocess.run(["iptables-save", *table], capture_output=True, text=True).stdout
                     for table in ((), ("-t", "nat")))


def _read_until(proc: subprocess.Popen, wanted: list[re.Pattern], fatal: re.Pattern,
                timeout: float) -> str:
    """The harness's output until every pattern matched or `fatal` did (or it exited, or
    time ran out)."""
    seen, deadline = "", time.monotonic() + timeout
    while (time.monotonic() < deadline and not all(p.search(seen) for p in wanted)
           and not fatal.search(seen)):
        readable, _, _ = select.select([proc.stdout], [], [], 1.0)
        if readable:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
    return seen


@pytest.mark.skipif(os.geteuid() != 0, reason="the NFQUEUE delay and the disk fault need root")
def test_sigkilled_harness_leaves_nothing_after_clean(docker_client, cometbft_image, tmp_path,
                                                      monkeypatch):
    missing = [t for t in (*netns.TOOLS, *disks.TOOLS, "losetup", "iptables-save") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on this host")
    disk_root = tmp_path / "disks"
    monkeypatch.setenv("BCTEST_DISKS", str(disk_root))   # the run and `bctest clean` alike
    suite = write_suite(tmp_path, "killed", SUITE)
    harness = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--out",
                                str(tmp_path / "run")], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    run_id, stray = None, None
    try:
        output = _read_until(harness, [re.compile(r"fault slow: delay node0, node1 at"),
                                       re.compile(r"fault disk: disk node1 at")],
                             re.compile(r"fault \w+: (skipped|\w+ .* failed)"), timeout=90)
        skipped = re.search(r"fault \w+: skipped \((.*)\)", output)
        if skipped:
            pytest.skip(f"a fault could not be applied here: {skipped.group(1)}")
        found = re.search(r"run (\w+):", output)
        assert found and "fault slow: delay" in output and "fault disk: disk" in output, output[-3000:]
        run_id = found.group(1)
        time.sleep(2)   # mid-measure, both faults active
        children = _processes_of(run_id, marked_only=True)
        assert any("harness.faults.nfqueue" in c for c in children), children
        assert any("spawn_main" in c for c in children), children
        assert _mounts_under(disk_root / run_id), "the disk fault's filesystem is not mounted"
        network = docker_client.networks.get(f"bctest-{run_id}")
        bridge, subnet = hostguard.bridge_name(run_id), network.attrs["IPAM"]["Config"][0]["Subnet"]
        guard = f"bctest.run={run_id}"   # the run's own host rule (runtime/hostguard.py)
        assert bridge in _host_rules() and guard in _host_rules()   # what we look for exists
        # A process of the run that escaped its parent (as a future child without
        # die_with_parent would) and ignores SIGTERM: clean must end it all the same.
        owner = _owner_of(run_id)
        stray = subprocess.Popen([sys.executable, "-c", STRAY], stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, lifetime.OWNER_ENV: owner, lifetime.RUN_ENV: run_id})
        assert stray.stdout.readline().strip() == "up"
        semaphores = _semaphores(harness.pid)
        assert semaphores, "the run's queues and events hold no named semaphore?"
        harness.send_signal(signal.SIGKILL)
        harness.wait(10)

        # Children die with the run, before anyone cleans.
        deadline = time.monotonic() + 10
        while _processes_of(run_id, marked_only=True, but=stray.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_of(run_id, marked_only=True, but=stray.pid) == [], "outlived the SIGKILLed harness"

        # Another run starting on this engine may remove the dead run's engine objects
        # first; the data disk lives under our own BCTEST_DISKS: only this clean unmounts it.
        cleaned = bctest("clean", timeout=120)
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert re.search(rf"run {run_id}: removed .*1 data disk \(unmounted\)", cleaned.stdout), \
            cleaned.stdout
        assert f"run {run_id}: ended process {stray.pid} (SIGKILL)" in cleaned.stdout, cleaned.stdout
        assert stray.wait(5) == -signal.SIGKILL
        assert _processes_of(run_id, marked_only=False) == []
        assert run_objects(docker_client, run_id) == []
        assert _mounts_under(disk_root) == [] and _loops_on(disk_root) == []
        # The resource tracker unlinked what the dead run's queues and events left.
        assert [name for name in semaphores if Path(name).exists()] == []
        assert not (disk_root / run_id).exists()
        rules = _host_rules()
        assert bridge not in rules and subnet not in rules and guard not in rules and "bct-" not in rules
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
        if stray is not None:
            stray.kill()
            stray.wait()
        if run_id:   # whatever the assertions found, leave the machine clean
            bctest("clean", timeout=120)
