"""The disk fault's sizes, written as the suite's `size` settings are."""

import pytest

from harness.runtime.disks import parse_size


@pytest.mark.parametrize("text, expected", [("4096", 4096), ("100k", 100 << 10), ("100m", 100 << 20),
                                            ("1g", 1 << 30), ("2G", 2 << 30), (" 5M ", 5 << 20)])
def test_sizes_are_powers_of_1024(text, expected):
    assert parse_size(text) == expected
