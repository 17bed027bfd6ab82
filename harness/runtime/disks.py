"""Size-limited data filesystems for nodes: the ground the `disk` fault fills.

A container's writable layer lives on the host's disk, so filling it would fill the
host. A node targeted by a disk fault instead gets its own small ext4 filesystem (a
sparse image file, loop-mounted on the engine's host) bind-mounted at the chain pack's
`data_dir`. The fault fills it with one preallocated file and the heal deletes that
file; the node sees "No space left on device" in between, as on a real full disk. The
filesystem survives kill/stop/restart like the writable layer would, and a `wipe`
formats it again.

Needs root, mount/umount/mkfs.ext4 and loop devices on the engine's host, and the
harness in the host's mount namespace (the engine resolves the bind source there).
Everything lives under $BCTEST_DISKS (default /var/lib/bctest/disks)/<run id>/ and is
unmounted and deleted at teardown, and by `bctest clean` for dead runs.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat as stat_module
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness import lifetime
from harness.errors import InfraError

TOOLS = ("mount", "umount", "mkfs.ext4")
CAPACITY = 256 << 20   # each data filesystem: room for a test run's ledger, small to fill
FILLER = ".bctest-disk-fill"
OWNER = ".bctest-owner"   # the harness process that made the run's disks (harness.lifetime)


def root() -> Path:
    return Path(os.environ.get("BCTEST_DISKS", "/var/lib/bctest/disks"))


@dataclass
class DataDisk:
    node: str
    size: int              # bytes
    image: Path            # the sparse ext4 image file
    mountpoint: Path       # bind-mounted into the container at the pack's data_dir


def preflight() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise InfraError(f"the disk fault needs {', '.join(missing)} on this host "
                         "(Debian: apt-get install mount e2fsprogs)")
    if os.geteuid() != 0:
        raise InfraError("the disk fault loop-mounts a small filesystem per node, which needs root: "
                         "run bctest as root (or drop the disk fault)")
    if not Path("/dev/loop-control").exists():
        raise InfraError("the disk fault needs loop devices (/dev/loop-control is missing)")


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise InfraError(f"{' '.join(argv)} failed: {(done.stderr or done.stdout).strip()[:300]}")


def _format_and_mount(disk: DataDisk) -> None:
    with open(disk.image, "wb") as image:
        image.truncate(disk.size)          # sparse: costs the host only what the node writes
    _run("mkfs.ext4", "-q", "-F", "-m", "0", str(disk.image))   # -m 0: no root reserve
    disk.mountpoint.mkdir(parents=True, exist_ok=True)
    _run("mount", "-o", "loop", str(disk.image), str(disk.mountpoint))
    # Node images run as users the host does not know; the filesystem root must be theirs.
    os.chmod(disk.mountpoint, 0o1777)
    shutil.rmtree(disk.mountpoint / "lost+found", ignore_errors=True)


def create(run_id: str, node: str, size: int) -> DataDisk:
    folder = root() / run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OWNER).write_text(lifetime.this_process().token())
    disk = DataDisk(node=node, size=size, image=folder / f"{node}.ext4", mountpoint=folder / node)
    _format_and_mount(disk)
    return disk


def reformat(disk: DataDisk) -> None:
    """Empty the node's filesystem (the wipe fault): unmount, format, mount again."""
    _unmount(disk.mountpoint)
    _format_and_mount(disk)


def free_bytes(disk: DataDisk) -> int:
    stat = os.statvfs(disk.mountpoint)
    return stat.f_bavail * stat.f_frsize


def used_bytes(disk: DataDisk) -> int:
    stat = os.statvfs(disk.mountpoint)
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize


def _open_filler(mountpoint: Path) -> int:
    """The filler file, opened as root on the host without ever following what the node
    planted: relative to a handle on the mount root, no links (O_NOFOLLOW), never blocking
    on a FIFO, and only a regular file on the node's own filesystem. Anything else at that
    name is removed (it is the node's, on its own disk) and the file made afresh."""
    root = os.open(mountpoint, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        device = os.fstat(root).st_dev
        for _ in range(3):
            try:
                fd = os.open(FILLER, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600,
                             dir_fd=root)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
                    raise
                _remove_planted(root)
                continue
            info = os.fstat(fd)
            if stat_module.S_ISREG(info.st_mode) and info.st_dev == device and info.st_nlink == 1:
                os.set_blocking(fd, True)
                return fd
            os.close(fd)
            _remove_planted(root)
        raise OSError(errno.EEXIST, f"{mountpoint / FILLER} keeps being replaced; disk not filled")
    finally:
        os.close(root)


def _remove_planted(root: int) -> None:
    try:
        os.unlink(FILLER, dir_fd=root)
    except IsADirectoryError:
        shutil.rmtree(FILLER, dir_fd=root)
    except FileNotFoundError:
        pass


def fill(disk: DataDisk, size: int | None) -> int:
    """Take `size` bytes of the node's free space (all of it when None or more than is
    free) with one preallocated file; return the bytes taken."""
    with os.fdopen(_open_filler(disk.mountpoint), "ab") as filler:
        os.fchmod(filler.fileno(), 0o600)
        want = free_bytes(disk) if size is None else min(size, free_bytes(disk))
        # ext4's metadata for the file itself comes out of the same free space: step down
        # until the allocation fits, then the disk is as full as asked.
        while want > 0:
            try:
                os.posix_fallocate(filler.fileno(), filler.tell(), want)
                break
            except OSError:
                want -= max(want // 64, 4096)
    return max(want, 0)


def unfill(disk: DataDisk) -> None:
    root = os.open(disk.mountpoint, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        _remove_planted(root)    # unlink removes a link itself, never its target
    finally:
        os.close(root)


def _mounted_under(folder: Path) -> list[str]:
    prefix = str(folder.resolve()) + "/"
    points = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point.startswith(prefix):
            points.append(point)
    return points


def _unmount(point: Path | str) -> None:
    done = subprocess.run(["umount", str(point)], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:   # still busy (a container just died): detach it lazily
        subprocess.run(["umount", "-l", str(point)], capture_output=True, text=True, timeout=60)


def remove_run(run_id: str) -> int:
    """Unmount and delete every data disk of a run; return how many were mounted."""
    folder = root() / run_id
    if not folder.exists():
        return 0
    points = _mounted_under(folder)
    for point in points:
        _unmount(point)
    shutil.rmtree(folder, ignore_errors=True)
    return len(points)


def _orphaned(folder: Path, now: float, min_age: float) -> bool:
    """The run's harness is gone: judged by the owner it wrote (pid and start time, in our
    PID namespace), else by age, since a starting run makes its disks moments before its
    containers."""
    try:
        owner = lifetime.parse_owner((folder / OWNER).read_text())
    except OSError:
        owner = None
    if owner is not None and owner.pidns == lifetime.pid_namespace():
        return not lifetime.owner_alive(owner)
    return now - folder.stat().st_mtime > min_age


def orphaned_runs(known: set[str], min_age: float = 60.0) -> list[str]:
    """Runs with data disks but no object left in the engine (the harness died between
    removing its containers and unmounting, or something else removed them)."""
    if not root().is_dir():
        return []
    now = time.time()
    return sorted(folder.name for folder in root().iterdir()
                  if folder.is_dir() and folder.name not in known and _orphaned(folder, now, min_age))


def parse_size(text: str) -> int:
    """'512m' -> bytes (k, m, g: powers of 1024), as the suite's `size` settings are written."""
    text = str(text).strip().lower()
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(text[-1:], 1)
    return int(text[:-1] if scale > 1 else text) * scale
