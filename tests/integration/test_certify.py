"""`bctest certify` on a real chain: a program on anvil with a vendor's claims — a capacity
search over real runs, the pressure round at the claimed rate, the security probes, every
requirement judged (rounds that cannot apply to a single-node chain say why), the claims
judged, the folder signed, verified and re-judged from its histories alone.

CI runs the smoke profile (the same program, fewer and shorter runs); `scripts/test --long`
runs the same tests on the quick profile too (its longer search: four ramp steps)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT, results, run_objects


def bctest(*args, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, timeout=timeout,
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module", params=["smoke", pytest.param("quick", marks=pytest.mark.long)])
def certified(request, docker_client, anvil_image, tmp_path_factory):
    profile = request.param
    folder = tmp_path_factory.mktemp(f"certify-{profile}")
    env = {"BCTEST_KEYS": str(folder / "keys")}
    assert bctest("keys", "init", env=env).returncode == 0
    claims = folder / "claims.yaml"
    claims.write_text("throughput: 100\nlatency_p99_ms: 4000\n")
    out = folder / "run"
    done = bctest("certify", "anvil", "--profile", profile, "--claims", str(claims), "--vendor", "acme",
                  "--out", str(out), env=env)
    return done, out, env, profile


def test_certification_of_anvil(certified, docker_client):
    done, out, _, profile = certified
    # anvil's dev RPC signs for anyone and mines a high-s transaction: security fails (exit 1).
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    got = results(out)
    block = got["certify"]
    assert block["profile"] == profile and block["vendor"] == {"name": "acme", "submission": None}
    assert block["pack"]["name"] == "anvil" and block["pack"]["consensus"] == "single"
    # The search ran real steps from half the claim, ×4 each, then confirmed the best.
    steps = block["capacity"]["steps"]
    assert steps[0]["offered"] == 50 and steps[0]["stage"] == "ramp"
    assert steps[1]["offered"] == 200 and steps[1]["stage"] == "ramp"
    assert steps[-1]["stage"] == "confirm" and block["capacity"]["confirmed"]
    assert block["capacity"]["capacity"] >= 100
    assert all(s["throughput"] and s["latency_p99"] for s in steps)
    assert block["capacity"]["limited_by"] in ("chain", "harness", "profile")
    assert str(int(block["capacity"]["capacity"])) in block["capacity"]["why"]
    case_ids = [c["id"] for c in got["cases"]]
    assert case_ids[:len(steps)] == [s["case"] for s in steps]
    assert case_ids[len(steps):] == ["pressure-4", "security"]
    # The pressure round ran at the claimed rate; both claims judged on it.
    pressure = results(out / "cases" / "pressure-4")
    assert pressure["load"]["rate"] == 100
    claims = {c["id"]: c for c in block["claim_verdicts"]}
    assert claims["throughput-4"]["verdict"] == "pass" and claims["latency-p99"]["verdict"] == "pass"
    # A single-node chain: the 4-node and fault rounds cannot apply, each says why.
    skipped = {s["case"]: s["why"] for s in block["not_applicable"]}
    assert "needs 4 nodes" in skipped["spike-4"] and "bft and cft" in skipped["bft-threshold"]
    judged = {r["id"]: r for r in got["requirements"]}
    assert judged["PERF-TX-SPIKE-4"]["verdict"] == "not-applicable"
    assert "needs 4 nodes" in judged["PERF-TX-SPIKE-4"]["why"]
    assert judged["PERF-TX-PRESSURE-4"]["verdict"] == "not-applicable"   # ran 1 node; it has no 4
    assert judged["FUN-TX-SIGNATURES"]["verdict"] == "pass"
    assert judged["SEC-IFACE-EXPOSURE"]["verdict"] == "fail"
    program = out / "program"
    assert (program / "campaign.yaml").is_file() and (program / "pressure-4.yaml").is_file()
    assert (out / "signature.json").is_file() and (out / "certify.json").is_file()
    for case in got["cases"]:
        assert run_objects(docker_client, case["run_id"]) == []


def test_verify_and_rejudge_the_certification(certified, tmp_path):
    _, out, env, _ = certified
    done = bctest("verify", str(out), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    before = json.loads((copy / "results.json").read_text())
    assert bctest("report", str(copy)).returncode == 1
    after = json.loads((copy / "results.json").read_text())
    assert after["certify"] == before["certify"] and after["verdict"] == before["verdict"]
    # A step's throughput edited after signing: the signature and the recomputation catch it.
    step = copy / "cases" / "capacity-01" / "results.json"
    data = json.loads(step.read_text())
    data["phases"]["measure"]["throughput"] = 99999.0
    step.write_text(json.dumps(data))
    done = bctest("verify", str(copy), env=env)
    assert done.returncode == 1 and "capacity-01" in done.stdout


def test_bad_certify_input_is_one_clear_error(tmp_path):
    claims = tmp_path / "claims.yaml"
    claims.write_text("throughput: 500000\n")
    done = bctest("certify", "anvil", "--profile", "quick", "--claims", str(claims),
                  "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "throughput" in done.stderr and "ceiling" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "x").exists()
    done = bctest("certify", "anvil", "--vendor", "Evil/../x", "--out", str(tmp_path / "y"))
    assert done.returncode == 2 and "--vendor" in done.stderr and not (tmp_path / "y").exists()
    done = bctest("certify", "no-such-pack")
    assert done.returncode == 2 and "no-such-pack" in done.stderr
