"""The Swarm runtime's pure parts: suite options and refusals, placement, the node's
service spec, the agents' spec and the agent's refusals (fakes stand for the engine)."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import suite
from harness.errors import EXIT_INVALID_INPUT, InfraError, InputError
from harness.runtime import agent, swarm, swarmspec
from harness.runtime.swarmspec import NodeSpec, SwarmOptions

# ---------------------------------------------------------------- the suite


def _suite(tmp_path: Path, inputs, **extra) -> Path:
    doc = {**inputs.suite(), **extra}
    return inputs.make_suite(tmp_path, doc)


def test_runtime_defaults_to_docker(tmp_path, inputs):
    loaded = suite.load(_suite(tmp_path, inputs))
    assert loaded.runtime == "docker"
    assert loaded.swarm == SwarmOptions()


def test_swarm_options_load(tmp_path, inputs):
    loaded = suite.load(_suite(tmp_path, inputs, runtime="swarm",
                               swarm={"placement": "any", "faults_via": "agent"}))
    assert loaded.runtime == "swarm"
    assert loaded.swarm == SwarmOptions(placement="any", faults_via="agent")


@pytest.mark.parametrize("action", ["kill", "stop", "restart", "wipe", "disk", "skew"])
def test_swarm_refuses_faults_it_cannot_apply(tmp_path, inputs, action):
    fault = {"action": action, "at": 1, "duration": 2, **({"seconds": 30} if action == "skew" else {})}
    path = _suite(tmp_path, inputs, runtime="swarm",
                  faults=[{"action": "pause", "at": 1, "duration": 2}, fault])
    with pytest.raises(InputError) as info:
        suite.load(path)
    assert info.value.exit_code == EXIT_INVALID_INPUT
    assert info.value.field == "faults[1].action", str(info.value)
    assert "swarm" in str(info.value) and action in str(info.value)


def test_swarm_accepts_network_faults_and_pause(tmp_path, inputs):
    faults = [{"action": "partition", "at": 1, "duration": 2},
              {"action": "loss", "at": 4, "duration": 2, "probability": 0.1},
              {"action": "delay", "at": 7, "duration": 2, "delay_ms": 50},
              {"action": "bandwidth", "at": 10, "duration": 2, "rate": "1mbit"},
              {"action": "pause", "at": 13, "duration": 2}]
    loaded = suite.load(_suite(tmp_path, inputs, runtime="swarm", faults=faults))
    assert [f.action for f in loaded.faults] == ["partition", "loss", "delay", "bandwidth", "pause"]


def test_docker_runtime_keeps_every_fault(tmp_path, inputs):
    loaded = suite.load(_suite(tmp_path, inputs, faults=[{"action": "kill", "at": 1, "duration": 2}]))
    assert loaded.faults[0].action == "kill"


def test_swarm_section_without_swarm_runtime_is_refused(tmp_path, inputs):
    with pytest.raises(InputError) as info:
        suite.load(_suite(tmp_path, inputs, swarm={"placement": "any"}))
    assert info.value.field == "swarm"


def test_swarm_refuses_security_probes(tmp_path, inputs):
    with pytest.raises(InputError) as info:
        suite.load(_suite(tmp_path, inputs, runtime="swarm", security={"budget": 60}))
    assert info.value.field == "security" and "runtime: docker" in str(info.value)


def test_unknown_placement_is_refused_by_the_schema(tmp_path, inputs):
    with pytest.raises(InputError) as info:
        suite.load(_suite(tmp_path, inputs, runtime="swarm", swarm={"placement": "everywhere"}))
    assert "placement" in str(info.value)


# ---------------------------------------------------------------- placement


def _swarm_node(hostname: str, labels: dict[str, str], state: str = "ready",
                availability: str = "active") -> dict:
    return {"ID": f"id-{hostname}", "Description": {"Hostname": hostname},
            "Status": {"State": state, "Addr": "10.1.1.1"},
            "Spec": {"Labels": labels, "Availability": availability}}


def test_constraints_by_zone_and_placement():
    assert swarmspec.constraints("region-1", "zones") == ["node.labels.bctest.zone.region-1 == true"]
    assert swarmspec.constraints("region-1", "any") == []
    assert swarmspec.constraints(None, "zones") == []


def test_missing_zones_counts_only_ready_active_labelled_nodes():
    nodes = [_swarm_node("a", {"bctest.zone.p1": "true"}),
             _swarm_node("b", {"bctest.zone.p2": "true"}, state="down"),
             _swarm_node("c", {"bctest.zone.p3": "true"}, availability="drain"),
             _swarm_node("d", {"bctest.zone.p4": "false"})]
    zones = {0: "p1", 1: "p2", 2: "p3", 3: "p4", 4: "p1"}
    assert swarmspec.missing_zones(zones, nodes, "zones") == ["p2", "p3", "p4"]
    assert swarmspec.missing_zones(zones, nodes, "any") == []
    assert swarmspec.missing_zones(None, nodes, "zones") == []
    assert swarmspec.label_commands(["p2"], nodes) == \
        ["docker node update --label-add bctest.zone.p2=true a"]


class _FakeEngine:
    """The parts of a docker client the runtime reads before it creates anything."""

    def __init__(self, swarm_state: dict, nodes: list[dict]):
        self._swarm = swarm_state
        self.api = SimpleNamespace(nodes=lambda: nodes)
        self.networks = SimpleNamespace(create=self._refuse)

    def info(self) -> dict:
        return {"Swarm": self._swarm}

    @staticmethod
    def _refuse(*args, **kwargs):
        raise AssertionError("nothing may be created after a refusal")


MANAGER = {"LocalNodeState": "active", "ControlAvailable": True, "NodeID": "id-a"}


@pytest.mark.parametrize("state, words", [
    ({"LocalNodeState": "inactive"}, ["docker swarm init --advertise-addr 127.0.0.1"]),
    ({"LocalNodeState": "active", "ControlAvailable": False}, ["manager", "docker node promote"]),
])
def test_preflight_says_what_to_run(state, words):
    with pytest.raises(InfraError) as info:
        swarm.preflight(_FakeEngine(state, []))
    assert info.value.exit_code == 3
    for word in words:
        assert word in str(info.value)


def test_start_refuses_a_zone_without_a_labelled_node(tmp_path):
    runtime = swarm.SwarmRuntime(_FakeEngine(MANAGER, [_swarm_node("a", {"bctest.zone.p1": "true"})]),
                                 "r1", tmp_path)
    pack = SimpleNamespace(ports={"rpc": 1}, resources={}, capabilities=[], command=None, chain_id=1)
    with pytest.raises(InfraError) as info:
        runtime.start(pack, "img", 2, {}, {}, zones={0: "p1", 1: "region-9"})
    text = str(info.value)
    assert "region-9" in text and "p1" not in text.split("run")[0]
    assert "docker node update --label-add bctest.zone.region-9=true a" in text
    assert "placement: any" in text


def test_start_refuses_data_disks_and_binds(tmp_path):
    from harness.faults.kinds.base import ContainerOptions
    runtime = swarm.SwarmRuntime(_FakeEngine(MANAGER, []), "r1", tmp_path)
    pack = SimpleNamespace(ports={}, resources={}, capabilities=[], command=None, chain_id=1)
    with pytest.raises(InfraError, match="disk"):
        runtime.start(pack, "img", 1, {}, {}, disks={0: 1 << 20})
    with pytest.raises(InfraError, match="bind"):
        runtime.start(pack, "img", 1, {}, {}, extras={0: ContainerOptions(binds={"/a": "/b"})})


def test_twins_and_recreate_are_not_supported(tmp_path):
    runtime = swarm.SwarmRuntime(_FakeEngine(MANAGER, []), "r1", tmp_path)
    node = swarm.Node(name="node0", index=0, container_id="c")
    for call in (lambda: runtime.recreate(node), lambda: runtime.start_twin(node, {}, "twin")):
        with pytest.raises(InfraError, match="not supported on swarm"):
            call()


# ---------------------------------------------------------------- the node's service


def _spec(**changes) -> dict:
    base = dict(run_id="r1", name="node2", image="sha256:abc", command="run --fast",
                environment={"BCTEST_NODE_INDEX": "2", "BCTEST_ZONE": "p1"},
                labels={"bctest.run": "r1", "bctest.pid": "7"}, network="bctest-r1",
                published={26657: 40001, 26656: 40002}, cap_add=["NET_BIND_SERVICE"],
                limits={"nano_cpus": 500_000_000, "mem_limit": 512 << 20, "pids_limit": 256},
                configs=[("cid1", "bctest-r1-node2-x", "config/genesis.json")], zone="p1")
    base.update(changes)
    return swarmspec.service_spec(NodeSpec(**base))


def test_service_spec_carries_what_a_node_container_has():
    body = _spec()
    task, container = body["TaskTemplate"], body["TaskTemplate"]["ContainerSpec"]
    assert body["Name"] == "bctest-r1-node2"
    assert body["Labels"] == container["Labels"] == {"bctest.run": "r1", "bctest.pid": "7",
                                                     "bctest.node": "node2"}
    assert body["Mode"] == {"Replicated": {"Replicas": 1}}
    assert container["Image"] == "sha256:abc"
    assert container["Args"] == ["run", "--fast"] and "Command" not in container
    assert container["Hostname"] == "node2"
    assert "BCTEST_ZONE=p1" in container["Env"] and "BCTEST_NODE_INDEX=2" in container["Env"]
    assert container["CapabilityDrop"] == ["ALL"]
    assert container["CapabilityAdd"] == ["NET_BIND_SERVICE"]
    assert container["Sysctls"] == {"net.ipv6.conf.all.disable_ipv6": "1"}
    assert container["Configs"] == [{"File": {"Name": "/bctest/config/genesis.json", "UID": "0",
                                              "GID": "0", "Mode": 0o444},
                                     "ConfigID": "cid1", "ConfigName": "bctest-r1-node2-x"}]
    assert task["RestartPolicy"]["Condition"] == "none"
    assert task["Networks"] == [{"Target": "bctest-r1", "Aliases": ["node2"]}]
    assert task["Resources"]["Limits"] == {"NanoCPUs": 500_000_000, "MemoryBytes": 512 << 20,
                                           "Pids": 256}
    assert task["LogDriver"] == {"Name": "json-file", "Options": {"max-size": "64m", "max-file": "2"}}
    assert task["Placement"]["Constraints"] == ["node.labels.bctest.zone.p1 == true"]
    # dnsrr: the node alias resolves to the task itself (a VIP needs IPVS); ports mode=host
    assert body["EndpointSpec"] == {"Mode": "dnsrr", "Ports": [
        {"Protocol": "tcp", "TargetPort": 26656, "PublishedPort": 40002, "PublishMode": "host"},
        {"Protocol": "tcp", "TargetPort": 26657, "PublishedPort": 40001, "PublishMode": "host"}]}


def test_service_spec_without_command_caps_or_zone():
    body = _spec(command=None, cap_add=[], zone=None)
    container = body["TaskTemplate"]["ContainerSpec"]
    assert "Args" not in container and "CapabilityAdd" not in container
    assert body["TaskTemplate"]["Placement"]["Constraints"] == []
    assert _spec(placement="any")["TaskTemplate"]["Placement"]["Constraints"] == []


def test_config_names_are_unique_short_and_valid():
    names = {swarmspec.config_name("20261130-041200-abcdef", f"node{n}", rel, body)
             for n in range(12) for rel, body in (("a", b"1"), ("a", b"2"), ("b/c", b"1"))}
    assert len(names) == 36
    assert all(len(n) <= 64 and all(c.isalnum() or c in "-_." for c in n) for n in names)


def test_overlay_address_reads_the_run_network():
    task = {"ID": "t", "NetworksAttachments": [
        {"Network": {"Spec": {"Name": "ingress"}}, "Addresses": ["10.0.0.5/24"]},
        {"Network": {"Spec": {"Name": "bctest-r1"}}, "Addresses": ["10.0.1.7/24"]}]}
    assert swarm.overlay_address(task, "bctest-r1") == "10.0.1.7"
    with pytest.raises(InfraError):
        swarm.overlay_address(task, "bctest-r2")


# ---------------------------------------------------------------- the agents


def test_agent_service_is_global_on_the_run_hosts_with_socket_and_token():
    body = agent.agent_spec("r1", {"bctest.run": "r1"}, "sha256:h", 4100, ("sid", "bctest-r1-agent-token"),
                            ["other2", "other1"])
    task, container = body["TaskTemplate"], body["TaskTemplate"]["ContainerSpec"]
    assert body["Mode"] == {"Global": {}}
    assert task["Placement"]["Constraints"] == ["node.id != other1", "node.id != other2"]
    assert task["Networks"] == [{"Target": "host"}]
    assert container["Labels"]["bctest.run"] == "r1" and body["Labels"]["bctest.agent"] == "true"
    assert container["Mounts"][0]["Source"] == "/var/run/docker.sock"
    assert container["Secrets"][0]["SecretID"] == "sid"
    assert "BCTEST_AGENT_PORT=4100" in container["Env"]
    assert container["Command"] == ["python", "-m", "harness.runtime.agent"]


class _FakeHelperEngine:
    """Containers by id: node containers of run r1 and r2; exec answers scripted."""

    def __init__(self):
        self.execs: list[list[str]] = []
        nodes = {"aaa": {"bctest.run": "r1", "bctest.node": "node0"},
                 "bbb": {"bctest.run": "r2", "bctest.node": "node0"},
                 "ccc": {"bctest.run": "r1"}}
        helper = SimpleNamespace(id="helper", status="running", reload=lambda: None)
        self.containers = SimpleNamespace(
            get=lambda cid: self._get(nodes, cid),
            run=lambda *a, **k: helper)
        self.api = SimpleNamespace(
            exec_create=lambda cid, argv, **k: self.execs.append(argv) or {"Id": "e"},
            exec_start=lambda eid, **k: (b"ok\n", b""),
            exec_inspect=lambda eid: {"ExitCode": 0})

    @staticmethod
    def _get(nodes, cid):
        import docker.errors
        if cid not in nodes:
            raise docker.errors.NotFound("no such container")
        return SimpleNamespace(id=cid, labels=nodes[cid])


@pytest.fixture
def agent_server():
    engine = _FakeHelperEngine()
    server = agent.Server(engine, "r1", "sha256:h", {"bctest.run": "r1"})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), agent.handler(server, "secret-token"))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield engine, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _post(url: str, body: dict, token: str = "secret-token") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={agent.TOKEN_HEADER: token})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_agent_runs_tools_in_its_runs_nodes_only(agent_server):
    engine, url = agent_server
    status, got = _post(f"{url}/run", {"container": "aaa", "argv": ["iptables", "-w", "-S"]})
    assert (status, got["returncode"], got["stdout"]) == (200, 0, "ok\n")
    assert engine.execs == [["iptables", "-w", "-S"]]
    assert _post(f"{url}/run", {"container": "aaa", "argv": ["iptables"]}, token="wrong")[0] == 403
    assert _post(f"{url}/run", {"container": "aaa", "argv": ["sh", "-c", "id"]})[0] == 403
    assert _post(f"{url}/run", {"container": "bbb", "argv": ["tc", "qdisc"]})[0] == 403   # other run
    assert _post(f"{url}/run", {"container": "ccc", "argv": ["tc", "qdisc"]})[0] == 403   # not a node
    assert _post(f"{url}/run", {"container": "zzz", "argv": ["tc", "qdisc"]})[0] == 400   # absent
    assert _post(f"{url}/run", {"container": "../x", "argv": ["tc"]})[0] == 403
    assert len(engine.execs) == 1
    # the links' RTT probe, exactly, and nothing dressed up as it
    probe = ["python3", "-m", "harness.faults.links", "--probe", "10.0.1.5", "26656", "5"]
    assert _post(f"{url}/run", {"container": "aaa", "argv": probe})[0] == 200
    for bad in (probe[:4] + ["10.0.1.5;id", "26656", "5"], probe[:4] + ["10.0.1.5", "26656", "5", "-x"],
                ["python3", "-m", "harness.faults.nfqueue", "--probe", "10.0.1.5", "1", "5"],
                probe[:4] + ["10.0.1.5", "0", "5"], probe[:4] + ["10.0.1.5", "26656", "1000"]):
        assert _post(f"{url}/run", {"container": "aaa", "argv": bad})[0] == 403, bad
    assert engine.execs[-1] == probe and len(engine.execs) == 2


def test_agent_namespace_speaks_the_netns_protocol(agent_server):
    _engine, url = agent_server
    namespace = agent.AgentClient(url, "secret-token").namespace("aaa")
    done = namespace.run(["tc", "qdisc", "show"])
    assert (done.returncode, done.stdout, done.args) == (0, "ok\n", ["tc", "qdisc", "show"])
    with pytest.raises(InfraError, match="HTTP 403"):
        agent.AgentClient(url, "bad").namespace("aaa").run(["tc"])
