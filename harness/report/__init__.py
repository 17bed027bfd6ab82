"""Report writers, found through the entry-point group `bctest.report_writers` (like the
adapters): each entry names a function `write(run_dir, results)` that writes its file(s)
into the run (or campaign) folder. bctest registers json, junit, markdown, sarif and html
in its pyproject.toml; a pip package adds a writer by registering one more.

A writer bctest ships that fails is an error of the run; a writer from another package
that fails to load or to write is reported on stderr and the other reports are written.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from harness.errors import InfraError

GROUP = "bctest.report_writers"
OWN = "bctest"   # the distribution whose writers are part of the harness
FIRST = ("json",)  # results.json before the files that render it

WriteFunction = Callable[[Path, dict[str, Any]], None]


@dataclass(frozen=True)
class Writer:
    name: str
    source: str          # "module:function", as registered
    builtin: bool        # registered by bctest itself
    entry: EntryPoint


def writers() -> list[Writer]:
    """The installed report writers, results.json first, then by name."""
    found = {}
    for ep in entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        found[ep.name] = Writer(ep.name, ep.value, dist is not None and dist.name == OWN, ep)
    if not any(w.builtin for w in found.values()):
        raise InfraError(f"no report writers are registered in the entry-point group '{GROUP}': "
                           "bctest's installed metadata is older than this code; reinstall it "
                           "(pip install -e .)")
    return sorted(found.values(), key=lambda w: (w.name not in FIRST, w.name))


def write_reports(run_dir: Path, results: dict[str, Any]) -> list[str]:
    """Every report writer over `results` (a run's or a campaign's); returns the problems of
    writers from other packages (also printed), raises the first failure of bctest's own."""
    problems: list[str] = []
    failure: BaseException | None = None
    for writer in writers():
        try:
            write: WriteFunction = writer.entry.load()
            write(run_dir, results)
        except Exception as exc:  # one writer's failure must not cost the others their files
            if writer.builtin:
                exc.add_note(f"report writer '{writer.name}' ({writer.source})")
                failure = failure or exc
                continue
            problems.append(f"report writer '{writer.name}' ({writer.source}) failed: "
                            f"{type(exc).__name__}: {exc}")
            print(f"bctest: {problems[-1]}", file=sys.stderr)
    if failure is not None:
        raise failure
    return problems


def write_campaign_reports(run_dir: Path, results: dict[str, Any]) -> list[str]:
    """A campaign's results.json and reports: the same writers (each tells the two apart)."""
    return write_reports(run_dir, results)


__all__ = ["GROUP", "Writer", "write_campaign_reports", "write_reports", "writers"]
