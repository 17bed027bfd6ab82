"""Three-tier roles in the reference adapters, no Docker: with a topology only the root nodes
are CometBFT validators / Clique signers; management and application nodes get the same
genesis and peers, their own keys, and nothing that makes them vote or seal. Without a
topology (roles None) every node is a validator / signer, as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import chainpack
from harness import suite as suite_module
from harness.adapters.cometbft import CometbftAdapter, Ed25519Key
from harness.adapters.evm import EvmAdapter

ROOT = Path(__file__).resolve().parents[2]
COMET = chainpack.load(ROOT / "chains" / "cometbft")
CLIQUE = chainpack.load(ROOT / "chains" / "geth-clique")
# 2 root, 1 management, 2 application: the shape of tests/integration/test_topology_roles.py
ROLES = ("root", "root", "management", "application", "application")


def comet(roles: tuple[str, ...] | None, seed: int = 3) -> CometbftAdapter:
    a = CometbftAdapter(COMET, dict(COMET.params), len(roles or ROLES), seed, 16)
    a.roles = roles
    return a


def clique(roles: tuple[str, ...] | None, seed: int = 3) -> EvmAdapter:
    a = EvmAdapter(CLIQUE, {**CLIQUE.params, "period": 1}, len(roles or ROLES), seed, accounts=4)
    a.roles = roles
    return a


def own_key(priv_validator_key: bytes) -> Ed25519Key:
    import base64
    value = base64.b64decode(json.loads(priv_validator_key)["priv_key"]["value"])
    return Ed25519Key.from_seed(value[:32])


# ---------------------------------------------------------------- CometBFT


def test_cometbft_genesis_holds_only_the_root_validators():
    a = comet(ROLES)
    genesis = a.genesis(genesis_time=1_700_000_000)
    assert [v["name"] for v in genesis["validators"]] == ["node0", "node1"]
    keys = a.validator_keys()
    assert [v["address"] for v in genesis["validators"]] == [keys[0].address, keys[1].address]
    assert a.validating_nodes() == (0, 1)


def test_cometbft_full_nodes_get_the_same_genesis_their_own_keys_and_every_peer():
    files = comet(ROLES).node_files()
    assert len({files[i]["genesis.json"] for i in files}) == 1
    listed = {v["address"] for v in json.loads(files[0]["genesis.json"])["validators"]}
    for i, own in files.items():
        assert set(own) == {"genesis.json", "priv_validator_key.json", "node_key.json",
                            "persistent_peers", "node_id"}
        # a root node's key is in the validator set; a full node's is its own and in none
        assert (own_key(own["priv_validator_key.json"]).address in listed) == (ROLES[i] == "root")
        assert len(own["persistent_peers"].decode().split(",")) == len(ROLES) - 1   # full mesh
    assert len({files[i]["priv_validator_key.json"] for i in files}) == len(ROLES)
    assert len({files[i]["node_key.json"] for i in files}) == len(ROLES)


def test_cometbft_audit_expects_only_the_root_validators():
    a = comet(ROLES)
    keys = a.validator_keys()
    assert a.audit_expectations()["validators"] == {keys[0].public, keys[1].public}
    everyone = comet(None)
    assert everyone.audit_expectations()["validators"] == {k.public for k in everyone.validator_keys()}


def test_cometbft_without_roles_every_node_validates_as_before():
    a = comet(None)
    assert a.validating_nodes() == tuple(range(len(ROLES)))
    assert [v["name"] for v in a.genesis(1_700_000_000)["validators"]] == \
        [f"node{i}" for i in range(len(ROLES))]
    # the same keys with and without roles: a topology changes who votes, not who is who
    assert comet(None).node_files()[3]["node_key.json"] == comet(ROLES).node_files()[3]["node_key.json"]


def test_cometbft_roots_anywhere_in_the_node_order():
    a = comet(("application", "root", "management", "root"))
    assert [v["name"] for v in a.genesis(1_700_000_000)["validators"]] == ["node1", "node3"]


def test_roles_without_a_root_give_no_validatorless_genesis():
    with pytest.raises(ValueError, match="no validator"):
        comet(("management", "application")).genesis()
    with pytest.raises(ValueError, match="no signer"):
        clique(("management", "application")).genesis(4)


# ---------------------------------------------------------------- geth Clique


def extradata_signers(genesis: dict) -> list[bytes]:
    extra = bytes.fromhex(genesis["extraData"][2:])
    body = extra[32:-65]
    assert extra[:32] == bytes(32) and extra[-65:] == bytes(65) and len(body) % 20 == 0
    return [body[k:k + 20] for k in range(0, len(body), 20)]


def test_clique_extradata_lists_only_the_root_signers():
    a = clique(ROLES)
    signers = a.signers()
    assert extradata_signers(a.genesis(4)) == [signers[0].address, signers[1].address]
    assert a.signer_nodes() == (0, 1)


def test_clique_non_signers_get_no_signer_key_but_the_genesis_and_every_enode():
    files = clique(ROLES).node_files()
    for i, own in files.items():
        assert ("signer.key" in own) == (ROLES[i] == "root")
        assert {"genesis.json", "nodekey", "enodes"} <= set(own)
        assert len(own["enodes"].decode().splitlines()) == len(ROLES)
    assert len({files[i]["genesis.json"] for i in files}) == 1
    assert len({files[i]["nodekey"] for i in files}) == len(ROLES)


def test_clique_without_roles_every_node_signs_as_before():
    a = clique(None)
    files = a.node_files()
    assert all("signer.key" in files[i] for i in files)
    assert extradata_signers(a.genesis(4)) == [s.address for s in a.signers()]


def test_the_sovereign_suite_gives_the_cometbft_genesis_its_four_root_validators():
    # As setup does: the suite's topology -> adapter.roles -> node files.
    suite = suite_module.load(ROOT / "suites" / "topology" / "sovereign-3tier.yaml")
    a = CometbftAdapter(suite.chain, suite.params, suite.nodes, 1, 16)
    a.roles = suite.topology.roles()
    validators = json.loads(a.node_files()[0]["genesis.json"])["validators"]
    assert [v["name"] for v in validators] == [f"node{i}" for i in suite.topology.tier_nodes("root")]
    assert len(validators) == 4 and suite.nodes == 9
