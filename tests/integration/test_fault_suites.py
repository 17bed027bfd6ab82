"""The fault suites on the reference chains, through the CLI, and the checkers tripped by
real chains: each stored History is re-judged with settings the run must violate."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest
import yaml

from harness import history as history_module
from harness.checks import correctness
from harness.validation import schema

from .conftest import ROOT, bctest, results, run_objects, write_suite

# Every run is judged by causality; a fault run without `checkers:` by all the others too.
CHECKERS = ["causality", "safety", "liveness", "durability", "convergence", "fault_tolerance"]


def verdicts(got):
    return {c["id"]: c["verdict"] for c in got["checkers"]}


def run_suite(path, run_dir, timeout=600):
    done = bctest("run", str(path), "--out", str(run_dir), timeout=timeout)
    return done, results(run_dir) if (run_dir / "results.json").exists() else None


def run_passing(name, tmp_path):
    """Run suites/faults/<name>.yaml; it must exit 0. Returns the run folder and results."""
    run_dir = tmp_path / "run"
    done, got = run_suite(ROOT / "suites" / "faults" / f"{name}.yaml", run_dir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return run_dir, got


# CI runs the bft-threshold and crash-restart suites on a shorter schedule: the same faults in
# the same order, each as long as its checkers need (fault_tolerance judges a fault lasting
# its 5 s grace plus a 5 s window; liveness needs 10 s of load before each fault and its
# 20 s bound plus 10 s window after the last heal, which keeps a margin no smaller than the
# shipped suite's), the same checkers and checks. `scripts/test --long` runs the shipped files.
SHORTER = {
    "bft-threshold": [("  duration: 100\n", "  duration: 75\n"),
                      ("    at: 15\n    duration: 20\n", "    at: 10\n    duration: 12\n"),
                      ("    at: 45\n    duration: 20\n", "    at: 32\n    duration: 12\n")],
    "crash-restart": [("  duration: 95\n", "  duration: 80\n"),
                      ("    at: 15\n    duration: 20\n", "    at: 10\n    duration: 12\n"),
                      ("    at: 50\n", "    at: 34\n"),
                      ("    at: 62\n", "    at: 44\n")],
}
SCHEDULES = ["shorter", pytest.param("shipped", marks=pytest.mark.long)]


def fault_suite(name, tmp_path, schedule):
    """suites/faults/<name>.yaml as shipped, or on SHORTER's schedule (every edit must apply once)."""
    path = ROOT / "suites" / "faults" / f"{name}.yaml"
    if schedule == "shipped":
        return path
    body = path.read_text()
    for old, new in SHORTER[name]:
        assert body.count(old) == 1, f"{path} changed: {old!r} is not in it once; update SHORTER"
        body = body.replace(old, new)
    return write_suite(tmp_path, f"{name}-shorter", body)


def scheduled_at(suite, fault_id):
    """When the suite schedules this fault (seconds on the run clock)."""
    return next(f["at"] for f in yaml.safe_load(suite.read_text())["faults"] if f["id"] == fault_id)


def rejudge(run_dir, checker, **settings):
    stored = history_module.read(run_dir / "history.jsonl")
    return correctness.evaluate(stored, {checker: settings})[0]


@pytest.fixture(scope="module", params=SCHEDULES)
def bft_run(request, docker_client, cometbft_image, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"bft-{request.param}")
    suite = fault_suite("bft-threshold", folder, request.param)
    run_dir = folder / "run"
    done, got = run_suite(suite, run_dir)
    return done, got, run_dir, scheduled_at(suite, "kill-f")


def test_bft_threshold_suite_passes_and_leaves_nothing(bft_run, docker_client):
    done, got, run_dir, kill_at = bft_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    jsonschema.validate(got, schema("results"))
    assert verdicts(got) == dict.fromkeys(CHECKERS, "pass")
    faults = {f["id"]: f for f in got["faults"]}
    assert faults["kill-f"]["nodes"] == ["node3"] and faults["kill-f+1"]["nodes"] == ["node2", "node3"]
    assert all(f["status"] == "healed" and f["start"] < f["end"] for f in faults.values())
    assert kill_at - 0.5 < faults["kill-f"]["start"] < kill_at + 1.5  # on the run clock, as scheduled
    tolerance = next(c for c in got["checkers"] if c["id"] == "fault_tolerance")["evidence"]
    observed = {f["id"]: (f["expected"], f["new_heights"]) for f in tolerance["faults"]}
    assert observed["kill-f"][0] == "continue" and observed["kill-f"][1] > 0
    assert observed["kill-f+1"] == ("halt", 0)
    durability = next(c for c in got["checkers"] if c["id"] == "durability")["evidence"]
    assert set(durability["resynced"]) == {"node2", "node3"}
    assert run_objects(docker_client, got["run_id"]) == []
    # The History holds the fault spans and every node's final chain.
    kinds = [json.loads(line)["type"] for line in (run_dir / "history.jsonl").open()]
    assert kinds.count("fault") == 2 and kinds.count("final") == 4
    # The report shows the spans; junit has one case per checker.
    report = (run_dir / "report.html").read_text()
    assert "kill node3" in report and "Faults applied" in report
    cases = ET.parse(run_dir / "junit.xml").getroot().iter("testcase")
    assert {c.get("name") for c in cases if c.get("classname") == "bctest.checkers"} == set(CHECKERS)


def test_checkers_trip_on_the_real_bft_history(bft_run):
    _, got, run_dir, _ = bft_run
    # The halted chain needs seconds to restart two nodes and agree: not 0.2 s.
    liveness = rejudge(run_dir, "liveness", bound=0.2)
    assert liveness["verdict"] == "fail" and "bound 0.2 s" in liveness["why"]
    after_halt = next(f for f in liveness["evidence"]["faults"] if f["id"] == "kill-f+1")
    assert after_halt["progress"] == "fail" and after_halt["time_to_first_block"] > 0.2
    convergence = rejudge(run_dir, "convergence", bound=0.2)
    assert convergence["verdict"] == "fail"
    # A chain claiming to tolerate 2 of 4 faulty nodes: the observed halt fails it.
    stored = history_module.read(run_dir / "history.jsonl")
    stored.header["fault_model"] = {**stored.header["fault_model"], "f": 2}
    claim = correctness.evaluate(stored, {"fault_tolerance": {}})[0]
    assert claim["verdict"] == "fail" and "kill-f+1" in claim["why"]


def test_bft_run_is_rejudged_identically_from_its_history(bft_run):
    _, got, run_dir, _ = bft_run
    done = bctest("report", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert verdicts(results(run_dir)) == verdicts(got)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_crash_restart_suite_catches_up_and_loses_nothing(docker_client, cometbft_image, tmp_path, schedule):
    run_dir = tmp_path / "run"
    done, got = run_suite(fault_suite("crash-restart", tmp_path, schedule), run_dir)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert verdicts(got) == dict.fromkeys(CHECKERS, "pass")
    evidence = {c["id"]: c["evidence"] for c in got["checkers"]}
    assert set(evidence["durability"]["resynced"]) == {"node2", "node3"}
    assert all(n["missing"] == 0 for n in evidence["durability"]["nodes"])
    assert evidence["convergence"]["tip_lag"] <= 1
    assert [f["action"] for f in got["faults"]] == ["kill", "restart", "wipe"]
    # The wiped node3 re-synced from its peers: it holds the blocks made before its wipe,
    # from the first one the run saw, with the hashes node0 has.
    finals = {entry["node"]: entry for entry in map(json.loads, (run_dir / "history.jsonl").open())
              if entry["type"] == "final"}
    assert finals[3]["chain"][0] == finals[0]["chain"][0]
    assert len(finals[3]["holds"]) == len(finals[0]["holds"]) > 0
    assert (run_dir / "logs" / "node3.before-wipe-1.log").stat().st_size > 0
    assert run_objects(docker_client, got["run_id"]) == []


def test_partition_pow_suite_forks_reorgs_and_converges(docker_client, litecoin_image, tmp_path):
    run_dir, got = run_passing("partition-pow", tmp_path)
    assert verdicts(got) == dict.fromkeys(CHECKERS[:-1], "pass")   # no fault_tolerance
    [split] = got["faults"]
    assert split["groups"] == [["node0", "node1"], ["node2", "node3"]]
    safety = next(c for c in got["checkers"] if c["id"] == "safety")["evidence"]
    assert safety["fork_count"] >= 1 and safety["reorg_count"] >= 1, safety
    assert run_objects(docker_client, got["run_id"]) == []
    # The same reorgs judged against a confirmation depth just below the deepest one.
    deepest = safety["max_reorg_depth_seen"]
    strict = rejudge(run_dir, "safety", max_reorg_depth=deepest - 1)
    assert strict["verdict"] == "fail" and f"{deepest} blocks deep" in strict["why"]


ANVIL_RESTART = f"""\
name: it-anvil-restart
description: anvil keeps its chain in memory; killed and started, it comes back empty
chain: {ROOT / "chains" / "anvil"}
nodes: 1
params:
  block_time: 1
load:
  rate: 20
  warmup: 2
  duration: 30
  settle: 5
faults:
  - id: kill-anvil
    action: kill
    target: [node0]
    at: 10
    duration: 3
checkers:
  durability: {{}}
"""


@pytest.mark.long   # CI time: the durability checker's failing path is unit-tested (test_checkers)
def test_durability_trips_when_a_restarted_node_lost_its_chain(docker_client, anvil_image, tmp_path):
    """anvil holds its chain in memory: a killed and restarted anvil is a wiped node."""
    suite = write_suite(tmp_path, "anvil-restart", ANVIL_RESTART)
    run_dir = tmp_path / "run"
    done, got = run_suite(suite, run_dir, timeout=300)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    # Safety joins on its own (anvil claims finality); the rebuilt chain forks from the lost one.
    assert [c["id"] for c in got["checkers"]] == ["causality", "safety", "durability"]
    durability = got["checkers"][2]
    assert durability["verdict"] == "fail"
    assert "node0" in durability["why"]
    [node] = durability["evidence"]["nodes"]
    assert node["missing"] > 0
    assert "durability" in done.stdout and run_objects(docker_client, got["run_id"]) == []


def test_interrupt_during_a_fault_heals_and_removes_everything(docker_client, cometbft_image,
                                                               tmp_path):
    import signal
    import subprocess
    import sys
    import time

    body = fault_suite("bft-threshold", tmp_path, "shorter").read_text()   # kill-f at 10 s
    suite = write_suite(tmp_path, "interrupt", body.replace("name: faults-bft-threshold",
                                                             "name: it-interrupt"))
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--out",
                                str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    seen = []
    deadline = time.monotonic() + 240
    for line in process.stdout:
        seen.append(line)
        if "fault kill-f: kill node3" in line or time.monotonic() > deadline:
            break
    time.sleep(2)  # node3 is down now
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=180)
    output = "".join(seen) + rest
    assert process.returncode == 130, output[-3000:]
    got = results(run_dir)
    assert got["status"] == "incomplete"
    [first, second] = got["faults"]
    assert first["status"] == "healed" and first["end"] is not None
    assert second["status"] == "skipped" and "not reached" in second["reason"]
    assert run_objects(docker_client, got["run_id"]) == []


def test_checker_settings_errors_name_the_field(tmp_path):
    suite = write_suite(tmp_path, "bad", (ROOT / "suites" / "faults" / "bft-threshold.yaml")
                        .read_text().replace("bound: 30}", "bound: 30, colour: red}"))
    done = bctest("validate", str(suite))
    assert done.returncode == 2
    assert "checkers.convergence" in done.stdout + done.stderr



@pytest.mark.long   # the delay itself: test_nemesis.py (NFQUEUE, netem); the suite: scripts/test --long
def test_slow_links_suite_slows_consensus_and_recovers(docker_client, cometbft_image, tmp_path):
    run_dir, got = run_passing("slow-links", tmp_path)
    assert verdicts(got) == dict.fromkeys(CHECKERS[:-1], "pass")   # no fault_tolerance
    [fault] = got["faults"]
    assert fault["status"] == "healed" and fault["nodes"] == ["node0", "node1", "node2", "node3"]
    netem = "netem" in fault["method"]
    assert netem or "NFQUEUE" in fault["method"], fault["method"]   # which one the report used
    # The delay is real: node0 made blocks at a lower rate while its links were slow.
    stored = history_module.read(run_dir / "history.jsonl")
    seen = sorted({b.number: b.seen for b in stored.blocks if b.node == 0}.values())

    def rate(start, end):
        return sum(1 for t in seen if start <= t < end) / (end - start)
    before, during = rate(5, fault["start"]), rate(fault["start"] + 1, fault["end"])
    assert during < 0.75 * before, (before, during)
    assert run_objects(docker_client, got["run_id"]) == []


@pytest.mark.long   # the disk fault itself: test_nemesis.py; the suite: scripts/test --long
def test_disk_full_suite_recovers_after_the_space_is_freed_and_the_node_restarted(
        docker_client, cometbft_image, tmp_path):
    run_dir, got = run_passing("disk-full", tmp_path)
    assert verdicts(got) == dict.fromkeys(CHECKERS, "pass")
    [fault] = got["faults"]
    filled = fault["params"]["filled"]["node3"]
    assert filled["bytes"] > 100 << 20 and filled["free_after"] < 1 << 20, filled
    # The full disk stopped node3's consensus: its log says why.
    assert "no space left on device" in (run_dir / "logs" / "node3.log").read_text()
    tolerance = next(c for c in got["checkers"] if c["id"] == "fault_tolerance")["evidence"]
    assert tolerance["faults"][0]["expected"] == "continue" and tolerance["faults"][0]["new_heights"] > 0
    assert run_objects(docker_client, got["run_id"]) == []
