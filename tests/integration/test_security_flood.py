"""The flood probe through the real `bctest run` on real nodes: after a tiny load, an honest
open-loop stream runs before, during and after a burst of 10× its rate of junk. anvil parks
the nonce-gap txs and refuses the underpriced replacements; four CometBFT validators refuse
the malformed txs in CheckTx and the duplicates from the mempool cache; Litecoin refuses
double spends of pending txs; on each the honest stream keeps committing within the default
bounds (and the nodes survive)."""

from __future__ import annotations

import pytest

from harness import history as hist

from .conftest import ROOT, bctest, results, run_objects, write_suite

SUITE = """\
name: it-security-flood-{chain}
description: {nodes} {chain} node(s), a tiny load, then the flood probe
chain: {path}
nodes: {nodes}
seed: 13
load:
  rate: 10
  warmup: 1
  duration: 4
  settle: 5
security:
  probes: [flood]
  budget: 75
  liveness: 20
"""


def run_flood(tmp_path, chain: str, nodes: int) -> tuple[dict, dict[str, dict], object]:
    suite = write_suite(tmp_path, chain, SUITE.format(chain=chain, nodes=nodes,
                                                      path=ROOT / "chains" / chain))
    run_dir = tmp_path / "run"
    done = bctest("run", str(suite), "--out", str(run_dir), timeout=300)
    assert (run_dir / "results.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    got = results(run_dir)
    (entry,) = got["security"]["probes"]
    assert entry["probe"] == "flood" and entry["status"] == "ran", entry
    cases = {a["case"]: a for a in entry["attempts"] if a["node"] == "node0"}
    # the probe's outcome is in the History too (results.json is re-judged from it)
    (line,) = hist.read(run_dir / "history.jsonl").probes
    assert [a.case for a in line.attempts] == [a["case"] for a in entry["attempts"]]
    return got, cases, done


def assert_honest_load_held(cases: dict[str, dict]) -> None:
    # The suite's rate (10/s) is below the cap: 10 honest txs/s, 50 a window, 100 junk/s.
    for case in ("honest.before", "honest.during", "honest.after"):
        assert cases[case]["verdict"] == "pass", cases[case]["why"]
    assert "before the burst" in cases["honest.before"]["why"]
    assert "(100 junk tx/s beside 10 honest tx/s)" in cases["honest.during"]["why"]
    assert "of 50 honest txs committed" in cases["honest.during"]["why"]
    assert cases["honest.during"]["request"] and "HTTP 200" in cases["honest.during"]["answer"]
    survival = {c: a["verdict"] for c, a in cases.items() if c.startswith("survival.")}
    assert survival and set(survival.values()) == {"pass"}, survival


@pytest.mark.long
def test_anvil_parks_the_junk_and_keeps_committing(docker_client, anvil_image, tmp_path):
    got, cases, done = run_flood(tmp_path, "anvil", 1)
    assert_honest_load_held(cases)
    junk = cases["junk.answers"]
    assert (junk["verdict"], junk["severity"]) == ("pass", "info"), junk["why"]
    assert "500 junk txs sent" in junk["why"]
    assert "nonce-gap: 256 of 256 accepted" in junk["why"], junk["why"]
    assert "underpriced-replacement: 0 of 244 accepted" in junk["why"]
    assert "replacement transaction underpriced" in junk["why"]
    assert "none of it reached a block" in junk["why"]
    assert got["security"]["probes"][0]["verdict"] == "pass"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert run_objects(docker_client, got["run_id"]) == []


def test_cometbft_refuses_the_junk_and_keeps_committing(docker_client, cometbft_image, tmp_path):
    got, cases, done = run_flood(tmp_path, "cometbft", 4)
    assert_honest_load_held(cases)
    junk = cases["junk.answers"]
    assert (junk["verdict"], junk["severity"]) == ("pass", "info"), junk["why"]
    assert "malformed: 0 of 250 accepted, refused 250 × 'code 2'" in junk["why"], junk["why"]
    assert "duplicate: 0 of 250 accepted" in junk["why"] and "tx already exists in cache" in junk["why"]
    assert got["security"]["probes"][0]["verdict"] == "pass"
    assert run_objects(docker_client, got["run_id"]) == []


@pytest.mark.long
def test_litecoin_refuses_the_double_spends_and_keeps_committing(docker_client, litecoin_image, tmp_path):
    got, cases, done = run_flood(tmp_path, "litecoin", 1)
    assert_honest_load_held(cases)
    junk = cases["junk.answers"]
    assert (junk["verdict"], junk["severity"]) == ("pass", "info"), junk["why"]
    # five rounds (one a second of the burst) of 16 anchors, each double spent while pending
    assert "anchor: 80 of 80 accepted" in junk["why"], junk["why"]
    assert "double-spend: 0 of 420 accepted" in junk["why"] and "txn-mempool-conflict" in junk["why"]
    assert got["security"]["probes"][0]["verdict"] == "pass"
    assert run_objects(docker_client, got["run_id"]) == []
