"""The replay probe on real nodes, through `bctest run` of a small suite: anvil (one node:
both conflicting txs go to it), Litecoin Core regtest on two nodes (the conflicting spends
go to two different nodes at once) and four CometBFT validators (kvstore: the resubmission
only; its txs cannot conflict). Each run's probe verdicts are read back from
results.json; the chain's own checkers (safety, durability) judge the chain after it."""

from __future__ import annotations

from .conftest import bctest, results, write_suite

ANVIL = """
name: security-replay-anvil
chain: anvil
nodes: 1
seed: 11
params:
  block_time: 1
workload:
  kind: transfer
  accounts: 16
load:
  rate: 20
  warmup: 1
  duration: 3
  settle: 3
security:
  probes: [replay]
  budget: 60
  liveness: 15
  settings:
    replay: {commit_timeout: 15, settle_blocks: 2, settle_timeout: 15}
"""

LITECOIN = """
name: security-replay-litecoin
chain: litecoin
nodes: 2
seed: 11
params:
  block_interval: 1
  confirmations: 1
  miner: 0
workload:
  kind: transfer
  accounts: 16
load:
  rate: 10
  warmup: 1
  duration: 3
  settle: 5
security:
  probes: [replay]
  budget: 60
  liveness: 15
  settings:
    replay: {commit_timeout: 15, settle_blocks: 2, settle_timeout: 15}
"""

COMETBFT = """
name: security-replay-cometbft
chain: cometbft
nodes: 4
seed: 11
params:
  timeout_commit: 1s
load:
  rate: 10
  warmup: 1
  duration: 3
  settle: 5
security:
  probes: [replay]
  budget: 60
  liveness: 15
  settings:
    replay: {commit_timeout: 15, settle_blocks: 2, settle_timeout: 15}
"""


def _replay(run_dir) -> dict:
    doc = results(run_dir)
    [probe] = [p for p in doc["security"]["probes"] if p["probe"] == "replay"]
    return probe


def _cases(probe: dict) -> dict[tuple[str, str], dict]:
    return {(a["case"], a["node"]): a for a in probe["attempts"]}


def test_anvil_holds_a_resubmitted_tx_once_and_one_of_two_conflicting_but_takes_a_foreign_chain_id(
        anvil_image, tmp_path):
    out = tmp_path / "run"
    suite = write_suite(tmp_path, "replay-anvil", ANVIL)
    done = bctest("run", str(suite), "--out", str(out), timeout=240)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    probe = _replay(out)
    assert probe["status"] == "ran", probe
    cases = _cases(probe)
    resubmit, conflict = cases[("resubmit", "node0")], cases[("conflict", "node0")]
    assert resubmit["verdict"] == "pass", resubmit
    assert "refused it (nonce too low)" in resubmit["why"] and "is in blocks [" in resubmit["why"]
    assert conflict["verdict"] == "pass", conflict
    assert "both sent to the network's only node" in conflict["why"]
    assert "replacement transaction underpriced" in conflict["answer"]
    # anvil 1.7.1 answers a transfer signed for chain id 31338 with its hash, as if accepted,
    # then drops it (never mined, not in its pool): an honest finding, severity medium, that
    # fails the probe and the run.
    chain_id = cases[("chain_id", "node0")]
    assert chain_id["verdict"] == "fail" and chain_id["severity"] == "medium", chain_id
    assert "signed for chain id 31338" in chain_id["title"] and "in no block" in chain_id["why"]
    assert probe["verdict"] == "fail" and done.returncode == 1
    survival = [a for a in probe["attempts"] if a["case"].startswith("survival.")]
    assert survival and all(a["verdict"] == "pass" for a in survival), survival


def test_litecoin_two_nodes_commit_one_of_two_spends_of_one_outpoint_on_both(litecoin_image, tmp_path):
    out = tmp_path / "run"
    suite = write_suite(tmp_path, "replay-litecoin", LITECOIN)
    done = bctest("run", str(suite), "--out", str(out), timeout=240)
    probe = _replay(out)
    assert probe["status"] == "ran", probe
    cases = _cases(probe)
    assert {c for c, _ in cases if not c.startswith("survival.")} == {"resubmit", "conflict"}
    for node in ("node0", "node1"):
        resubmit, conflict = cases[("resubmit", node)], cases[("conflict", node)]
        assert resubmit["verdict"] == "pass", resubmit
        assert "Transaction already in block chain" in resubmit["answer"]
        assert conflict["verdict"] == "pass", conflict
        assert "sent at once to node0 and node1" in conflict["why"]
    assert probe["verdict"] == "pass", probe
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_cometbft_four_validators_refuse_a_committed_tx_from_the_mempool_cache(cometbft_image, tmp_path):
    out = tmp_path / "run"
    suite = write_suite(tmp_path, "replay-cometbft", COMETBFT)
    done = bctest("run", str(suite), "--out", str(out), timeout=240)
    probe = _replay(out)
    assert probe["status"] == "ran", probe
    cases = _cases(probe)
    assert {c for c, _ in cases if not c.startswith("survival.")} == {"resubmit"}
    assert "conflicting transactions do not apply" in done.stdout
    for node in ("node0", "node1", "node2", "node3"):
        resubmit = cases[("resubmit", node)]
        assert resubmit["verdict"] == "pass", resubmit
        assert "tx already exists in cache" in resubmit["why"]
    assert probe["verdict"] == "pass" and done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
