"""`bctest scorecard build DIR… --out SITE`: publish signed certifications as a static site
(docs/scorecard.md). `build` is a sub-action so others (e.g. checking a published site) can
follow without changing the command's shape."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from harness import signing
from harness.errors import EXIT_PASS, InputError

NAME = "scorecard"
HELP = "publish signed certification folders as a static scorecard site"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="scorecard_action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="check every certify folder under DIR… and write the site")
    build.add_argument("dirs", nargs="+", type=Path, metavar="DIR",
                       help="certify folders, or folders holding them (e.g. the data folder's results/)")
    build.add_argument("--out", type=Path, required=True, metavar="SITE",
                       help="the site folder: empty, or a previous scorecard, which is replaced")
    build.add_argument("--key", type=Path, default=None, metavar="PUB",
                       help=f"the test center's public key (default {signing.key_dir() / signing.PUBLIC})")
    build.add_argument("--skip-invalid", action="store_true",
                       help="list unsigned or tampered folders as skipped instead of refusing the build")


def run(args: argparse.Namespace, console: Console) -> int:
    from harness.scorecard import site

    if args.scorecard_action != "build":   # argparse already refuses; kept for new actions
        raise InputError(None, "ACTION", "build")
    built = site.build(args.dirs, args.out, args.key or signing.key_dir() / signing.PUBLIC,
                       skip_invalid=args.skip_invalid)
    for skipped in built.skipped:
        console.print(f"skipped {skipped.problem}", markup=False, highlight=False)
    for duplicate in built.duplicates:
        console.print(f"duplicate (already listed): {duplicate}", markup=False, highlight=False)
    console.print(f"scorecard: {len(built.lines)} certification(s), {len(built.skipped)} skipped: "
                  f"{built.out / 'index.html'}", markup=False, highlight=False)
    return EXIT_PASS
