"""The nemesis against real containers: rules and qdiscs really appear in the nodes'
network namespaces, really cut traffic, and are gone after the heal."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from pathlib import Path

import pytest

from harness import chainpack
from harness.faults import netns
from harness.faults.nemesis import Nemesis
from harness.faults.schedule import plan
from harness.runtime.docker import DockerRuntime, remove_run

from .conftest import delayers_in

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def network(docker_client, tmp_path):
    """Three idle containers on a run network (the base image, `sleep`)."""
    from harness.runtime import images

    base = images.base_image(docker_client)
    pack = dataclasses.replace(chainpack.load(ROOT / "chains" / "anvil"), command=["sleep", "600"],
                               ports={"rpc": 8545}, capabilities=[])
    run_id = f"nemesis{int(time.time() * 1000) % 10**8}"
    runtime = DockerRuntime(docker_client, run_id, tmp_path / "logs")
    try:
        files = {i: {"run-file": f"written by the run for node{i}".encode()} for i in range(3)}
        nodes = runtime.start(pack, base, 3, files, {})
        yield runtime, nodes
    finally:
        remove_run(docker_client, run_id)


PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 9), 1.5)
except ConnectionRefusedError:
    print("reachable")   # the peer's kernel answered (nothing listens on port 9)
except OSError:
    print("cut")         # no answer: dropped
"""


def ping(runtime, node, ip: str) -> bool:
    """Can `node` reach `ip`? A TCP connect to a closed port is refused when it can."""
    done = netns.run(runtime.pid(node), sys.executable, "-c", PROBE, ip)
    return done.stdout.strip() == "reachable"


def apply_and_heal(runtime, nodes, faults, during):
    steps = plan(faults, len(nodes), 0, 1, 1000.0, "test.yaml")
    nemesis = Nemesis(runtime, nodes, [dataclasses.replace(s, start=0.0, end=600.0) for s in steps])

    async def go():
        nemesis.t0 = time.monotonic()
        for step in nemesis.steps:
            await nemesis._apply(step)
        observed = during()
        await nemesis.heal_all()
        return observed
    return asyncio.run(go()), nemesis.history()


def test_partition_cuts_peers_and_heal_removes_every_rule(network):
    runtime, nodes = network
    assert ping(runtime, nodes[0], nodes[2].ip)

    def during():
        return ({n.name: netns.chains(runtime.pid(n)) for n in nodes},
                ping(runtime, nodes[0], nodes[2].ip), ping(runtime, nodes[0], nodes[1].ip))
    (chains, cut, kept), [record] = apply_and_heal(
        runtime, nodes, [{"action": "partition", "target": ["node2"], "at": 0, "duration": 1}], during)
    # One side's rules cut both directions: node2 drops whatever comes from or goes to 0 and 1.
    assert chains == {"node0": [], "node1": [], "node2": ["bct-0"]}
    assert not cut, "node0 still reached the isolated node2"
    assert kept, "node0 lost node1, which is on its side"
    assert record.status == "healed" and record.groups == [[0, 1], [2]]
    assert all(netns.chains(runtime.pid(n)) == [] for n in nodes)
    assert ping(runtime, nodes[0], nodes[2].ip)


def test_loss_uses_iptables_statistic_and_bandwidth_uses_tbf(network):
    runtime, nodes = network

    def during():
        rules = "\n".join(line for line in netns.run(runtime.pid(nodes[1]), "iptables", "-w", "-S")
                          .stdout.splitlines() if line.startswith("-A bct-"))
        return rules, netns.qdisc(runtime.pid(nodes[1]))
    (rules, qdisc), records = apply_and_heal(runtime, nodes, [
        {"action": "loss", "target": ["node1"], "probability": 0.3, "at": 0, "duration": 1},
        {"action": "bandwidth", "target": ["node1"], "rate": "1mbit", "at": 0, "duration": 1}],
        during)
    # to and from each of the two peers, 30 % of packets (iptables prints 0.29999999981)
    assert rules.count("--mode random --probability 0.2999") == 4
    assert {nodes[0].ip, nodes[2].ip} == {w.split("/")[0] for w in rules.split() if "/" in w}
    assert "tbf" in qdisc and "1Mbit" in qdisc
    assert [r.status for r in records] == ["healed", "healed"]
    assert netns.chains(runtime.pid(nodes[1])) == []
    assert "tbf" not in netns.qdisc(runtime.pid(nodes[1]))


def _netem_error(runtime, nodes) -> str | None:
    return netns.netem_missing(runtime.pid(nodes[0]))


def test_delay_with_netem(network):
    runtime, nodes = network
    missing = _netem_error(runtime, nodes)
    if missing:
        pytest.skip(f"this kernel has no sch_netem (tc: {missing}); "
                    "test_delay_without_netem_is_skipped_with_the_reason covers this machine")
    (qdisc,), [record] = apply_and_heal(runtime, nodes, [
        {"action": "delay", "target": ["node0"], "delay_ms": 50, "at": 0, "duration": 1}],
        lambda: (netns.qdisc(runtime.pid(nodes[0])),))
    assert "netem" in qdisc and "delay 50" in qdisc
    assert record.status == "healed"


def test_delay_via_netem_on_a_kernel_without_it_is_skipped_with_tcs_message(network):
    runtime, nodes = network
    missing = _netem_error(runtime, nodes)
    if missing is None:
        pytest.skip("this kernel has sch_netem; test_delay_with_netem covers it")
    _, [record] = apply_and_heal(runtime, nodes, [
        {"action": "delay", "target": ["node0"], "delay_ms": 50, "via": "netem", "at": 0, "duration": 1}],
        lambda: None)
    assert record.status == "skipped" and record.start is None
    assert "no netem qdisc" in record.reason and missing in record.reason
    assert "netem" not in netns.qdisc(runtime.pid(nodes[0]))


TIMED_PROBE = """
import json, socket, sys, time
out = []
for _ in range(int(sys.argv[2])):
    t = time.monotonic()
    try:
        socket.create_connection((sys.argv[1], 9), 3)
    except ConnectionRefusedError:
        out.append(round((time.monotonic() - t) * 1000, 1))   # the peer's RST came back
print(json.dumps(out))
"""


def refused_ms(runtime, node, ip: str, times: int = 5) -> list[float]:
    """How long `node` waits for `ip` to refuse a connection: one round trip, in ms."""
    done = netns.run(runtime.pid(node), sys.executable, "-c", TIMED_PROBE, ip, str(times))
    return json.loads(done.stdout)


def test_delay_by_the_nfqueue_delayer_holds_node_to_node_packets_and_heals(network):
    runtime, nodes = network
    before = refused_ms(runtime, nodes[1], nodes[0].ip)
    assert max(before) < 50, before

    def during():
        return (refused_ms(runtime, nodes[1], nodes[0].ip, 8), delayers_in(runtime.pid(nodes[0])),
                netns.chains(runtime.pid(nodes[0])))
    (delayed, delayers, chains), [record] = apply_and_heal(runtime, nodes, [
        {"action": "delay", "target": ["node0"], "delay_ms": 200, "jitter_ms": 40, "via": "nfqueue",
         "at": 0, "duration": 1}], during)
    # node0's RST to node1 waits 200 ± 40 ms in the delayer: every round trip shows it.
    assert all(155 <= ms <= 300 for ms in delayed), delayed
    assert max(delayed) - min(delayed) > 5, f"jitter left no trace: {delayed}"
    assert len(delayers) == 1 and chains == ["bct-0"]
    assert record.status == "healed" and "NFQUEUE" in record.method
    # Healed: rule and process gone, round trips fast again.
    assert netns.chains(runtime.pid(nodes[0])) == [] and delayers_in(runtime.pid(nodes[0])) == []
    assert max(refused_ms(runtime, nodes[1], nodes[0].ip)) < 50


def test_delay_falls_back_to_nfqueue_where_the_kernel_has_no_netem(network):
    runtime, nodes = network
    missing = _netem_error(runtime, nodes)
    if missing is None:
        pytest.skip("this kernel has sch_netem, so delay uses netem (test_delay_with_netem)")
    (delayed,), [record] = apply_and_heal(runtime, nodes, [
        {"action": "delay", "target": ["node2"], "delay_ms": 100, "at": 0, "duration": 1}],
        lambda: (refused_ms(runtime, nodes[0], nodes[2].ip),))
    assert "NFQUEUE" in record.method and record.status == "healed"
    assert all(95 <= ms <= 200 for ms in delayed), delayed


def test_pause_and_kill_heal_to_running_on_the_same_address_and_port(network):
    runtime, nodes = network
    before = [(n.ip, dict(n.host_ports)) for n in nodes]

    def during():
        return [runtime.container(n).status for n in nodes[1:]]
    statuses, records = apply_and_heal(runtime, nodes, [
        {"action": "pause", "target": ["node1"], "at": 0, "duration": 1},
        {"action": "kill", "target": ["node2"], "at": 0, "duration": 1}], during)
    assert statuses == ["paused", "exited"]
    assert [r.status for r in records] == ["healed", "healed"]
    for node, (ip, ports) in zip(nodes, before, strict=True):
        container = runtime.container(node)
        assert container.status == "running"
        address = container.attrs["NetworkSettings"]["Networks"][runtime.network_name]["IPAddress"]
        assert address == ip
        bound = container.attrs["NetworkSettings"]["Ports"]["8545/tcp"][0]["HostPort"]
        assert int(bound) == ports["rpc"]


def test_wipe_recreates_the_node_with_its_run_files_and_nothing_it_wrote(network):
    runtime, nodes = network
    node = nodes[1]
    first_id, ip, ports = node.container_id, node.ip, dict(node.host_ports)
    runtime.container(node).exec_run(["sh", "-c", "echo data > /node-data"])

    def during():
        return runtime.container(node).status
    status, [record] = apply_and_heal(runtime, nodes, [
        {"action": "wipe", "target": ["node1"], "at": 0, "duration": 1}], during)
    assert status == "exited" and record.status == "healed" and "recreated" in record.method
    container = runtime.container(node)
    assert node.container_id != first_id and container.status == "running"
    assert container.attrs["NetworkSettings"]["Networks"][runtime.network_name]["IPAddress"] == ip
    assert int(container.attrs["NetworkSettings"]["Ports"]["8545/tcp"][0]["HostPort"]) == ports["rpc"]
    files = container.exec_run(["sh", "-c", "cat /bctest/run-file; ls /node-data"]).output.decode()
    assert "written by the run for node1" in files and "No such file" in files
    assert (runtime.log_dir / "node1.before-wipe-1.log").is_file()
    assert ping(runtime, nodes[0], ip)      # its peers reach it where it was


@pytest.fixture
def disk_network(docker_client, tmp_path):
    """Two idle containers; node1 gets a size-limited data filesystem at /data."""
    from harness.runtime import disks, images

    base = images.base_image(docker_client)
    pack = dataclasses.replace(chainpack.load(ROOT / "chains" / "anvil"), command=["sleep", "600"],
                               ports={"rpc": 8545}, capabilities=[], data_dir="/data")
    run_id = f"disk{int(time.time() * 1000) % 10**8}"
    runtime = DockerRuntime(docker_client, run_id, tmp_path / "logs")
    try:
        nodes = runtime.start(pack, base, 2, {}, {}, {1: disks.CAPACITY})
        yield runtime, nodes
    finally:
        remove_run(docker_client, run_id)
        assert not (disks.root() / run_id).exists()
        assert f"/{run_id}/" not in Path("/proc/self/mounts").read_text()


def write(runtime, node, path: str) -> str:
    """Write 64 KiB into `path` inside the node; '' on success, else the shell's error."""
    done = runtime.container(node).exec_run(["sh", "-c", f"head -c 65536 /dev/zero > {path} && sync"])
    return "" if done.exit_code == 0 else done.output.decode().strip()


def test_disk_fills_the_nodes_own_filesystem_and_heal_frees_it(disk_network):
    runtime, nodes = disk_network
    assert write(runtime, nodes[1], "/data/before") == ""
    size = runtime.container(nodes[1]).exec_run(["df", "-k", "/data"]).output.decode().split()
    # 256 MiB less ext4 metadata, not the host disk
    assert 220_000 < int(size[size.index("/data") - 4]) <= 262_144

    def during():
        return write(runtime, nodes[1], "/data/during"), write(runtime, nodes[0], "/data-elsewhere")
    (full, other), [record] = apply_and_heal(runtime, nodes, [
        {"action": "disk", "target": ["node1"], "size": "1g", "at": 0, "duration": 1}], during)
    assert "No space left on device" in full
    assert other == ""                                   # node0 has no such disk: untouched
    filled = record.params["filled"]["node1"]
    assert filled["bytes"] > 200 << 20 and filled["free_after"] < 1 << 20, filled
    assert record.status == "healed" and "ext4" in record.method
    assert write(runtime, nodes[1], "/data/after") == ""   # healed: room again


def test_disk_on_a_node_without_a_data_filesystem_is_skipped_naming_it(disk_network):
    runtime, nodes = disk_network
    _, [record] = apply_and_heal(runtime, nodes, [
        {"action": "disk", "target": ["node0"], "size": "10m", "at": 0, "duration": 1}], lambda: None)
    assert record.status == "skipped" and "node0 has no size-limited data filesystem" in record.reason


def test_wipe_formats_the_data_filesystem_again(disk_network):
    runtime, nodes = disk_network
    assert write(runtime, nodes[1], "/data/ledger") == ""
    apply_and_heal(runtime, nodes, [{"action": "wipe", "target": ["node1"], "at": 0, "duration": 1}],
                   lambda: None)
    listing = runtime.container(nodes[1]).exec_run(["ls", "-A", "/data"]).output.decode().split()
    assert listing == [], listing
