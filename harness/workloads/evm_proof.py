"""Contract storage proven against a block's state root (EIP-1186 `eth_getProof`).

The read-back must not take the node's word for the state: a node can answer
eth_getStorageAt (or eth_call) with whatever the harness hopes to see. eth_getProof returns
Merkle-Patricia proofs; each value is recomputed here from the proof nodes, starting at the
stateRoot of a block header whose keccak256 hash the harness recomputes and compares with
the block hash it saw during the run. A value the node states but its proof contradicts is
a forgery. Pure: no network (the workload fetches, this verifies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rlp
from eth_hash.auto import keccak

from harness.audit.evm import header_hash
from harness.audit.evm import trie_root as audit_root

EMPTY_ROOT = keccak(rlp.encode(b""))


class ProofError(ValueError):
    """The proof does not lead from the root to the key (a missing or altered node)."""


def _nibbles(data: bytes) -> list[int]:
    return [n for byte in data for n in (byte >> 4, byte & 0x0F)]


def _hex_prefix(encoded: bytes) -> tuple[list[int], bool]:
    nibbles = _nibbles(encoded)
    flag = nibbles[0]
    if flag not in (0, 1, 2, 3):
        raise ProofError(f"bad hex-prefix flag {flag}")
    return nibbles[2:] if flag in (0, 2) else nibbles[1:], flag >= 2


def trie_get(root: bytes, key: bytes, proof: list[bytes]) -> bytes | None:
    """The value at `key` (already hashed for the secure trie) in the trie with `root`,
    from the proof's nodes; None when the proof shows the key absent."""
    if root == EMPTY_ROOT:
        return None                           # nothing stored (a proof may then be empty)
    nodes = {keccak(node): node for node in proof}
    path = _nibbles(key)
    at = 0
    ref: Any = root
    for _ in range(2 * len(path) + 2):      # a path cannot be longer than its nibbles
        if isinstance(ref, bytes):
            if ref == b"":
                return None
            if len(ref) != 32:
                raise ProofError(f"a reference of {len(ref)} bytes")
            encoded = nodes.get(ref)
            if encoded is None:
                raise ProofError(f"proof lacks node 0x{ref.hex()}")
            try:
                node = rlp.decode(encoded)
            except rlp.exceptions.DecodingError as exc:
                raise ProofError(f"a proof node is not RLP ({exc})") from None
        else:
            node = ref                        # a node under 32 bytes, inlined in its parent
        if node == b"":
            return None                       # the empty trie (an account without storage)
        if not isinstance(node, list):
            raise ProofError("a proof node is not a list")
        if len(node) == 17:
            if at == len(path):
                return node[16] or None
            ref = node[path[at]]
            at += 1
        elif len(node) == 2:
            if not isinstance(node[0], bytes) or not node[0]:
                raise ProofError("a short node without a path")
            part, leaf = _hex_prefix(node[0])
            if leaf:
                return node[1] if path[at:] == part else None
            if path[at:at + len(part)] != part:
                return None
            at += len(part)
            ref = node[1]
        else:
            raise ProofError(f"a node of {len(node)} items")
    raise ProofError("the proof does not end")


@dataclass(frozen=True)
class ProvenHeader:
    number: int
    hash: str
    state_root: bytes


def verify_header(block: dict[str, Any], expected_hash: str | None) -> ProvenHeader:
    """The block's state root, once its recomputed hash is the one the run saw (or, without
    one, the block's own hash field)."""
    try:
        recomputed = "0x" + header_hash(block).hex()
    except (KeyError, TypeError, ValueError) as exc:
        raise ProofError(f"block header unreadable: {type(exc).__name__} {exc}") from None
    want = (expected_hash or str(block.get("hash"))).lower()
    if recomputed != want:
        raise ProofError(f"block {block.get('number')}: header hashes to {recomputed}, the run saw "
                         f"{want}")
    return ProvenHeader(number=int(block["number"], 16), hash=recomputed,
                        state_root=bytes.fromhex(block["stateRoot"][2:]))


def _bytes(text: Any) -> bytes:
    if not isinstance(text, str) or not text.startswith("0x"):
        raise ProofError(f"not hex data: {str(text)[:80]}")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise ProofError(f"not hex data: {text[:80]}") from None


def storage_values(header: ProvenHeader, address: str, slots: list[int],
                   answer: dict[str, Any]) -> tuple[list[int], list[int]]:
    """The proven value of each slot from one eth_getProof answer, and the slots whose
    stated value the proof contradicts. Raises ProofError when the proofs do not verify."""
    try:
        account_proof = [_bytes(n) for n in answer["accountProof"]]
        entries = answer["storageProof"]
    except (KeyError, TypeError):
        raise ProofError("eth_getProof answer without accountProof/storageProof") from None
    account = trie_get(header.state_root, keccak(_bytes(address)), account_proof)
    if account is None:
        raise ProofError(f"the state at block {header.number} has no account {address}")
    fields = rlp.decode(account)
    if not isinstance(fields, list) or len(fields) != 4:
        raise ProofError("the account is not [nonce, balance, storageRoot, codeHash]")
    storage_root = fields[2]
    if not isinstance(entries, list) or len(entries) != len(slots):
        raise ProofError(f"{len(slots)} slots asked, {len(entries) if isinstance(entries, list) else 0} "
                         "proven")
    values, forged = [], []
    for slot, entry in zip(slots, entries, strict=True):
        try:
            key, stated, proof = int(entry["key"], 16), int(entry["value"], 16), entry["proof"]
        except (KeyError, TypeError, ValueError):
            raise ProofError(f"a malformed storage proof entry: {str(entry)[:120]}") from None
        if key != slot:
            raise ProofError(f"proof for slot {hex(key)}, asked {hex(slot)}")
        raw = trie_get(storage_root, keccak(slot.to_bytes(32, "big")), [_bytes(n) for n in proof])
        value = int.from_bytes(rlp.decode(raw), "big") if raw is not None else 0
        values.append(value)
        if stated != value:
            forged.append(slot)
    return values, forged


def _quantity(value: Any) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ProofError(f"not a hex quantity: {str(value)[:80]}")
    return int(value, 16)


def encode_receipt(receipt: dict[str, Any]) -> bytes:
    """A receipt's consensus encoding: [status, cumulativeGasUsed, logsBloom, logs], prefixed
    with its type byte when typed (EIP-2718)."""
    try:
        logs = [[_bytes(log["address"]), [_bytes(t) for t in log["topics"]], _bytes(log["data"])]
                for log in receipt["logs"]]
        body = rlp.encode([_quantity(receipt["status"]), _quantity(receipt["cumulativeGasUsed"]),
                           _bytes(receipt["logsBloom"]), logs])
        kind = _quantity(receipt.get("type", "0x0"))
    except (KeyError, TypeError) as exc:
        raise ProofError(f"a receipt without {exc}") from None
    return body if kind == 0 else bytes([kind]) + body


def verify_receipts(block: dict[str, Any], receipts: list[dict[str, Any]]) -> None:
    """The block's receipts must rebuild its (proven) header's receiptsRoot."""
    root = audit_root([(rlp.encode(i), encode_receipt(r)) for i, r in enumerate(receipts)])
    if "0x" + root.hex() != str(block.get("receiptsRoot")).lower():
        raise ProofError(f"block {block.get('number')}: its {len(receipts)} receipts rebuild root "
                         f"0x{root.hex()}, the header says {block.get('receiptsRoot')}")
