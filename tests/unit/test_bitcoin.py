"""Bitcoin-family transactions built with raw primitives, checked against published vectors
(BIP143's native P2WPKH and P2SH-P2WPKH examples, BIP173, the genesis coinbase), and the
adapter's pure logic (load transactions, reorg-aware depth tracking) without Docker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from coincurve import PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.adapters import bitcoin_tx as btx
from harness.adapters import jsonrpc
from harness.adapters.bitcoin import (
    LOAD_TX_VSIZE,
    BitcoinAdapter,
    ChainView,
    Utxo,
    estimate_vsize,
    sign_load_batch,
)
from harness.chainpack import load as load_pack

ROOT = Path(__file__).resolve().parents[2]

# BIP143, "Native P2WPKH": input 0 spends a P2PK output (legacy sighash), input 1 a P2WPKH.
BIP143_UNSIGNED = (
    "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eeffffff"
    "ef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb206"
    "000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde42db"
    "ee7e4dbe6a21b2d50ce2f0167faa815988ac11000000")
BIP143_SIGNED = (
    "01000000000102fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f00000000494830"
    "450221008b9d1dc26ba6a9cb62127b02742fa9d754cd3bebf337f7a55d114c8e5cdd30be022040529b194ba3f928"
    "1a99f2b1c0a19c0489bc22ede944ccf4ecbab4cc618ef3ed01eeffffffef51e1b804cc89d182d279655c3aa89e81"
    "5b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb206000000001976a9148280b37df378db99f6"
    "6f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988"
    "ac000247304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a0220573a954c"
    "4518331561406f90300e8f3358f51928d43c212a8caed02de67eebee0121025476c2e83188368da1ff3e292e7aca"
    "fcdb3566bb0ad253f62fc70f07aeee635711000000")
KEY0 = bytes.fromhex("bbc27228ddcb9209d7fd6f36b02f7dfa6252af40bb2f1cbc7a557da8027ff866")
P2PK0 = bytes.fromhex("2103c9f4836b9a4f77fc0d81f7bcb01b7f1b35916864b9476c241ce9fc198bd25432ac")
KEY1 = bytes.fromhex("619c335025c7f4012e556c2a58b2506e30b8511b53ade95ea316fd8c3286feb9")


def test_bip143_native_p2wpkh_sighash_and_signature():
    tx = btx.parse_tx(bytes.fromhex(BIP143_UNSIGNED))
    key = btx.Key.from_secret(KEY1)
    assert key.pubkey.hex() == "025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee6357"
    assert key.p2wpkh.hex() == "00141d0f172a0ecb48aee1be1f2687d2963ae33f71a1"
    cache: dict = {}
    digest = tx.bip143_sighash(1, btx.p2pkh_script(key.pubkey_hash), 600_000_000, cache=cache)
    assert cache["prevouts"].hex() == "96b827c8483d4e9b96712b6713a7b68d6e8003a781feba36c31143470b4efd37"
    assert cache["sequence"].hex() == "52b0a642eea2fb7ae638c36f6252b6750293dbe574a806984b8e4d8548339a3b"
    assert cache["outputs"].hex() == "863ef3e1a92afbfdb97f31ad0fc7683ee943e9abcf2501590ff8f6551f47e5e5"
    assert digest.hex() == "c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670"
    # RFC 6979 + low-S makes the signature deterministic: it equals the published one.
    assert btx.ecdsa_der(KEY1, digest).hex() == (
        "304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a0220573a954c"
        "4518331561406f90300e8f3358f51928d43c212a8caed02de67eebee")


def test_bip143_signed_transaction_is_reproduced_byte_for_byte():
    tx = btx.parse_tx(bytes.fromhex(BIP143_UNSIGNED))
    # Input 0 spends a P2PK output: legacy sighash, scriptSig = <sig>.
    digest0 = tx.legacy_sighash(0, P2PK0)
    assert digest0.hex() == "63cec688ee06a91e913875356dd4dea2f8e0f2a2659885372da2a37e32c7532e"
    tx.inputs[0].script_sig = btx.push_data(btx.ecdsa_der(KEY0, digest0) + b"\x01")
    btx.sign_p2wpkh(tx, 1, btx.Key.from_secret(KEY1), 600_000_000)
    assert tx.serialize().hex() == BIP143_SIGNED
    assert tx.serialize(witness=False).hex() != BIP143_SIGNED
    # The txid ignores witnesses; the wtxid does not.
    assert tx.txid() == btx.sha256d(tx.serialize(witness=False))[::-1].hex()
    assert tx.txid() == "e8151a2af31c368a35053ddd4bdb285a8595c769a3ad83e0fa02314a602d4609"
    assert tx.wtxid() != tx.txid()
    assert btx.parse_tx(bytes.fromhex(BIP143_SIGNED)).serialize().hex() == BIP143_SIGNED


def test_bip143_p2sh_p2wpkh_sighash():
    unsigned = ("0100000001db6b1b20aa0fd7b23880be2ecbd4a98130974cf4748fb66092ac4d3ceb1a5477010000"
                "0000feffffff02b8b4eb0b000000001976a914a457b684d7f0d539a46a45bbc043f35b59d0d96388ac"
                "0008af2f000000001976a914fd270b1ee6abcaea97fea7ad0402e8bd8ad6d77c88ac92040000")
    tx = btx.parse_tx(bytes.fromhex(unsigned))
    code = bytes.fromhex("76a91479091972186c449eb1ded22b78e40d009bdf008988ac")
    assert tx.bip143_sighash(0, code, 1_000_000_000).hex() == (
        "64f3b0f4dd2bb3aa1ce8566d220cc74dda9df97d8490cc81d89d735c92e59fb6")


def test_genesis_coinbase_txid():
    genesis_coinbase = (
        "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff"
        "001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e"
        "6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104"
        "678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51e"
        "c112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000")
    tx = btx.parse_tx(bytes.fromhex(genesis_coinbase))
    assert not tx.has_witness()
    assert tx.txid() == "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
    assert tx.txid() == tx.wtxid()
    assert tx.serialize().hex() == genesis_coinbase


def test_bech32_addresses():
    program = bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")   # BIP173
    assert btx.segwit_address("bc", 0, program) == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    assert btx.segwit_address("tb", 0, program) == "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
    assert btx.segwit_address("rltc", 0, program).startswith("rltc1q")


def test_varint_and_pushes():
    assert btx.varint(0xFC) == b"\xfc"
    assert btx.varint(0xFD) == b"\xfd\xfd\x00"
    assert btx.varint(0x10000) == b"\xfe\x00\x00\x01\x00"
    assert btx.varint(2**32) == b"\xff" + (2**32).to_bytes(8, "little")
    assert btx.push_data(b"\x01" * 75) == b"\x4b" + b"\x01" * 75
    assert btx.push_data(b"\x01" * 76) == b"\x4c\x4c" + b"\x01" * 76


@settings(max_examples=40, deadline=None)
@given(value=st.integers(10_000, 2_100_000_000_000_000), vout=st.integers(0, 3000),
       txid=st.binary(min_size=32, max_size=32), seed=st.integers(0, 2**32))
def test_p2wpkh_spend_verifies_and_round_trips(value, vout, txid, seed):
    key = btx.derive_key("sender", seed, 0)
    tx = btx.Tx([btx.TxIn(txid, vout)], [btx.TxOut(value - 1000, btx.derive_key("r", seed, 0).p2wpkh)])
    btx.sign_p2wpkh(tx, 0, key, value)
    signature, pubkey = tx.inputs[0].witness
    assert signature[-1] == btx.SIGHASH_ALL and pubkey == key.pubkey
    digest = tx.bip143_sighash(0, btx.p2pkh_script(key.pubkey_hash), value)
    assert PublicKey(pubkey).verify(signature[:-1], digest, hasher=None)
    # low-S, as relay policy demands
    r_len = signature[3]
    s = int.from_bytes(signature[6 + r_len:-1], "big")
    assert s <= btx.SECP256K1_N // 2
    assert btx.parse_tx(tx.serialize()).serialize() == tx.serialize()
    assert tx.vsize() <= 110
    # the hot path builds the very same bytes
    raw, spend_id = btx.spend_p2wpkh(txid, vout, value, key, tx.outputs[0].script_pubkey, value - 1000)
    assert raw == tx.serialize() and spend_id == tx.txid() == btx.parse_tx(raw).txid()


# -- the adapter's pure parts -------------------------------------------------------------


def _adapter(**params) -> BitcoinAdapter:
    pack = load_pack(ROOT / "chains" / "litecoin")
    return BitcoinAdapter(pack, {**pack.params, **params}, nodes=4, seed=3, accounts=8)


def test_load_transactions_spend_one_utxo_each_and_post_sendrawtransaction():
    adapter = _adapter()
    keys = [btx.derive_key("utxo", 3, k) for k in range(8)]
    utxos = [Utxo(txid=f"{i:064x}", vout=i % 5, value=100_000, key=i % 8) for i in range(20)]
    prepared = sign_load_batch((list(enumerate(utxos)), [k.secret for k in keys],
                                [btx.derive_key("recipient", 3, 0).p2wpkh], 250))
    assert len({p.tx_id for p in prepared}) == 20
    for i, p in enumerate(prepared):
        body = json.loads(p.body)
        assert body == json.loads(jsonrpc.request_body("sendrawtransaction", body["params"], i))
        assert body["method"] == "sendrawtransaction" and body["id"] == i
        tx = btx.parse_tx(bytes.fromhex(body["params"][0]))
        assert tx.txid() == p.tx_id
        spent = [(t.prev_txid[::-1].hex(), t.prev_index) for t in tx.inputs]
        assert spent == [(utxos[i].txid, utxos[i].vout)]
        assert tx.outputs[0].value == 100_000 - 250
    assert adapter.submit_headers["Authorization"].startswith("Basic ")
    files = adapter.node_files()
    assert set(files) == {0, 1, 2, 3}
    assert files[0]["rpcauth.conf"].startswith(b"rpcauth=bctest:")


@pytest.mark.parametrize("outputs", [1, 2, 31, 2000])
def test_fee_estimates_never_undershoot_the_signed_size(outputs):
    key = btx.derive_key("funder", 1, 0)
    tx = btx.Tx([btx.TxIn(b"\x11" * 32, 0)], [btx.TxOut(1000, key.p2wpkh)] * outputs)
    btx.sign_p2wpkh(tx, 0, key, 10**9)
    estimate = estimate_vsize(1, [key.p2wpkh] * outputs)
    assert tx.vsize() <= estimate <= tx.vsize() + 1
    if outputs == 1:
        assert estimate == LOAD_TX_VSIZE


def test_params_are_checked():
    from harness.errors import InputError
    with pytest.raises(InputError, match="miner"):
        _adapter(miner=4)
    with pytest.raises(InputError, match="confirmations"):
        _adapter(confirmations=0)
    with pytest.raises(InputError, match="block_interval"):
        _adapter(block_interval=0)


def test_response_error_reads_json_rpc_errors_whatever_the_status():
    ok = BitcoinAdapter.response_error(200, b'{"result":"%s","error":null,"id":1}' % (b"ab" * 32))
    assert ok is None
    assert BitcoinAdapter.response_error(200, b'{"result":"ab","error":null,"id":1}') == \
        "reply's result is not a txid"
    rejected = BitcoinAdapter.response_error(
        500, b'{"result":null,"error":{"code":-25,"message":"bad-txns-inputs-missingorspent"},"id":1}')
    assert rejected == "bad-txns-inputs-missingorspent (code -25)"
    assert BitcoinAdapter.response_error(401, b"") == "http 401 (rpc credentials refused)"
    assert BitcoinAdapter.response_error(503, b"Work queue depth exceeded") == \
        "http 503: Work queue depth exceeded"


def _block(height: int, name: str, parent: str, txs=()):
    return {"hash": name, "height": height, "previousblockhash": parent, "time": 1_700_000_000 + height,
            "tx": ["coinbase-" + name, *txs]}


def test_chain_view_reports_blocks_once_they_are_deep_enough():
    view = ChainView(node=0, confirmations=2)
    view.start(_block(10, "a10", "a9"), now=0.0)
    assert view.advance([_block(11, "a11", "a10", ["t1"])], now=1.0, fetched=1.1) == []
    deep = view.advance([_block(12, "a12", "a11", ["t2"])], now=2.0, fetched=2.1)
    assert [(b.number, b.hash, b.tx_ids, b.seen) for b in deep] == [(11, "a11", ("t1",), 2.0)]
    deep = view.advance([_block(13, "a13", "a12"), _block(14, "a14", "a13")], now=3.0, fetched=3.2)
    assert [(b.number, b.seen, b.fetched) for b in deep] == [(12, 3.0, 3.2), (13, 3.0, 3.2)]


def test_chain_view_rewalks_from_the_fork_point_after_a_reorg():
    view = ChainView(node=1, confirmations=1)
    view.start(_block(10, "a10", "a9"), now=0.0)
    assert [b.hash for b in view.advance([_block(11, "a11", "a10", ["t1"])], 1.0, 1.0)] == ["a11"]
    assert [b.hash for b in view.advance([_block(12, "a12", "a11", ["t2"])], 2.0, 2.0)] == ["a12"]
    # b11, b12, b13 replace a11, a12 (fork point 10)
    assert view.fork_point(_block(11, "b11", "a10")) == 10
    new = view.advance([_block(11, "b11", "a10", ["t2"]), _block(12, "b12", "b11"),
                        _block(13, "b13", "b12", ["t3"])], 3.0, 3.1)
    assert [(b.number, b.hash) for b in new] == [(11, "b11"), (12, "b12"), (13, "b13")]
    assert view.tip_hash == "b13" and view.hashes[11] == "b11"


def test_chain_view_needs_parents_it_knows():
    view = ChainView(node=0, confirmations=1)
    view.start(_block(10, "a10", "a9"), now=0.0)
    assert view.knows(_block(10, "a10", "a9"))
    assert not view.knows(_block(11, "x11", "x10"))


def test_chain_view_memory_is_bounded_on_long_runs():
    from harness.adapters.bitcoin import KEEP_HEIGHTS
    view = ChainView(node=0, confirmations=1)
    view.start(_block(0, "h0", "h-1"), now=0.0)
    parent = "h0"
    for height in range(1, 3 * KEEP_HEIGHTS):
        reported = view.advance([_block(height, f"h{height}", parent, [f"t{height}"])], height, height)
        assert [b.tx_ids for b in reported] == [(f"t{height}",)]
        parent = f"h{height}"
    assert len(view.hashes) <= KEEP_HEIGHTS and len(view.seen) <= KEEP_HEIGHTS and not view.pending
    # a branch forking below what is remembered attaches at the floor
    old = _block(view.floor, "x", "unknown")
    assert view.fork_point(old) == view.floor - 1
