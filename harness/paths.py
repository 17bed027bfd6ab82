"""Where the project's data folders (chains/, suites/, reports/, standards/) live."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """BCTEST_HOME if set, else the checkout this package was installed from, else the cwd."""
    env = os.environ.get("BCTEST_HOME")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "chains").is_dir():
        return checkout
    return Path.cwd()


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "bctest"
    path.mkdir(parents=True, exist_ok=True)
    return path
