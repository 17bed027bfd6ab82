"""skew: step (and optionally drift) the clocks of the target nodes, not the host's.

Containers share the host kernel's clock, so the harness brings its own libfaketime
(the engine host's Debian package, same glibc as the node images) into each node a skew
step names: at container creation a harness-owned per-run folder is bind-mounted
read-only at MOUNT, holding a copy of the library and a timestamp file, and the
container's environment preloads it (LD_PRELOAD must be there when the process starts).
The file says "+0" until the fault applies; the fault rewrites it on the host to
"+<seconds>" (and, with `drift`, to the growing offset once a second), and the heal
writes "+0" again. libfaketime re-reads the file at most once a second
(FAKETIME_CACHE_DURATION=1). The node cannot write the file.

A statically linked node binary (geth and CometBFT are built CGO_ENABLED=0) ignores
LD_PRELOAD: before applying, the harness looks at the node's processes from the host
(/proc/<pid>/maps must map the library) and skips a node it did not reach, saying why
(no ELF interpreter: static). Only the wall clock moves (FAKETIME_DONT_FAKE_MONOTONIC),
as when NTP steps a clock; with that setting libfaketime 0.9.10 fails absolute
CLOCK_MONOTONIC sleeps (clock_nanosleep TIMER_ABSTIME, e.g. Python's time.sleep) with
EINVAL, which C/C++, Rust and Go nodes do not use. `drift` is a staircase of
one-second steps.
"""

from __future__ import annotations

import os
import shutil
import struct
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.faults.kinds.base import ContainerOptions, FaultContext, FaultKind

if TYPE_CHECKING:
    from harness.faults.schedule import FaultStep

MOUNT = "/opt/bctest-faketime"            # in the container, read-only
LIBRARY = "libfaketimeMT.so.1"            # the thread-safe build: node daemons are multithreaded
CLOCK_FILE = "faketime.rc"
TICK = 1.0                                # seconds between drift rewrites


def host_library() -> Path:
    """The engine host's libfaketime (Debian: apt-get install libfaketime)."""
    return Path(os.environ.get("BCTEST_LIBFAKETIME",
                               f"/usr/lib/x86_64-linux-gnu/faketime/{LIBRARY}"))


def offset_text(seconds: float) -> str:
    """libfaketime's relative offset: a sign and seconds ("+10800", "-0.5")."""
    return f"{seconds:+.3f}".rstrip("0").rstrip(".")


def write_offset(path: Path, seconds: float) -> None:
    """Replace the timestamp file at once (a rename: never read half-written)."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_text(offset_text(seconds) + "\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


# -- which processes the preload reached (read from the host's /proc) ------------------

def elf_interpreter(path: str | Path) -> bool | None:
    """Does the ELF file ask for a program interpreter (PT_INTERP: dynamically linked)?
    None when it is no ELF file or cannot be read."""
    try:
        with open(path, "rb") as elf:
            head = elf.read(64)
            if head[:4] != b"\x7fELF":
                return None
            wide, order = head[4] == 2, "<" if head[5] == 1 else ">"
            if wide:
                phoff, = struct.unpack_from(order + "Q", head, 0x20)
                size, count = struct.unpack_from(order + "HH", head, 0x36)
            else:
                phoff, = struct.unpack_from(order + "I", head, 0x1C)
                size, count = struct.unpack_from(order + "HH", head, 0x2A)
            for number in range(count):
                elf.seek(phoff + number * size)
                kind, = struct.unpack(order + "I", elf.read(4))
                if kind == 3:   # PT_INTERP
                    return True
            return False
    except (OSError, struct.error):
        return None


def process_tree(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """`pid` and its descendants, from every process's parent id."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def unreached(pid: int, proc: Path = Path("/proc")) -> dict[str, str]:
    """Processes of a node's tree that do not map libfaketime: program -> why."""
    missed: dict[str, str] = {}
    for member in process_tree(pid, proc):
        try:
            maps = (proc / str(member) / "maps").read_text()
        except OSError as exc:
            if member == pid:
                missed[f"pid {pid}"] = f"its memory map cannot be read from this host ({exc.strerror})"
            continue   # a child that exited meanwhile
        if "libfaketime" in maps:
            continue
        exe = proc / str(member) / "exe"
        try:
            program = os.readlink(exe)
        except OSError:
            program = f"pid {member}"
        dynamic = elf_interpreter(exe)
        missed[program] = ("is statically linked (no ELF interpreter), so LD_PRELOAD cannot reach it"
                           if dynamic is False else "does not map the preloaded library")
    return missed


class Skew(FaultKind):
    name = "skew"
    settings = {
        "seconds": {"type": "number", "minimum": -315360000, "maximum": 315360000,
                    "description": "skew: the target clocks' step at the start, in seconds (negative: "
                                   "behind); the heal steps them back"},
        "drift": {"type": "number", "minimum": -86400, "maximum": 86400,
                  "description": "skew: seconds per second the target clocks gain (negative: lose) "
                                 "while the fault lasts, on top of `seconds`"},
    }
    required = ("seconds",)
    description = (f"libfaketime ({LIBRARY} of the engine host, bind-mounted read-only at {MOUNT} and "
                   "preloaded from container creation): its timestamp file rewritten on the host to the "
                   "offset at the start, +0 at the heal")

    def method(self, ctx: FaultContext) -> str:
        if ctx.step.settings.get("drift"):
            return self.description.replace("at the start", f"at the start and every {TICK:g} s (drift)")
        return self.description

    def container_options(self, steps: list[FaultStep], index: int, workdir: Path) -> ContainerOptions | None:
        if not any(index in step.nodes for step in steps):
            return None
        library = host_library()
        if not library.is_file():
            return None   # the step is skipped with the reason (skip_reason)
        folder = workdir.resolve() / "faketime" / f"node{index}"
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o755)   # node images run as users the host does not know
        shutil.copyfile(library, folder / LIBRARY)
        os.chmod(folder / LIBRARY, 0o644)
        write_offset(folder / CLOCK_FILE, 0.0)
        return ContainerOptions(binds={str(folder): MOUNT}, environment={
            "LD_PRELOAD": f"{MOUNT}/{LIBRARY}",
            "FAKETIME_TIMESTAMP_FILE": f"{MOUNT}/{CLOCK_FILE}",
            "FAKETIME_CACHE_DURATION": "1",   # a rewrite is seen within ~2 s
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",   # a stepped wall clock, as NTP steps it
            "NO_FAKE_STAT": "1",              # file times stay what the kernel wrote
        })

    def _clock_file(self, ctx: FaultContext, node: Any) -> tuple[Path | None, str | None]:
        """(the node's timestamp file on the host, or None and why not)."""
        container = ctx.runtime.container(node)
        mounts = container.attrs.get("Mounts") or []
        source = next((m.get("Source") for m in mounts if m.get("Destination") == MOUNT), None)
        if source is None:
            why = "its container was created without the harness's libfaketime"
            if not host_library().is_file():
                why += f" ({host_library()} is missing on the engine's host: apt-get install libfaketime)"
            return None, why
        pid = ctx.runtime.pid(node)
        if pid <= 0:
            return None, "it is not running"
        missed = unreached(pid)
        if missed:
            return None, "; ".join(f"its process {program} {why}" for program, why in missed.items())
        return Path(source) / CLOCK_FILE, None

    def skip_reason(self, ctx: FaultContext) -> str | None:
        files, skipped = {}, {}
        for node in ctx.targets():
            path, why = self._clock_file(ctx, node)
            if path is None:
                skipped[node.name] = why
            else:
                files[node.name] = path
        ctx.state["files"] = files
        if skipped:
            ctx.params["not_skewed"] = skipped
        if files:
            return None
        return "clock skew not applied: " + "; ".join(f"{name}: {why}" for name, why in skipped.items())

    def apply(self, ctx: FaultContext) -> None:
        seconds = float(ctx.step.settings["seconds"])
        drift = float(ctx.step.settings.get("drift") or 0)
        files: dict[str, Path] = ctx.state["files"]
        for path in files.values():
            write_offset(path, seconds)
        ctx.params["skewed"] = sorted(files)
        ctx.params["offset_at_start"] = offset_text(seconds)
        if drift:
            stop = threading.Event()
            begun = time.monotonic()

            def tick() -> None:   # the offset grows by `drift` a second until the heal
                while not stop.wait(TICK):
                    offset = seconds + drift * (time.monotonic() - begun)
                    for path in files.values():
                        write_offset(path, offset)
                    ctx.state["offset"] = offset
            ctx.state["ticker"] = threading.Thread(target=tick, name=f"skew-{ctx.step.id}", daemon=True)
            ctx.state["stop"] = stop
            ctx.state["ticker"].start()

    def heal(self, ctx: FaultContext) -> None:
        ticker: threading.Thread | None = ctx.state.pop("ticker", None)
        if ticker is not None:
            ctx.state["stop"].set()
            ticker.join()
            reached = ctx.state.get("offset", float(ctx.step.settings["seconds"]))
            ctx.params["offset_at_heal"] = offset_text(reached)
        for path in ctx.state.get("files", {}).values():
            write_offset(path, 0.0)


KIND = Skew()
