"""Signed runs: the test center's Ed25519 key signs a manifest of every file in a run
folder; `bctest verify` checks the signature, names each changed, missing or unlisted
file, and recomputes the verdicts from the histories (docs/standards.md).

signature.json = {manifest, public_key, key_id, signature}. The manifest lists the SHA-256
of every file in the folder (reports, logs, cases included; symbolic links are refused):
JSON files in canonical JSON (sorted keys, no spaces), so re-serialising does not break
them, and a JSON file with a duplicated key is refused (two readers could see two
different values); every other file byte for byte. Signatures of format /1 covered the
results and histories only; they still verify, for those files.
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

FORMAT = "bctest-signature/2"
FORMAT_V1 = "bctest-signature/1"   # results and histories only
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
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_new(private_path, pem, 0o600)
    _write_new(public_path, public, 0o644)
    return public_path, key_id(key.public_key())


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """A fresh file with exactly `mode`: whatever was there (an old key with a looser mode, a
    link planted to make us write elsewhere) is removed first, never followed."""
    if path.is_symlink() or path.exists():
        path.unlink()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(descriptor, "wb") as out:
        os.fchmod(out.fileno(), mode)   # whatever the umask
        out.write(data)


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


def v1_signed_files(run_dir: Path) -> list[str]:
    """What a bctest-signature/1 covered: results and history (and, for a campaign, its
    plan and every case's results and history)."""
    names = ["results.json", "history.jsonl", "campaign.json"]
    for case in sorted((run_dir / "cases").glob("*")) if (run_dir / "cases").is_dir() else []:
        names += [f"cases/{case.name}/results.json", f"cases/{case.name}/history.jsonl"]
    return [n for n in names if (run_dir / n).is_file()]


def signed_files(run_dir: Path) -> tuple[list[str], list[str]]:
    """Every regular file in the folder but the signature itself, as sorted relative paths,
    and the paths that are neither a file nor a folder (links, devices): never signed."""
    files, strange = [], []
    for folder, dirs, names in os.walk(run_dir, followlinks=False):
        base = Path(folder)
        for name in sorted(dirs):
            if (base / name).is_symlink():
                strange.append((base / name).relative_to(run_dir).as_posix())
        for name in names:
            path = base / name
            relative = path.relative_to(run_dir).as_posix()
            if path.is_symlink() or not path.is_file():
                strange.append(relative)
            elif relative != SIGNATURE:
                files.append(relative)
    return sorted(files), sorted(strange)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        raise ValueError(f"duplicated key {duplicated[0]!r}")
    return dict(pairs)


def load_json(path: Path) -> Any:
    """A JSON file, refusing duplicated keys (InputError naming the file)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(str(path), None, f"a JSON document ({exc})") from None


def file_digest(path: Path) -> str:
    if path.suffix == ".json":
        return hashlib.sha256(canonical(load_json(path))).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest(run_dir: Path) -> dict[str, Any]:
    files, strange = signed_files(run_dir)
    if strange:
        raise InputError(str(run_dir / strange[0]), None,
                         "a regular file; a run folder holding links or devices is not signed")
    return {"format": FORMAT, "files": {name: file_digest(run_dir / name) for name in files}}


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
    listed = signed.get("files", {})
    for name, expected in listed.items():
        path = run_dir / name
        if not path.is_file() or path.is_symlink():
            problems.append(f"{name} is missing")
            continue
        try:
            if file_digest(path) != expected:
                problems.append(f"{name} changed since it was signed (SHA-256 differs)")
        except InputError as exc:
            problems.append(f"{name} changed since it was signed: {exc.expected}")
    if signed.get("format") == FORMAT_V1:
        present, strange = v1_signed_files(run_dir), []
    else:
        present, strange = signed_files(run_dir)
    for name in sorted(set(present) - set(listed)):
        problems.append(f"{name} is not covered by the signature (added after signing)")
    problems += [f"{name} is a link or a special file, not a signed file" for name in strange]
    return problems


def covers_everything(run_dir: Path) -> bool:
    """Whether the folder's signature is of the format that covers every file."""
    try:
        return json.loads((run_dir / SIGNATURE).read_text(encoding="utf-8"))["manifest"]["format"] == FORMAT
    except (OSError, ValueError, KeyError, TypeError):
        return False


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
