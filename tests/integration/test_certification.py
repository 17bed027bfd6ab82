"""A certification campaign on a real chain: cases run, every requirement judged and
traced to its evidence, the folder signed; verify accepts it, catches a tampered figure,
and another catalogue re-judges it with no Docker Engine at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT, results, run_objects, write_suite

PRESSURE = f"""\
name: it-cometbft-pressure-4
case: pressure-4
chain: {ROOT / "chains" / "cometbft"}
nodes: 4
seed: 21
audit: true
params:
  timeout_commit: 1s
load:
  rate: 100
  warmup: 3
  duration: 20
  settle: 20
"""

CAMPAIGN = f"""\
name: it-certification
description: a short campaign on CometBFT (one case) judged against the shipped catalogues
standards:
  - {ROOT / "standards" / "performance.yaml"}
  - {ROOT / "standards" / "function.yaml"}
cases:
  - {{id: pressure-4, suite: pressure.yaml}}
"""


def bctest(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, timeout=timeout,
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def campaign_run(docker_client, cometbft_image, tmp_path_factory):
    folder = tmp_path_factory.mktemp("certification")
    keys = folder / "keys"
    write_suite(folder, "pressure", PRESSURE)
    campaign = write_suite(folder, "campaign", CAMPAIGN)
    env = {"BCTEST_KEYS": str(keys)}
    assert bctest("keys", "init", env=env).returncode == 0
    run_dir = folder / "run"
    done = bctest("run", str(campaign), "--out", str(run_dir), env=env)
    return done, run_dir, env


def test_campaign_judges_every_requirement_with_evidence(campaign_run, docker_client):
    done, run_dir, _ = campaign_run
    # Only one of the catalogues' cases ran: mandatory evidence is missing, so nothing failed
    # but no certification can be claimed: inconclusive (exit 4).
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-3000:]
    assert results(run_dir)["verdict"] == "inconclusive"
    got = results(run_dir)
    assert got["format"] == "bctest-campaign/1" and got["status"] == "complete"
    assert [c["id"] for c in got["cases"]] == ["pressure-4"] and got["cases"][0]["verdict"] == "pass"
    judged = {r["id"]: r for r in got["requirements"]}
    assert len(judged) == 16
    assert all(r["verdict"] in ("pass", "fail", "inconclusive", "not-applicable") for r in judged.values())
    # The authenticity audit recomputed CometBFT's header hashes and links on a real chain,
    # and verified the validators' commit signatures (kvstore txs themselves are unsigned).
    for rid in ("FUN-LEDGER-HASH-LINKS", "FUN-TX-SIGNATURES", "FUN-REPLICATION", "FUN-CONSENSUS-COMMIT",
                "PERF-TX-PRESSURE-4"):
        assert judged[rid]["verdict"] == "pass", judged[rid]
        [evidence] = judged[rid]["evidence"]
        assert evidence["case"] == "pressure-4" and evidence["history"] == "cases/pressure-4/history.jsonl"
    assert judged["PERF-TX-SPIKE-4"]["verdict"] == "inconclusive"
    assert "spike-4 was not run" in judged["PERF-TX-SPIKE-4"]["why"]
    # this campaign's pressure suite has no query: section, so the reads were not measured
    for rid in ("PERF-QUERY-THROUGHPUT", "PERF-QUERY-LATENCY"):
        assert judged[rid]["verdict"] == "inconclusive" and "no query phase" in judged[rid]["why"]
    assert got["certification"]["grade"] == "C"
    case = results(run_dir / "cases" / "pressure-4")
    audit = case["audit"]
    assert audit["hash_links"]["verdict"] == "pass" and audit["hash_links"]["checked"] > 20
    assert audit["tx_root"]["verdict"] == "pass" and audit["replication"]["verdict"] == "pass"
    # Every audited block's commit: 4 validators, > 2/3 of the power, each signature verified.
    signatures = audit["signatures"]
    assert signatures["verdict"] == "pass", signatures
    assert signatures["checked"] == audit["blocks"] > 10
    assert signatures["failed"] == signatures["skipped"] == 0
    assert signatures["counts"]["signatures"] >= 3 * signatures["checked"]
    printed = " ".join((done.stdout + done.stderr).split())   # the console wraps long lines
    assert f"signatures pass ({signatures['checked']} checked, {signatures['counts']['signatures']} " \
        "signatures" in printed
    for name in ("report.html", "junit.xml", "summary.md", "findings.sarif", "signature.json",
                 "campaign.json"):
        assert (run_dir / name).is_file(), name
    sarif = json.loads((run_dir / "findings.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"] == []
    assert "PERF-TX-SPIKE-4" in (run_dir / "summary.md").read_text()
    assert run_objects(docker_client, case["run_id"]) == []
    # Per-node resource use, sampled from the containers' cgroups during the load.
    for node in case["nodes"]:
        assert node["resources"]["cpu_mean_percent"] > 0 and node["resources"]["memory_max_mb"] > 1
    assert 'id="chart-cpu"' in (run_dir / "cases" / "pressure-4" / "report.html").read_text()


def test_verify_accepts_then_catches_a_tampered_throughput(campaign_run, tmp_path):
    _, run_dir, env = campaign_run
    done = bctest("verify", str(run_dir), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified" in done.stdout
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(run_dir), str(copy)], check=True)
    case = copy / "cases" / "pressure-4" / "results.json"
    data = json.loads(case.read_text())
    data["phases"]["measure"]["throughput"] = 1e6
    case.write_text(json.dumps(data))
    done = bctest("verify", str(copy), env=env)
    assert done.returncode == 1
    assert "cases/pressure-4/results.json changed since it was signed" in done.stdout
    assert "phases.measure.throughput: results.json says 1000000.0, the history gives" in done.stdout


def test_verify_without_the_key_is_an_input_error(campaign_run, tmp_path):
    _, run_dir, _ = campaign_run
    done = bctest("verify", str(run_dir), env={"BCTEST_KEYS": str(tmp_path / "nowhere")})
    assert done.returncode == 2 and "bctest keys init" in done.stderr


def test_rejudge_with_another_catalogue_needs_no_engine(campaign_run, tmp_path):
    _, run_dir, _ = campaign_run
    copy = tmp_path / "rejudge"
    subprocess.run(["cp", "-r", str(run_dir), str(copy)], check=True)
    done = bctest("report", str(copy), "--standard", str(ROOT / "standards" / "reliability.yaml"),
                  env={"DOCKER_HOST": "unix:///nonexistent.sock"}, timeout=120)
    assert done.returncode == 4, done.stdout + done.stderr   # reliability cases were not run
    got = results(copy)
    assert [s["id"] for s in got["standards"]] == ["bctest-reliability"]
    assert {r["standard"] for r in got["requirements"]} == {"bctest-reliability"}
    assert got["cases"][0]["verdict"] == "pass"
