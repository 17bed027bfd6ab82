"""Authenticity audit of a CometBFT chain from what the adapter's `raw_blocks` returned:
per height N, `/block?height=N` ({"block", "block_id"}) plus "validators" (the validator set
of height N, from /validators) and, when block N+1 was not fetched, "commit" (the commit for
N, from /commit?height=N).

  hash_links  the block hash is CometBFT's Header.Hash() (types/block.go): the RFC 6962
              style merkle root (leaf = SHA-256(0x00 || item), inner = SHA-256(0x01 || left ||
              right), split at the largest power of two below n, empty = SHA-256("")) of the 14
              header fields, each protobuf-encoded: version (Consensus{block, app}), chain_id
              (StringValue), height (Int64Value), time (Timestamp), last_block_id (BlockID),
              then the ten hashes/addresses as BytesValue (an empty one encodes to nothing:
              cdcEncode). It must equal block_id.hash, and header.last_block_id.hash must be the
              previous block's recomputed hash.
  tx_root     header.data_hash = the same merkle root over SHA-256(tx) of the block's txs.
  signatures  every audited block N is certified by its commit, as CometBFT's VerifyCommit
              (types/validation.go) checks a block's LastCommit: the commit is for height N and
              the block's recomputed hash (and part set header); the validator set of height N
              hashes to header N's validators_hash (ValidatorSet.Hash(): the merkle root of
              SimpleValidator{pub_key: PublicKey{ed25519}, voting_power}); there is one
              CommitSig per validator, in the set's order (the validator at index i signs at
              index i, its address = SHA-256(pub_key)[:20]); every CommitSig that is not
              absent (flag 1) carries a valid Ed25519 signature by that validator over its
              precommit's sign bytes; and the validators whose signature is for the block
              (flag 2) hold more than 2/3 of the set's voting power (power > total * 2 // 3).
              With the run's adapter, every validator must also be one of the keys the harness
              generated for genesis, so a node cannot sign with keys of its own making.

Precommit sign bytes (types/vote.go VoteSignBytes, types/canonical.go, v0.38): the
uvarint-length-prefixed protobuf CanonicalVote {1 type = 2 (PRECOMMIT), 2 height sfixed64,
3 round sfixed64, 4 block_id CanonicalBlockID {1 hash, 2 part_set_header {1 total, 2 hash}},
5 timestamp {1 seconds, 2 nanos}, 6 chain_id}. Zero scalars are left out (round 0 is absent),
the timestamp is always written (nullable=false, even when empty), part_set_header is always
written inside a block id, and block_id is left out for a nil vote (flag 3: CanonicalizeBlockID
gives nil for a zero BlockID); a commit vote (flag 2) signs the commit's block_id. Each CommitSig
signs its own timestamp. The chain id is the run's (the header's without an adapter).
Signatures are checked with `cryptography`'s Ed25519 (RFC 8032); CometBFT verifies with
ZIP-215's rules, which accept a few more edge-case encodings that honest signers never make.

Where the commits come from: block N+1's last_commit is the commit for N, and header N+1's
last_commit_hash must be its hash (Commit.Hash(): the merkle root of the CommitSig protobufs
{1 flag, 2 address, 3 timestamp, 4 signature}), which binds the signatures to the hash-linked
chain. The last audited block has no next block yet (it may be the node's tip), so the adapter
fetches its commit from /commit?height=N (the node's "seen" commit when N is its tip: as valid,
but not hashed into any header). The first audited block's own last_commit (for N-1) is not
judged: the validator set of N-1 is not fetched.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import struct
from collections.abc import Collection
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from harness.audit.result import AuditResult, RawChain, Tally, hash_and_link

_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")
PRECOMMIT = 2                                   # SignedMsgType
FLAG_ABSENT, FLAG_COMMIT, FLAG_NIL = 1, 2, 3    # BlockIDFlag
PUB_KEY_FIELDS = {"tendermint/PubKeyEd25519": 1, "tendermint/PubKeySecp256k1": 2}  # crypto.PublicKey
SIGNATURES_RULE = ("each block's commit: valid Ed25519 precommits by its height's validator set "
                   "(= validators_hash), signed for the block by > 2/3 of the voting power")


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


def _timestamp(text: str) -> bytes:
    seconds, nanos = timestamp(text)
    return _varint_field(1, seconds) + _varint_field(2, nanos)


def vote_sign_bytes(chain_id: str, height: int, round_: int, block_id: dict[str, Any] | None,
                    time: str, vote_type: int = PRECOMMIT) -> bytes:
    """VoteSignBytes: the length-delimited CanonicalVote protobuf a validator signs.
    `block_id` None (or a zero block id) is a vote for nil."""
    canonical = _block_id(block_id) if block_id is not None else b""
    body = (_varint_field(1, vote_type)
            + (b"\x11" + struct.pack("<q", height) if height else b"")
            + (b"\x19" + struct.pack("<q", round_) if round_ else b"")
            + (_bytes_field(4, canonical) if canonical != _block_id({}) else b"")
            + _bytes_field(5, _timestamp(time), always=True)
            + _bytes_field(6, chain_id.encode()))
    return _uvarint(len(body)) + body


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "", validate=True)


def commit_sig_bytes(sig: dict[str, Any]) -> bytes:
    """A CommitSig's protobuf: {1 block_id_flag, 2 validator_address, 3 timestamp, 4 signature}."""
    return (_varint_field(1, int(sig["block_id_flag"])) + _bytes_field(2, _hex(sig.get("validator_address")))
            + _bytes_field(3, _timestamp(sig["timestamp"]), always=True)
            + _bytes_field(4, _b64(sig.get("signature"))))


def commit_hash(commit: dict[str, Any]) -> str:
    """Commit.Hash(), upper-case hex: header N+1's last_commit_hash."""
    return merkle_root([commit_sig_bytes(s) for s in commit.get("signatures") or []]).hex().upper()


def _pub_key(validator: dict[str, Any]) -> tuple[str, bytes]:
    key = validator.get("pub_key") or {}
    return str(key.get("type")), _b64(key.get("value"))


def validator_set_hash(validators: list[dict[str, Any]]) -> str:
    """ValidatorSet.Hash(), upper-case hex: the header's validators_hash."""
    items = []
    for validator in validators:
        kind, key = _pub_key(validator)
        if kind not in PUB_KEY_FIELDS:
            raise ValueError(f"unknown public key type {kind!r}")
        items.append(_bytes_field(1, _bytes_field(PUB_KEY_FIELDS[kind], key))
                     + _varint_field(2, int(validator["voting_power"])))
    return merkle_root(items).hex().upper()


def _address(key: bytes) -> str:
    return _sha256(key)[:20].hex().upper()


def _same_block_id(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _block_id(a) == _block_id(b)


def verify_commit(commit: dict[str, Any], height: int, block_hash: str, block_id: dict[str, Any],
                  header: dict[str, Any], validators: list[dict[str, Any]], chain_id: str,
                  genesis_keys: Collection[bytes] | None = None) -> tuple[list[str], dict[str, int]]:
    """Judge one block's commit. Returns (problems, counts); no problem means it certifies
    the block. Each problem names the validator (address) where it is about one."""
    counts = {"signatures": 0, "absent": 0, "nil": 0}
    if int(commit.get("height") or 0) != height:
        return [f"the commit is for height {commit.get('height')}, not {height}"], counts
    signed = commit.get("block_id") or {}
    if str(signed.get("hash", "")).upper() != block_hash or not _same_block_id(signed, block_id):
        return [f"the commit is for block {signed.get('hash')} (parts {signed.get('parts')}), not this "
                f"block's {block_hash} (parts {block_id.get('parts')})"], counts
    try:
        set_hash = validator_set_hash(validators)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        return [f"cannot read the validator set of height {height}: {exc}"], counts
    if set_hash != str(header.get("validators_hash", "")).upper():
        return [f"the validator set the node gave for height {height} hashes to {set_hash}, the "
                f"header's validators_hash is {header.get('validators_hash')}"], counts
    sigs = commit.get("signatures") or []
    if len(sigs) != len(validators):
        return [f"the commit has {len(sigs)} signatures, the validator set {len(validators)} "
                "validators"], counts
    problems: list[str] = []
    by_address = {str(v.get("address", "")).upper(): i for i, v in enumerate(validators)}
    total = signed_power = 0
    round_ = int(commit.get("round") or 0)
    for index, (sig, validator) in enumerate(zip(sigs, validators, strict=True)):
        power = int(validator["voting_power"])
        total += power
        kind, key = _pub_key(validator)
        address = str(validator.get("address", "")).upper()
        if _address(key) != address:
            problems.append(f"validator {address}: the address is not SHA-256(pub_key)[:20] "
                            f"({_address(key)})")
            continue
        if genesis_keys is not None and key not in genesis_keys:
            problems.append(f"validator {address} is not one of the harness's genesis validators")
        flag = int(sig.get("block_id_flag") or 0)
        if flag == FLAG_ABSENT:
            counts["absent"] += 1
            continue
        if flag not in (FLAG_COMMIT, FLAG_NIL):
            problems.append(f"signature #{index}: unknown block_id_flag {flag}")
            continue
        by = str(sig.get("validator_address", "")).upper()
        if by != address:
            problems.append(f"unknown validator {by}: not in the validator set of height {height}"
                            if by not in by_address else
                            f"validator {by} signs at index {index}, its index in the set is "
                            f"{by_address[by]} ({address} is at {index})")
            continue
        if kind != "tendermint/PubKeyEd25519" or len(key) != 32:
            problems.append(f"validator {address}: a {kind} key of {len(key)} bytes, not Ed25519")
            continue
        try:
            message = vote_sign_bytes(chain_id, height, round_,
                                      signed if flag == FLAG_COMMIT else None, sig["timestamp"])
            Ed25519PublicKey.from_public_bytes(key).verify(_b64(sig.get("signature")), message)
        except (InvalidSignature, ValueError, KeyError, binascii.Error) as exc:
            vote = "for the block" if flag == FLAG_COMMIT else "for nil"
            why = "does not verify" if isinstance(exc, InvalidSignature) else f"cannot be read: {exc}"
            problems.append(f"validator {address}: precommit {vote} (round {round_}) signature {why} "
                            f"on chain {chain_id!r}")
            continue
        counts["signatures"] += 1
        if flag == FLAG_COMMIT:
            signed_power += power
        else:
            counts["nil"] += 1
    needed = total * 2 // 3
    if signed_power <= needed:
        problems.append(f"validators holding {signed_power} of {total} voting power signed the block "
                        f"with a valid signature: not more than 2/3 (needs > {needed})")
    return problems, counts


def verify_chain(blocks: list[dict[str, Any]], chain_id: str | None = None,
                 genesis_keys: Collection[bytes] | None = None) -> AuditResult:
    """Audit `blocks` (ascending). `chain_id`: the run's chain id, which the validators must
    have signed (default: each header's); `genesis_keys`: the Ed25519 public keys the harness
    generated, which every validator must hold (None: not checked)."""
    links = Tally("Header.Hash() = block_id.hash; last_block_id.hash = the previous block's hash")
    roots = Tally("data_hash = merkle root of SHA-256 of the block's txs")
    signatures = Tally(SIGNATURES_RULE)
    previous: tuple[int, str] | None = None
    txs = 0
    for position, result in enumerate(blocks):
        block = result["block"]
        header = block["header"]
        height, reported = int(header["height"]), str((result.get("block_id") or {}).get("hash", ""))
        try:
            recomputed = header_hash(header)
        except (ValueError, KeyError, TypeError) as exc:
            links.fail(height, reported, f"cannot encode the header: {exc}")
            signatures.skip(f"block {height}: the header cannot be encoded")
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
        _judge_commit(signatures, blocks[position + 1] if position + 1 < len(blocks) else None,
                      result, height, recomputed, chain_id or str(header.get("chain_id", "")),
                      genesis_keys)
    return AuditResult("cometbft", len(blocks), txs, {
        "hash_links": links.check("no block"),
        "tx_root": roots.check("no block"),
        "signatures": signatures.check("no block came with its commit and validator set")})


def _judge_commit(tally: Tally, following: dict[str, Any] | None, result: dict[str, Any], height: int,
                  block_hash: str, chain_id: str, genesis_keys: Collection[bytes] | None) -> None:
    """One block's commit into `tally`: from the next block's last_commit when that block is
    N+1 (then also its last_commit_hash), else from the "commit" the adapter fetched."""
    problems: list[str] = []
    next_header = (following or {}).get("block", {}).get("header") or {}
    if following is not None and str(next_header.get("height")) == str(height + 1):
        commit = following["block"].get("last_commit") or {}
        try:
            hashed = commit_hash(commit)
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            hashed = f"(cannot be encoded: {exc})"
        if hashed != str(next_header.get("last_commit_hash", "")).upper():
            problems.append(f"block {height + 1}'s last_commit hashes to {hashed}, its header's "
                            f"last_commit_hash is {next_header.get('last_commit_hash')}")
    else:
        commit = result.get("commit")
    validators = result.get("validators")
    if not commit or validators is None:
        tally.skip(f"block {height}: no " + ("commit" if not commit else "validator set"))
        return
    try:
        found, counts = verify_commit(commit, height, block_hash, result.get("block_id") or {},
                                      result["block"]["header"], validators, chain_id, genesis_keys)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        found, counts = [f"cannot read the commit or the validator set: {type(exc).__name__} {exc}"], {}
    problems += found
    for name, value in counts.items():
        tally.count(name, value)
    if problems:
        tally.fail_all(height, block_hash, problems)
    else:
        tally.ok()


def verify(raw: RawChain) -> AuditResult:
    """The audit hook (entry point `bctest.audits`): `expected["chain_id"]`, the run's chain
    id, and `expected["validators"]`, the Ed25519 public keys the harness generated."""
    return verify_chain(raw.blocks, raw.expected.get("chain_id"), raw.expected.get("validators"))
