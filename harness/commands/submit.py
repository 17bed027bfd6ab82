"""`bctest submit SUBMISSION`: validate a submission completely, store it, queue it."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

NAME = "submit"
HELP = "validate a submission (folder or .tar/.tar.gz), store it content-addressed and queue it"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submission", type=Path, help="a submission folder or a tarball of one")
    parser.add_argument("--queue", default=None, metavar="URL",
                        help="postgresql://… (default: SQLite in the data folder)")
    parser.add_argument("--data", type=Path, default=None,
                        help="data folder (default $BCTEST_DATA or ~/.local/share/bctest)")


def run(args: argparse.Namespace, console: Console) -> int:
    from harness import submission
    from harness.queue import NewSubmission, data_dir, open_queue

    data = data_dir(args.data)
    stored = submission.accept(args.submission, data)
    with open_queue(args.queue, data) as queue:
        entry, added = queue.add(NewSubmission(
            id=stored.digest, vendor=stored.vendor, chain=stored.pack.name, version=stored.pack.version,
            image=stored.pack.image_tag, profile=stored.profile, path=str(stored.folder)))
    what = f"{entry.short} ({entry.vendor}, {entry.chain} {entry.version}, profile {entry.profile})"
    if added:
        console.print(f"queued {what}: {stored.folder}", markup=False, highlight=False)
    else:
        result = f", results {entry.result}" if entry.result else ""
        console.print(f"already {entry.state}: {what}, the identical content was submitted before{result}",
                      markup=False, highlight=False)
    console.print(f"submission id {entry.id}", markup=False, highlight=False)
    return 0
