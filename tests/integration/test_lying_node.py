"""A real node behind a misbehaving proxy (issue 10, item 6): anvil, with a proxy in its
container that refuses about half of the submissions in a reply shape the harness once
could not classify ({"error": {"message": 0}}), never forwarding them. Before 0.3.0 those
sends were counted as "not sent" and the run passed with a success ratio of 1.0; now each
is a refusal with the node's answer, and the run fails its success check."""

from __future__ import annotations

import json

from tests.integration.conftest import ROOT, bctest, run_objects

SUITE = ROOT / "tests" / "adversarial" / "packs" / "lying-anvil.suite.yaml"


def test_refusals_hidden_in_odd_replies_are_counted_and_fail_the_run(docker_client, anvil_image, tmp_path):
    run_dir = tmp_path / "run"
    done = bctest("run", str(SUITE), "--out", str(run_dir), timeout=900)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    measure = results["phases"]["measure"]
    assert measure["scheduled"] == measure["submitted"] == 320      # every due send has a record
    assert 0.3 < measure["failed"] / measure["submitted"] < 0.7
    assert measure["errors"][0]["error"].startswith("error: ") and measure["success_ratio"] < 0.7
    [check] = results["checks"]
    assert check["verdict"] == "fail"
    with open(run_dir / "history.jsonl") as history:
        txs = [line for line in map(json.loads, history) if line["type"] == "tx"]
    assert all(tx["submitted"] is not None for tx in txs) and len(txs) == 400   # warmup included
    assert run_objects(docker_client, results["run_id"]) == []
