"""How a run fails: bad input (exit 2), a broken node (exit 3), an interrupt (130),
and in every case nothing left running in the engine."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from harness.validation import schema

from .conftest import ROOT, bctest, run_objects, write_suite

PACK = """\
name: {name}
version: "1.7.1"
family: evm
consensus: {{kind: single}}
chain_id: 31337
image: {{tag: "bctest/anvil:1.7.1"}}
ports: {{rpc: {port}}}
readiness: {{timeout: {timeout}}}
params: {{block_time: 1, gas_limit: 300000000, quiet: true}}
"""


def make_pack(folder: Path, name: str, port: int = 8545, timeout: float = 30,
              readiness_extra: str = "") -> Path:
    pack = folder / name
    pack.mkdir()
    text = PACK.format(name=name, port=port, timeout=timeout)
    if readiness_extra:
        text = text.replace("readiness: {", "readiness: {" + readiness_extra + ", ")
    (pack / "chain.yaml").write_text(text)
    return pack


def run_id_of(stdout: str) -> str:
    match = re.search(r"^run ([0-9a-f]{10}):", stdout, re.MULTILINE)
    assert match, stdout
    return match.group(1)


def test_invalid_suite_exits_2_with_one_message_and_no_run_folder(tmp_path):
    suite = write_suite(tmp_path, "bad", "name: bad\nchain: anvil\nload: {rate: -5, duration: 10}\n")
    out = tmp_path / "out"
    done = bctest("run", str(suite), "--out", str(out))
    assert done.returncode == 2
    assert str(suite) in done.stderr and "load.rate" in done.stderr and "> 0" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not out.exists()


def test_node_that_exits_during_startup_is_named_with_its_exit_code_and_log(
        docker_client, anvil_image, tmp_path):
    pack = make_pack(tmp_path, "exits")
    suite = write_suite(tmp_path, "exits", f"name: exits\nchain: {pack}\nparams: {{block_time: nonsense}}\n"
                        "load: {rate: 10, duration: 5}\n")
    done = bctest("run", str(suite), "--out", str(tmp_path / "run"))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "node node0 exited with code" in done.stderr
    log = tmp_path / "run" / "logs" / "node0.log"
    assert str(log) in done.stderr.replace("\n", "")
    assert "block" in log.read_text().lower()  # anvil's own complaint about --block-time
    assert not (tmp_path / "run" / "results.json").exists()
    assert run_objects(docker_client, run_id_of(done.stdout)) == []


def test_node_never_ready_times_out_naming_node_probe_and_log(docker_client, anvil_image, tmp_path):
    pack = make_pack(tmp_path, "deaf", port=9999, timeout=4)  # anvil listens on 8545, not 9999
    suite = write_suite(tmp_path, "deaf", f"name: deaf\nchain: {pack}\nload: {{rate: 10, duration: 5}}\n")
    done = bctest("run", str(suite), "--out", str(tmp_path / "run"))
    assert done.returncode == 3, done.stdout + done.stderr
    message = done.stderr.replace("\n", "")
    assert "node node0 not ready after 4 s" in message and "eth_chainId" in message
    assert (tmp_path / "run" / "logs" / "node0.log").stat().st_size > 0
    assert run_objects(docker_client, run_id_of(done.stdout)) == []


def test_network_that_makes_no_progress_exits_3_with_every_nodes_height(
        docker_client, anvil_image, tmp_path):
    # block_time 0 is anvil's automine: with no transactions it never makes a block.
    pack = make_pack(tmp_path, "stuck", timeout=4, readiness_extra="progress_blocks: 2")
    suite = write_suite(tmp_path, "stuck", f"name: stuck\nchain: {pack}\nparams: {{block_time: 0}}\n"
                        "load: {rate: 10, duration: 5}\n")
    done = bctest("run", str(suite), "--out", str(tmp_path / "run"))
    assert done.returncode == 3, done.stdout + done.stderr
    message = done.stderr.replace("\n", "")
    assert "did not reach height 2 within 4 s (heights: node0 0)" in message
    assert run_objects(docker_client, run_id_of(done.stdout)) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_during_measure_writes_incomplete_results_and_tears_down(
        docker_client, anvil_image, tmp_path, sig):
    suite = write_suite(tmp_path, "long", "name: long\nchain: anvil\n"
                        "load: {rate: 50, warmup: 1, duration: 120}\n")
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--out",
                                str(run_dir)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not docker_client.containers.list(filters={"label": "bctest.run"}):
        assert time.monotonic() < deadline and process.poll() is None, "the run never started a node"
        time.sleep(0.5)
    time.sleep(8)  # readiness, signing and the 1 s warmup: now inside the measure window
    process.send_signal(sig)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130, output
    got = json.loads((run_dir / "results.json").read_text())
    jsonschema.validate(got, schema("results"))
    assert got["status"] == "incomplete" and got["verdict"] == "incomplete"
    assert got["status_reason"] == f"interrupted by {sig.name}"
    assert got["phases"]["measure"]["submitted"] > 0
    assert run_objects(docker_client, got["run_id"]) == []


def test_clean_removes_objects_of_dead_runs_only(docker_client, anvil_image):
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    made = {}
    for run_id, pid in (("deadrun0001", dead.pid), ("liverun0001", os.getpid())):
        made[run_id] = docker_client.containers.create(
            "bctest/anvil:1.7.1", name=f"bctest-{run_id}-node0",
            labels={"bctest.run": run_id, "bctest.pid": str(pid), "bctest.host": host,
                    "bctest.pidns": os.readlink("/proc/self/ns/pid")})
    try:
        done = bctest("clean")
        assert done.returncode == 0, done.stderr
        assert "deadrun0001" in done.stdout
        assert run_objects(docker_client, "deadrun0001") == []
        assert run_objects(docker_client, "liverun0001") == ["bctest-liverun0001-node0"]
    finally:
        for container in made.values():
            try:
                container.remove(force=True)
            except Exception:
                pass


def test_clean_unmounts_the_data_disks_of_a_run_that_died_after_its_containers(tmp_path, monkeypatch):
    from harness.runtime import disks

    monkeypatch.setenv("BCTEST_DISKS", str(tmp_path / "disks"))
    from harness import lifetime

    disk = disks.create("deadrun0002", "node0", 16 << 20)      # a real loop-mounted ext4
    dead = subprocess.Popen(["true"])                            # its owner: a process now gone
    dead.wait()
    gone = lifetime.Owner(lifetime.pid_namespace(), dead.pid, 1)
    (disk.mountpoint.parent / disks.OWNER).write_text(gone.token())
    assert str(disk.mountpoint) in Path("/proc/self/mounts").read_text()
    done = bctest("clean")
    assert done.returncode == 0, done.stderr
    assert "deadrun0002" in done.stdout
    assert str(disk.mountpoint) not in Path("/proc/self/mounts").read_text()
    assert not disk.mountpoint.parent.exists()


def test_campaign_with_a_case_that_never_gets_ready_exits_3_and_judges_the_rest(
        docker_client, anvil_image, tmp_path):
    deaf = make_pack(tmp_path, "deaf", port=9999, timeout=4)
    write_suite(tmp_path, "deaf", f"name: deaf\ncase: spike-4\nchain: {deaf}\n"
                "load: {rate: 10, duration: 5}\n")
    write_suite(tmp_path, "ok", f"name: ok\ncase: pressure-4\nchain: {ROOT / 'chains' / 'anvil'}\n"
                "load: {rate: 20, warmup: 1, duration: 5, settle: 10}\n")
    performance = ROOT / "standards" / "performance.yaml"
    campaign = write_suite(tmp_path, "campaign", f"name: c\nstandards: [{performance}]\ncases:\n"
                           "  - {id: spike-4, suite: deaf.yaml}\n  - {id: pressure-4, suite: ok.yaml}\n")
    done = bctest("run", str(campaign), "--out", str(tmp_path / "run"))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "case spike-4 failed" in done.stdout and "not ready after 4 s" in done.stdout
    got = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [(c["id"], c["status"]) for c in got["cases"]] == [("spike-4", "not run"),
                                                              ("pressure-4", "complete")]
    spike = next(r for r in got["requirements"] if r["id"] == "PERF-TX-SPIKE-4")
    assert spike["verdict"] == "inconclusive" and spike["why"] == "case spike-4 was not run"
    assert got["status"] == "incomplete"


def test_a_chain_that_refuses_every_transaction_exits_3_with_its_answer(docker_client, anvil_image, tmp_path):
    # A gas price of 1 wei is below anvil's base fee: the node rejects every transfer.
    pack = make_pack(tmp_path, "cheap")
    with (pack / "chain.yaml").open("a") as text:
        text.write("options: {gas_price_gwei: 0.000000001}\n")
    suite = write_suite(tmp_path, "refuse", f"name: refuse\nchain: {pack}\nload: {{rate: 10, duration: 4}}\n")
    done = bctest("run", str(suite), "--out", str(tmp_path / "run"))
    assert done.returncode == 3, done.stdout + done.stderr
    out = done.stdout.replace("\n", "")
    assert "the system under test took no load: all 40 transactions sent in the measure phase failed" in out
    assert "max fee per gas less than block base fee (40×)" in out
    stored = json.loads((tmp_path / "run" / "results.json").read_text())   # still written, whole
    jsonschema.validate(stored, schema("results"))
    assert stored["phases"]["measure"]["failed"] == 40
    assert run_objects(docker_client, run_id_of(done.stdout)) == []
