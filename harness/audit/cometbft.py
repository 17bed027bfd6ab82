"""Authenticity audit of a CometBFT chain from `/block?height=N` results ({"block", "block_id"}).

  hash_links  the block hash is CometBFT's Header.Hash() (types/block.go): the RFC 6962
              style merkle root (leaf = SHA-256(0x00 || item), inner = SHA-256(0x01 || left ||
              right), split at the largest power of two below n, empty = SHA-256("")) of the 14
              header fields, each protobuf-encoded: version (Consensus{block, app}), chain_id
              (StringValue), height (Int64Value), time (Timestamp), last_block_id (BlockID),
              then the ten hashes/addresses as BytesValue (an empty one encodes to nothing:
              cdcEncode). It must equal block_id.hash, and header.last_block_id.hash must be the
              previous block's recomputed hash.
  tx_root     header.data_hash = the same merkle root over SHA-256(tx) of the block's txs.
  signatures  not applicable: kvstore transactions are plain key=value bytes, unsigned.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from typing import Any

from harness.audit.result import AuditResult, Tally, hash_and_link, not_applicable

_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def merkle_root(items: list[bytes]) -> bytes:
    """crypto/merkle HashFromByteSlices."""
    if not items:
        return _sha256(b"")
    if len(items) == 1:
        return _sha256(b"\x00" + items[0])
    split = 1 << ((len(items) - 1).bit_length() - 1)   # the largest power of two < n
    return _sha256(b"\x01" + merkle_root(items[:split]) + merkle_root(items[split:]))


def _uvarint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64   # protobuf varint of a negative int64
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _varint_field(number: int, value: int) -> bytes:
    return bytes([number << 3]) + _uvarint(value) if value else b""


def _bytes_field(number: int, value: bytes, always: bool = False) -> bytes:
    return bytes([number << 3 | 2]) + _uvarint(len(value)) + value if value or always else b""


def _hex(value: str | None) -> bytes:
    return bytes.fromhex(value or "")


def timestamp(text: str) -> tuple[int, int]:
    """An RFC 3339 UTC time as CometBFT writes it → (unix seconds, nanoseconds), exactly."""
    match = _TIME.match(text)
    if match is None:
        raise ValueError(f"not a CometBFT UTC time: {text!r}")
    whole, fraction = match.groups()
    seconds = int(dt.datetime.fromisoformat(whole + "+00:00").timestamp())
    return seconds, int((fraction or "0").ljust(9, "0"))


def _block_id(block_id: dict[str, Any]) -> bytes:
    parts = block_id.get("parts") or {}
    part_set = _varint_field(1, int(parts.get("total") or 0)) + _bytes_field(2, _hex(parts.get("hash")))
    return _bytes_field(1, _hex(block_id.get("hash"))) + _bytes_field(2, part_set, always=True)


def header_fields(header: dict[str, Any]) -> list[bytes]:
    """The 14 leaves of Header.Hash(), in order."""
    version = header.get("version") or {}
    seconds, nanos = timestamp(header["time"])
    chain_id = header["chain_id"].encode()
    return [
        _varint_field(1, int(version.get("block") or 0)) + _varint_field(2, int(version.get("app") or 0)),
        _bytes_field(1, chain_id),
        _varint_field(1, int(header["height"])),
        _varint_field(1, seconds) + _varint_field(2, nanos),
        _block_id(header.get("last_block_id") or {}),
        *(_bytes_field(1, _hex(header.get(name))) for name in (
            "last_commit_hash", "data_hash", "validators_hash", "next_validators_hash", "consensus_hash",
            "app_hash", "last_results_hash", "evidence_hash", "proposer_address")),
    ]


def header_hash(header: dict[str, Any]) -> str:
    """Upper-case hex of Header.Hash()."""
    return merkle_root(header_fields(header)).hex().upper()


def data_hash(txs_base64: list[str]) -> str:
    return merkle_root([_sha256(base64.b64decode(tx)) for tx in txs_base64]).hex().upper()


def verify_chain(blocks: list[dict[str, Any]]) -> AuditResult:
    links = Tally("Header.Hash() = block_id.hash; last_block_id.hash = the previous block's hash")
    roots = Tally("data_hash = merkle root of SHA-256 of the block's txs")
    previous: tuple[int, str] | None = None
    txs = 0
    for result in blocks:
        block = result["block"]
        header = block["header"]
        height, reported = int(header["height"]), str((result.get("block_id") or {}).get("hash", ""))
        try:
            recomputed = header_hash(header)
        except (ValueError, KeyError, TypeError) as exc:
            links.fail(height, reported, f"cannot encode the header: {exc}")
            previous = None
            continue
        parent = str((header.get("last_block_id") or {}).get("hash", "")).upper()
        previous = hash_and_link(links, height, reported.upper(), recomputed, parent, "last_block_id",
                                 previous)
        block_txs = (block.get("data") or {}).get("txs") or []
        txs += len(block_txs)
        computed = data_hash(block_txs)
        if computed == str(header.get("data_hash", "")).upper():
            roots.ok()
        else:
            roots.fail(height, recomputed, f"merkle root of {len(block_txs)} txs is {computed}, "
                       f"the header says {header.get('data_hash')}")
    return AuditResult("cometbft", len(blocks), txs, {
        "hash_links": links.check("no block"),
        "tx_root": roots.check("no block"),
        "signatures": not_applicable("transactions are signed by their senders",
                                     "kvstore transactions are key=value bytes and carry no signature")})
