"""The malformed_rpc probe on real nodes, through the real `bctest run` of a small suite:
anvil (EVM JSON-RPC), CometBFT (JSON-RPC over POST and its URI GET routes) and Litecoin
(JSON-RPC behind the run's credentials). Each reference chain answers every category with
errors or closed connections and keeps making blocks; what each one does is asserted, so a
node that hangs, answers a result to garbage or crashes fails here."""

from __future__ import annotations

import json

import jsonschema

from harness.validation import schema

from .conftest import ROOT, bctest, results, run_objects, write_suite

SUITE = """
name: malformed-{name}
chain: {pack}
nodes: 1
seed: 1
load: {{rate: 5, warmup: 1, duration: 3, settle: 3}}
security:
  probes: [malformed_rpc]
  budget: 90
  liveness: 20
{settings}
"""
CATEGORIES = {"invalid_json", "wrong_types", "unknown_method", "non_utf8", "empty_batch",
              "deep_nesting", "huge_batch", "oversized_body", "half_sent"}


def run_probe(docker_client, tmp_path, name: str, chain: str, settings: str = "") -> tuple[dict, dict]:
    suite = write_suite(tmp_path, name, SUITE.format(name=name, pack=ROOT / "chains" / chain,
                                                     settings=settings))
    run_dir = tmp_path / "run"
    done = bctest("run", str(suite), "--out", str(run_dir), timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    got = results(run_dir)
    jsonschema.validate(got, schema("results"))
    assert run_objects(docker_client, got["run_id"]) == []
    [outcome] = got["security"]["probes"]
    assert (outcome["probe"], outcome["status"], outcome["verdict"]) == ("malformed_rpc", "ran", "pass")
    by_case = {a["case"]: a for a in outcome["attempts"]}
    assert len(by_case) == len(outcome["attempts"])            # one Attempt per category and node
    failed = [(a["case"], a["why"]) for a in outcome["attempts"] if a["verdict"] != "pass"]
    assert not failed, failed
    assert by_case["survival.running"]["verdict"] == by_case["survival.blocks"]["verdict"] == "pass"
    sarif = json.loads((run_dir / "findings.sarif").read_text())
    assert sarif["runs"][0]["results"] == []
    return outcome, by_case


def test_anvil_answers_every_malformed_request_with_an_error_within_the_default_budget(
        docker_client, anvil_image, tmp_path):
    outcome, by_case = run_probe(docker_client, tmp_path, "anvil", "anvil")   # the default settings
    assert outcome["ended"] - outcome["started"] < 60
    assert CATEGORIES <= set(by_case) and "uri_args" not in by_case
    for case in ("invalid_json", "wrong_types", "unknown_method", "non_utf8"):
        assert by_case[case]["why"].startswith("50 requests: 50 answered an error"), by_case[case]["why"]
    assert '"error"' in by_case["invalid_json"]["answer"]
    assert by_case["deep_nesting"]["request"].startswith("[[[[")
    assert "16777216 bytes in all" in by_case["oversized_body"]["request"]
    # anvil runs all 10 000 calls of the batch: noted, not failed
    assert "answered a result to input a server may run" in by_case["huge_batch"]["why"]
    assert "a valid request sent during the hold was answered" in by_case["half_sent"]["why"]


def test_cometbft_is_fuzzed_over_post_and_its_uri_routes(docker_client, cometbft_image, tmp_path):
    settings = "  settings: {malformed_rpc: {cases: 100, half_sent_hold: 1.5}}"
    _, by_case = run_probe(docker_client, tmp_path, "cometbft", "cometbft", settings)
    assert CATEGORIES | {"uri_args"} <= set(by_case)
    assert by_case["uri_args"]["why"].startswith("20 requests: 20 answered an error")
    assert by_case["uri_args"]["request"].startswith("GET /")
    # CometBFT refuses batches above max_request_batch_size and bodies above max_body_bytes
    assert "batch request exceeds maximum" in by_case["huge_batch"]["answer"]
    assert "request body too large" in by_case["oversized_body"]["answer"]


def test_litecoin_is_fuzzed_behind_the_runs_credentials(docker_client, litecoin_image, tmp_path):
    settings = "  settings: {malformed_rpc: {cases: 60, half_sent_hold: 1.5}}"
    _, by_case = run_probe(docker_client, tmp_path, "litecoin", "litecoin", settings)
    # without the credentials every answer would be a 401 and only a baseline attempt is left
    assert "baseline" not in by_case and CATEGORIES <= set(by_case)
    assert "HTTP 401" not in json.dumps(by_case)
    assert "Method not found" in by_case["oversized_body"]["answer"]   # Core reads 16 MiB, then says so
    assert "Authorization: <redacted>" in by_case["half_sent"]["request"]
