"""A vendor node is contained (issue 10, item 5): it reaches its peers, the harness reaches
it through 127.0.0.1, and nothing it sends leaves the machine; it has no IPv6 to go around
a partition's IPv4 rules; its cgroup has the test center's limits and its log is capped."""

from __future__ import annotations

import dataclasses
import socket
import sys
import time
from pathlib import Path

import pytest

from harness import chainpack
from harness.faults import netns
from harness.runtime.docker import DockerRuntime, remove_run

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), 4).close()
    print("reachable")
except ConnectionRefusedError:
    print("reachable")   # the peer's kernel answered
except OSError:
    print("cut")
"""


def sleeping_pack():
    """The anvil pack's image doing nothing: a node to probe from, with no chain of its own."""
    return dataclasses.replace(chainpack.load(ROOT / "chains" / "anvil"), command=["sleep", "600"],
                               ports={"rpc": 8545}, capabilities=[], resources={})


@pytest.fixture
def network(docker_client, tmp_path):
    from harness.runtime import images

    base = images.base_image(docker_client)
    pack = sleeping_pack()
    run_id = f"contain{int(time.time() * 1000) % 10**8}"
    runtime = DockerRuntime(docker_client, run_id, tmp_path / "logs")
    try:
        yield runtime, runtime.start(pack, base, 2, {}, {})
    finally:
        remove_run(docker_client, run_id)


def probe(runtime, node, ip: str, port: int) -> str:
    return netns.run(runtime.pid(node), sys.executable, "-c", PROBE, ip, str(port)).stdout.strip()


def outside_address() -> str:
    try:
        return socket.getaddrinfo("deb.debian.org", 80, socket.AF_INET)[0][4][0]
    except OSError:
        pytest.skip("this host cannot resolve deb.debian.org: no outside address to try")


def test_a_node_reaches_its_peer_but_nothing_outside_the_machine(network):
    runtime, nodes = network
    outside = outside_address()
    host_can = socket.create_connection((outside, 80), 5)
    host_can.close()                       # the host itself does reach it
    assert probe(runtime, nodes[0], nodes[1].ip, 9) == "reachable"
    assert probe(runtime, nodes[0], outside, 80) == "cut"


def test_a_node_has_no_ipv6_and_the_test_centers_limits(network, docker_client):
    runtime, nodes = network
    done = netns.run(runtime.pid(nodes[0]), "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6")
    assert done.stdout.strip() == "1"
    host_config = docker_client.containers.get(nodes[0].container_id).attrs["HostConfig"]
    assert host_config["NanoCpus"] > 0 and host_config["Memory"] > 0 and host_config["PidsLimit"] > 0
    assert host_config["LogConfig"]["Config"] == {"max-size": "64m", "max-file": "2"}
    assert host_config["CapDrop"] == ["ALL"] and not host_config["CapAdd"]


def test_a_node_cannot_open_connections_to_the_hosts_services(network, docker_client):
    """A service the host offers on all addresses (here a listener of the test's own) is
    out of the nodes' reach through the run bridge's gateway; the harness still reaches the
    nodes; the rule is gone with the run."""
    from harness.runtime import hostguard

    runtime, nodes = network
    listener = socket.create_server(("0.0.0.0", 0))
    port = listener.getsockname()[1]
    try:
        gateway = docker_client.networks.get(runtime.network_name).attrs["IPAM"]["Config"][0]["Gateway"]
        assert runtime.unguarded is None
        assert runtime.run_id in hostguard.guarded_runs()
        assert probe(runtime, nodes[0], gateway, port) == "cut"
        assert probe(runtime, nodes[0], nodes[1].ip, 9) == "reachable"
        hostguard.unguard(runtime.run_id)          # without the guard, the host answers
        assert probe(runtime, nodes[0], gateway, port) == "reachable"
        assert hostguard.guard(runtime.run_id) is None
    finally:
        listener.close()
    remove_run(docker_client, runtime.run_id)
    assert runtime.run_id not in hostguard.guarded_runs()


def test_one_vendors_run_cannot_reach_anothers(network, docker_client, tmp_path):
    """Two certifications on one host (two vendors, one after another or a test center's
    several hosts sharing nothing but the engine): each run has its own network, so a node of
    one cannot open a connection to a node of the other, and neither holds the engine's
    socket."""
    from harness.runtime import images

    runtime, nodes = network
    base = images.base_image(docker_client)
    pack = sleeping_pack()
    other_id = f"contain{int(time.time() * 1000) % 10**8 + 1}"
    other = DockerRuntime(docker_client, other_id, tmp_path / "other-logs")
    try:
        [stranger] = other.start(pack, base, 1, {}, {})
        assert other.network_name != runtime.network_name
        assert probe(runtime, nodes[0], stranger.ip, 9) == "cut"
        assert probe(other, stranger, nodes[0].ip, 9) == "cut"
        for node in (nodes[0], stranger):
            mounts = docker_client.containers.get(node.container_id).attrs["Mounts"]
            assert not any("docker.sock" in (m.get("Source") or "") for m in mounts)
    finally:
        remove_run(docker_client, other_id)
