"""EIP-155 legacy transfers signed with raw primitives must match eth-account byte for byte."""

from __future__ import annotations

import pytest
from eth_account import Account as EthAccount
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.adapters.evm_tx import SECP256K1_N, account_from_key, derive_account, sign_transfer

keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))
uint256 = st.integers(min_value=0, max_value=2**256 - 1)
nonces = st.integers(min_value=0, max_value=2**64 - 2)   # EIP-2681
chain_ids = st.one_of(st.sampled_from([1, 5, 1337, 31337, 11155111]),
                      st.integers(min_value=1, max_value=2**64))
addresses = st.binary(min_size=20, max_size=20)

EVM = settings(max_examples=150, deadline=None)


def _reference(key: bytes, nonce: int, gas_price: int, gas: int, to: bytes, value: int,
               chain_id: int, data: bytes):
    tx = {"nonce": nonce, "gasPrice": gas_price, "gas": gas,
          "to": to_checksum_address(to) if to else b"",
          "value": value, "data": data, "chainId": chain_id}
    signed = EthAccount.sign_transaction(tx, key)
    return bytes(signed.raw_transaction), bytes(signed.hash)


@EVM
@given(key=keys, nonce=nonces, gas_price=uint256, gas=st.integers(21000, 2**63), to=addresses,
       value=uint256, chain_id=chain_ids, data=st.binary(max_size=64))
def test_sign_transfer_is_byte_identical_to_eth_account(key, nonce, gas_price, gas, to, value,
                                                         chain_id, data):
    raw, tx_hash = sign_transfer(key, nonce, gas_price, gas, to, value, chain_id, data)
    ref_raw, ref_hash = _reference(key, nonce, gas_price, gas, to, value, chain_id, data)
    assert raw == ref_raw
    assert tx_hash == ref_hash
    assert len(tx_hash) == 32


@EVM
@given(key=keys, nonce=nonces, gas_price=uint256, gas=st.integers(21000, 2**63),
       to=st.one_of(st.just(b""), addresses), value=uint256, chain_id=chain_ids,
       data=st.one_of(st.binary(min_size=50, max_size=60), st.binary(min_size=200, max_size=70_000)))
def test_contract_calls_and_deploys_are_byte_identical_to_eth_account(key, nonce, gas_price, gas,
                                                                      to, value, chain_id, data):
    # helper workloads sign contract calls (data=) and deploys (to=b""): long RLP strings
    # (length of length 1..3 bytes) and the empty recipient of a creation
    raw, tx_hash = sign_transfer(key, nonce, gas_price, gas, to, value, chain_id, data)
    assert (raw, tx_hash) == _reference(key, nonce, gas_price, gas, to, value, chain_id, data)


def test_single_low_bytes_and_zero_values_encode_like_eth_account():
    # RLP edge cases: 0 is the empty string, a byte < 0x80 is itself, 0x80 needs a prefix
    key = (4242).to_bytes(32, "big")
    for nonce, value, data in [(0, 0, b""), (0x7F, 0x80, b"\x00"), (0x80, 0x7F, b"\x7f"),
                               (0xFF, 2**255, b"\x80"), (2**56, 1, b"\x01" * 55),
                               (1, 2**64 - 1, b"\x01" * 56)]:
        got = sign_transfer(key, nonce, 0, 21000, b"\x44" * 20, value, 1, data)
        assert got == _reference(key, nonce, 0, 21000, b"\x44" * 20, value, 1, data)


@EVM
@given(key=keys, nonce=nonces, value=uint256, chain_id=chain_ids, to=addresses)
def test_signed_transfer_recovers_to_sender(key, nonce, value, chain_id, to):
    raw, _ = sign_transfer(key, nonce, 10**9, 21000, to, value, chain_id)
    assert EthAccount.recover_transaction(raw).lower() == account_from_key(key).hex_address


@EVM
@given(key=keys)
def test_account_from_key_matches_eth_account_address(key):
    account = account_from_key(key)
    assert account.key == key
    assert len(account.address) == 20
    assert account.hex_address.lower() == EthAccount.from_key(key).address.lower()


def test_known_vector_address():
    # the private key / address pair from the eth-account documentation
    key = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
    assert account_from_key(key).hex_address == "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23"


def test_eip155_v_encodes_chain_id():
    import rlp

    key = (12345).to_bytes(32, "big")
    raw, _ = sign_transfer(key, 0, 1, 21000, b"\x11" * 20, 1, 31337)
    v = int.from_bytes(rlp.decode(raw)[6], "big")
    assert v in (31337 * 2 + 35, 31337 * 2 + 36)


def test_different_chain_ids_give_different_transactions():
    key = (777).to_bytes(32, "big")
    a = sign_transfer(key, 0, 1, 21000, b"\x22" * 20, 5, 1)
    b = sign_transfer(key, 0, 1, 21000, b"\x22" * 20, 5, 2)
    assert a[0] != b[0] and a[1] != b[1]


def test_derive_account_is_deterministic_and_distinct():
    a = derive_account("sender", 1, 0)
    assert a == derive_account("sender", 1, 0)
    others = {derive_account("sender", 1, 1), derive_account("sender", 2, 0),
              derive_account("funder", 1, 0)}
    assert a not in others and len(others) == 3
    assert 0 < int.from_bytes(a.key, "big") < SECP256K1_N
    assert a.hex_address == EthAccount.from_key(a.key).address.lower()


@pytest.mark.parametrize("index", range(5))
def test_derived_accounts_sign_transactions_that_recover_to_them(index):
    account = derive_account("bench", 42, index)
    raw, _ = sign_transfer(account.key, index, 10, 21000, b"\x33" * 20, 1, 1337)
    assert EthAccount.recover_transaction(raw).lower() == account.hex_address
