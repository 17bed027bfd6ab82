"""The Swarm runtime on a one-host swarm: a real CometBFT run as swarm services with a
partition made through the per-host agent, zone placement on a labelled swarm node, and
`bctest clean` finding what a dead swarm run left. The swarm is made for the tests only if
the engine is in none, and left as found (with the node labels the tests added removed).
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

import docker.errors
import pytest

from harness import __version__, adapters, chainpack
from harness.errors import InfraError
from harness.runtime.docker import leftover_runs, remove_run_objects
from harness.runtime.swarm import SwarmRuntime
from harness.runtime.swarmspec import SwarmOptions

from .conftest import ROOT, bctest, results

HARNESS_IMAGE = f"bctest/harness:{__version__}"
ZONE = "bctest-ci"


@pytest.fixture(scope="module")
def swarm(docker_client):
    """The engine as a swarm manager: `docker swarm init --advertise-addr 127.0.0.1` only if it
    is in no swarm, `docker swarm leave --force` afterwards only if this fixture made it."""
    state = (docker_client.info().get("Swarm") or {})
    # The swarm makes docker_gwbridge (host-mode ports) and keeps it after leaving: a
    # swarm made here takes it away again if it was not there before.
    gwbridge = bool(docker_client.networks.list(names=["docker_gwbridge"]))
    made = False
    if state.get("LocalNodeState") == "inactive":
        try:
            docker_client.swarm.init(advertise_addr="127.0.0.1")
        except docker.errors.APIError as exc:
            pytest.skip(f"cannot make a one-host swarm here: {exc}")
        made = True
    elif state.get("LocalNodeState") != "active" or not state.get("ControlAvailable"):
        pytest.skip(f"the engine is in a swarm as {state.get('LocalNodeState')} and not a manager: "
                    "the Swarm tests need a manager")
    yield docker_client
    if made:
        docker_client.swarm.leave(force=True)
        for network in ([] if gwbridge else docker_client.networks.list(names=["docker_gwbridge"])):
            network.remove()


@pytest.fixture(scope="module")
def harness_image(docker_client):
    """The agent's image (with iptables and iproute2): built if this engine has none."""
    from harness.runtime.images import SOURCE_LABEL, source_digest
    try:
        current = (docker_client.images.get(HARNESS_IMAGE).labels or {}).get(SOURCE_LABEL) == source_digest()
    except docker.errors.ImageNotFound:
        current = False
    if not current:   # absent, or built from other code than this checkout's
        built = bctest("images", "harness", timeout=900)
        assert built.returncode == 0, built.stdout + built.stderr
    probe = docker_client.containers.run(HARNESS_IMAGE, ["-c", "command -v iptables && command -v tc"],
                                         entrypoint="sh", remove=True).decode()
    assert "iptables" in probe and "tc" in probe, f"{HARNESS_IMAGE} lacks iptables/tc: rebuild it"
    return HARNESS_IMAGE


def swarm_objects(client, run_id: str) -> list[str]:
    label = {"label": f"bctest.run={run_id}"}
    return ([f"service {s.name}" for s in client.services.list(filters=label)]
            + [f"config {c.name}" for c in client.configs.list(filters=label)]
            + [f"secret {s.name}" for s in client.secrets.list(filters=label)]
            + [f"network {n.name}" for n in client.networks.list(filters=label)]
            + [f"container {c.name}" for c in client.containers.list(all=True, filters=label)])


@pytest.mark.long   # CI runs the three-tier suite on swarm below: agent, partition and links
def test_cometbft_on_swarm_with_a_partition_through_the_agent(swarm, cometbft_image, harness_image,
                                                              tmp_path):
    run_dir = tmp_path / "run"
    done = bctest("run", str(ROOT / "suites" / "swarm" / "cometbft-partition.yaml"), "--out",
                  str(run_dir), timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    got = results(run_dir)
    measure = got["phases"]["measure"]
    assert measure["submitted"] > 500 and measure["committed"] == measure["submitted"]
    [fault] = got["faults"]
    assert (fault["action"], fault["status"], fault["nodes"]) == ("partition", "healed", ["node3"])
    assert {c["id"]: c["verdict"] for c in got["checkers"]} == dict.fromkeys(
        ["causality", "safety", "durability", "convergence"], "pass")
    assert any("docker_gwbridge" in w for w in got["warnings"])   # Swarm binds every interface
    # The partition's rules went through the agent (faults_via: agent), not nsenter.
    agent_log = (run_dir / "logs" / f"bctest-{got['run_id']}-agent.log").read_text()
    assert '"POST /run HTTP/1.1" 200' in agent_log, agent_log[-2000:]
    for name in ("node0", "node3"):
        assert "bctest-entrypoint: node" in (run_dir / "logs" / f"{name}.log").read_text()
    assert swarm_objects(swarm, got["run_id"]) == []


SOVEREIGN_ZONES = ("province-a", "province-b", "national", "region-1", "region-2", "region-3", "region-4")


def test_the_three_tier_suite_on_swarm_placed_by_zone_through_the_agent(swarm, cometbft_image,
                                                                        harness_image, tmp_path):
    """suites/topology/sovereign-3tier.yaml with `runtime: swarm`: 9 services placed by their
    zones' labels, the links shaped and measured and the region cut made through the agent,
    every structure check passing, and nothing left; the node's labels restored."""
    import yaml
    doc = yaml.safe_load((ROOT / "suites" / "topology" / "sovereign-3tier.yaml").read_text())
    doc.update(name="topology-sovereign-3tier-swarm", runtime="swarm", case="topology-sovereign-3tier",
               swarm={"placement": "zones", "faults_via": "agent"})   # evidence for the same requirements
    doc["load"]["duration"] = 40   # the cut at 30–45 s would outlast a shorter load
    doc["faults"][0].update(at=15, duration=10)
    suite = tmp_path / "sovereign-swarm.yaml"
    suite.write_text(yaml.safe_dump(doc, sort_keys=False))
    me = swarm.nodes.get(swarm.info()["Swarm"]["NodeID"])
    before = dict(me.attrs["Spec"].get("Labels") or {})
    me.update({**me.attrs["Spec"], "Labels": {**before, **{f"bctest.zone.{z}": "true"
                                                           for z in SOVEREIGN_ZONES}}})
    try:
        run_dir = tmp_path / "run"
        done = bctest("run", str(suite), "--out", str(run_dir), timeout=900)
    finally:
        me.reload()
        me.update({**me.attrs["Spec"], "Labels": before})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    got = results(run_dir)
    assert {c["id"]: c["verdict"] for c in got["checkers"]} == dict.fromkeys(
        ["causality", "safety", "durability", "convergence", "supervision", "freshness"], "pass")
    measure = got["phases"]["measure"]
    assert measure["committed"] == measure["submitted"] == 1600
    applied = got["topology"]["links_applied"]
    for pair in applied["pairs"]:   # measured from inside the task containers, via the agent
        assert pair["rtt_ms"] is not None, pair
        assert pair["expected_rtt_ms"] - 5 <= pair["rtt_ms"]["p50"] <= pair["expected_rtt_ms"] + 40, pair
    [cut] = got["faults"]
    assert (cut["nodes"], cut["status"]) == (["node6"], "healed")
    agent_log = (run_dir / "logs" / f"bctest-{got['run_id']}-agent.log").read_text()
    assert "POST /delayer/start" in agent_log and '"POST /run HTTP/1.1" 200' in agent_log
    assert [(s["id"], s["verdict"]) for s in got["standards"]] == [("bctest-topology", "pass")]
    assert swarm_objects(swarm, got["run_id"]) == []
    me.reload()
    assert (me.attrs["Spec"].get("Labels") or {}) == before


def test_zone_placement_on_a_labelled_swarm_node(swarm, cometbft_image, tmp_path):
    """A zone with no labelled node is refused with the command to run; once the node
    carries the label the task runs there under the constraint. The label is removed."""
    pack = chainpack.load(ROOT / "chains" / "cometbft")
    me = swarm.nodes.get(swarm.info()["Swarm"]["NodeID"])
    runtime = SwarmRuntime(swarm, f"zone-{os.getpid()}", tmp_path / "logs", SwarmOptions())
    with pytest.raises(InfraError) as info:
        runtime.start(pack, cometbft_image, 1, {}, {}, zones={0: ZONE})
    assert f"docker node update --label-add bctest.zone.{ZONE}=true" in str(info.value)
    assert swarm_objects(swarm, runtime.run_id) == []   # refused before anything was made
    spec = me.attrs["Spec"]
    added = f"bctest.zone.{ZONE}" not in (spec.get("Labels") or {})
    me.update({**spec, "Labels": {**(spec.get("Labels") or {}), f"bctest.zone.{ZONE}": "true"}})
    adapter = adapters.adapter_class(pack.family, str(pack.manifest))(pack, pack.params, 1, 1, 4)
    try:
        nodes = runtime.start(pack, cometbft_image, 1, adapter.node_files(), pack.params,
                              zones={0: ZONE})
        service = swarm.services.get(f"bctest-{runtime.run_id}-node0")
        assert service.attrs["Spec"]["TaskTemplate"]["Placement"]["Constraints"] == \
            [f"node.labels.bctest.zone.{ZONE} == true"]
        assert runtime.is_local(nodes[0]) and runtime.pid(nodes[0]) > 0
        assert nodes[0].ip and nodes[0].host_ports["rpc"]
        container = swarm.containers.get(nodes[0].container_id)
        assert container.labels["bctest.node"] == "node0"
        assert container.attrs["HostConfig"]["PidsLimit"] == 256
        assert container.attrs["HostConfig"]["CapDrop"] == ["ALL"]
    finally:
        runtime.teardown()
        if added:
            me.reload()
            spec = me.attrs["Spec"]
            me.update({**spec, "Labels": {k: v for k, v in (spec.get("Labels") or {}).items()
                                          if k != f"bctest.zone.{ZONE}"}})
    assert swarm_objects(swarm, runtime.run_id) == []
    assert (tmp_path / "logs" / "node0.log").exists()


def test_clean_removes_what_a_dead_swarm_run_left(swarm, harness_image):
    run_id = f"deadswarm-{os.getpid()}"
    labels = {"bctest.run": run_id, "bctest.pid": "999999999", "bctest.host": socket.gethostname(),
              "bctest.pidns": os.readlink("/proc/self/ns/pid")}
    swarm.configs.create(name=f"bctest-{run_id}-c", data=b"x", labels=labels)
    swarm.secrets.create(name=f"bctest-{run_id}-s", data=b"x", labels=labels)
    swarm.networks.create(f"bctest-{run_id}", driver="overlay", attachable=True, labels=labels)
    swarm.services.create(harness_image, ["sleep", "300"], name=f"bctest-{run_id}-node0",
                          labels=labels, container_labels=labels,
                          restart_policy=docker.types.RestartPolicy(condition="none"))
    assert run_id in leftover_runs(swarm)
    removed = remove_run_objects(swarm, run_id)
    assert removed.services == [f"bctest-{run_id}-node0"]
    assert removed.configs == [f"bctest-{run_id}-c"] and removed.secrets == [f"bctest-{run_id}-s"]
    assert swarm_objects(swarm, run_id) == []
    assert run_id not in leftover_runs(swarm)


def test_sigkilled_swarm_run_is_removed_by_clean(swarm, cometbft_image, harness_image, tmp_path):
    """The harness SIGKILLed mid-fault (the agent and its helper up): `bctest clean` removes
    the services, their containers, the helper, the configs, the secret and the network."""
    harness = subprocess.Popen([sys.executable, "-m", "harness.cli", "run",
                                str(ROOT / "suites" / "swarm" / "cometbft-partition.yaml"), "--out",
                                str(tmp_path / "run")], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    seen, deadline = "", time.monotonic() + 150
    try:
        while "fault cut-one: partition node3 at" not in seen and time.monotonic() < deadline:
            readable, _, _ = select.select([harness.stdout], [], [], 1.0)
            line = harness.stdout.readline() if readable else ""
            if readable and not line:
                break
            seen += line
        found = re.search(r"run (\w+):", seen)
        assert found and "fault cut-one: partition" in seen, seen[-3000:]
        run_id = found.group(1)
        helpers = swarm.containers.list(filters={"label": [f"bctest.run={run_id}", "bctest.agent-helper"]})
        assert helpers, "the partition went through no agent helper"
        kinds = {o.split()[0] for o in swarm_objects(swarm, run_id)}
        assert kinds == {"service", "config", "secret", "network", "container"}, kinds
    finally:
        harness.send_signal(signal.SIGKILL)
        harness.wait(10)
    cleaned = bctest("clean", timeout=120)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert re.search(rf"run {run_id}: removed 5 services .*20 configs .*1 secret",
                     cleaned.stdout), cleaned.stdout
    assert swarm_objects(swarm, run_id) == []
