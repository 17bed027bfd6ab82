"""The CometBFT adapter's own logic, no Docker: keys, genesis, peers, transactions and their
ids, broadcast replies, block parsing, and the block follower's bookkeeping."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

from harness import chainpack, paths
from harness import suite as suite_module
from harness.adapters.base import Block
from harness.adapters.cometbft import (
    CometbftAdapter,
    CometError,
    Ed25519Key,
    _Follower,
    block_from_json,
    derive_key,
    make_tx,
    parse_rfc3339,
    response_error,
    rfc3339,
    tx_hash,
)
from harness.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
PACK = chainpack.load(ROOT / "chains" / "cometbft")


def adapter(nodes: int = 4, seed: int = 1, **params) -> CometbftAdapter:
    return CometbftAdapter(PACK, {**PACK.params, **params}, nodes, seed, 256)


# ---------------------------------------------------------------- keys


def test_keys_match_vectors_written_by_cometbft_init():
    # A priv_validator_key.json and a node_key.json made by `cometbft init` (v0.38.26).
    validator = base64.b64decode("XVIO096irrkul8wAHcJdZyIZzrrKFFkesNVBvC6OESCi+FM5nTOFO2HoeWNU25"
                                 "ZND6mRBQ+ILqlpjymv/IEv/A==")
    key = Ed25519Key.from_seed(validator[:32])
    assert key.public == validator[32:]
    assert key.address == "8A467B450B3DA429769A973136B603A537FFB3FA"
    assert key.pub_key_json()["value"] == "ovhTOZ0zhTth6HljVNuWTQ+pkQUPiC6paY8pr/yBL/w="
    assert key.priv_key_json()["value"] == base64.b64encode(validator).decode()
    node = base64.b64decode("2RjBEZEQmwKeTjMbGcvfU+/ga6RM7zDyoTcFlXXqsfOHYaroGQkecSzlUYHzQhlpQcm"
                            "KbosJ5iWzlGUMT8aISg==")
    assert Ed25519Key.from_seed(node[:32]).node_id == "2de56929aae01137f101738edfd48e634d206bec"


def test_derived_keys_are_deterministic_distinct_and_sign():
    assert derive_key("validator", 1, 0) == derive_key("validator", 1, 0)
    keys = {derive_key(purpose, seed, i).public for purpose in ("validator", "node")
            for seed in (1, 2) for i in range(8)}
    assert len(keys) == 2 * 2 * 8
    key = derive_key("validator", 7, 3)
    signature = eddsa.new(ECC.construct(curve="Ed25519", seed=key.seed), "rfc8032").sign(b"vote")
    # verify() raises unless the public key belongs to the seed.
    eddsa.new(eddsa.import_public_key(key.public), "rfc8032").verify(b"vote", signature)
    assert key.address == hashlib.sha256(key.public).hexdigest()[:40].upper()
    assert key.node_id == key.address.lower()


# ---------------------------------------------------------------- genesis and node files


def test_genesis_lists_every_validator_with_the_derived_chain_id():
    a = adapter(nodes=4)
    genesis = a.genesis(genesis_time=1_700_000_000.25)
    assert genesis["chain_id"] == f"bctest-{PACK.chain_id}"
    assert genesis["genesis_time"] == "2023-11-14T22:13:20.250000Z"
    assert genesis["initial_height"] == "1"
    assert genesis["consensus_params"]["validator"]["pub_key_types"] == ["ed25519"]
    validators = genesis["validators"]
    assert [v["name"] for v in validators] == ["node0", "node1", "node2", "node3"]
    for i, v in enumerate(validators):
        key = derive_key("validator", 1, i)
        assert v["address"] == key.address and v["power"] == "10"
        assert v["pub_key"] == {"type": "tendermint/PubKeyEd25519",
                                "value": base64.b64encode(key.public).decode()}


def test_node_files_give_each_node_its_own_keys_the_same_genesis_and_its_peers():
    files = adapter(nodes=4, seed=5).node_files()
    assert sorted(files) == [0, 1, 2, 3]
    genesis = {files[i]["genesis.json"] for i in files}
    assert len(genesis) == 1
    validators = json.loads(genesis.pop())["validators"]
    node_ids = [json_key(files[i]["node_key.json"]).node_id for i in range(4)]
    assert [files[i]["node_id"].decode() for i in range(4)] == node_ids
    for i, own in files.items():
        assert set(own) == {"genesis.json", "priv_validator_key.json", "node_key.json",
                            "persistent_peers", "node_id"}
        pv = json.loads(own["priv_validator_key.json"])
        key = json_key(own["priv_validator_key.json"])
        assert pv["address"] == key.address == validators[i]["address"]
        assert pv["pub_key"]["value"] == validators[i]["pub_key"]["value"]
        peers = own["persistent_peers"].decode().split(",")
        assert peers == [f"{node_ids[j]}@node{j}:26656" for j in range(4) if j != i]
    # A node never receives another node's private keys.
    assert len({files[i]["priv_validator_key.json"] for i in files}) == 4
    assert len({files[i]["node_key.json"] for i in files}) == 4


def test_same_seed_same_keys_other_seed_other_keys():
    one, again, other = adapter(seed=3), adapter(seed=3), adapter(seed=4)
    assert one.validator_keys() == again.validator_keys()
    assert one.persistent_peers(0) == again.persistent_peers(0)
    assert {k.public for k in one.validator_keys()}.isdisjoint(k.public for k in other.validator_keys())


def test_single_node_network_has_no_peers():
    files = adapter(nodes=1).node_files()
    assert files[0]["persistent_peers"] == b""
    assert len(json.loads(files[0]["genesis.json"])["validators"]) == 1


def json_key(text: bytes) -> Ed25519Key:
    value = base64.b64decode(json.loads(text)["priv_key"]["value"])
    key = Ed25519Key.from_seed(value[:32])
    assert key.public == value[32:]
    return key


# ---------------------------------------------------------------- transactions


def test_prepared_ids_are_the_sha256_of_the_broadcast_tx_bytes():
    prepared = adapter().prepare(500)
    assert len({p.tx_id for p in prepared}) == 500
    for i, p in enumerate(prepared[:50]):
        body = json.loads(p.body)
        assert body["jsonrpc"] == "2.0" and body["id"] == i
        assert body["method"] == "broadcast_tx_sync"
        tx = base64.b64decode(body["params"]["tx"])
        assert p.tx_id == hashlib.sha256(tx).hexdigest().upper() == tx_hash(tx)
        assert tx == make_tx(1, i)


def test_txs_are_valid_unchanged_kvstore_pairs_carrying_their_index():
    for i in (0, 7, 123456):
        tx = make_tx(9, i).decode()
        key, value = tx.split("=")
        # kvstore's CheckTx: exactly one '=', no ':', not at either end; PrepareProposal only
        # rewrites ':' (so the bytes, and the hash, stay as sent); 'val=' would be a validator tx.
        assert tx.count("=") == 1 and ":" not in tx and key and value
        assert not tx.startswith("val=")
        assert key.endswith(f".{i:09d}")
    assert make_tx(9, 1) != make_tx(10, 1)
    assert make_tx(9, 1) == make_tx(9, 1)


def test_broadcast_mode_and_tx_size_params():
    prepared = adapter(broadcast_mode="async", tx_size=256).prepare(3)
    body = json.loads(prepared[0].body)
    assert body["method"] == "broadcast_tx_async"
    tx = base64.b64decode(body["params"]["tx"])
    assert len(tx) == 256 and tx.count(b"=") == 1 and prepared[0].tx_id == tx_hash(tx)
    with pytest.raises(InputError, match="broadcast_mode"):
        adapter(broadcast_mode="commit")
    with pytest.raises(InputError, match="tx_size"):
        adapter(tx_size=-1)


def test_response_error_accepts_code_zero_and_names_every_rejection():
    ok = b'{"jsonrpc":"2.0","id":1,"result":{"code":0,"data":"","log":"","codespace":"","hash":"AB"}}'
    assert response_error(200, ok) is None
    rejected = b'{"jsonrpc":"2.0","id":1,"result":{"code":1,"data":"","log":"","codespace":"","hash":"AB"}}'
    assert response_error(200, rejected) == "code 1"
    logged = b'{"jsonrpc":"2.0","id":1,"result":{"code":2,"log":"tx already exists in cache"}}'
    assert response_error(200, logged) == "code 2: tx already exists in cache"
    full = json.dumps({"jsonrpc": "2.0", "id": 1, "error": {
        "code": -32603, "message": "Internal error",
        "data": "mempool is full: number of txs 5000 (max: 5000)"}}).encode()
    assert response_error(200, full).startswith("mempool is full")
    assert response_error(500, b'{"jsonrpc":"2.0","id":1,"error":{"code":-32700,"message":"Parse error"}}') \
        == "Parse error"
    assert response_error(502, b"<html>bad gateway</html>") == "http 502, reply is not JSON"
    assert response_error(200, b"[]") == "reply is not a JSON object"
    assert response_error(200, b'{"jsonrpc":"2.0","id":1}') == "reply has no result"


# ---------------------------------------------------------------- blocks


def block_json(height: int, txs: list[bytes],
               time: str = "2026-11-28T18:56:40.123456789Z") -> tuple[dict, dict]:
    block = {"header": {"height": str(height), "time": time,
                        "last_block_id": {"hash": f"{height - 1:064X}"}},
             "data": {"txs": [base64.b64encode(tx).decode() for tx in txs]}}
    return block, {"hash": f"{height:064X}"}


def test_block_tx_ids_match_the_prepared_ids():
    prepared = adapter(seed=2).prepare(10)
    block, block_id = block_json(12, [make_tx(2, i) for i in (3, 4, 9)])
    parsed = block_from_json(1, block, block_id, seen=5.0, fetched=5.5)
    assert parsed.tx_ids == tuple(prepared[i].tx_id for i in (3, 4, 9))
    assert parsed.number == 12 and parsed.node == 1
    assert parsed.hash == f"{12:064X}" and parsed.parent == f"{11:064X}"
    assert parsed.timestamp == pytest.approx(parse_rfc3339("2026-11-28T18:56:40.123456789Z"))
    empty = block_from_json(0, {"header": {"height": "3", "time": "2026-01-01T00:00:00Z"},
                                "data": {"txs": None}}, {}, 1.0, 1.0)
    assert empty.tx_ids == () and empty.hash == "" and empty.parent == ""


def test_rfc3339_times_with_nanoseconds_and_offsets():
    assert parse_rfc3339("1970-01-01T00:00:00Z") == 0.0
    assert parse_rfc3339("2023-11-14T22:13:20.250000Z") == 1_700_000_000.25
    assert parse_rfc3339("2023-11-14T22:13:20.123456789Z") == pytest.approx(1_700_000_000.123456789)
    assert parse_rfc3339("2023-11-15T00:13:20.5+02:00") == 1_700_000_000.5
    assert parse_rfc3339(rfc3339(1_700_000_000.5)) == 1_700_000_000.5
    with pytest.raises(ValueError):
        parse_rfc3339("yesterday")


class _FakeChain:
    """Stands in for a node's /block answers in the follower's bookkeeping test."""

    def __init__(self):
        self.fetched: list[int] = []

    async def _block(self, session, node, number, seen):
        self.fetched.append(number)
        block, block_id = block_json(number, [])
        return block_from_json(0, block, block_id, seen, seen + 0.01)


def test_follower_reports_each_height_once_and_fetches_what_the_stream_skipped():
    chain = _FakeChain()
    reported: list[Block] = []
    node = type("N", (), {"index": 0, "name": "node0"})()
    follower = _Follower(chain, None, node, reported.append)
    follower.last = 10

    def event(height: int) -> dict:
        block, block_id = block_json(height, [make_tx(1, height)])
        return {"jsonrpc": "2.0", "id": "x", "result": {
            "query": "tm.event='NewBlock'",
            "data": {"type": "tendermint/event/NewBlock", "value": {"block": block, "block_id": block_id}}}}

    async def feed(height: int) -> None:
        block = follower.parse_event(event(height), seen=float(height))
        if block is not None:
            await follower.catch_up(block.number - 1, float(height))
            follower.report(block)

    async def scenario() -> None:
        await feed(11)          # next height: reported from the event, nothing fetched
        await feed(14)          # 12 and 13 were skipped: fetched, then 14 from the event
        await feed(13)          # an old height: ignored
        assert follower.parse_event({"jsonrpc": "2.0", "id": "x", "result": {}}, 1.0) is None
        with pytest.raises(CometError, match="slow client"):
            follower.parse_event({"jsonrpc": "2.0", "id": "x", "error": {
                "code": -32000, "message": "Server error",
                "data": "subscription was canceled (reason: slow client)"}}, 1.0)

    asyncio.run(scenario())
    assert [b.number for b in reported] == [11, 12, 13, 14]
    assert chain.fetched == [12, 13]
    assert reported[0].tx_ids == (tx_hash(make_tx(1, 11)),)
    assert reported[0].fetched == reported[0].seen  # the event carried the transactions


# ---------------------------------------------------------------- the pack and its suites


@pytest.mark.parametrize("path", ["suites/smoke/cometbft.yaml", "suites/scale/cometbft-16.yaml"])
def test_cometbft_suites_validate(path):
    loaded = suite_module.load(ROOT / path)
    assert loaded.chain.name == "cometbft" and loaded.chain.family == "cometbft"
    assert loaded.chain.consensus == "bft" and loaded.commit_share == 1.0
    assert loaded.chain.progress_blocks == 2


# ---------------------------------------------------------------- against the real binary


def cometbft_binary() -> str | None:
    """The cometbft binary if one is at hand (PATH or bctest's artifact cache); no fetching."""
    found = shutil.which("cometbft")
    if found:
        return found
    artifact = PACK.build["artifacts"][0]
    key = hashlib.sha256(json.dumps(artifact, sort_keys=True).encode()).hexdigest()[:16]
    cached = paths.cache_dir() / "artifacts" / key / artifact["dest"]
    return str(cached) if cached.is_file() else None


def test_the_real_cometbft_reads_the_generated_files(tmp_path):
    binary = cometbft_binary()
    if binary is None:
        pytest.skip("no cometbft binary on PATH or in the artifact cache (bctest images build cometbft)")
    files = adapter(nodes=4, seed=11).node_files()
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "data").mkdir()
    for name in ("genesis.json", "priv_validator_key.json", "node_key.json"):
        (home / "config" / name).write_bytes(files[2][name])
    (home / "data" / "priv_validator_state.json").write_text('{"height":"0","round":0,"step":0}')

    def run(*args: str) -> str:
        done = subprocess.run([binary, *args, "--home", str(home)], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    run("init")  # keeps the generated keys and genesis; fails on a key file it cannot load
    assert run("show-node-id") == files[2]["node_id"].decode()
    shown = json.loads(run("show-validator"))
    assert shown["value"] == json.loads(files[2]["genesis.json"])["validators"][2]["pub_key"]["value"]
    assert json.loads((home / "config" / "genesis.json").read_text()) == json.loads(files[2]["genesis.json"])
