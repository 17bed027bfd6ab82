"""Authenticity audit of an EVM chain (anvil, geth Clique) from JSON-RPC block objects.

Input: `eth_getBlockByNumber(<n>, true)` results (full transaction objects), ascending.

  hash_links  block hash = keccak256(rlp(header)), the header being the JSON fields in
              consensus order: parentHash, sha3Uncles, miner, stateRoot, transactionsRoot,
              receiptsRoot, logsBloom, difficulty, number, gasLimit, gasUsed, timestamp,
              extraData, mixHash, nonce, then each later fork's fields when the block has
              them (baseFeePerGas: London, withdrawalsRoot: Shanghai, blobGasUsed,
              excessBlobGas, parentBeaconBlockRoot: Cancun, requestsHash: Prague). Integers
              are minimal big-endian; the nonce is 8 bytes. parentHash must be the previous
              block's recomputed hash.
  tx_root     every transaction re-encoded from its fields hashes (keccak256) to its "hash",
              and transactionsRoot is the Merkle-Patricia trie root of rlp(index) -> those
              encodings (legacy: rlp(fields), typed: type byte || rlp(fields)).
  signatures  the sender recovered from each transaction's signature (secp256k1, EIP-155 /
              EIP-2718 signing hash, low-S) equals its "from" and, for the run's
              transactions, is one of the harness's accounts.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import coincurve
import rlp
from eth_hash.auto import keccak

from harness.audit.result import AuditResult, RawChain, Tally, hash_and_link

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
EMPTY_TRIE_ROOT = keccak(rlp.encode(b""))
HEADER_FIELDS = ("parentHash", "sha3Uncles", "miner", "stateRoot", "transactionsRoot", "receiptsRoot",
                 "logsBloom", "difficulty", "number", "gasLimit", "gasUsed", "timestamp", "extraData",
                 "mixHash", "nonce")
FORK_FIELDS = ("baseFeePerGas", "withdrawalsRoot", "blobGasUsed", "excessBlobGas",
               "parentBeaconBlockRoot", "requestsHash")
INTEGER_FIELDS = {"difficulty", "number", "gasLimit", "gasUsed", "timestamp", "baseFeePerGas",
                  "blobGasUsed", "excessBlobGas"}
_FEES = ("maxPriorityFeePerGas:i", "maxFeePerGas:i", "gas:i", "to:b", "value:i", "input:b", "accessList:a")
TX_FIELDS: dict[int, tuple[str, ...]] = {   # the signed fields before (v/yParity, r, s), by type
    0: ("nonce:i", "gasPrice:i", "gas:i", "to:b", "value:i", "input:b"),
    1: ("chainId:i", "nonce:i", "gasPrice:i", "gas:i", "to:b", "value:i", "input:b", "accessList:a"),
    2: ("chainId:i", "nonce:i", *_FEES),
    3: ("chainId:i", "nonce:i", *_FEES, "maxFeePerBlobGas:i", "blobVersionedHashes:l"),
    4: ("chainId:i", "nonce:i", *_FEES, "authorizationList:u"),
}


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _bytes(value: str | None) -> bytes:
    return bytes.fromhex(value[2:] if value and value.startswith("0x") else value or "")


def _field(tx: dict[str, Any], spec: str) -> Any:
    name, kind = spec.split(":")
    value = tx.get(name)
    if kind == "i":
        return _int(value if value is not None else 0)
    if kind == "b":
        return _bytes(value)
    if kind == "l":
        return [_bytes(v) for v in value or []]
    if kind == "a":
        return [[_bytes(a["address"]), [_bytes(k) for k in a.get("storageKeys", [])]] for a in value or []]
    return [[_int(a["chainId"]), _bytes(a["address"]), _int(a["nonce"]), _int(a["yParity"]),
             _int(a["r"]), _int(a["s"])] for a in value or []]


def header_hash(block: dict[str, Any]) -> bytes:
    """keccak256 of the RLP header rebuilt from the block's JSON fields."""
    names = HEADER_FIELDS + tuple(f for f in FORK_FIELDS if block.get(f) is not None)
    return keccak(rlp.encode([_int(block[n]) if n in INTEGER_FIELDS else _bytes(block[n]) for n in names]))


def encode_tx(tx: dict[str, Any]) -> tuple[bytes, bytes, int]:
    """(the canonical encoding, its signing hash, the signature's recovery id) of a JSON tx."""
    kind = _int(tx.get("type", 0))
    if kind not in TX_FIELDS:
        raise NotImplementedError(f"transaction type {kind:#x}")
    fields = [_field(tx, spec) for spec in TX_FIELDS[kind]]
    r, s = _int(tx["r"]), _int(tx["s"])
    if kind == 0:
        v = _int(tx["v"])
        raw = rlp.encode(fields + [v, r, s])
        if v in (27, 28):
            return raw, keccak(rlp.encode(fields)), v - 27
        return raw, keccak(rlp.encode(fields + [(v - 35) // 2, 0, 0])), (v - 35) % 2
    parity = _int(tx["yParity"] if tx.get("yParity") is not None else tx["v"])
    prefix = bytes([kind])
    return prefix + rlp.encode(fields + [parity, r, s]), keccak(prefix + rlp.encode(fields)), parity


def recover_sender(tx: dict[str, Any]) -> str:
    """0x address of the key that signed `tx` (raises ValueError on an invalid signature)."""
    _, digest, recid = encode_tx(tx)
    r, s = _int(tx["r"]), _int(tx["s"])
    if not (0 < r < SECP256K1_N and 0 < s <= SECP256K1_N // 2 and recid in (0, 1)):
        raise ValueError("r, s or recovery id out of range (EIP-2 requires low s)")
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([recid])
    public = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    return "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()


# -- the Merkle-Patricia trie root (only the root: nothing is stored) ------------------------

def _compact(nibbles: list[int], leaf: bool) -> bytes:
    """Hex-prefix encoding of a nibble path."""
    flag = 2 if leaf else 0
    if len(nibbles) % 2:
        nibbles = [flag + 1, *nibbles]
    else:
        nibbles = [flag, 0, *nibbles]
    return bytes(nibbles[i] * 16 + nibbles[i + 1] for i in range(0, len(nibbles), 2))


def _node(items: list[tuple[list[int], bytes]], depth: int) -> Any:
    """The trie node (as an RLP structure) for `items`, sorted, keys as nibbles from `depth`."""
    if len(items) == 1:
        key, value = items[0]
        return [_compact(key[depth:], True), value]
    shared = depth
    first, last = items[0][0], items[-1][0]
    while shared < min(len(first), len(last)) and first[shared] == last[shared]:
        shared += 1
    if shared > depth:
        return [_compact(first[depth:shared], False), _ref(_node(items, shared))]
    branch: list[Any] = [b""] * 17
    for nibble in range(16):
        group = [item for item in items if len(item[0]) > depth and item[0][depth] == nibble]
        if group:
            branch[nibble] = _ref(_node(group, depth + 1))
    branch[16] = next((v for k, v in items if len(k) == depth), b"")
    return branch


def _ref(node: Any) -> Any:
    """A child reference: the node itself when its encoding is under 32 bytes, else its hash."""
    encoded = rlp.encode(node)
    return node if len(encoded) < 32 else keccak(encoded)


def trie_root(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """Root of the Merkle-Patricia trie holding these (key, value) pairs (unique keys)."""
    if not pairs:
        return EMPTY_TRIE_ROOT
    items = sorted(([n for byte in k for n in (byte >> 4, byte & 15)], v) for k, v in pairs)
    return keccak(rlp.encode(_node(items, 0)))


def transactions_root(encoded: list[bytes]) -> bytes:
    return trie_root([(rlp.encode(i), tx) for i, tx in enumerate(encoded)])


# -- the audit ------------------------------------------------------------------------------

def verify_chain(blocks: list[dict[str, Any]], signers: Collection[str] | None = None,
                 tx_ids: Collection[str] | None = None) -> AuditResult:
    """`signers`: the harness's account addresses; `tx_ids`: the run's transaction hashes
    (when given, only those are held to `signers`; every transaction must match its `from`)."""
    links = Tally("keccak256(rlp(header)) = the node's hash; parentHash = the previous block's hash")
    roots = Tally("keccak256(tx encoding) = tx hash; transactionsRoot = trie root of the encodings")
    sigs = Tally("recovered sender = from, and one of the harness's accounts for the run's txs")
    ours = {s.lower() for s in signers} if signers is not None else None
    run = {t.lower() for t in tx_ids} if tx_ids is not None else None
    previous: tuple[int, str] | None = None
    txs = 0
    for block in blocks:
        height, reported = _int(block["number"]), str(block.get("hash", "")).lower()
        try:
            recomputed = "0x" + header_hash(block).hex()
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            links.fail(height, reported, f"cannot rebuild the header: {type(exc).__name__} {exc}")
            previous = None
            continue
        previous = hash_and_link(links, height, reported, recomputed, block["parentHash"].lower(),
                                 "parentHash", previous)
        transactions = block.get("transactions") or []
        txs += len(transactions)
        if any(isinstance(t, str) for t in transactions):
            roots.skip("blocks fetched without full transactions")
            continue
        encoded: list[bytes] | None = []
        for tx in transactions:
            try:
                raw, _, _ = encode_tx(tx)
            except NotImplementedError as exc:
                roots.skip(f"{exc} is not supported")
                encoded = None
                break
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                roots.fail(height, recomputed, f"tx {tx.get('hash')}: malformed ({type(exc).__name__} {exc})")
                encoded = None
                break
            if "0x" + keccak(raw).hex() != tx["hash"].lower():
                roots.fail(height, recomputed, f"tx {tx['hash']} re-encoded hashes to 0x{keccak(raw).hex()}")
            encoded.append(raw)
            _check_signature(sigs, height, recomputed, tx, ours, run)
        if encoded is None:
            continue
        root = transactions_root(encoded)
        if "0x" + root.hex() == block["transactionsRoot"].lower():
            roots.ok()
        else:
            roots.fail(height, recomputed, f"trie root of {len(encoded)} txs is 0x{root.hex()}, "
                       f"the header says {block['transactionsRoot']}")
    return AuditResult("evm", len(blocks), txs, {
        "hash_links": links.check("no block"),
        "tx_root": roots.check("no block carried full transactions"),
        "signatures": sigs.check("no transaction in the audited blocks")})


def _check_signature(sigs: Tally, height: int, block_hash: str, tx: dict[str, Any],
                     ours: set[str] | None, run: set[str] | None) -> None:
    try:
        sender = recover_sender(tx)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        sigs.fail(height, block_hash, f"tx {tx['hash']}: {exc}")
        return
    if tx.get("from") and sender != tx["from"].lower():
        sigs.fail(height, block_hash, f"tx {tx['hash']}: signed by {sender}, the node says from {tx['from']}")
    elif ours is not None and (run is None or tx["hash"].lower() in run) and sender not in ours:
        sigs.fail(height, block_hash, f"tx {tx['hash']}: signed by {sender}, not a harness account")
    else:
        sigs.ok()


def verify(raw: RawChain) -> AuditResult:
    """The audit hook (entry point `bctest.audits`): `expected["signers"]`, the harness's
    account addresses, must have signed the run's transactions."""
    return verify_chain(raw.blocks, raw.expected.get("signers"), raw.tx_ids)
