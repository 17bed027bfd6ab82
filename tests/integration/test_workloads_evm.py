"""The EVM workloads (issue 13 §3) on a real anvil node: every suite under
suites/workloads/evm-*.yaml runs for real, its contracts deployed in the bootstrap, and the
read-back checker finds every committed effect in the chain's state; the e-invoice double
redemptions signed into the load are refused and the run checks that they were. Then two
runs whose read-back must fail: calls included in blocks but reverted (too little gas),
and a vendor node that forges every state read (tests/adversarial/packs/forged-state-anvil)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import history as hist

from .conftest import ROOT, bctest, chain_image, run_objects, write_suite

SUITES = sorted((ROOT / "suites" / "workloads").glob("evm-*.yaml"))
QUERIES = {"evm-ycsb-a": "ycsb-read", "evm-ycsb-b": "ycsb-read", "evm-ycsb-c": "ycsb-read",
           "evm-evidence": "evidence-verify", "evm-traceability": "trace"}


def _run(suite: Path, run_dir: Path) -> tuple[object, dict, dict]:
    done = bctest("run", str(suite), "--out", str(run_dir), timeout=300)
    results = json.loads((run_dir / "results.json").read_text()) if (run_dir / "results.json").exists() \
        else {}
    [readback] = [c for c in results.get("checkers", []) if c["id"] == "readback"] or [{}]
    return done, results, readback


def test_every_evm_workload_suite_is_here():
    assert {s.stem for s in SUITES} == {
        "evm-erc20", "evm-ycsb-a", "evm-ycsb-b", "evm-ycsb-c", "evm-smallbank", "evm-donothing",
        "evm-cpuheavy", "evm-ioheavy", "evm-evidence", "evm-traceability", "evm-einvoice"}


# CI time: one YCSB mix (a) runs in CI; the other two mixes differ only in their rates.
LONG = {"evm-ycsb-b", "evm-ycsb-c"}


@pytest.mark.parametrize("suite", [pytest.param(s, marks=pytest.mark.long) if s.stem in LONG else s
                                   for s in SUITES], ids=[s.stem for s in SUITES])
def test_workload_suite_runs_and_every_committed_effect_is_read_back(docker_client, anvil_image,
                                                                    tmp_path, suite):
    run_dir = tmp_path / "run"
    done, results, readback = _run(suite, run_dir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert results["status"] == "complete"
    workload = results["bootstrap"]["workload"]
    assert workload["kind"] == suite.stem.removeprefix("evm-").split("-")[0]
    assert workload["contracts"] and workload["compiler"].startswith("solc-js 0.8.28")
    effects = readback["evidence"]["effects"]
    assert readback["verdict"] == "pass", readback
    assert effects["expected"] > 0 and effects["found"] == effects["expected"], effects
    if suite.stem != "evm-donothing":   # state read with proofs against the run's header
        assert "proven against its state root" in readback["evidence"]["method"]
        assert readback["evidence"]["forged"] == 0
    history = hist.read(run_dir / "history.jsonl")
    assert history.readback["committed"] == sum(1 for tx in history.txs if tx.commits) > 0
    if suite.stem in QUERIES:   # the workload's reads in the query phase, all answered
        query = results["phases"]["query"]
        assert query["kind"] == QUERIES[suite.stem]
        assert query["submitted"] == query["answered"] > 0, query["errors"]
    if suite.stem == "evm-einvoice":
        refusals = readback["evidence"]["must_refuse"]
        assert len(refusals) >= 5 and all(r["refused"] is True for r in refusals), refusals
        assert all("redemptions on chain: 1" in r["outcome"] for r in refusals)
    assert run_objects(docker_client, results["run_id"]) == []


def test_calls_included_but_reverted_are_missing_effects(docker_client, anvil_image, tmp_path):
    """Inclusion is not execution: hashing loops given too little gas are mined with status 0;
    the run commits them all, and the read-back finds none of their effects."""
    body = (ROOT / "suites" / "workloads" / "evm-cpuheavy.yaml").read_text()
    body = body.replace("chain: ../../chains/anvil", f"chain: {ROOT / 'chains' / 'anvil'}")
    body = body.replace("settings: {rounds: 500}", "settings: {rounds: 500, gas: 60000}")
    suite = write_suite(tmp_path, "reverted", body)
    done, results, readback = _run(suite, tmp_path / "run")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert results["phases"]["measure"]["success_ratio"] == 1.0     # every call committed...
    effects = readback["evidence"]["effects"]
    assert readback["verdict"] == "fail", readback                   # ...none took effect
    assert effects["missing"] == effects["expected"] > 0 and effects["found"] == 0
    assert readback["evidence"]["mismatches"][0]["found"] == 0
    assert readback["evidence"]["forged"] == 0     # anvil's answers match its proofs
    assert run_objects(docker_client, results["run_id"]) == []


def test_a_node_that_forges_state_reads_fails_the_read_back(docker_client, anvil_image, tmp_path):
    """The vendor's node commits the load but answers every state read (eth_getStorageAt,
    eth_call, eth_getProof's values) with made-up non-zero values. Its eth_call answers pass
    the query phase (a read is the node's say-so); the read-back takes each value from the
    proof against the state root of the header the run saw, so it finds the real effects AND
    every value the node stated against its own proof, and fails."""
    packs = ROOT / "tests" / "adversarial" / "packs"
    chain_image(docker_client, "anvil")
    from harness import chainpack
    from harness.runtime import images
    images.ensure(docker_client, chainpack.load(packs / "lying-anvil"))   # its base image
    done, results, readback = _run(packs / "forged-state-anvil.suite.yaml", tmp_path / "run")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert results["phases"]["measure"]["success_ratio"] == 1.0
    query = results["phases"]["query"]
    assert query["answered"] == query["submitted"] > 0        # forged answers look fine to a query
    assert readback["verdict"] == "fail", readback
    evidence = readback["evidence"]
    assert "eth_getProof" in evidence["method"] and "proven against its state root" in evidence["method"]
    assert evidence["effects"]["found"] == evidence["effects"]["expected"] > 0     # the real state
    assert evidence["forged"] >= evidence["effects"]["expected"]                  # and the lies
    assert "proofs contradict" in readback["why"]
    assert run_objects(docker_client, results["run_id"]) == []
