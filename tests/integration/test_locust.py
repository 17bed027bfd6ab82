"""`load.engine: locust` for real: suites/performance/cometbft-locust.yaml (one CometBFT
validator, a Locust master and two workers) through `python -m harness.cli run`. Its
results.json, history.jsonl and report are the built-in sender's kind, and no Locust process
outlives the run: not when it ends, not when it is interrupted (SIGTERM), not when the harness
is SIGKILLed."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.load.locust_engine import available
from harness.validation import schema

from .conftest import ROOT, bctest, results, run_objects

pytestmark = pytest.mark.skipif(available() is not None, reason=available() or "")
SUITE = ROOT / "suites" / "performance" / "cometbft-locust.yaml"


def _suite(folder: Path, name: str, **load: object) -> Path:
    """The shipped suite with its chain made absolute, and load overrides."""
    doc = yaml.safe_load(SUITE.read_text())
    doc["chain"] = str(ROOT / "chains" / "cometbft")
    doc["load"].update(load)
    doc["load"] = {k: v for k, v in doc["load"].items() if v is not None}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _history_kinds(run_dir: Path) -> tuple[Counter, list[dict]]:
    kinds, txs = Counter(), []
    with open(run_dir / "history.jsonl") as history:
        for line in history:
            record = json.loads(line)
            kinds[record["type"]] += 1
            if record["type"] == "tx":
                txs.append(record)
    return kinds, txs


COMMON_WORKER_KEYS = {"sent", "acked", "errors", "late", "dropped", "max_lag"}


def _shape(value: object) -> object:
    """The structure of a JSON value (its keys, nested), not its numbers (a p99 may be null
    in one second and a number in the next)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return "scalar"


def _locust_processes(harness_pid: int) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"BCTEST_LOCUST_PARENT={harness_pid}\0".encode() in env + b"\0" and "locust" in command:
            found.append(f"{entry.name}: {command}")
    return found


def test_a_locust_run_is_judged_and_reported_like_a_builtin_one(docker_client, cometbft_image, tmp_path):
    locust_dir, builtin_dir = tmp_path / "locust", tmp_path / "builtin"
    done = bctest("run", str(_suite(tmp_path, "locust")), "--out", str(locust_dir), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    got = results(locust_dir)
    jsonschema.validate(got, schema("results"))
    measure = got["phases"]["measure"]
    assert measure["submitted"] == 400 and measure["committed"] >= 0.99 * measure["submitted"]
    assert measure["send_rate"] >= 95 and measure["latency"]["count"] == measure["committed"]
    assert got["verdict"] == "pass"

    # Every scheduled transaction has its record, sent by one of the two workers in time
    kinds, txs = _history_kinds(locust_dir)
    assert sorted(t["i"] for t in txs) == list(range(500))
    assert all(t["error"] is None and t["acked"] >= t["submitted"] for t in txs)
    assert all(-0.001 <= t["submitted"] - t["scheduled"] < 0.5 for t in txs)
    logs = locust_dir / "logs"
    assert {p.name for p in logs.glob("locust-*.log")} == {
        "locust-master.log", "locust-worker-0.log", "locust-worker-1.log"}
    assert "POST" in (logs / "locust-master.log").read_text()   # Locust's own summary: it sent

    # The same suite on the built-in sender: the same kind of results, history and report
    builtin = bctest("run", str(_suite(tmp_path, "builtin", engine=None, locust=None, workers=2)),
                     "--out", str(builtin_dir), timeout=300)
    assert builtin.returncode == 0, builtin.stdout + builtin.stderr
    reference = results(builtin_dir)
    # (the warnings depend on the run: a send 11 ms late is one; their kind is a list of text)
    assert isinstance(got["warnings"], list) and isinstance(reference["warnings"], list)
    # Per sender process, both engines report the same counters; each adds its own extras
    # (the built-in one its connections and queue, both their CPU share and event loop).
    for figures in (got, reference):
        workers = figures["sender"]["workers"]
        assert all(COMMON_WORKER_KEYS <= set(w) and "cpu" in w for w in workers.values()), workers
        figures["sender"]["workers"] = {n: {k: w[k] for k in COMMON_WORKER_KEYS}
                                        for n, w in workers.items()}
    assert _shape({**got, "warnings": []}) == _shape({**reference, "warnings": []})
    assert kinds.keys() == _history_kinds(builtin_dir)[0].keys()
    for name in ("report.html", "junit.xml", "summary.md"):
        assert (locust_dir / name).stat().st_size > 0 and (builtin_dir / name).exists()
    assert not list((builtin_dir / "logs").glob("locust-*"))
    assert run_objects(docker_client, got["run_id"]) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_locust_process_outlives_an_interrupted_run(docker_client, cometbft_image, tmp_path, sig):
    suite = _suite(tmp_path, "long", duration=120)
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--out",
                                str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(_locust_processes(process.pid)) < 3:     # master + 2 workers
            assert time.monotonic() < deadline and process.poll() is None, "Locust never started"
            time.sleep(0.5)
        seen = ""
        while "[measure" not in seen:   # Locust booted, released its workers, warmup over
            assert time.monotonic() < deadline and process.poll() is None, seen
            ready, _, _ = select.select([process.stdout], [], [], 1.0)
            if ready:
                seen += process.stdout.readline()
        time.sleep(1)
        assert len(_locust_processes(process.pid)) == 3
        process.send_signal(sig)
        output, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
    gone_by = time.monotonic() + 10
    while _locust_processes(process.pid) and time.monotonic() < gone_by:
        time.sleep(0.2)
    assert _locust_processes(process.pid) == []
    if sig == signal.SIGTERM:
        assert process.returncode == 130, output
        got = results(run_dir)
        jsonschema.validate(got, schema("results"))
        assert got["status"] == "incomplete" and got["status_reason"] == "interrupted by SIGTERM"
        assert got["phases"]["measure"]["submitted"] > 0       # what Locust sent before the stop
        assert run_objects(docker_client, got["run_id"]) == []
    else:   # the containers of a killed harness are `bctest clean`'s (test_harness_killed.py)
        cleaned = bctest("clean", timeout=120)
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
