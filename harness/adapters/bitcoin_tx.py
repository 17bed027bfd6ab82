"""Bitcoin-family transactions built and signed with raw primitives (no node wallet).

Serialization (BIP144 witness format), txid/wtxid (double SHA-256, shown byte-reversed),
the legacy signature hash (P2PKH) and the BIP143 segwit v0 signature hash (P2WPKH),
ECDSA over secp256k1 through coincurve (RFC 6979 nonces, low-S, DER), and bech32
segwit addresses (BIP173). Litecoin uses all of these unchanged; only address prefixes
differ (Litecoin regtest: bech32 hrp `rltc`).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

from coincurve import PrivateKey

SIGHASH_ALL = 0x01
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SEQUENCE_FINAL = 0xFFFFFFFF


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _ripemd160(data: bytes) -> bytes:
    try:
        return hashlib.new("ripemd160", data).digest()
    except ValueError:  # OpenSSL 3 without the legacy provider
        from Crypto.Hash import RIPEMD160  # pycryptodome, a dependency through eth-hash
        return RIPEMD160.new(data).digest()


def hash160(data: bytes) -> bytes:
    return _ripemd160(sha256(data))


def varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def push_data(data: bytes) -> bytes:
    """A script push of `data` (direct push or OP_PUSHDATA1/2)."""
    if len(data) < 0x4C:
        return bytes([len(data)]) + data
    if len(data) <= 0xFF:
        return b"\x4c" + bytes([len(data)]) + data
    return b"\x4d" + struct.pack("<H", len(data)) + data


def p2wpkh_script(pubkey_hash: bytes) -> bytes:
    """scriptPubKey of a segwit v0 key-hash output: OP_0 <20 bytes>."""
    return b"\x00\x14" + pubkey_hash


def p2pkh_script(pubkey_hash: bytes) -> bytes:
    """OP_DUP OP_HASH160 <20 bytes> OP_EQUALVERIFY OP_CHECKSIG (also BIP143's P2WPKH scriptCode)."""
    return b"\x76\xa9\x14" + pubkey_hash + b"\x88\xac"


def txid_to_bytes(txid_hex: str) -> bytes:
    """Display (big-endian) txid hex → the internal byte order used in outpoints."""
    return bytes.fromhex(txid_hex)[::-1]


@dataclass
class TxIn:
    prev_txid: bytes                 # internal byte order (reversed display hex)
    prev_index: int
    script_sig: bytes = b""
    sequence: int = SEQUENCE_FINAL
    witness: list[bytes] = field(default_factory=list)

    def outpoint(self) -> bytes:
        return self.prev_txid + struct.pack("<I", self.prev_index)


@dataclass
class TxOut:
    value: int                       # in the smallest unit (satoshi / litoshi)
    script_pubkey: bytes

    def serialize(self) -> bytes:
        return struct.pack("<q", self.value) + varint(len(self.script_pubkey)) + self.script_pubkey


@dataclass
class Tx:
    inputs: list[TxIn]
    outputs: list[TxOut]
    version: int = 2
    locktime: int = 0

    def has_witness(self) -> bool:
        return any(txin.witness for txin in self.inputs)

    def serialize(self, witness: bool = True) -> bytes:
        """Network serialization; BIP144 marker/flag and witnesses when any input has one."""
        with_witness = witness and self.has_witness()
        parts = [struct.pack("<i", self.version)]
        if with_witness:
            parts.append(b"\x00\x01")
        parts.append(varint(len(self.inputs)))
        for txin in self.inputs:
            parts += [txin.outpoint(), varint(len(txin.script_sig)), txin.script_sig,
                      struct.pack("<I", txin.sequence)]
        parts.append(varint(len(self.outputs)))
        parts += [txout.serialize() for txout in self.outputs]
        if with_witness:
            for txin in self.inputs:
                parts.append(varint(len(txin.witness)))
                parts += [varint(len(item)) + item for item in txin.witness]
        parts.append(struct.pack("<I", self.locktime))
        return b"".join(parts)

    def txid(self) -> str:
        """Display hex of double SHA-256 over the serialization without witnesses."""
        return sha256d(self.serialize(witness=False))[::-1].hex()

    def wtxid(self) -> str:
        return sha256d(self.serialize(witness=True))[::-1].hex()

    def weight(self) -> int:
        return 3 * len(self.serialize(witness=False)) + len(self.serialize(witness=True))

    def vsize(self) -> int:
        return -(-self.weight() // 4)

    # -- signature hashes ---------------------------------------------------------------

    def legacy_sighash(self, index: int, script_code: bytes, hash_type: int = SIGHASH_ALL) -> bytes:
        """The pre-segwit signature hash (SIGHASH_ALL only): every scriptSig emptied but the
        signed input's, which carries `script_code` (the spent output's scriptPubKey)."""
        if hash_type != SIGHASH_ALL:
            raise ValueError("only SIGHASH_ALL is implemented")
        copy = Tx(version=self.version, locktime=self.locktime, outputs=self.outputs, inputs=[
            TxIn(t.prev_txid, t.prev_index, script_code if i == index else b"", t.sequence)
            for i, t in enumerate(self.inputs)])
        return sha256d(copy.serialize(witness=False) + struct.pack("<I", hash_type))

    def bip143_sighash(self, index: int, script_code: bytes, value: int,
                       hash_type: int = SIGHASH_ALL, cache: dict | None = None) -> bytes:
        """BIP143 segwit v0 signature hash (SIGHASH_ALL only). `script_code` excludes its
        length prefix; for P2WPKH it is the P2PKH script of the key hash."""
        if hash_type != SIGHASH_ALL:
            raise ValueError("only SIGHASH_ALL is implemented")
        if cache is None:
            cache = {}
        if "prevouts" not in cache:
            cache["prevouts"] = sha256d(b"".join(t.outpoint() for t in self.inputs))
            cache["sequence"] = sha256d(b"".join(struct.pack("<I", t.sequence) for t in self.inputs))
            cache["outputs"] = sha256d(b"".join(o.serialize() for o in self.outputs))
        txin = self.inputs[index]
        preimage = b"".join([
            struct.pack("<i", self.version), cache["prevouts"], cache["sequence"], txin.outpoint(),
            varint(len(script_code)), script_code, struct.pack("<q", value),
            struct.pack("<I", txin.sequence), cache["outputs"], struct.pack("<I", self.locktime),
            struct.pack("<I", hash_type)])
        return sha256d(preimage)


def parse_tx(raw: bytes) -> Tx:
    """Parse a serialized transaction (with or without BIP144 witnesses)."""
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(raw):
            raise ValueError("truncated transaction")
        chunk = raw[pos:pos + n]
        pos += n
        return chunk

    def read_varint() -> int:
        first = take(1)[0]
        if first < 0xFD:
            return first
        return int.from_bytes(take({0xFD: 2, 0xFE: 4, 0xFF: 8}[first]), "little")

    version = struct.unpack("<i", take(4))[0]
    segwit = raw[pos:pos + 2] == b"\x00\x01"
    if segwit:
        take(2)
    inputs = []
    for _ in range(read_varint()):
        prev_txid, prev_index = take(32), struct.unpack("<I", take(4))[0]
        script_sig = take(read_varint())
        inputs.append(TxIn(prev_txid, prev_index, script_sig, struct.unpack("<I", take(4))[0]))
    outputs = []
    for _ in range(read_varint()):
        value = struct.unpack("<q", take(8))[0]
        outputs.append(TxOut(value, take(read_varint())))
    if segwit:
        for txin in inputs:
            txin.witness = [take(read_varint()) for _ in range(read_varint())]
    locktime = struct.unpack("<I", take(4))[0]
    if pos != len(raw):
        raise ValueError(f"{len(raw) - pos} bytes after the transaction")
    return Tx(inputs, outputs, version, locktime)


# -- keys and signing ---------------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    secret: bytes
    pubkey: bytes          # compressed SEC1, 33 bytes
    pubkey_hash: bytes     # HASH160 of pubkey
    private: PrivateKey = field(repr=False, compare=False)

    @classmethod
    def from_secret(cls, secret: bytes) -> Key:
        private = PrivateKey(secret)
        pubkey = private.public_key.format(compressed=True)
        return cls(secret, pubkey, hash160(pubkey), private)

    @property
    def p2wpkh(self) -> bytes:
        return p2wpkh_script(self.pubkey_hash)


def derive_key(role: str, seed: int, index: int) -> Key:
    """A deterministic key: same seed, same keys (and so the same transactions)."""
    counter = 0
    while True:
        secret = sha256(f"bctest-bitcoin/{role}/{seed}/{index}/{counter}".encode())
        if 0 < int.from_bytes(secret, "big") < SECP256K1_N:
            return Key.from_secret(secret)
        counter += 1


def ecdsa_der(secret: bytes | PrivateKey, digest: bytes) -> bytes:
    """DER ECDSA signature of a 32-byte digest: RFC 6979 nonce, low-S (libsecp256k1)."""
    key = secret if isinstance(secret, PrivateKey) else PrivateKey(secret)
    return key.sign(digest, hasher=None)


def sign_p2wpkh(tx: Tx, index: int, key: Key, value: int, cache: dict | None = None) -> None:
    """Fill input `index` (spending a P2WPKH output of `value` to `key`) with its witness."""
    digest = tx.bip143_sighash(index, p2pkh_script(key.pubkey_hash), value, SIGHASH_ALL, cache)
    tx.inputs[index].script_sig = b""
    tx.inputs[index].witness = [ecdsa_der(key.private, digest) + bytes([SIGHASH_ALL]), key.pubkey]


_FINAL = struct.pack("<I", SEQUENCE_FINAL)
_HASH_SEQUENCE_ONE_FINAL = sha256d(_FINAL)


def spend_p2wpkh(prev_txid: bytes, prev_index: int, value: int, key: Key, script_pubkey: bytes,
                 amount: int, version: int = 2) -> tuple[bytes, str]:
    """The hot path of `prepare`: a signed 1-in-1-out spend of a P2WPKH output, built
    directly as bytes. Returns (serialized transaction, txid). Equal to building a `Tx`
    and calling `sign_p2wpkh` (unit tested), without the generic overhead."""
    outpoint = prev_txid + struct.pack("<I", prev_index)
    output = struct.pack("<q", amount) + varint(len(script_pubkey)) + script_pubkey
    head = struct.pack("<i", version)
    tail = struct.pack("<I", 0)  # locktime
    preimage = b"".join([
        head, sha256d(outpoint), _HASH_SEQUENCE_ONE_FINAL, outpoint,
        b"\x19\x76\xa9\x14", key.pubkey_hash, b"\x88\xac", struct.pack("<q", value), _FINAL,
        sha256d(output), tail, b"\x01\x00\x00\x00"])
    signature = key.private.sign(sha256d(preimage), hasher=None) + b"\x01"
    body = b"\x01" + outpoint + b"\x00" + _FINAL + b"\x01" + output
    stripped = head + body + tail
    raw = b"".join([head, b"\x00\x01", body, b"\x02", varint(len(signature)), signature,
                    b"\x21", key.pubkey, tail])
    return raw, sha256d(stripped)[::-1].hex()


def sign_p2pkh(tx: Tx, index: int, key: Key) -> None:
    """Fill input `index` (spending a P2PKH output to `key`) with its scriptSig."""
    digest = tx.legacy_sighash(index, p2pkh_script(key.pubkey_hash))
    signature = ecdsa_der(key.private, digest) + bytes([SIGHASH_ALL])
    tx.inputs[index].script_sig = push_data(signature) + push_data(key.pubkey)


# -- bech32 segwit addresses (BIP173) -----------------------------------------------------

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: list[int]) -> int:
    generator = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= generator[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convertbits(data: bytes, frombits: int, tobits: int) -> list[int]:
    acc, bits, out, maxv = 0, 0, [], (1 << tobits) - 1
    for value in data:
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if bits:
        out.append((acc << (tobits - bits)) & maxv)
    return out


def segwit_address(hrp: str, version: int, program: bytes) -> str:
    """bech32 (BIP173) address of a segwit v0 program."""
    if version != 0:
        raise ValueError("only segwit v0 (bech32) addresses are implemented")
    data = [version] + _convertbits(program, 8, 5)
    polymod = _polymod(_hrp_expand(hrp) + data + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[d] for d in data + checksum)
