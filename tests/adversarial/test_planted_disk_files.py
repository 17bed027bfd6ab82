"""The disk fault fills a node's data filesystem as root on the host. Before, it opened
`<data dir>/.bctest-disk-fill` with a plain open(): a node that planted a symlink there
made the harness grow and chmod any host file (issue 10, item 4). Now whatever the node
planted is removed and the filler made afresh, never followed."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from harness.runtime import disks


@pytest.fixture
def disk(tmp_path: Path) -> disks.DataDisk:
    mount = tmp_path / "mnt"
    mount.mkdir()
    return disks.DataDisk(node="node3", size=1 << 20, image=tmp_path / "img", mountpoint=mount)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "host-secret"
    path.write_text("the signing key")
    os.chmod(path, 0o644)
    return path


def filled_safely(disk: disks.DataDisk) -> None:
    filler = disk.mountpoint / disks.FILLER
    assert filler.is_file() and not filler.is_symlink()
    assert stat.S_IMODE(filler.stat().st_mode) == 0o600 and filler.stat().st_size >= 8192
    disks.unfill(disk)
    assert not os.path.lexists(filler)


def test_a_planted_symlink_is_removed_not_followed(disk, victim):
    os.symlink(victim, disk.mountpoint / disks.FILLER)
    assert disks.fill(disk, 8192) >= 8192
    assert victim.read_text() == "the signing key" and stat.S_IMODE(victim.stat().st_mode) == 0o644
    filled_safely(disk)


def test_a_planted_fifo_does_not_hang_the_harness(disk):
    os.mkfifo(disk.mountpoint / disks.FILLER)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (disks.fill(disk, 8192), done.set()), daemon=True)
    worker.start()
    worker.join(10)
    assert done.is_set(), "fill() blocked on a FIFO the node planted"
    filled_safely(disk)


def test_a_planted_directory_and_a_hard_link_are_replaced(disk, tmp_path):
    (disk.mountpoint / disks.FILLER).mkdir()
    (disk.mountpoint / disks.FILLER / "inner").write_text("x")
    disks.fill(disk, 8192)
    filled_safely(disk)
    other = disk.mountpoint / "node-file"
    other.write_text("node data")
    os.link(other, disk.mountpoint / disks.FILLER)
    disks.fill(disk, 8192)
    assert other.read_text() == "node data" and other.stat().st_size == len("node data")
    filled_safely(disk)


def test_unfill_removes_a_link_not_its_target(disk, victim):
    os.symlink(victim, disk.mountpoint / disks.FILLER)
    disks.unfill(disk)
    assert victim.exists() and not os.path.lexists(disk.mountpoint / disks.FILLER)
