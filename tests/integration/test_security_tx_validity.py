"""The tx_validity probe through the real CLI on real nodes: what each reference chain does
with each invalid transaction (docs/chains.md), and nothing left behind.

anvil 1.7.1 refuses most cases but accepts a high-s (malleable) signature and commits it,
accepts a wrong chain id into its pool (never mined), and accepts and commits unprotected
(pre-EIP-155) and 256 KiB transactions: the probe must fail it. CometBFT's kvstore refuses
every malformed transaction in CheckTx and Litecoin Core every invalid spend, and neither
commits any: the probe must pass them.
"""

from __future__ import annotations

from .conftest import ROOT, bctest, results, run_objects, write_suite

SUITE = """\
name: it-security-tx-validity-{chain}
description: tx_validity on one {chain} node after a small load
chain: {pack}
nodes: 1
seed: 5
load:
  rate: 10
  warmup: 1
  duration: 4
  settle: 5
security:
  probes: [tx_validity]
  budget: 60
  liveness: 15
  settings:
    tx_validity: {{wait: 15}}
"""


def run(tmp_path, chain: str) -> tuple[object, dict, dict[str, dict]]:
    suite = write_suite(tmp_path, chain, SUITE.format(chain=chain, pack=ROOT / "chains" / chain))
    run_dir = tmp_path / "run"
    done = bctest("run", str(suite), "--out", str(run_dir), timeout=240)
    got = results(run_dir)
    (entry,) = got["security"]["probes"]
    assert entry["probe"] == "tx_validity" and entry["status"] == "ran", done.stdout + done.stderr
    return done, got, {a["case"]: a for a in entry["attempts"]}


def test_anvil_commits_a_high_s_and_an_unprotected_transaction(docker_client, anvil_image, tmp_path):
    done, got, attempts = run(tmp_path, "anvil")
    assert done.returncode == 1, done.stdout + done.stderr         # the probe failed the chain
    security = got["security"]
    assert security["verdict"] == "fail" and security["probes"][0]["verdict"] == "fail"
    verdict = {case: a["verdict"] for case, a in attempts.items()}
    # Refused at submission, in no block (every reason quoted from the node).
    for case in ("bad_signature", "signature_zero_r", "gas_below_intrinsic", "gas_above_block_limit",
                 "nonce_reused", "nonce_too_low", "insufficient_funds"):
        assert verdict[f"{case}.submit"] == verdict[f"{case}.block"] == "pass", attempts[f"{case}.submit"]
    assert "nonce too low" in attempts["nonce_reused.submit"]["why"]
    # The honest findings.
    for case in ("high_s", "unprotected", "oversized_data"):
        assert verdict[f"{case}.submit"] == verdict[f"{case}.block"] == "fail", attempts[f"{case}.block"]
        assert attempts[f"{case}.block"]["why"].startswith("committed: node0 block")
    assert attempts["high_s.block"]["severity"] == "critical"
    assert verdict["wrong_chain_id.submit"] == "fail" and verdict["wrong_chain_id.block"] == "pass"
    assert '"method":"eth_sendRawTransaction"' in attempts["high_s.submit"]["request"]
    assert security["findings"]["critical"] >= 1
    # The node survived the probe and kept making blocks.
    assert verdict["survival.running"] == verdict["survival.blocks"] == "pass"
    assert run_objects(docker_client, got["run_id"]) == []


def test_cometbft_kvstore_refuses_every_malformed_transaction(docker_client, cometbft_image, tmp_path):
    done, got, attempts = run(tmp_path, "cometbft")
    assert {a["verdict"] for a in attempts.values()} == {"pass"}, \
        [(c, a["why"]) for c, a in attempts.items() if a["verdict"] != "pass"]
    assert {c.rsplit(".", 1)[0] for c in attempts} == {
        "no_separator", "two_separators", "empty_key", "empty", "bad_validator_update", "survival"}
    assert all(attempts[f"{c}.submit"]["why"].startswith("node0 refused it: code ")
               for c in ("no_separator", "empty", "bad_validator_update"))
    assert got["security"]["verdict"] == "pass" and got["security"]["findings"]["critical"] == 0
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_objects(docker_client, got["run_id"]) == []


def test_litecoin_refuses_double_spends_forged_signatures_and_inflation(docker_client, litecoin_image,
                                                                        tmp_path):
    done, got, attempts = run(tmp_path, "litecoin")
    assert {a["verdict"] for a in attempts.values()} == {"pass"}, \
        [(c, a["why"]) for c, a in attempts.items() if a["verdict"] != "pass"]
    assert {c.rsplit(".", 1)[0] for c in attempts} == {
        "spent_outpoint", "unknown_outpoint", "bad_signature", "value_above_inputs", "survival"}
    why = {c: a["why"] for c, a in attempts.items()}
    assert "bad-txns-inputs-missingorspent" in why["spent_outpoint.submit"]
    assert "bad-txns-in-belowout" in why["value_above_inputs.submit"]
    assert "Signature must be zero" in why["bad_signature.submit"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert run_objects(docker_client, got["run_id"]) == []
