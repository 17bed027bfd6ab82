"""The quickstart suite on a real anvil node: the issue's definition of done."""

from __future__ import annotations

import jsonschema

from harness.validation import schema

from .conftest import ROOT, bctest, results, run_objects


def test_quickstart_meets_its_targets_and_leaves_nothing(docker_client, anvil_image, tmp_path):
    run_dir = tmp_path / "quickstart"
    done = bctest("run", str(ROOT / "suites" / "quickstart.yaml"), "--out", str(run_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    got = results(run_dir)
    jsonschema.validate(got, schema("results"))
    measure = got["phases"]["measure"]
    assert measure["seconds"] >= 30
    assert measure["target_rate"] == 200
    assert measure["committed"] >= 0.99 * measure["submitted"] > 0
    assert abs(measure["send_rate"] - measure["target_rate"]) <= 0.02 * measure["target_rate"]
    assert measure["latency"]["count"] == measure["committed"]
    assert 0 < measure["latency"]["p50"] <= measure["latency"]["p99"] <= measure["latency"]["max"]
    query = got["phases"]["query"]          # 5 s of receipt reads at 200/s after the settle
    assert query["submitted"] == query["answered"] == 1000, query["errors"]
    assert 0 < query["latency"]["p50"] <= query["latency"]["p99"] <= query["latency"]["max"]
    assert got["chain"]["image"]["id"] == anvil_image
    assert got["node_count"] == 1 and got["nodes"][0]["commit_method"] == "websocket"
    for artifact in ("history.jsonl", "report.html", "junit.xml", "logs/node0.log"):
        assert (run_dir / artifact).stat().st_size > 0, artifact
    assert run_objects(docker_client, got["run_id"]) == []
