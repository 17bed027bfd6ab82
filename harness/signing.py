"""Signed runs: the test center's Ed25519 key signs a canonical digest of a run's results
and histories; `bctest verify` checks the signature, the files, and recomputes the
verdicts from the histories (docs/signing.md).

signature.json = {manifest, public_key, key_id, signature}. The manifest lists the SHA-256
of each signed file: results.json files in canonical JSON (sorted keys, no spaces), so
re-serialising does not break them; histories, campaign.json byte for byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.errors import InputError

FORMAT = "bctest-signature/1"
SIGNATURE = "signature.json"
PRIVATE, PUBLIC = "signing.key", "signing.pub"


def key_dir() -> Path:
    return Path(os.environ.get("BCTEST_KEYS") or Path.home() / ".config" / "bctest" / "keys")


def canonical(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def init_keys(folder: Path, force: bool = False) -> tuple[Path, str]:
    private_path, public_path = folder / PRIVATE, folder / PUBLIC
    if private_path.exists() and not force:
        raise InputError(str(private_path), None, "a signing key already exists; pass --force to "
                         "replace it (runs signed with the old key will no longer verify against it)")
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return public_path, key_id(key.public_key())


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(str(path), None, f"an Ed25519 private key in PEM ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(str(path), None, f"an Ed25519 private key, got {type(key).__name__}")
    return key


def load_public(path: Path) -> Ed25519PublicKey:
    if not path.is_file():
        raise InputError(str(path), None, "the test center's public key (PEM); none there — pass "
                         "--key FILE or create one with `bctest keys init`")
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(str(path), None, f"an Ed25519 public key in PEM ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(str(path), None, f"an Ed25519 public key, got {type(key).__name__}")
    return key


def signed_files(run_dir: Path) -> list[str]:
    """What a signature covers: results and history (and, for a campaign, its plan and
    every case's results and history)."""
    names = ["results.json", "history.jsonl", "campaign.json"]
    for case in sorted((run_dir / "cases").glob("*")) if (run_dir / "cases").is_dir() else []:
        names += [f"cases/{case.name}/results.json", f"cases/{case.name}/history.jsonl"]
    return [n for n in names if (run_dir / n).is_file()]


def file_digest(path: Path) -> str:
    if path.suffix == ".json":
        return hashlib.sha256(canonical(json.loads(path.read_text(encoding="utf-8")))).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(run_dir: Path) -> dict[str, Any]:
    return {"format": FORMAT, "files": {name: file_digest(run_dir / name) for name in signed_files(run_dir)}}


def sign(run_dir: Path, private_path: Path) -> dict[str, Any]:
    key = load_private(private_path)
    signed = manifest(run_dir)
    document = {
        "manifest": signed,
        "public_key": key.public_key().public_bytes(serialization.Encoding.Raw,
                                                    serialization.PublicFormat.Raw).hex(),
        "key_id": key_id(key.public_key()),
        "signed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "signature": key.sign(canonical(signed)).hex(),
    }
    partial = run_dir / (SIGNATURE + ".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, run_dir / SIGNATURE)
    return document


def check_signature(run_dir: Path, trusted: Ed25519PublicKey) -> list[str]:
    """Problems with the signature and the signed files (empty: all good)."""
    path = run_dir / SIGNATURE
    if not path.is_file():
        raise InputError(str(run_dir), None, f"a signed run folder; there is no {SIGNATURE} "
                         "(sign it with `bctest sign RUN_DIR`)")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        signed, signer = document["manifest"], bytes.fromhex(document["public_key"])
        signature = bytes.fromhex(document["signature"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(str(path), None, f"a bctest signature ({type(exc).__name__}: {exc})") from None
    trusted_raw = trusted.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if signer != trusted_raw:
        raise InputError(str(path), "public_key", f"a signature by the trusted key {key_id(trusted)}; "
                         f"it was signed by key {document.get('key_id', '?')}")
    try:
        trusted.verify(signature, canonical(signed))
    except InvalidSignature:
        return ["the signature does not match the manifest: signature.json was altered"]
    problems = []
    for name, expected in signed.get("files", {}).items():
        if not (run_dir / name).is_file():
            problems.append(f"{name} is missing")
        elif file_digest(run_dir / name) != expected:
            problems.append(f"{name} changed since it was signed (SHA-256 differs)")
    for name in set(signed_files(run_dir)) - set(signed.get("files", {})):
        problems.append(f"{name} is not covered by the signature")
    return problems


def differences(stored: Any, recomputed: Any, path: str = "", limit: int = 10) -> list[str]:
    """Where two JSON documents differ, as dotted paths with both values."""
    out: list[str] = []
    if isinstance(stored, dict) and isinstance(recomputed, dict):
        for key in sorted(set(stored) | set(recomputed), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in recomputed:
                out.append(f"{where}: in results.json but not recomputed")
            elif key not in stored:
                out.append(f"{where}: recomputed but missing from results.json")
            else:
                out += differences(stored[key], recomputed[key], where, limit - len(out))
            if len(out) >= limit:
                break
    elif isinstance(stored, list) and isinstance(recomputed, list) and len(stored) == len(recomputed):
        for index, (a, b) in enumerate(zip(stored, recomputed, strict=True)):
            out += differences(a, b, f"{path}[{index}]", limit - len(out))
            if len(out) >= limit:
                break
    elif stored != recomputed:
        out.append(f"{path}: results.json says {json.dumps(stored)[:80]}, the history gives "
                   f"{json.dumps(recomputed)[:80]}")
    return out[:limit]


def sign_if_configured(run_dir: Path) -> dict[str, Any] | None:
    """Sign at the end of a run when this machine holds the test center's key."""
    private = key_dir() / PRIVATE
    return sign(run_dir, private) if private.is_file() else None
