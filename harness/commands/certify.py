"""`bctest certify PACK`: the certification program for any chain pack (harness/certify/)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from rich.console import Console

from harness.errors import InputError

NAME = "certify"
HELP = "certify a chain pack: capacity search, the rounds that apply, claims judged, signed"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pack", help="chain pack folder or name under chains/")
    parser.add_argument("--claims", type=Path,
                        help="the vendor's claims.yaml (rated throughput, latency, f); "
                             "default: claims.yaml in the pack folder when there is one")
    parser.add_argument("--profile", choices=("quick", "full", "smoke"), default="full",
                        help="quick: a vendor's self-check in minutes; full: the certificate (default); "
                             "smoke: the shortest program (for tests)")
    parser.add_argument("--out", type=Path, help="folder (default runs/certify-<pack>-<time>-<id>)")
    parser.add_argument("--vendor", default="reference", help="who submitted it (default: reference)")
    parser.add_argument("--submission", help="the submission's content address (set by bctest worker)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the chain image first")


def run(args: argparse.Namespace, console: Console) -> int:
    from harness import chainpack
    from harness.certify import execute

    if not re.fullmatch(execute.VENDOR_NAME, args.vendor):
        raise InputError(None, "--vendor", f"a vendor name matching {execute.VENDOR_NAME}, "
                         f"got {args.vendor!r}")
    if args.submission is not None and not re.fullmatch(r"[0-9a-f]{64}", args.submission):
        raise InputError(None, "--submission", f"a sha256 content address (64 hex), got {args.submission!r}")
    if args.claims is not None and not args.claims.is_file():
        raise InputError(str(args.claims), None, "a claims.yaml file; it does not exist")
    folder = chainpack.resolve(args.pack)
    claims = args.claims
    if claims is None and (folder / "claims.yaml").is_file():
        claims = folder / "claims.yaml"
        console.print(f"claims: {claims}", highlight=False, markup=False)
    return execute.certify(folder, claims, args.profile, args.out, args.vendor,
                           args.submission, console, rebuild=args.rebuild)
