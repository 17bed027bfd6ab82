"""The Swarm runtime's pure parts: the suite's `runtime:`/`swarm:` options, which faults
each runtime supports, placement constraints and the service spec of one node.

No engine here (unit-tested without Docker); harness/runtime/swarm.py sends what these
build. The spec is plain Engine API JSON (the dicts the docker SDK's types build), so a
test can read every field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import InputError

RUNTIMES = ("docker", "swarm")
PLACEMENTS = ("zones", "any")
FAULTS_VIA = ("auto", "agent")

# Which fault actions each runtime can apply. On Swarm a node is a service task: the task's
# container cannot be restarted, recreated or given a data disk or a libfaketime mount
# outside the orchestrator, so only what acts inside the running task is offered: its
# network namespace (through the host's tools or the per-host agent) and the freezer.
SUPPORTED_FAULTS: dict[str, frozenset[str]] = {
    "swarm": frozenset({"partition", "loss", "delay", "bandwidth", "pause"}),
}

ZONE_LABEL = "bctest.zone.{zone}"   # a swarm node label: `bctest.zone.<zone>=true`
CONFIG_TARGET_ROOT = "/bctest"


@dataclass(frozen=True)
class SwarmOptions:
    """The suite's `swarm:` section."""

    placement: str = "zones"    # zones: each node on a swarm node labelled with its zone; any: anywhere
    faults_via: str = "auto"    # auto: nsenter for tasks on this host, the agent elsewhere; agent: always


def options(doc: dict[str, Any], file: str) -> tuple[str, SwarmOptions]:
    """(runtime, SwarmOptions) from a suite document; refuses the faults the runtime
    cannot apply, naming faults[i].action (InputError, exit 2)."""
    runtime = doc.get("runtime", "docker")
    if "swarm" in doc and runtime != "swarm":
        raise InputError(file, "swarm", "a `swarm:` section only with `runtime: swarm`")
    section = doc.get("swarm", {})
    chosen = SwarmOptions(placement=section.get("placement", "zones"),
                          faults_via=section.get("faults_via", "auto"))
    if runtime == "swarm" and "security" in doc:   # twins and per-container probes: one engine
        raise InputError(file, "security", "security probes need runtime: docker (they start twin "
                         "nodes and inspect containers on this engine; see docs/swarm.md)")
    supported = SUPPORTED_FAULTS.get(runtime)
    if supported is not None:
        for i, fault in enumerate(doc.get("faults", [])):
            action = fault.get("action")
            if action not in supported:
                raise InputError(file, f"faults[{i}].action", f"a fault the {runtime} runtime "
                                 f"supports ({', '.join(sorted(supported))}), got {action!r}: "
                                 "see docs/faults.md")
    return runtime, chosen


def zone_label(zone: str) -> str:
    return ZONE_LABEL.format(zone=zone)


def constraints(zone: str | None, placement: str) -> list[str]:
    """The placement constraints of a node in `zone` (none without a zone or with `any`)."""
    if zone is None or placement == "any":
        return []
    return [f"node.labels.{zone_label(zone)} == true"]


def missing_zones(zones: dict[int, str] | None, swarm_nodes: list[dict[str, Any]], placement: str
                  ) -> list[str]:
    """Zones no ready, active swarm node carries the label of (sorted)."""
    if not zones or placement == "any":
        return []
    labelled: set[str] = set()
    for entry in swarm_nodes:
        if (entry.get("Status") or {}).get("State") != "ready" or \
                (entry.get("Spec") or {}).get("Availability", "active") != "active":
            continue
        for key, value in ((entry.get("Spec") or {}).get("Labels") or {}).items():
            if key.startswith("bctest.zone.") and value == "true":
                labelled.add(key.removeprefix("bctest.zone."))
    return sorted(set(zones.values()) - labelled)


def label_commands(zones: list[str], swarm_nodes: list[dict[str, Any]]) -> list[str]:
    """What to run to give each zone a swarm node (the first ready one as the example)."""
    hostname = next(((n.get("Description") or {}).get("Hostname") for n in swarm_nodes
                     if (n.get("Status") or {}).get("State") == "ready"), "<node>")
    return [f"docker node update --label-add {zone_label(zone)}=true {hostname}" for zone in zones]


def service_name(run_id: str, node: str) -> str:
    return f"bctest-{run_id}-{node}"


def config_name(run_id: str, node: str, relative: str, content: bytes) -> str:
    """A swarm config's name: unique per run, node and file; configs are immutable, and a
    name holds [a-zA-Z0-9-_.] only (64 characters at most)."""
    import hashlib
    digest = hashlib.sha256(f"{node}/{relative}".encode() + b"\0" + content).hexdigest()[:12]
    return f"bctest-{run_id}-{node}-{digest}"[:64]


@dataclass(frozen=True)
class NodeSpec:
    """What one node's service is made of (everything DockerRuntime gives its container)."""

    run_id: str
    name: str
    image: str
    command: list[str] | str | None
    environment: dict[str, str]
    labels: dict[str, str]
    network: str
    published: dict[int, int]             # container port -> host port (mode=host)
    cap_add: list[str]
    limits: dict[str, int]                # docker.node_limits(): nano_cpus, mem_limit, pids_limit
    configs: list[tuple[str, str, str]]   # (config id, config name, path under /bctest)
    zone: str | None = None
    placement: str = "zones"


def service_spec(spec: NodeSpec) -> dict[str, Any]:
    """The Engine API body of `POST /services/create` for one node (API 1.41)."""
    container: dict[str, Any] = {
        "Image": spec.image,
        "Hostname": spec.name,
        "Env": [f"{k}={v}" for k, v in sorted(spec.environment.items())],
        "Labels": {**spec.labels, "bctest.node": spec.name},
        "CapabilityDrop": ["ALL"],
        # No IPv6 inside the node: link-local v6 between nodes would go around the IPv4
        # rules of a partition (as in DockerRuntime).
        "Sysctls": {"net.ipv6.conf.all.disable_ipv6": "1"},
        "Configs": [{"File": {"Name": f"{CONFIG_TARGET_ROOT}/{path}", "UID": "0", "GID": "0",
                              "Mode": 0o444},
                     "ConfigID": config_id, "ConfigName": name}
                    for config_id, name, path in spec.configs],
        # no-new-privileges: the Engine API has no service field for it before 1.46; the
        # run warns (SwarmRuntime.unguarded).
    }
    if spec.command:   # the pack's command: arguments to the image's entrypoint (Args, not Command)
        container["Args"] = spec.command.split() if isinstance(spec.command, str) else list(spec.command)
    if spec.cap_add:
        container["CapabilityAdd"] = list(spec.cap_add)
    limits = {"NanoCPUs": spec.limits["nano_cpus"], "MemoryBytes": spec.limits["mem_limit"],
              "Pids": spec.limits["pids_limit"]}
    task: dict[str, Any] = {
        "ContainerSpec": container,
        "Resources": {"Limits": limits},
        # A node that exits stays exited, as a container does: the judge must see it.
        "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
        "Networks": [{"Target": spec.network, "Aliases": [spec.name]}],
        # Capped logs: a node cannot fill a host's disk by logging.
        "LogDriver": {"Name": "json-file", "Options": {"max-size": "64m", "max-file": "2"}},
        "Placement": {"Constraints": constraints(spec.zone, spec.placement)},
    }
    return {
        "Name": service_name(spec.run_id, spec.name),
        "Labels": {**spec.labels, "bctest.node": spec.name},
        "TaskTemplate": task,
        "Mode": {"Replicated": {"Replicas": 1}},
        # mode=host: the routing mesh needs IPVS, which this kernel lacks; a host-mode port
        # is bound on every interface of the task's host (Swarm cannot bind 127.0.0.1 only).
        "EndpointSpec": {"Mode": "dnsrr", "Ports": [
            {"Protocol": "tcp", "TargetPort": inside, "PublishedPort": outside, "PublishMode": "host"}
            for inside, outside in sorted(spec.published.items())]},
    }
