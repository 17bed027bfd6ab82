"""The exposure probe through the real `bctest run` on real nodes: anvil, a development
chain, fails it (its anvil_*/evm_*/hardhat_* methods are open, its dev accounts sign for
anyone, it answers every origin); a CometBFT node refuses its unsafe routes (and fails on
what it does expose: a websocket for any origin, an undeclared p2p listener)."""

from __future__ import annotations

import json

import yaml

from .conftest import ROOT, bctest, results, run_objects, write_suite

SUITE = """\
name: it-security-exposure-{chain}
description: one {chain} node, a tiny load, then the exposure probe
chain: {path}
nodes: 1
seed: 11
load:
  rate: 10
  warmup: 2
  duration: 5
  settle: 5
security:
  probes: [exposure]
  budget: 60
  liveness: 20
checks:
  - id: committed at least 90% of submitted
    metric: success_ratio
    op: ">="
    value: 0.9
"""


def run_exposure(tmp_path, chain: str) -> tuple[dict, dict[str, dict], object]:
    suite = write_suite(tmp_path, chain, SUITE.format(chain=chain, path=ROOT / "chains" / chain))
    run_dir = tmp_path / "run"
    done = bctest("run", str(suite), "--out", str(run_dir), timeout=240)
    assert (run_dir / "results.json").exists(), done.stdout + done.stderr
    got = results(run_dir)
    (entry,) = [p for p in got["security"]["probes"] if p["probe"] == "exposure"]
    assert entry["status"] == "ran", entry
    cases = {a["case"]: a for a in entry["attempts"] if a["node"] == "node0"}
    return got, cases, done


def test_anvil_fails_exposure_with_its_open_dev_methods(docker_client, anvil_image, tmp_path):
    got, cases, done = run_exposure(tmp_path, "anvil")
    assert done.returncode == 1, done.stdout + done.stderr          # the honest finding fails the run
    (entry,) = got["security"]["probes"]
    assert entry["verdict"] == "fail" and entry["severity"] == "critical", entry["why"]

    def verdict(case: str) -> str:
        return cases[case]["verdict"]

    for method in ("anvil_nodeInfo", "hardhat_metadata", "debug_traceCall", "txpool_status"):
        assert verdict(f"http.{method}") == "fail", cases[f"http.{method}"]
        assert verdict(f"ws.{method}") == "fail", cases[f"ws.{method}"]   # anvil's ws is its rpc port
        assert '"result"' in cases[f"http.{method}"]["answer"]
    # evm_* has no read-only method: the undecodable argument betrays it over HTTP
    assert verdict("http.evm_increaseTime") == "fail" and "-32602" in cases["http.evm_increaseTime"]["why"]
    # geth's namespaces: anvil does not serve them
    for method in ("admin_nodeInfo", "personal_listAccounts", "miner_setGasPrice"):
        assert verdict(f"http.{method}") == "pass", cases[f"http.{method}"]
    assert verdict("eth_accounts") == "fail" and "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266" in \
        cases["eth_accounts"]["why"]
    send = cases["eth_sendTransaction"]
    assert (send["verdict"], send["severity"]) == ("fail", "critical")
    assert '"method":"eth_sendTransaction"' in send["request"] and '"result"' in send["answer"]
    assert verdict("cors.post") == "fail" and "Access-Control-Allow-Origin: *" in cases["cors.post"]["answer"]
    assert verdict("cors.websocket") == "fail"
    assert verdict("host.foreign") == "fail"
    assert verdict("listen.tcp.8545") == "pass"
    others = [c for c in cases if c.startswith("listen.") and c != "listen.tcp.8545"]
    assert all(cases[c]["verdict"] == "pass" and c.startswith("listen.docker-dns.") for c in others), others
    # the node survived the probe, and the run's findings reached the SARIF file
    survival = {a["case"]: a["verdict"] for a in entry["attempts"] if a["case"].startswith("survival.")}
    assert survival and set(survival.values()) == {"pass"}, survival
    sarif = json.loads((tmp_path / "run" / "findings.sarif").read_text())
    assert "eth_sendTransaction" in json.dumps(sarif)
    assert run_objects(docker_client, got["run_id"]) == []


def test_cometbft_refuses_its_unsafe_routes(docker_client, cometbft_image, tmp_path):
    got, cases, done = run_exposure(tmp_path, "cometbft")
    for method in ("dial_seeds", "dial_peers", "unsafe_flush_mempool"):
        for transport in ("http", "ws"):
            attempt = cases[f"{transport}.{method}"]
            assert attempt["verdict"] == "pass" and "Method not found" in attempt["why"], attempt
    assert cases["routes"]["verdict"] == "pass" and "broadcast_tx_sync" in cases["routes"]["why"]
    assert "dial_seeds" not in cases["routes"]["why"]
    assert cases["cors.post"]["verdict"] == "pass" and cases["cors.preflight"]["verdict"] == "pass"
    # ... but its websocket takes any page's origin (cors_allowed_origins binds HTTP only): a finding
    assert cases["cors.websocket"]["verdict"] == "fail", cases["cors.websocket"]
    assert cases["listen.tcp6.26657"]["verdict"] == "pass"
    # p2p listens on 26656 for the run network; a finding unless the pack declares it
    pack = yaml.safe_load((ROOT / "chains" / "cometbft" / "chain.yaml").read_text())
    declared = set(pack["ports"].values())
    p2p = cases["listen.tcp6.26656"]
    assert p2p["verdict"] == ("pass" if 26656 in declared else "fail"), p2p
    (entry,) = got["security"]["probes"]
    assert entry["verdict"] == "fail" and entry["severity"] == "medium", entry["why"]
    assert run_objects(docker_client, got["run_id"]) == []
