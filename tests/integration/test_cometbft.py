"""Four real CometBFT validators (kvstore) through the CLI: they start, agree, commit what
was sent on every node, and leave nothing behind."""

from __future__ import annotations

import json
from collections import defaultdict

import jsonschema

from harness.validation import schema

from .conftest import ROOT, bctest, results, run_objects, write_suite

# A shorter cousin of suites/smoke/cometbft.yaml (60 s) to keep this test near a minute.
SUITE = f"""\
name: it-cometbft
description: 4 CometBFT validators, 50 tx/s for 20 s
chain: {ROOT / "chains" / "cometbft"}
nodes: 4
seed: 3
params:
  timeout_commit: 1s
load:
  rate: 50
  warmup: 3
  duration: 20
  settle: 20
checks:
  - id: committed at least 99% of submitted
    metric: success_ratio
    op: ">="
    value: 0.99
  - id: harness kept the target rate
    metric: send_rate_ratio
    op: ">="
    value: 0.98
"""


def test_four_validators_commit_everything_on_every_node(docker_client, cometbft_image, tmp_path):
    suite = write_suite(tmp_path, "cometbft", SUITE)
    run_dir = tmp_path / "run"
    done = bctest("run", str(suite), "--out", str(run_dir), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "consensus running" in done.stdout
    got = results(run_dir)
    jsonschema.validate(got, schema("results"))
    assert got["chain"]["name"] == "cometbft" and got["chain"]["image"]["id"] == cometbft_image
    assert got["node_count"] == 4 and got["threshold_nodes"] == 4
    assert got["time_to_ready_seconds"] > 0

    warmup, measure = got["phases"]["warmup"], got["phases"]["measure"]
    assert measure["submitted"] > 0
    assert measure["committed"] >= 0.99 * measure["submitted"]
    assert measure["latency"]["count"] == measure["committed"]
    assert 0 < measure["latency"]["p50"] <= measure["latency"]["p99"]
    committed = warmup["committed"] + measure["committed"]
    for node in got["nodes"]:
        # Every node held every committed transaction (a tx counts as committed only once
        # all four hold it; one held by fewer when settle ended would count here too).
        assert node["txs_held"] >= committed, node
        assert node["commit_method"] == "websocket", node
        assert (run_dir / node["log"]).stat().st_size > 0

    # Ledger growth: every node wrote its blocks, index and WAL; per tx, a few hundred bytes
    # to a few KiB (1641 bytes/tx measured at 100 tx/s).
    ledger = got["ledger"]
    assert sorted(ledger["bytes_added"]) == ["node0", "node1", "node2", "node3"]
    assert all(added > 100 * committed for added in ledger["bytes_added"].values()), ledger
    assert 100 < ledger["bytes_per_tx"] < 20_000 and ledger["committed"] >= committed

    # Safety, from the History: one block hash per height across the four nodes.
    hashes: dict[int, set[str]] = defaultdict(set)
    holders: dict[int, set[int]] = defaultdict(set)
    with open(run_dir / "history.jsonl") as history:
        for line in history:
            record = json.loads(line)
            if record.get("type") == "block":
                hashes[record["number"]].add(record["hash"])
                holders[record["number"]].add(record["node"])
            elif record.get("type") == "footer":
                assert record["foreign_txs"] == 0
    assert hashes and all(len(h) == 1 for h in hashes.values())
    assert any(len(nodes) == 4 for nodes in holders.values())

    assert run_objects(docker_client, got["run_id"]) == []
