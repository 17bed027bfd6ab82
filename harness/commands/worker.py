"""`bctest worker`: certify queued submissions one at a time, sign and file each result."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

NAME = "worker"
HELP = "take queued submissions one at a time, certify, sign and file each (one worker per host)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", default=None, metavar="URL",
                        help="postgresql://… (default: SQLite in the data folder)")
    parser.add_argument("--data", type=Path, default=None,
                        help="data folder (default $BCTEST_DATA or ~/.local/share/bctest)")
    parser.add_argument("--once", action="store_true", help="process at most one submission, then exit")
    parser.add_argument("--poll", type=float, default=10.0, metavar="SECONDS",
                        help="how often an idle worker looks at the queue (default 10)")


def run(args: argparse.Namespace, console: Console) -> int:
    from harness import worker
    from harness.errors import InputError
    from harness.queue import data_dir

    if not args.poll > 0:
        raise InputError(None, "--poll", f"a number of seconds > 0, got {args.poll}")
    options = worker.Options(data=data_dir(args.data), queue_url=args.queue, once=args.once, poll=args.poll,
                             log=lambda line: console.print(line, markup=False, highlight=False))
    return worker.run(options)
