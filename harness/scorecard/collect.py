"""Find certification folders and accept only those the test center signed.

A certification folder holds certify.json, results.json and signature.json (the `bctest
certify` OUT folder, docs/scorecard.md). A folder with certify.json and results.json but no
signature is unsigned: refused like a tampered one, since a scorecard shows only what the
test center vouches for. Symbolic links are never followed: a planted link must not pull
another folder (or another vendor's results) into the site.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from harness import signing
from harness.errors import InputError

MARKERS = ("certify.json", "results.json")


@dataclass(frozen=True)
class Certification:
    """A folder whose signature checked against the trusted key."""

    folder: Path               # where it was checked (the site's copy)
    origin: Path               # where it was found, for messages
    results: dict[str, Any]
    program: dict[str, Any]    # certify.json
    digest: str                # sha256 of the canonical signed manifest
    key_id: str
    signed_at: str | None


@dataclass(frozen=True)
class Skipped:
    folder: Path
    problem: str


def find(roots: list[Path]) -> list[Path]:
    """Every certification folder under `roots` (a root may be one), sorted, without
    descending into one (its cases/ hold run folders, not certifications)."""
    found: list[Path] = []
    for root in roots:
        if root.is_symlink() or not root.is_dir():
            raise InputError(str(root), None, "a folder holding certify folders (certify.json, "
                             "results.json, signature.json); not a folder")
        for folder, dirs, names in os.walk(root, followlinks=False):
            if all(m in names for m in MARKERS):
                found.append(Path(folder))
                dirs[:] = []
            else:
                dirs[:] = sorted(d for d in dirs if not (Path(folder) / d).is_symlink())
    return sorted(dict.fromkeys(found))


def digest(signature: dict[str, Any]) -> str:
    """The folder's identity: the SHA-256 of its signed manifest in canonical JSON, so any
    change to any signed file changes it, and re-serialising the signature does not."""
    return hashlib.sha256(signing.canonical(signature["manifest"])).hexdigest()


def check(folder: Path, trusted: Ed25519PublicKey, origin: Path | None = None) -> Certification:
    """The certification in `folder`, or InputError naming the folder and the one problem
    (unsigned, signed by another key, tampered, unreadable)."""
    origin = origin or folder
    try:
        problems = signing.check_signature(folder, trusted)
    except InputError as exc:
        raise InputError(str(origin), None, _problem(exc, folder)) from None
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(str(origin), None, f"tampered since it was signed: {problems[0]}{more}")
    try:
        signature = signing.load_json(folder / signing.SIGNATURE)
        results = signing.load_json(folder / "results.json")
        program = signing.load_json(folder / "certify.json")
    except InputError as exc:
        raise InputError(str(origin), None, _problem(exc, folder)) from None
    for name, document in (("results.json", results), ("certify.json", program)):
        if not isinstance(document, dict):
            raise InputError(str(origin / name), None, "a JSON object")
    if not isinstance(results.get("certify"), dict):
        raise InputError(str(origin / "results.json"), "certify",
                         "the certify block of a `bctest certify` folder (docs/scorecard.md)")
    return Certification(folder=folder, origin=origin, results=results, program=program,
                         digest=digest(signature), key_id=str(signature.get("key_id") or ""),
                         signed_at=signature.get("signed_at") if isinstance(signature.get("signed_at"), str)
                         else None)


def _problem(exc: InputError, folder: Path) -> str:
    """The error's message without the path of the copy it was found in."""
    text = str(exc)
    if "there is no signature.json" in text:
        return "unsigned: there is no signature.json (sign it with `bctest sign DIR`)"
    if exc.field == "public_key":
        return f"not signed by the trusted key: {exc.expected}"
    where = (exc.file or "").removeprefix(str(folder)).lstrip("/")
    return f"{where}: {exc.expected}" if where else exc.expected
