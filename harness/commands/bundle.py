"""`bctest bundle PACK --vendor NAME --out DIR`: a submission folder made from a chain pack."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

NAME = "bundle"
HELP = "make a submission folder from a chain pack (its image saved as a tarball, under a vendor name)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pack", help="chain pack name or folder")
    parser.add_argument("--vendor", required=True, help="vendor name: [a-z0-9][a-z0-9-]{1,38}")
    parser.add_argument("--contact", default=None, help="who answers for the submission (e-mail)")
    parser.add_argument("--claims", type=Path, default=None, help="the vendor's claims.yaml")
    parser.add_argument("--profile", choices=["quick", "full", "smoke"], default=None,
                        help="quick: a self-check; full: the certificate (default); smoke: the shortest "
                             "self-check (for tests)")
    parser.add_argument("--out", type=Path, required=True, help="the submission folder to write")


def run(args: argparse.Namespace, console: Console) -> int:
    from harness.bundle import bundle

    made = bundle(args.pack, args.vendor, args.out, claims=args.claims, profile=args.profile,
                  contact=args.contact, log=lambda line: console.print(line, markup=False, highlight=False))
    console.print(f"submission {made.folder}: vendor {made.vendor}, {made.pack.name} {made.pack.version} "
                  f"({made.pack.image_tag}), profile {made.profile}; submit it with "
                  f"`bctest submit {made.folder}`", markup=False, highlight=False)
    return 0
