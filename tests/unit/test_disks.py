"""The disk fault's sizes, written as the suite's `size` settings are."""

import pytest

from harness.runtime.disks import parse_size


@pytest.mark.parametrize("text, expected", [("4096", 4096), ("100k", 100 << 10), ("100m", 100 << 20),
                                            ("1g", 1 << 30), ("2G", 2 << 30), (" 5M ", 5 << 20)])
def test_sizes_are_powers_of_1024(text, expected):
    assert parse_size(text) == expected


def test_orphaned_disk_folders_are_runs_without_engine_objects(tmp_path, monkeypatch):
    import os
    import time

    from harness.runtime import disks

    monkeypatch.setenv("BCTEST_DISKS", str(tmp_path))
    for name in ("dead", "live", "young"):
        (tmp_path / name).mkdir()
    old = time.time() - 600
    os.utime(tmp_path / "dead", (old, old))
    os.utime(tmp_path / "live", (old, old))
    assert disks.orphaned_runs({"live"}) == ["dead"]     # young: a run that is starting
