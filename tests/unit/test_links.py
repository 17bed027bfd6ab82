"""The link shaper's planning (harness/faults/links.py): which peers get which queue and
class, the tc and iptables commands of both paths, the refusal of faults that would drop
the links, the probe, and apply/release against a fake namespace (the real thing:
tests/integration/test_topology_links.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import suite, topology
from harness.errors import InfraError, InputError
from harness.faults import links
from harness.faults.schedule import FaultStep
from harness.model import Node
from harness.topology import LinkProfile

ROOT = Path(__file__).resolve().parents[2]
IPS = [f"10.9.0.{i + 2}" for i in range(6)]


def three_tier() -> topology.Topology:
    return topology.parse({
        "zones": [{"name": "province-a", "tier": "root", "nodes": 2},
                  {"name": "province-b", "tier": "root", "nodes": 1},
                  {"name": "national", "tier": "management", "nodes": 1},
                  {"name": "region-1", "tier": "application", "nodes": 1, "parent": "province-a"},
                  {"name": "region-2", "tier": "application", "nodes": 1, "parent": "province-b"}],
        "links": [{"between": ["application", "root"], "delay_ms": 20, "jitter_ms": 2},
                  {"between": ["root", "management"], "delay_ms": 40},
                  {"between": ["region-2", "province-b"], "delay_ms": 80, "rate": "10mbit", "loss": 0.001}],
    }, "t.yaml")


def test_each_node_gets_one_queue_and_class_per_distinct_profile_and_its_peers_by_address():
    plans = {p.node: p for p in links.plan(three_tier(), IPS)}
    # node0 (province-a): nothing to its zone mate node1; 40 ms to national; 20 ± 2 to both
    # regions (region-2 <-> province-a is the tier pair: the zone pair names province-b).
    p0 = plans[0]
    assert [p.describe() for p in p0.profiles] == ["40 ms", "20 ms ± 2"]
    assert p0.peers == ((IPS[3], 0), (IPS[4], 1), (IPS[5], 1))
    assert (p0.queue(0), p0.queue(1), p0.classid(1)) == (1000, 1001, "1:11")
    # node2 (province-b): the zone pair wins over the tier pair towards region-2.
    assert plans[2].peers == ((IPS[3], 0), (IPS[4], 1), (IPS[5], 2))
    assert plans[2].profiles[2] == LinkProfile(delay_ms=80, rate="10mbit", loss=0.001)
    # national has no link to the regions: it shapes only towards the root tier.
    assert plans[3].peers == ((IPS[0], 0), (IPS[1], 0), (IPS[2], 0))
    assert links.shaped_nodes(three_tier()) == {0, 1, 2, 3, 4, 5}


def test_a_topology_whose_links_name_no_two_populated_zones_shapes_nothing():
    t = topology.parse({"zones": [{"name": "a", "tier": "root", "nodes": 3},
                                  {"name": "n", "tier": "management", "nodes": 1}],
                        "links": [{"between": ["application", "root"], "delay_ms": 5}]}, "t.yaml")
    assert links.plan(t, IPS) == [] and links.shaped_nodes(t) == set()


def test_netem_path_builds_htb_classes_with_netem_leaves_and_u32_filters():
    node2 = {p.node: p for p in links.plan(three_tier(), IPS)}[2]
    argv = [" ".join(a) for a in links.commands(node2, links.NETEM)]
    assert argv == [
        "tc qdisc replace dev eth0 root handle 1: htb",
        "tc class add dev eth0 parent 1: classid 1:10 htb rate 10gbit burst 1m cburst 1m quantum 1514",
        "tc qdisc add dev eth0 parent 1:10 handle 10: netem delay 40ms",
        "tc class add dev eth0 parent 1: classid 1:11 htb rate 10gbit burst 1m cburst 1m quantum 1514",
        "tc qdisc add dev eth0 parent 1:11 handle 11: netem delay 20ms 2ms",
        "tc class add dev eth0 parent 1: classid 1:12 htb rate 10mbit quantum 1514",
        "tc qdisc add dev eth0 parent 1:12 handle 12: netem delay 80ms loss 0.1%",
        f"tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst {IPS[3]}/32 flowid 1:10",
        f"tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst {IPS[4]}/32 flowid 1:11",
        f"tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst {IPS[5]}/32 flowid 1:12",
    ]


def test_nfqueue_path_queues_in_a_mangle_chain_drops_for_loss_and_shapes_only_rates_with_htb():
    node2 = {p.node: p for p in links.plan(three_tier(), IPS)}[2]
    argv = [" ".join(a) for a in links.commands(node2, links.NFQUEUE)]
    mangle = "iptables -w -t mangle"
    assert argv == [
        f"{mangle} -N bct-links",
        f"{mangle} -A bct-links -d {IPS[3]} -j NFQUEUE --queue-num 1000 --queue-bypass",
        f"{mangle} -A bct-links -d {IPS[4]} -j NFQUEUE --queue-num 1001 --queue-bypass",
        # the loss before the queue: a dropped packet is not held first
        f"{mangle} -A bct-links -d {IPS[5]} -m statistic --mode random --probability 0.001000 -j DROP",
        f"{mangle} -A bct-links -d {IPS[5]} -j NFQUEUE --queue-num 1002 --queue-bypass",
        f"{mangle} -I OUTPUT -j bct-links",
        "tc qdisc replace dev eth0 root handle 1: htb",
        "tc class add dev eth0 parent 1: classid 1:12 htb rate 10mbit quantum 1514",
        f"tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst {IPS[5]}/32 flowid 1:12",
    ]
    assert links.delayed(node2) == [0, 1, 2]
    # Without a rate the NFQUEUE path leaves the root qdisc alone.
    node0 = {p.node: p for p in links.plan(three_tier(), IPS)}[0]
    assert not any(a[0] == "tc" for a in links.commands(node0, links.NFQUEUE))


def test_link_queues_cannot_clash_with_the_delay_faults_step_numbered_queues():
    # the delay kind uses the step number as its queue; the schema caps a suite's faults far below
    assert min(p.queue(0) for p in links.plan(three_tier(), IPS)) == links.QUEUE_BASE == 1000


def _steps(action: str, nodes: tuple[int, ...], fault_id: str) -> list[FaultStep]:
    return [FaultStep(id=fault_id, action=action, nodes=nodes, start=1.0, end=2.0)]


@pytest.mark.parametrize("fault", [{"action": "bandwidth", "rate": "1mbit"},
                                   {"action": "delay", "delay_ms": 50},
                                   {"action": "delay", "delay_ms": 50, "via": "netem"}])
def test_a_root_qdisc_fault_on_a_shaped_node_is_refused_naming_the_fault(fault):
    with pytest.raises(InputError) as err:
        links.check_faults(three_tier(), [{"action": "loss"}, fault],
                           _steps(fault["action"], (2,), f"{fault['action']}-1"), "s.yaml")
    assert err.value.field == "faults[1].action"
    assert "a node whose links the topology shapes (node2)" in str(err.value)


def test_faults_that_compose_with_the_links_pass():
    t = three_tier()
    for fault in ({"action": "delay", "delay_ms": 50, "via": "nfqueue"}, {"action": "loss"},
                  {"action": "partition"}, {"action": "kill"}):
        links.check_faults(t, [fault], _steps(fault["action"], (0, 1), f"{fault['action']}-0"), "s.yaml")
    # A bandwidth fault on a node no link shapes, and any fault without links, pass too.
    alone = topology.parse({"zones": [{"name": "a", "tier": "root", "nodes": 2},
                                      {"name": "b", "tier": "root", "nodes": 1},
                                      {"name": "c", "tier": "root", "nodes": 1}],
                            "links": [{"between": ["a", "b"], "delay_ms": 5}]}, "t.yaml")
    links.check_faults(alone, [{"action": "bandwidth"}], _steps("bandwidth", (3,), "bandwidth-0"), "s.yaml")
    links.check_faults(None, [{"action": "bandwidth"}], _steps("bandwidth", (0,), "bandwidth-0"), "s.yaml")


def test_the_suite_loader_refuses_a_bandwidth_fault_on_a_shaped_node(tmp_path):
    (tmp_path / "s.yaml").write_text(f"""
name: links-refusal
chain: {ROOT / 'chains' / 'cometbft'}
topology:
  zones:
    - {{name: east, tier: root, nodes: 2}}
    - {{name: west, tier: root, nodes: 2}}
  links:
    - {{between: [east, west], delay_ms: 30}}
load: {{rate: 5, duration: 10}}
faults:
  - {{id: squeeze, action: bandwidth, rate: 1mbit, target: zone:west, at: 2, duration: 3}}
""")
    with pytest.raises(InputError) as err:
        suite.load(tmp_path / "s.yaml")
    assert err.value.field == "faults[0].action" and "(node2, node3)" in str(err.value)


# -- the probe -----------------------------------------------------------------------------------


def test_the_probe_times_connects_and_refusals_and_reports_timeouts():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted = threading.Thread(target=lambda: [server.accept()[0].close() for _ in range(3)], daemon=True)
    accepted.start()
    samples = links.probe("127.0.0.1", port, 3)
    server.close()
    assert len(samples) == 3 and all(s is not None and 0 <= s < 1000 for s in samples)
    refused = links.probe("127.0.0.1", port, 2)       # nobody listens: the RST is a round trip too
    assert len(refused) == 2 and all(s is not None for s in refused)
    assert links.summarize([10.0, 30.0, None, 20.0]) == {"p50": 20.0, "max": 30.0, "samples": 3, "failed": 1}
    assert links.summarize([None]) is None


def test_the_probe_module_prints_json(capsys):
    assert links.main(["--probe", "127.0.0.1", "9", "1"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_a_pair_reads_as_set_and_measured():
    pair = {"from": "region-1", "to": "province-a", "profile": LinkProfile(20, 2).as_dict(),
            "rtt_ms": {"p50": 41.3, "max": 44.0, "samples": 5, "failed": 0}}
    assert links.describe_pair(pair) == "region-1 → province-a: 20 ms ± 2 set, RTT 41.3 ms measured (max 44)"


# -- apply and release against a fake namespace -------------------------------------------------


class FakeDelayer:
    def __init__(self, log: list, queue: int) -> None:
        self.log, self.queue = log, queue
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        self.log.append(("stop", self.queue))


class FakeNamespace:
    """A Namespace (netns.Namespace protocol) answering like a kernel without netem."""

    def __init__(self, name: str, rtt: float) -> None:
        self.name, self.rtt = name, rtt
        self.log: list = []
        self.delayers: list[FakeDelayer] = []

    def run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        self.log.append(argv)
        if argv[:2] == ["tc", "qdisc"] and "netem" in argv and "parent" not in argv:
            return subprocess.CompletedProcess(argv, 2, "", "Error: Specified qdisc kind is unknown.")
        if "-D" in argv:   # no such rule (left): iptables exits 1
            return subprocess.CompletedProcess(argv, 1, "", "Bad rule (does a matching rule exist?)")
        if "--probe" in argv:
            return subprocess.CompletedProcess(argv, 0, json.dumps([self.rtt] * int(argv[-1])), "")
        return subprocess.CompletedProcess(argv, 0, "", "")

    def start_delayer(self, queue: int, delay_ms: float, jitter_ms: float, seed: int) -> FakeDelayer:
        self.log.append(("delayer", queue, delay_ms, jitter_ms))
        delayer = FakeDelayer(self.log, queue)
        self.delayers.append(delayer)
        return delayer


def test_apply_shapes_every_node_by_nfqueue_measures_each_zone_pair_and_release_stops_the_delayers():
    t = topology.parse({"zones": [{"name": "east", "tier": "root", "nodes": 2},
                                  {"name": "west", "tier": "root", "nodes": 1}],
                        "links": [{"between": ["east", "west"], "delay_ms": 30, "jitter_ms": 1}]}, "t.yaml")
    nodes = [Node(name=f"node{i}", index=i, container_id=str(i), ip=IPS[i]) for i in range(3)]
    spaces = [FakeNamespace(n.name, 61.0) for n in nodes]
    runtime = SimpleNamespace(namespace=lambda node: spaces[node.index], log_path=lambda node: "log")
    said: list[str] = []
    pack = SimpleNamespace(ports={"rpc": 1, "p2p": 2})
    ctx = SimpleNamespace(suite=SimpleNamespace(topology=t, chain=pack),
                          runtime=runtime, nodes=nodes, say=said.append, link_shaper=None, links=None,
                          warnings=[])

    async def run() -> dict:
        ctx.links = await links.apply(ctx)
        assert ctx.link_shaper.watcher is not None
        await links.release(ctx)
        return ctx.links

    applied = asyncio.run(run())
    assert applied["via"] == "nfqueue" and "no netem" in applied["method"]
    assert applied["netem_missing"] == "Error: Specified qdisc kind is unknown."
    assert applied["pairs"] == [{"from": "east", "to": "west", "nodes": ["node0", "node2"],
                                 "profile": {"delay_ms": 30.0, "jitter_ms": 1.0, "rate": None, "loss": 0.0},
                                 "expected_rtt_ms": 60.0,
                                 "rtt_ms": {"p50": 61.0, "max": 61.0, "samples": 5, "failed": 0}}]
    assert said[-1] == "  east → west: 30 ms ± 1 set, RTT 61 ms measured (max 61)"
    # node1 (east) -> node2 only; node2 (west) -> both east nodes; one queue each.
    assert applied["nodes"] == {"node0": {"peers": 1, "profiles": 1, "queues": [1000]},
                                "node1": {"peers": 1, "profiles": 1, "queues": [1000]},
                                "node2": {"peers": 2, "profiles": 1, "queues": [1000]}}
    # The delayer was started before its rule, and stopped at release.
    log = spaces[2].log
    started = log.index(("delayer", 1000, 30.0, 1.0))
    hooked = log.index(["iptables", "-w", "-t", "mangle", "-I", "OUTPUT", "-j", "bct-links"])
    assert started < hooked and log[-1] == ("stop", 1000)
    assert all(d.stopped for s in spaces for d in s.delayers) and ctx.link_shaper is None


def test_apply_without_netem_or_nfqueue_fails_saying_both():
    class Bare(FakeNamespace):
        def run(self, argv, check=True):
            if argv[0] == "iptables" and "NFQUEUE" in argv:
                return subprocess.CompletedProcess(argv, 1, "", "Extension NFQUEUE revision 0 not supported")
            return super().run(argv, check)
    with pytest.raises(InfraError, match="no netem qdisc .*NFQUEUE: Extension NFQUEUE"):
        links.choose_method(Bare("n", 1.0))


def test_a_recreated_node_is_shaped_again_but_not_after_release():
    t = topology.parse({"zones": [{"name": "east", "tier": "root", "nodes": 1},
                                  {"name": "west", "tier": "root", "nodes": 1}],
                        "links": [{"between": ["east", "west"], "delay_ms": 30}]}, "t.yaml")
    plan = links.plan(t, IPS)[0]
    shaper = links.Shaper(method=links.NFQUEUE, plans={0: plan})
    first, second = FakeNamespace("a", 1), FakeNamespace("b", 1)
    shaper.shape(plan, first)
    assert shaper.reshape(plan, second)
    assert first.delayers[0].stopped and not second.delayers[0].stopped
    # a retry in the same namespace first removes what the failed attempt left
    assert second.log.index(["iptables", "-w", "-t", "mangle", "-X", "bct-links"]) < \
        second.log.index(["iptables", "-w", "-t", "mangle", "-N", "bct-links"])
    shaper.stop()
    assert second.delayers[0].stopped and not shaper.reshape(plan, FakeNamespace("c", 1))
