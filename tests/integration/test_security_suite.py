"""The shipped EVM security suite end to end on a real anvil node: every probe runs (or says
why it does not apply), the catalogue judges it, and the report, SARIF and junit carry the
findings with their requests and answers. anvil is a development chain: it must fail."""

from __future__ import annotations

import json

from .conftest import ROOT, bctest, results, run_objects


def test_the_evm_security_suite_fails_anvil_with_quotable_findings(docker_client, anvil_image, tmp_path):
    run_dir = tmp_path / "run"
    done = bctest("run", str(ROOT / "suites" / "security" / "evm.yaml"), "--out", str(run_dir), timeout=900)
    assert done.returncode == 1, done.stdout + done.stderr    # a finding fails the run
    got = results(run_dir)
    security = got["security"]
    probes = {p["probe"]: p for p in security["probes"]}
    from harness import security as registry
    assert list(probes) == registry.names()                    # every probe, in run order
    assert probes["exposure"]["verdict"] == "fail" and probes["exposure"]["severity"] == "critical"
    assert probes["tx_validity"]["verdict"] == "fail"           # anvil mines a high-s transaction
    assert probes["malformed_rpc"]["verdict"] == "pass"
    assert probes["equivocation"]["verdict"] == "not-applicable" and probes["equivocation"]["reason"]
    for probe in probes.values():   # the harness's own trouble would be an error, not a verdict
        assert probe["status"] in ("ran", "not-applicable"), probe
        if probe["status"] == "ran":  # the stage judged survival after every probe
            survival = [a for a in probe["attempts"] if a["case"].startswith("survival.")]
            assert survival and {a["verdict"] for a in survival} == {"pass"}, probe["probe"]
    assert security["findings"]["critical"] >= 2
    # the catalogue: the exposure requirement fails, traced to its evidence
    requirements = {r["id"]: r for r in got["requirements"]}
    assert requirements["SEC-IFACE-EXPOSURE"]["verdict"] == "fail"
    assert requirements["SEC-RPC-ROBUSTNESS"]["verdict"] == "pass"
    assert requirements["SEC-EQUIVOCATION"]["verdict"] == "not-applicable"   # anvil is not BFT
    assert got["certification"]["grade"] == "F"
    # SARIF: one rule per probe that ran, each failed attempt with its request and answer
    sarif = json.loads((run_dir / "findings.sarif").read_text())["runs"][0]
    rules = {r["id"] for r in sarif["tool"]["driver"]["rules"]}
    assert {"exposure", "tx_validity", "malformed_rpc"} <= rules
    sent = [r for r in sarif["results"] if r["ruleId"] == "exposure"
            and "eth_sendTransaction" in r["properties"]["request"]]
    assert sent and sent[0]["level"] == "error" and sent[0]["properties"]["answer"].startswith("HTTP 200")
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert '<section id="security">' in page and "eth_sendTransaction" in page
    assert 'classname="bctest.security"' in (run_dir / "junit.xml").read_text()
    assert run_objects(docker_client, got["run_id"]) == []
