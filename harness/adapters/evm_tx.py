"""EVM accounts and EIP-155 legacy value transfers, signed without a node.

Written against the raw primitives (secp256k1 via coincurve, keccak) and a hand-rolled
RLP encoder for the one fixed layout, because signing is on the preparation path for up to
millions of transactions (the generic `rlp` package cost 3x the signature itself); tests
check every byte and hash against eth-account.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import coincurve
from eth_hash.auto import keccak

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass(frozen=True)
class Account:
    key: bytes       # 32-byte private key
    address: bytes   # 20 bytes

    @property
    def hex_address(self) -> str:
        return "0x" + self.address.hex()


def account_from_key(key: bytes) -> Account:
    public = coincurve.PublicKey.from_secret(key).format(compressed=False)[1:]
    return Account(key=key, address=keccak(public)[-20:])


def public_key_hex(key: bytes) -> str:
    """The 64-byte uncompressed public key without its 0x04 prefix (an enode id)."""
    return coincurve.PublicKey.from_secret(key).format(compressed=False)[1:].hex()


def derive_account(label: str, seed: int, index: int) -> Account:
    """Deterministic test account: the same suite seed gives the same accounts on every run."""
    counter = 0
    while True:
        key = keccak(f"bctest:{label}:{seed}:{index}:{counter}".encode())
        if 0 < int.from_bytes(key, "big") < SECP256K1_N:
            return account_from_key(key)
        counter += 1


def _rlp_int(value: int) -> bytes:
    """An unsigned integer as RLP: big-endian without leading zeros (0 is the empty string)."""
    if value < 0x80:
        return b"\x80" if value == 0 else bytes((value,))
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return _rlp_prefix(len(raw), 0x80) + raw


def _rlp_bytes(raw: bytes) -> bytes:
    if len(raw) == 1 and raw[0] < 0x80:
        return raw
    return _rlp_prefix(len(raw), 0x80) + raw


def _rlp_prefix(length: int, offset: int) -> bytes:
    """The header of a string (offset 0x80) or list (0xc0) payload of `length` bytes."""
    if length <= 55:
        return bytes((offset + length,))
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(size),)) + size


@lru_cache(maxsize=1 << 16)
def _private_key(key: bytes) -> coincurve.PrivateKey:
    """Cached: building a PrivateKey derives its public key, which cost more than signing."""
    return coincurve.PrivateKey(key)


def sign_transfer(key: bytes, nonce: int, gas_price: int, gas: int, to: bytes, value: int,
                  chain_id: int, data: bytes = b"") -> tuple[bytes, bytes]:
    """Return (raw signed transaction, transaction hash) for an EIP-155 legacy transaction:
    RLP [nonce, gasPrice, gas, to, value, data, v, r, s], signed over the same list with
    [chainId, 0, 0] in place of [v, r, s]. `to=b""` is a contract creation."""
    fields = (_rlp_int(nonce) + _rlp_int(gas_price) + _rlp_int(gas) + _rlp_bytes(to)
              + _rlp_int(value) + _rlp_bytes(data))
    unsigned = fields + _rlp_int(chain_id) + b"\x80\x80"
    digest = keccak(_rlp_prefix(len(unsigned), 0xC0) + unsigned)
    signature = _private_key(key).sign_recoverable(digest, hasher=None)
    v = chain_id * 2 + 35 + signature[64]
    # r and s as integers: minimal big-endian, leading zero bytes dropped
    signed = (fields + _rlp_int(v) + _rlp_int(int.from_bytes(signature[:32], "big"))
              + _rlp_int(int.from_bytes(signature[32:64], "big")))
    raw = _rlp_prefix(len(signed), 0xC0) + signed
    return raw, keccak(raw)
