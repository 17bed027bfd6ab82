"""The topology's links on a real network: four CometBFT validators in two zones, 30 ms
each way between the zones, started through the real CLI. The nodes reach consensus with
the delay on, the History records the measured round trip (≈ 60 ms), a node killed and
started again is shaped again, and no delayer outlives the run. Which path shaped the links
depends on the kernel: netem where it has sch_netem, else the NFQUEUE delayer (this
project's CI kernel has no sch_netem)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import ROOT, bctest, delayers_in, results, run_objects, write_suite

DELAY_MS = 30
SUITE = f"""\
name: it-topology-links
description: 4 CometBFT validators in two zones, {DELAY_MS} ms each way between them
chain: {ROOT / "chains" / "cometbft"}
seed: 5
topology:
  zones:
    - {{name: east, tier: root, nodes: 2}}
    - {{name: west, tier: root, nodes: 2}}
  links:
    - {{between: [east, west], delay_ms: {DELAY_MS}}}
params:
  timeout_commit: 1s
load:
  rate: 10
  warmup: 2
  duration: 10
  settle: 20
  nodes: [node0, node1]
faults:   # a recreated namespace is unshaped: the shaper must shape node3 again
  - {{id: crash, action: kill, target: [node3], at: 3, duration: 3}}
checkers:
  safety: {{}}
  durability: {{}}
  convergence: {{bound: 20}}
checks:
  - id: everything committed across the delayed link
    metric: success_ratio
    op: ">="
    value: 0.99
"""


def run_delayers(run_id: str) -> list[str]:
    """NFQUEUE delayer processes that carry this run's mark (harness.lifetime)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or b"harness.faults.nfqueue" not in (proc / "cmdline").read_bytes():
                continue
            if f"BCTEST_RUN_ID={run_id}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.append(proc.name)
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def linked_run(docker_client, cometbft_image, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("link shaping enters the nodes' namespaces with nsenter, which needs root")
    folder = tmp_path_factory.mktemp("links")
    run_dir = folder / "run"
    done = bctest("run", str(write_suite(folder, "links", SUITE)), "--out", str(run_dir), timeout=240)
    assert (run_dir / "results.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    with open(run_dir / "history.jsonl") as history:
        header = json.loads(history.readline())
    return done, results(run_dir), header, run_objects(docker_client, results(run_dir)["run_id"])


def _applied(header: dict) -> dict:
    applied = header["topology"]["links_applied"]
    assert applied and applied["pairs"], header["topology"]
    return applied


def check_measured(done, got, header, left) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [pair] = _applied(header)["pairs"]
    assert (pair["from"], pair["to"], pair["nodes"]) == ("east", "west", ["node0", "node2"])
    assert pair["profile"]["delay_ms"] == DELAY_MS and pair["expected_rtt_ms"] == 2 * DELAY_MS
    rtt = pair["rtt_ms"]
    assert rtt and rtt["samples"] == 5, pair
    # Each end delays what it sends across: a round trip sees the delay twice.
    assert 2 * DELAY_MS - 5 <= rtt["p50"] <= 2 * DELAY_MS + 40, rtt
    assert f"east → west: {DELAY_MS} ms set, RTT" in done.stdout
    assert got["status"] == "complete"
    assert left == []   # containers, network, volumes


def test_links_by_the_nfqueue_delayer_are_applied_measured_and_gone(linked_run):
    done, got, header, left = linked_run
    applied = _applied(header)
    if applied["via"] != "nfqueue":
        pytest.skip("this kernel has sch_netem, so the links use netem (test_links_by_netem)")
    assert applied["netem_missing"] and "NFQUEUE delayer" in applied["method"]
    # One delayer per node (one profile each) on a queue of the links' range.
    assert applied["nodes"] == {f"node{i}": {"peers": 2, "profiles": 1, "queues": [1000]} for i in range(4)}
    check_measured(done, got, header, left)
    assert run_delayers(got["run_id"]) == []
    # node3 was killed and started again: a new namespace, shaped again once.
    assert applied["reshaped"] == {"node3": 1}


def test_links_by_netem(linked_run):
    done, got, header, left = linked_run
    applied = _applied(header)
    if applied["via"] != "netem":
        pytest.skip(f"this kernel has no sch_netem (tc: {applied['netem_missing']}); the links used the "
                    "NFQUEUE delayer (test_links_by_the_nfqueue_delayer_...); tests/unit/test_links.py "
                    "checks the netem commands")
    assert applied["netem_missing"] is None and "netem leaf" in applied["method"]
    check_measured(done, got, header, left)


def test_rate_and_loss_rules_are_what_this_kernel_applies(docker_client, cometbft_image):
    """The NFQUEUE path's loss (mangle statistic DROP) and rate (htb class, u32 filter) taken
    by the real kernel in a real container's namespace; the delayer stopped after."""
    if os.geteuid() != 0:
        pytest.skip("link shaping enters the nodes' namespaces with nsenter, which needs root")
    from harness.faults import links, netns
    from harness.topology import LinkProfile

    container = docker_client.containers.run(cometbft_image, entrypoint=["sleep", "60"], detach=True,
                                              labels={"bctest.test": "topology-links"})
    try:
        container.reload()
        pid = int(container.attrs["State"]["Pid"])
        method, _ = links.choose_method(pid)
        plan = links.NodeLinks(node=0, profiles=(LinkProfile(delay_ms=5, rate="1mbit", loss=0.25),),
                               peers=(("192.0.2.7", 0),))
        shaper = links.Shaper(method=method, plans={0: plan})
        shaper.shape(plan, pid)
        qdiscs = netns.run(pid, "tc", "class", "show", "dev", "eth0").stdout
        if method == links.NFQUEUE:
            rules = netns.run(pid, "iptables", "-w", "-t", "mangle", "-S", "bct-links").stdout
            assert "-d 192.0.2.7/32 -m statistic --mode random --probability 0.25" in rules, rules
            assert "-j NFQUEUE --queue-num 1000 --queue-bypass" in rules, rules
            assert len(delayers_in(pid)) == 1
        assert "class htb 1:10" in qdiscs and "rate 1Mbit" in qdiscs, qdiscs
        assert "flowid 1:10" in netns.run(pid, "tc", "filter", "show", "dev", "eth0").stdout
        shaper.stop()
        assert delayers_in(pid) == []
    finally:
        container.remove(force=True)


def test_a_delay_faults_queue_adds_to_the_links(docker_client, cometbft_image):
    """The links' queue (mangle) and a `delay` fault's (via nfqueue, filter) both hold a
    packet: the fault composes with the links instead of replacing them."""
    if os.geteuid() != 0:
        pytest.skip("link shaping enters the nodes' namespaces with nsenter, which needs root")
    from harness.faults import links, netns
    from harness.topology import LinkProfile

    pair = [docker_client.containers.run(cometbft_image, entrypoint=["sleep", "60"], detach=True,
                                         labels={"bctest.test": "topology-links"}) for _ in range(2)]
    try:
        for container in pair:
            container.reload()
        pid = int(pair[0].attrs["State"]["Pid"])
        peer = pair[1].attrs["NetworkSettings"]["IPAddress"]
        if netns.nfqueue_missing(pid) is not None:
            pytest.skip(f"iptables cannot queue packets here: {netns.nfqueue_missing(pid)}")

        def rtt() -> float:   # port 9 is closed: the RST is the round trip
            done = netns.run(pid, *links.probe_argv(pid, peer, 9, 5))
            return sorted(json.loads(done.stdout))[2]
        assert rtt() < 15
        plan = links.NodeLinks(node=0, profiles=(LinkProfile(delay_ms=30),), peers=((peer, 0),))
        shaper = links.Shaper(method=links.NFQUEUE, plans={0: plan})
        shaper.shape(plan, pid)
        fault = None
        try:
            linked = rtt()
            fault = netns.start_delayer(pid, 0, 50, 0, 1)
            netns.add_queue_chain(pid, "bct-0", [peer], 0)
            both = rtt()
        finally:
            shaper.stop()
            if fault is not None:
                fault.stop()
        assert 28 <= linked <= 60, linked
        assert 78 <= both <= 120, both
        assert delayers_in(pid) == []
    finally:
        for container in pair:
            container.remove(force=True)
