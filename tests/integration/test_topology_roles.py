"""Three-tier roles on real nodes: a topology makes only the root nodes CometBFT validators /
Clique signers; the management and application nodes sync every block as full nodes, and the
load goes to the application nodes. Asked of the nodes themselves while the run goes on
(CometBFT /status and /validators; geth's genesis extra-data and the seal of every block),
and of their logs and the History afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_hash.auto import keccak

from harness.adapters.cometbft import derive_key
from harness.adapters.evm_tx import _rlp_bytes, _rlp_int, _rlp_prefix, derive_account

from .conftest import ROOT, results, run_objects, write_suite

SEED = 3
# 2 root (the validators), 1 national management node, 2 regional application nodes
TOPOLOGY = """\
topology:
  zones:
    - {name: province-a, tier: root, nodes: %d}
    - {name: national, tier: management, nodes: 1}
    - {name: region-1, tier: application, nodes: 1, parent: province-a}
    - {name: region-2, tier: application, nodes: 1, parent: province-a}
"""


def header(run_dir: Path) -> dict[str, Any]:
    with open(run_dir / "history.jsonl") as history:
        return json.loads(history.readline())


def observe_run(client, suite: Path, run_dir: Path, port: str, look: Callable[[dict[str, int]], bool],
                timeout: float = 150) -> subprocess.CompletedProcess:
    """`bctest run` in its own process; while it runs, `look` gets {node name: host port of
    `port`} of its containers (found by the harness's pid label) every second until it
    answers True. Returns the finished run."""
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--out",
                             str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        seen = False
        end = time.monotonic() + timeout
        while not seen and proc.poll() is None and time.monotonic() < end:
            ports = {}
            for container in client.containers.list(filters={"label": f"bctest.pid={proc.pid}"}):
                bound = (container.attrs["NetworkSettings"]["Ports"] or {}).get(port) or []
                if bound and "bctest.twin" not in container.labels:
                    ports[container.labels["bctest.node"]] = int(bound[0]["HostPort"])
            try:
                seen = bool(ports) and look(ports)
            except (OSError, ValueError, KeyError):
                seen = False   # a node not answering yet
            time.sleep(1)
        out, err = proc.communicate(timeout=max(10.0, end - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.terminate()   # the harness tears its run down on SIGTERM
            proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def get_json(url: str, body: dict | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=3) as reply:
        return json.loads(reply.read())


def log_of(run_dir: Path, got: dict, name: str) -> str:
    node = next(n for n in got["nodes"] if n["name"] == name)
    return (run_dir / node["log"]).read_text(errors="replace")


# ---------------------------------------------------------------- CometBFT


COMETBFT_SUITE = f"""\
name: it-topology-cometbft
description: 2 root validators, 1 management and 2 application full nodes; 20 tx/s on the regions
chain: {ROOT / "chains" / "cometbft"}
seed: {SEED}
{TOPOLOGY % 2}params:
  timeout_commit: 1s
load:
  rate: 20
  warmup: 3
  duration: 15
  settle: 20
audit: true
checks:
  - id: committed at least 99% of submitted
    metric: success_ratio
    op: ">="
    value: 0.99
"""


def test_cometbft_only_the_root_nodes_validate(docker_client, cometbft_image, tmp_path):
    roots = [derive_key("validator", SEED, i).address for i in range(2)]
    every_key = {derive_key("validator", SEED, i).address: f"node{i}" for i in range(5)}
    asked: dict[str, Any] = {}

    def look(ports: dict[str, int]) -> bool:
        if len(ports) < 5:
            return False
        status = {name: get_json(f"http://127.0.0.1:{port}/status")["result"]
                  for name, port in ports.items()}
        if min(int(s["sync_info"]["latest_block_height"]) for s in status.values()) < 3:
            return False
        asked["power"] = {name: int(s["validator_info"]["voting_power"]) for name, s in status.items()}
        asked["address"] = {name: s["validator_info"]["address"] for name, s in status.items()}
        asked["validators"] = {name: [v["address"] for v in get_json(
            f"http://127.0.0.1:{port}/validators")["result"]["validators"]]
            for name, port in ports.items()}
        return True

    suite = write_suite(tmp_path, "topo-cometbft", COMETBFT_SUITE)
    run_dir = tmp_path / "run"
    started = time.monotonic()
    done = observe_run(docker_client, suite, run_dir, "26657/tcp", look)
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 120

    # The nodes say it: every node's validator set is the two root nodes' keys, and only the
    # root nodes hold voting power; each full node runs with its own key, in no set.
    assert asked, "the nodes were never asked (the run ended before 5 nodes reached height 3)"
    assert all(sorted(found) == sorted(roots) for found in asked["validators"].values()), asked
    assert asked["power"] == {"node0": 10, "node1": 10, "node2": 0, "node3": 0, "node4": 0}
    assert {every_key[a] for a in asked["address"].values()} == {f"node{i}" for i in range(5)}

    got = results(run_dir)
    first = header(run_dir)
    assert first["load"]["commit_nodes"] == [0, 1] and first["load"]["nodes"] == [3, 4]
    assert [first["topology"]["roles"][i] for i in range(5)] == \
        ["root", "root", "management", "application", "application"]
    measure = got["phases"]["measure"]
    assert measure["submitted"] >= 0.95 * 20 * 15 and measure["committed"] >= 0.99 * measure["submitted"]
    committed = got["phases"]["warmup"]["committed"] + measure["committed"]
    # the full nodes synced every committed transaction too
    assert all(node["txs_held"] >= committed for node in got["nodes"]), got["nodes"]
    # The authenticity audit: every audited block's commit holds exactly the two root
    # validators' signatures (> 2/3 of 20 power needs both), each verified against the keys
    # the harness put in the genesis (the root nodes' only).
    signatures = got["audit"]["signatures"]
    assert signatures["verdict"] == "pass", signatures
    assert signatures["checked"] > 5 and signatures["failed"] == signatures["skipped"] == 0
    assert signatures["counts"]["signatures"] == 2 * signatures["checked"], signatures
    for i in range(5):
        said = log_of(run_dir, got, f"node{i}")
        assert ("This node is a validator" in said) == (i < 2), f"node{i}"
        assert ("This node is not a validator" in said) == (i >= 2), f"node{i}"
    assert run_objects(docker_client, got["run_id"]) == []


# ---------------------------------------------------------------- geth Clique


def seal_signer(block: dict[str, Any]) -> bytes:
    """Who sealed a Clique block: ecrecover over the header's RLP without the seal (the last
    65 bytes of extraData), as clique.SealHash does (London: with baseFee)."""
    import coincurve

    def raw(field: str) -> bytes:
        return bytes.fromhex(block[field][2:])

    extra = raw("extraData")
    items = [raw("parentHash"), raw("sha3Uncles"), raw("miner"), raw("stateRoot"),
             raw("transactionsRoot"), raw("receiptsRoot"), raw("logsBloom")]
    fields = b"".join(_rlp_bytes(x) for x in items)
    fields += b"".join(_rlp_int(int(block[f], 16)) for f in ("difficulty", "number", "gasLimit",
                                                              "gasUsed", "timestamp"))
    fields += _rlp_bytes(extra[:-65]) + _rlp_bytes(raw("mixHash")) + _rlp_bytes(raw("nonce"))
    fields += _rlp_int(int(block["baseFeePerGas"], 16))
    digest = keccak(_rlp_prefix(len(fields), 0xC0) + fields)
    public = coincurve.PublicKey.from_signature_and_message(extra[-65:], digest, hasher=None)
    return keccak(public.format(compressed=False)[1:])[-20:]


GETH_SUITE = f"""\
name: it-topology-geth
description: 3 root Clique signers, 1 management and 1 application non-signer
chain: geth-clique
seed: {SEED}
topology:
  zones:
    - {{name: province-a, tier: root, nodes: 3}}
    - {{name: national, tier: management, nodes: 1}}
    - {{name: region-1, tier: application, nodes: 1, parent: province-a}}
workload: {{accounts: 64}}
load: {{rate: 20, warmup: 3, duration: 15, settle: 30}}
checks:
  - {{metric: success_ratio, op: '>=', value: 0.99}}
"""


@pytest.mark.long
def test_geth_clique_only_the_root_nodes_seal(docker_client, geth_image, tmp_path):
    roots = {derive_account("signer", SEED, i).address for i in range(3)}
    asked: dict[str, Any] = {}

    def call(port: int, method: str, params: list) -> Any:
        return get_json(f"http://127.0.0.1:{port}",
                        {"jsonrpc": "2.0", "id": 1, "method": method, "params": params})["result"]

    def look(ports: dict[str, int]) -> bool:
        if len(ports) < 5:
            return False
        heads = {name: int(call(port, "eth_blockNumber", []), 16) for name, port in ports.items()}
        if min(heads.values()) < 4:
            return False
        extra = {name: bytes.fromhex(call(port, "eth_getBlockByNumber", ["0x0", False])
                                     ["extraData"][2:]) for name, port in ports.items()}
        asked["genesis_signers"] = {name: {e[32 + k:52 + k] for k in range(0, len(e) - 97, 20)}
                                    for name, e in extra.items()}
        blocks = [call(ports["node4"], "eth_getBlockByNumber", [hex(n), False])
                  for n in range(1, heads["node4"] + 1)]
        asked["sealers"] = {seal_signer(b) for b in blocks}
        return True

    suite = write_suite(tmp_path, "topo-geth", GETH_SUITE)
    run_dir = tmp_path / "run"
    done = observe_run(docker_client, suite, run_dir, "8545/tcp", look, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr

    assert asked, "the nodes were never asked (the run ended before 5 nodes reached block 4)"
    assert all(found == roots for found in asked["genesis_signers"].values()), asked
    # every block the application node holds was sealed by a root signer, and not by one alone
    assert asked["sealers"] <= roots and len(asked["sealers"]) >= 2, asked["sealers"]

    got = results(run_dir)
    first = header(run_dir)
    assert first["load"]["commit_nodes"] == [0, 1, 2] and first["load"]["nodes"] == [4]
    measure = got["phases"]["measure"]
    assert measure["committed"] >= 0.99 * measure["submitted"] > 0
    for i in range(5):
        said = log_of(run_dir, got, f"node{i}")
        assert ("not a signer, syncs only" in said) == (i >= 3), f"node{i}"
    assert run_objects(docker_client, got["run_id"]) == []
