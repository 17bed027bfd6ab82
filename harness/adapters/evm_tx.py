"""EVM accounts and EIP-155 legacy value transfers, signed without a node.

Written against the raw primitives (secp256k1 via coincurve, RLP, keccak) because
signing is on the preparation path for hundreds of thousands of transactions;
tests check every byte against eth-account.
"""

from __future__ import annotations

from dataclasses import dataclass

import coincurve
import rlp
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


def sign_transfer(key: bytes, nonce: int, gas_price: int, gas: int, to: bytes, value: int,
                  chain_id: int, data: bytes = b"") -> tuple[bytes, bytes]:
    """Return (raw signed transaction, transaction hash) for an EIP-155 legacy transaction."""
    unsigned = [nonce, gas_price, gas, to, value, data]
    digest = keccak(rlp.encode(unsigned + [chain_id, 0, 0]))
    signature = coincurve.PrivateKey(key).sign_recoverable(digest, hasher=None)
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = chain_id * 2 + 35 + signature[64]
    raw = rlp.encode(unsigned + [v, r, s])
    return raw, keccak(raw)
