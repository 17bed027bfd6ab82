"""The skew kind: its libfaketime files, offsets, the static-binary check, and the real
library's reading of the timestamp file the fault rewrites."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.faults.kinds import FaultContext, skew
from harness.faults.schedule import plan

KIND = skew.KIND


def steps(*faults, nodes=4):
    return plan(list(faults), nodes, 1, 1, 100.0, "suite.yaml")


def test_offsets_are_written_as_libfaketime_reads_them(tmp_path):
    assert [skew.offset_text(s) for s in (10800, -7200, 0, 0.5, -1.25)] == \
        ["+10800", "-7200", "+0", "+0.5", "-1.25"]
    path = tmp_path / "faketime.rc"
    skew.write_offset(path, -3.5)
    assert path.read_text() == "-3.5\n" and oct(path.stat().st_mode & 0o777) == "0o644"
    assert not list(tmp_path.glob("*.new"))


def test_seconds_is_required_and_drift_optional():
    with pytest.raises(InputError, match=r"faults\[0\].seconds"):
        steps({"action": "skew", "at": 1, "duration": 5})
    [step] = steps({"action": "skew", "seconds": -60, "drift": 2, "target": ["node1"], "at": 1,
                    "duration": 5})
    assert step.settings == {"seconds": -60, "drift": 2} and step.nodes == (1,)


@pytest.fixture
def library(tmp_path, monkeypatch):
    lib = tmp_path / "host" / skew.LIBRARY
    lib.parent.mkdir()
    lib.write_bytes(b"\x7fELF stand-in")
    monkeypatch.setenv("BCTEST_LIBFAKETIME", str(lib))
    return lib


def test_container_options_only_for_the_nodes_a_skew_step_names(tmp_path, library):
    plan_ = steps({"action": "skew", "seconds": 10, "target": ["node2"], "at": 1, "duration": 5})
    assert KIND.container_options(plan_, 0, tmp_path / "run") is None
    options = KIND.container_options(plan_, 2, tmp_path / "run")
    folder = (tmp_path / "run" / "faketime" / "node2").resolve()
    assert options.binds == {str(folder): skew.MOUNT}
    assert options.environment["LD_PRELOAD"] == f"{skew.MOUNT}/{skew.LIBRARY}"
    assert options.environment["FAKETIME_TIMESTAMP_FILE"] == f"{skew.MOUNT}/{skew.CLOCK_FILE}"
    assert (folder / skew.CLOCK_FILE).read_text() == "+0\n"          # real time until the fault
    assert (folder / skew.LIBRARY).read_bytes() == library.read_bytes()


def test_no_library_on_the_host_means_no_preload_and_a_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("BCTEST_LIBFAKETIME", str(tmp_path / "absent.so"))
    plan_ = steps({"action": "skew", "seconds": 10, "target": ["node0"], "at": 1, "duration": 5})
    assert KIND.container_options(plan_, 0, tmp_path) is None
    ctx = _context(tmp_path, plan_[0], mounts={})
    reason = KIND.skip_reason(ctx)
    assert "created without the harness's libfaketime" in reason and "apt-get install libfaketime" in reason


def test_elf_interpreter_tells_static_from_dynamic(tmp_path):
    assert skew.elf_interpreter(os.path.realpath("/bin/sh")) is True
    static = shutil.which("ldconfig") or "/sbin/ldconfig"
    if not Path(static).exists():
        pytest.skip("no ldconfig (a static-pie binary on Debian) on this host")
    assert skew.elf_interpreter(static) is False
    (tmp_path / "script").write_text("#!/bin/sh\n")
    assert skew.elf_interpreter(tmp_path / "script") is None


def _fake_proc(root: Path, processes: dict[int, tuple[int, str, str]]) -> Path:
    """pid -> (parent, executable, maps) as /proc shows them."""
    for pid, (parent, exe, maps) in processes.items():
        folder = root / str(pid)
        folder.mkdir(parents=True)
        (folder / "stat").write_text(f"{pid} (some prog) S {parent} 1 1 0")
        (folder / "maps").write_text(maps)
        (folder / "exe").symlink_to(exe)
    return root


def test_unreached_names_a_static_process_of_the_node(tmp_path):
    static = shutil.which("ldconfig") or "/sbin/ldconfig"
    if not Path(static).exists():
        pytest.skip("no ldconfig (a static-pie binary on Debian) on this host")
    preloaded = f"7f00 r-xp 0 08:01 1 {skew.MOUNT}/{skew.LIBRARY}\n"
    proc = _fake_proc(tmp_path / "proc", {
        1: (0, "/bin/true", ""), 100: (1, os.path.realpath("/bin/sh"), preloaded),
        101: (100, static, "7f00 r-xp 0 08:01 1 /usr/bin/node\n"), 200: (1, "/bin/true", "")})
    assert sorted(skew.process_tree(100, proc)) == [100, 101]
    missed = skew.unreached(100, proc)
    assert list(missed) == [static] and "statically linked" in missed[static]
    assert skew.unreached(101, proc) == {static: missed[static]}
    assert skew.unreached(100, _fake_proc(tmp_path / "p2", {100: (1, "/bin/sh", preloaded)})) == {}


@dataclass
class FakeContainer:
    attrs: dict


@dataclass
class FakeRuntime:
    mounts: dict[str, str]               # node name -> host folder at MOUNT
    pids: dict[str, int] = field(default_factory=dict)

    def container(self, node):
        source = self.mounts.get(node.name)
        return FakeContainer({"Mounts": [{"Destination": skew.MOUNT, "Source": source}] if source else []})

    def pid(self, node):
        return self.pids.get(node.name, 0)


@dataclass
class FakeNode:
    name: str
    index: int
    ip: str = ""


def _context(tmp_path, step, mounts, pids=None):
    runtime = FakeRuntime(mounts, pids or {})
    nodes = [FakeNode(f"node{i}", i) for i in range(4)]
    return FaultContext(runtime=runtime, nodes=nodes, step=step, number=0, params={})


def test_a_node_not_running_is_skipped_with_the_reason(tmp_path, library):
    [step] = steps({"action": "skew", "seconds": 5, "target": ["node1"], "at": 1, "duration": 5})
    ctx = _context(tmp_path, step, {"node1": str(tmp_path)})
    assert KIND.skip_reason(ctx) == "clock skew not applied: node1: it is not running"
    assert ctx.params["not_skewed"] == {"node1": "it is not running"}


def test_step_and_drift_rewrite_the_file_and_the_heal_restores_real_time(tmp_path, library, monkeypatch):
    [step] = steps({"action": "skew", "seconds": -100, "drift": 50, "target": ["node1", "node2"],
                    "at": 1, "duration": 5})
    folders = {}
    for index in (1, 2):
        KIND.container_options([step], index, tmp_path)
        folders[f"node{index}"] = str(tmp_path.resolve() / "faketime" / f"node{index}")
    monkeypatch.setattr(skew, "unreached",
                        lambda pid: {} if pid == 11 else {"/usr/bin/cometbft": "is static"})
    monkeypatch.setattr(skew, "TICK", 0.05)
    ctx = _context(tmp_path, step, folders, pids={"node1": 11, "node2": 12})
    assert KIND.skip_reason(ctx) is None                    # node1 reached: applied there
    assert ctx.params["not_skewed"] == {"node2": "its process /usr/bin/cometbft is static"}
    KIND.apply(ctx)
    clock = Path(folders["node1"]) / skew.CLOCK_FILE
    first = float(clock.read_text())
    assert first == -100 or first > -100
    time.sleep(0.3)
    later = float(clock.read_text())
    assert later > first, "drift did not move the offset"
    assert (Path(folders["node2"]) / skew.CLOCK_FILE).read_text() == "+0\n"   # never skewed
    KIND.heal(ctx)
    assert clock.read_text() == "+0\n"
    assert ctx.params["skewed"] == ["node1"] and ctx.params["offset_at_start"] == "-100"
    assert float(ctx.params["offset_at_heal"]) > -100
    assert "every" in KIND.method(ctx)


def test_the_real_library_follows_the_rewritten_file(tmp_path):
    """What the fault relies on, with the host's libfaketime, the environment a node gets
    and a dynamic python: "+N"
    is picked up within ~2 s (the cache second, in whole seconds), and "+0" brings real time back."""
    library = skew.host_library()
    if not library.is_file():
        pytest.skip(f"{library} is missing (apt-get install libfaketime; scripts/setup does)")
    [step] = steps({"action": "skew", "seconds": 1, "target": ["node0"], "at": 1, "duration": 5})
    options = KIND.container_options([step], 0, tmp_path)
    [folder] = options.binds
    clock = Path(folder) / skew.CLOCK_FILE
    probe = ("import time, sys\n"
             "for line in sys.stdin:\n"
             "    print(round(time.time()), flush=True)\n")
    # The container's environment, with the host folder where the container has MOUNT.
    env = {**os.environ, **{k: v.replace(skew.MOUNT, folder) for k, v in options.environment.items()}}
    process = subprocess.Popen([sys.executable, "-c", probe], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env=env)

    def offset() -> float:
        process.stdin.write("\n")
        process.stdin.flush()
        return float(process.stdout.readline()) - time.time()

    def settles_at(expected: float) -> bool:   # the library re-reads the file within ~2 s
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            if abs(offset() - expected) < 2:
                return True
            time.sleep(0.2)
        return False
    try:
        assert settles_at(0)
        for seconds in (10800, -7200, 0):
            skew.write_offset(clock, seconds)
            assert settles_at(seconds), f"the process never saw {skew.offset_text(seconds)}"
    finally:
        process.kill()
        process.wait()
