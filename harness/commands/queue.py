"""`bctest queue`: the submissions and their states, with times."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from rich.console import Console

NAME = "queue"
HELP = "list the submissions and their states (queued, running, certified, failed, rejected)"
COLUMNS = ("id", "vendor", "chain", "profile", "state", "attempts", "submitted", "started", "finished",
           "result")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", default=None, metavar="URL",
                        help="postgresql://… (default: SQLite in the data folder)")
    parser.add_argument("--data", type=Path, default=None,
                        help="data folder (default $BCTEST_DATA or ~/.local/share/bctest)")


def _time(value: float | None) -> str:
    if value is None:
        return "-"
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run(args: argparse.Namespace, console: Console) -> int:
    from harness.queue import data_dir, open_queue

    data = data_dir(args.data)
    with open_queue(args.queue, data) as queue:
        entries = queue.list()
    if not entries:
        console.print("no submissions")
        return 0
    # Plain aligned text, one line a submission, never wrapped: a tester greps it.
    rows = [COLUMNS] + [(e.short, e.vendor, f"{e.chain} {e.version}", e.profile, e.state, str(e.attempts),
                         _time(e.submitted_at), _time(e.started_at), _time(e.finished_at),
                         e.result or (f"({e.message})" if e.message else "-")) for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        console.print(f"{line}  {row[-1]}", markup=False, highlight=False, soft_wrap=True)
    return 0
