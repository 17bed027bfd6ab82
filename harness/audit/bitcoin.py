"""Authenticity audit of a Bitcoin-family chain (Litecoin regtest) from raw blocks.

Input: one dict per block, ascending heights, as the adapter's `raw_blocks` returns them:
{"height": int, "hash": display hex the node reported, "raw": `getblock <hash> 0` hex}
(or "header": `getblockheader <hash> false` hex instead of "raw" for a header-only audit).

  hash_links  the block hash is double-SHA-256 of the 80-byte header (version, prev hash,
              merkle root, time, bits, nonce), shown byte-reversed; the header's prev hash
              must be the previous block's recomputed hash. Litecoin identifies blocks the
              same way (scrypt is only its proof-of-work hash).
  tx_root     the header's merkle root equals the root recomputed from the block's own
              transactions: txid = double-SHA-256 of the serialization without witnesses,
              pairs hashed with double-SHA-256, the last one duplicated when a level is odd.
  signatures  every P2WPKH input whose spent output is known (the run's UTXOs, given by the
              caller, or an output of a transaction in the audited blocks) carries a valid
              BIP143 signature by the key in its witness, and HASH160 of that key is the spent
              output's program: the harness's key for the run's UTXOs.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from coincurve import PublicKey

from harness.adapters import bitcoin_tx as btx
from harness.audit.result import AuditResult, RawChain, Tally, hash_and_link

Outpoint = tuple[str, int]                 # (txid display hex, output index)
Prevouts = Mapping[Outpoint, tuple[int, bytes]]   # -> (value, scriptPubKey)


def header_hash(header: bytes) -> str:
    """Display hex of a block hash: double-SHA-256 of the 80-byte header, byte-reversed."""
    if len(header) != 80:
        raise ValueError(f"a block header is 80 bytes, got {len(header)}")
    return btx.sha256d(header)[::-1].hex()


def merkle_root(txids: list[bytes]) -> bytes:
    """Merkle root over txids in internal byte order (the order the header stores)."""
    if not txids:
        raise ValueError("a block has at least its coinbase transaction")
    level = list(txids)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [btx.sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    first = raw[pos]
    if first < 0xFD:
        return first, pos + 1
    size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    return int.from_bytes(raw[pos + 1:pos + 1 + size], "little"), pos + 1 + size


def _tx_end(raw: bytes, pos: int) -> int:
    """Where the transaction starting at `pos` ends (BIP144 witnesses included)."""
    start = pos
    pos += 4
    segwit = raw[pos:pos + 2] == b"\x00\x01"
    pos += 2 if segwit else 0
    inputs, pos = _varint(raw, pos)
    for _ in range(inputs):
        length, pos = _varint(raw, pos + 36)
        pos += length + 4
    outputs, pos = _varint(raw, pos)
    for _ in range(outputs):
        length, pos = _varint(raw, pos + 8)
        pos += length
    if segwit:
        for _ in range(inputs):
            items, pos = _varint(raw, pos)
            for _ in range(items):
                length, pos = _varint(raw, pos)
                pos += length
    pos += 4
    if pos > len(raw) or pos - start < 10:
        raise ValueError("truncated transaction")
    return pos


def split_block(raw: bytes) -> tuple[bytes, list[btx.Tx]]:
    """A serialized block → (80-byte header, parsed transactions)."""
    count, pos = _varint(raw, 80)
    txs = []
    for _ in range(count):
        end = _tx_end(raw, pos)
        txs.append(btx.parse_tx(raw[pos:end]))
        pos = end
    if pos != len(raw):
        raise ValueError(f"{len(raw) - pos} bytes after the last transaction (an MWEB extension block?)")
    return raw[:80], txs


def _verify_input(tx: btx.Tx, index: int, value: int, script: bytes, cache: dict) -> str | None:
    """None if input `index` is a valid P2WPKH spend of (value, script), else why not."""
    witness = tx.inputs[index].witness
    if len(witness) != 2 or not witness[0]:
        return f"witness has {len(witness)} items, P2WPKH needs <signature> <pubkey>"
    signature, pubkey = witness
    if btx.hash160(pubkey) != script[2:]:
        return (f"the witness key hashes to {btx.hash160(pubkey).hex()}, "
                f"the spent output pays {script[2:].hex()}")
    if signature[-1] != btx.SIGHASH_ALL:
        return f"sighash type {signature[-1]:#x}, the harness signs SIGHASH_ALL"
    digest = tx.bip143_sighash(index, btx.p2pkh_script(script[2:]), value, btx.SIGHASH_ALL, cache)
    try:
        valid = PublicKey(pubkey).verify(signature[:-1], digest, hasher=None)
    except (ValueError, TypeError) as exc:
        return f"malformed key or signature ({exc})"
    return None if valid else "the ECDSA signature does not verify (BIP143, low-S)"


def verify_chain(blocks: list[dict[str, Any]], prevouts: Prevouts | None = None) -> AuditResult:
    links = Tally("double-SHA-256(header) = the node's hash; header.prev = the previous block's hash")
    roots = Tally("header merkle root = the merkle root of the block's txids")
    sigs = Tally("P2WPKH inputs: BIP143 signature valid, HASH160(witness key) = the spent output's program")
    known: dict[Outpoint, tuple[int, bytes]] = dict(prevouts or {})
    previous: tuple[int, str] | None = None
    txs = 0
    for block in blocks:
        height, reported = int(block["height"]), str(block.get("hash", "")).lower()
        transactions: list[btx.Tx] = []
        try:
            if block.get("raw"):
                header, transactions = split_block(bytes.fromhex(block["raw"]))
            else:
                header = bytes.fromhex(block["header"])
            recomputed = header_hash(header)
        except (ValueError, KeyError, IndexError, struct.error) as exc:
            links.fail(height, reported, f"cannot parse the block: {exc}")
            previous = None
            continue
        previous = hash_and_link(links, height, reported, recomputed, header[4:36][::-1].hex(),
                                 "prev hash", previous)
        if not transactions:
            roots.skip("header-only blocks")
            continue
        txs += len(transactions)
        ids = [btx.sha256d(tx.serialize(witness=False)) for tx in transactions]
        root = merkle_root(ids)
        if root == header[36:68]:
            roots.ok()
        else:
            roots.fail(height, recomputed, f"merkle root of {len(ids)} txids is {root[::-1].hex()}, "
                       f"the header says {header[36:68][::-1].hex()}")
        for position, (tx, txid) in enumerate(zip(transactions, ids, strict=True)):
            display = txid[::-1].hex()
            cache: dict = {}
            for index, txin in enumerate(tx.inputs if position else []):   # a coinbase signs nothing
                spent = known.get((txin.prev_txid[::-1].hex(), txin.prev_index))
                if spent is None:
                    continue
                value, script = spent
                if len(script) != 22 or script[:2] != b"\x00\x14":
                    sigs.skip("inputs spending non-P2WPKH outputs")
                    continue
                why = _verify_input(tx, index, value, script, cache)
                if why is None:
                    sigs.ok()
                else:
                    sigs.fail(height, recomputed, f"tx {display} input {index}: {why}")
            for vout, out in enumerate(tx.outputs):
                known.setdefault((display, vout), (out.value, out.script_pubkey))
    return AuditResult("bitcoin", len(blocks), txs, {
        "hash_links": links.check("no block could be parsed"),
        "tx_root": roots.check("no block carried its transactions"),
        "signatures": sigs.check("no input spent an output known to the audit")})


def verify(raw: RawChain) -> AuditResult:
    """The audit hook (entry point `bctest.audits`): `expected["prevouts"]`, the run's UTXOs
    (outpoint -> value and the owning harness key's P2WPKH script), so the run's spends are
    checked."""
    return verify_chain(raw.blocks, raw.expected.get("prevouts"))
