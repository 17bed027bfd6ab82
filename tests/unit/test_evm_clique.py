"""The EVM adapter's Clique genesis: signers in extradata, per-node keys and enodes."""

from __future__ import annotations

import json

import coincurve

from harness import chainpack
from harness.adapters.evm import EvmAdapter
from harness.paths import home


def adapter(nodes: int = 4, seed: int = 7) -> EvmAdapter:
    pack = chainpack.load(home() / "chains" / "geth-clique")
    return EvmAdapter(pack, {**pack.params, "period": 2}, nodes, seed, accounts=8)


def test_extradata_holds_every_signer_between_vanity_and_seal():
    a = adapter()
    genesis = a.genesis(8)
    extra = bytes.fromhex(genesis["extraData"][2:])
    assert len(extra) == 32 + 4 * 20 + 65
    assert extra[:32] == bytes(32) and extra[-65:] == bytes(65)
    assert [extra[32 + 20 * i: 52 + 20 * i] for i in range(4)] == [s.address for s in a.signers()]
    assert genesis["config"]["clique"] == {"period": 2, "epoch": 30000}
    assert genesis["config"]["chainId"] == 1337 and len(genesis["alloc"]) == 8


def test_each_node_gets_its_own_signer_and_p2p_key_and_everyones_enode():
    files = adapter().node_files()
    assert sorted(files) == [0, 1, 2, 3]
    signer_keys = {files[i]["signer.key"] for i in files}
    node_keys = {files[i]["nodekey"] for i in files}
    assert len(signer_keys) == len(node_keys) == 4 and not signer_keys & node_keys
    lines = files[0]["enodes"].decode().splitlines()
    assert [line.split()[0] for line in lines] == ["node0", "node1", "node2", "node3"]
    for i, line in enumerate(lines):
        public = coincurve.PrivateKey(bytes.fromhex(files[i]["nodekey"].decode())).public_key
        assert line.split()[1] == public.format(compressed=False)[1:].hex()
    assert all(files[i]["genesis.json"] == files[0]["genesis.json"] for i in files)
    json.loads(files[0]["genesis.json"])


def test_same_seed_same_network_other_seed_other_keys():
    assert adapter(seed=7).node_files()[1]["signer.key"] == adapter(seed=7).node_files()[1]["signer.key"]
    assert adapter(seed=7).node_files()[1]["signer.key"] != adapter(seed=8).node_files()[1]["signer.key"]
