"""go-ethereum Clique as a real 4-signer network, driven by the same EVM adapter as anvil."""

from __future__ import annotations

from .conftest import bctest, results, run_objects, write_suite


def test_four_clique_signers_commit_everything_on_every_node(docker_client, geth_image, tmp_path):
    suite = write_suite(tmp_path, "geth4", "name: geth4\nchain: geth-clique\nnodes: 4\n"
                        "workload: {accounts: 512}\n"
                        "load: {rate: 50, warmup: 3, duration: 15, settle: 30}\n"
                        "checks:\n  - {metric: success_ratio, op: '>=', value: 0.99}\n")
    run_dir = tmp_path / "run"
    done = bctest("run", str(suite), "--out", str(run_dir), timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    got = results(run_dir)
    measure = got["phases"]["measure"]
    assert got["node_count"] == 4 and got["threshold_nodes"] == 4
    assert measure["committed"] >= 0.99 * measure["submitted"] == 0.99 * 750
    committed_anywhere = max(node["txs_held"] for node in got["nodes"])
    assert all(node["txs_held"] == committed_anywhere for node in got["nodes"])
    assert {node["commit_method"] for node in got["nodes"]} == {"websocket"}
    assert len({node["head"] for node in got["nodes"]}) <= 2  # one tip, give or take a block
    assert run_objects(docker_client, got["run_id"]) == []
