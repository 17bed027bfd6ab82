"""The CometBFT and Bitcoin workloads on real nodes (issue 13 §3): each suite under
suites/workloads/ runs for real, its read-back finds every committed effect in the chain's
state, and the transactions that had to be refused were. The negative control runs the
e-invoice load against the built-in kvstore, which refuses nothing: the double redemptions
take effect there, and the read-back must fail the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import ROOT, bctest, results, run_objects, write_suite

SUITES = ROOT / "suites" / "workloads"


def run(suite: Path, run_dir: Path, expect_exit: int = 0) -> dict:
    done = bctest("run", str(suite), "--out", str(run_dir), timeout=300)
    assert done.returncode == expect_exit, done.stdout[-3000:] + done.stderr[-3000:]
    got = results(run_dir)
    assert got["status"] == "complete", got.get("status_reason")
    return got


def checker(got: dict, name: str) -> dict:
    return next(c for c in got["checkers"] if c["id"] == name)


def readback_line(run_dir: Path) -> dict:
    for line in (run_dir / "history.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry.get("type") == "readback":
            return entry
    raise AssertionError("no readback line in history.jsonl")


def assert_clean(client, got: dict) -> None:
    assert run_objects(client, got["run_id"]) == [], "the run left Docker objects behind"


def test_einvoice_double_redemptions_are_refused_by_the_scenarios_app(docker_client, cometbft_image,
                                                                      tmp_path):
    got = run(SUITES / "cometbft-einvoice.yaml", tmp_path / "run")
    facts = got["bootstrap"]["workload"]
    assert facts["abci_app"].startswith("bctest-scenarios") and facts["rules_enforced"] is True
    read = checker(got, "readback")
    assert read["verdict"] == "pass", read
    effects = read["evidence"]["effects"]
    assert effects["expected"] > 0 and effects["found"] == effects["expected"]
    refusals = read["evidence"]["must_refuse"]
    assert len(refusals) >= 10 and all(r["refused"] is True for r in refusals), refusals
    # refused with the app's own code: CheckTx (in no block) or FinalizeBlock (code 5 in a block)
    assert all("code 5" in r["outcome"] and "already redeemed" in r["outcome"] for r in refusals)
    assert any("refused when sent" in r["outcome"] for r in refusals), refusals
    line = readback_line(tmp_path / "run")
    once = line["redeemed_exactly_once"]
    assert once["redeemed"] > 0 and once["once"] == once["redeemed"], once
    # the refused second redemptions are the only failed sends of the load
    measure = got["phases"]["measure"]
    assert measure["failed"] <= len(refusals) and measure["committed"] > 0
    query = got["phases"]["query"]
    assert query["answered"] == query["submitted"] > 0, query["errors"]
    assert_clean(docker_client, got)


def test_einvoice_on_the_plain_kvstore_fails_the_readback(docker_client, cometbft_image, tmp_path):
    """Negative control: kvstore accepts every second redemption; the run must fail on it."""
    text = (SUITES / "cometbft-einvoice.yaml").read_text()
    assert "proxy_app: scenarios" in text
    text = text.replace("proxy_app: scenarios", "proxy_app: kvstore").replace(
        "chain: cometbft", f"chain: {ROOT / 'chains' / 'cometbft'}")
    suite = write_suite(tmp_path, "einvoice-kvstore", text)
    got = run(suite, tmp_path / "run", expect_exit=1)
    assert got["verdict"] == "fail"
    assert got["bootstrap"]["workload"]["rules_enforced"] is False
    read = checker(got, "readback")
    assert read["verdict"] == "fail", read
    assert "had to be refused took effect" in read["why"]
    took = [r for r in read["evidence"]["must_refuse"] if r["refused"] is False]
    assert took and all("with code 0" in r["outcome"] for r in took), took
    assert read["evidence"]["effects"]["wrong"] > 0     # kvstore keeps raw ops, not invoice state
    once = readback_line(tmp_path / "run")["redeemed_exactly_once"]
    assert once["once"] == 0 < once["redeemed"], once
    assert_clean(docker_client, got)


@pytest.mark.parametrize("name, what", [("cometbft-evidence", "overwrite of evidence"),
                                        ("cometbft-traceability", "forged event")])
def test_scenarios_store_every_effect_and_refuse_the_rewrites(docker_client, cometbft_image,
                                                              tmp_path, name, what):
    got = run(SUITES / f"{name}.yaml", tmp_path / "run")
    read = checker(got, "readback")
    assert read["verdict"] == "pass", read
    effects = read["evidence"]["effects"]
    assert effects["expected"] >= got["phases"]["measure"]["committed"] > 0
    refusals = read["evidence"]["must_refuse"]
    assert refusals and all(r["refused"] is True and what in r["what"] for r in refusals), refusals
    query = got["phases"]["query"]
    assert query["answered"] == query["submitted"] > 0, query["errors"]
    assert_clean(docker_client, got)


@pytest.mark.parametrize("mix", ["a", pytest.param("c", marks=pytest.mark.long)])   # CI: one mix
def test_ycsb_mix_reads_over_abci_query(docker_client, cometbft_image, tmp_path, mix):
    got = run(SUITES / f"cometbft-ycsb-{mix}.yaml", tmp_path / "run")
    read = checker(got, "readback")
    assert read["verdict"] == "pass", read
    assert read["evidence"]["effects"]["expected"] == 100      # every record inserted
    assert got["bootstrap"]["workload"]["read_share"] == {"a": 0.5, "c": 1.0}[mix]
    query = got["phases"]["query"]
    assert query["kind"] == "ycsb" and query["answered"] == query["submitted"] == 120, query
    assert_clean(docker_client, got)


def test_bitcoin_payments_are_read_back_from_the_utxo_set(docker_client, litecoin_image, tmp_path):
    got = run(SUITES / "bitcoin-payments.yaml", tmp_path / "run")
    read = checker(got, "readback")
    assert read["verdict"] == "pass", read
    line = readback_line(tmp_path / "run")
    # 2 inputs spent and 3 outputs unspent per committed payment
    assert line["effects"]["expected"] == 5 * line["committed"] > 0, line["effects"]
    assert got["bootstrap"]["workload"]["inputs"] == 2
    assert_clean(docker_client, got)
