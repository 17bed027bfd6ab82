"""The Swarm runtime: one run's nodes as services of the swarm this engine manages.

Each node is a replicated service of one task (restart condition none: a node that exits
stays exited), on an attachable overlay network of the run, placed by zone onto swarm
nodes labelled `bctest.zone.<zone>=true`. Its /bctest files are swarm configs; its ports
are published mode=host on pinned ports (the routing mesh needs IPVS). Every object
carries bctest.run=<run id>; teardown() and `bctest clean` remove services, configs,
secrets, the network and the agents (harness/runtime/docker.py remove_run_objects).
The swarm itself and its node labels are left as found. See docs/swarm.md.

Network faults run in a task's namespace through nsenter when the task is on this host,
else (or with `swarm: {faults_via: agent}`) through the per-host agent
(harness/runtime/agent.py).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import docker.errors

from harness import __version__, lifetime
from harness.chainpack import ChainPack
from harness.errors import InfraError
from harness.model import Node
from harness.runtime import agent as agents
from harness.runtime import swarmspec
from harness.runtime.docker import (
    HOST_LABEL,
    OWNER_LABEL,
    PID_LABEL,
    PIDNS_LABEL,
    RUN_LABEL,
    _pid_namespace,
    free_ports,
    image_facts,
    node_limits,
    remove_run,
    write_log,
)
from harness.runtime.swarmspec import NodeSpec, SwarmOptions

if TYPE_CHECKING:
    from harness.faults.kinds.base import ContainerOptions

TASK_TIMEOUT = 120.0     # seconds for every node's task to be running
DONE_STATES = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}
INIT_HINT = "docker swarm init --advertise-addr 127.0.0.1"
AGENT_IMAGE = f"bctest/harness:{__version__}"


def preflight(client: docker.DockerClient) -> dict[str, Any]:
    """The engine must be an active swarm manager; its Swarm info."""
    try:
        info = client.info().get("Swarm") or {}
    except docker.errors.APIError as exc:
        raise InfraError(f"cannot read the engine's swarm state: {exc}") from None
    if info.get("LocalNodeState") != "active":
        raise InfraError(f"runtime: swarm needs this engine in a swarm (it is "
                         f"{info.get('LocalNodeState') or 'not'}); run `{INIT_HINT}` (one-host swarm) "
                         "or join it to yours; see docs/swarm.md")
    if not info.get("ControlAvailable"):
        raise InfraError("runtime: swarm needs this engine to be a swarm manager (it is a worker); "
                         "run bctest on a manager, or `docker node promote <this node>` there")
    return info


class SwarmRuntime:
    """Starts, inspects and removes the services of one run (DockerRuntime's interface)."""

    def __init__(self, client: docker.DockerClient, run_id: str, log_dir: Path,
                 options: SwarmOptions | None = None, netns: bool = False):
        """`netns`: the run will act in node namespaces (network faults, links): the agents
        start with the nodes where they are needed."""
        self.client = client
        self.run_id = run_id
        self.log_dir = log_dir
        self.options = options or SwarmOptions()
        self.needs_netns = netns
        self.labels = {RUN_LABEL: run_id, PID_LABEL: str(os.getpid()),
                       HOST_LABEL: socket.gethostname(), PIDNS_LABEL: _pid_namespace(),
                       OWNER_LABEL: lifetime.this_process().token()}
        self.network_name = f"bctest-{run_id}"
        self.nodes: list[Node] = []
        self.disks: dict[str, Any] = {}   # no data disks on swarm (the disk fault is refused)
        self.wipes: dict[str, int] = {}
        self.tasks: dict[str, dict[str, Any]] = {}   # node name -> its task (as last read)
        self.local_node_id = ""
        self.agents: agents.Agents | None = None
        # Why nodes could reach this host and beyond: said in the run's warnings.
        self.unguarded: str | None = (
            "Swarm tasks reach the host and the outside through docker_gwbridge (masquerading), "
            "their host-mode ports are bound on every interface of their host (Swarm cannot bind "
            "127.0.0.1 only), and services cannot set no-new-privileges before Engine API 1.46")

    def log_path(self, node: Node | str) -> Path:
        name = node.name if isinstance(node, Node) else node
        return self.log_dir / f"{name}.log"

    # -- start ------------------------------------------------------------------------------

    def start(self, pack: ChainPack, image: str, count: int, files: dict[int, dict[str, bytes]],
              params: dict[str, object], disks: dict[int, int] | None = None,
              extras: dict[int, ContainerOptions] | None = None,
              zones: dict[int, str] | None = None) -> list[Node]:
        """Create the overlay network, the configs and one service per node; wait until every
        task runs and read its container. `zones`: node index -> zone (placement)."""
        info = preflight(self.client)
        self.local_node_id = info.get("NodeID", "")
        if disks:
            raise InfraError("runtime: swarm has no size-limited data disks (the disk fault)")
        if any(extra.binds for extra in (extras or {}).values()):
            raise InfraError("runtime: swarm cannot bind host files into nodes (the skew fault)")
        swarm_nodes = self.client.api.nodes()
        missing = swarmspec.missing_zones(zones, swarm_nodes, self.options.placement)
        if missing:
            commands = "; ".join(swarmspec.label_commands(missing, swarm_nodes))
            raise InfraError(f"no ready swarm node is labelled for zone(s) {', '.join(missing)}: run "
                             f"`{commands}` (or `swarm: {{placement: any}}` on a one-host swarm)")
        self._create_network()
        names = [f"node{i}" for i in range(count)]
        env_common = {
            "BCTEST_NODE_COUNT": str(count),
            "BCTEST_PEERS": ",".join(names),
            "BCTEST_CHAIN_ID": str(pack.chain_id),
            "BCTEST_RUN_ID": self.run_id,
            **{f"BCTEST_PARAM_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
               for k, v in params.items()},
        }
        container_ports = sorted(set(pack.ports.values()))
        unused = free_ports(count * len(container_ports))   # free here; see docs/swarm.md
        for index, name in enumerate(names):
            published = {port: unused.pop() for port in container_ports}
            environment = {**env_common, "BCTEST_NODE_INDEX": str(index), "BCTEST_NODE_NAME": name,
                           **((extras or {}).get(index).environment if index in (extras or {}) else {})}
            spec = NodeSpec(run_id=self.run_id, name=name, image=image, command=pack.command,
                            environment=environment, labels=self.labels, network=self.network_name,
                            published=published, cap_add=list(pack.capabilities or []),
                            limits=node_limits(pack.resources),
                            configs=self._configs(name, files.get(index, {})),
                            zone=(zones or {}).get(index), placement=self.options.placement)
            body = swarmspec.service_spec(spec)
            try:
                self.client.api.create_service(
                    body["TaskTemplate"], name=body["Name"], labels=body["Labels"], mode=body["Mode"],
                    endpoint_spec=body["EndpointSpec"])
            except docker.errors.APIError as exc:
                raise InfraError(f"cannot create service {body['Name']}: {exc}") from None
            self.nodes.append(Node(name=name, index=index, container_id="",
                                   host_ports={pn: published[p] for pn, p in pack.ports.items()}))
        self._wait_tasks()
        if self.needs_netns:
            hosts = {task["NodeID"] for task in self.tasks.values()}
            if self.options.faults_via == "agent" or hosts - {self.local_node_id}:
                self.agents = agents.Agents.start(self.client, self.run_id, self.labels, hosts,
                                                  self.local_node_id, AGENT_IMAGE)
        return self.nodes

    def _create_network(self) -> None:
        try:
            self.client.networks.create(self.network_name, driver="overlay", attachable=True,
                                        labels=self.labels, check_duplicate=True)
        except docker.errors.APIError as exc:
            raise InfraError(f"cannot create overlay network {self.network_name}: {exc}") from None

    def _configs(self, node: str, files: dict[str, bytes]) -> list[tuple[str, str, str]]:
        """One labelled swarm config per file of the node: (id, name, path under /bctest)."""
        made = []
        for relative, content in sorted(files.items()):
            if not content:   # a swarm config cannot be empty: the file is absent (docs/swarm.md)
                continue
            name = swarmspec.config_name(self.run_id, node, relative, content)
            try:
                config = self.client.configs.create(name=name, data=content,
                                                    labels={**self.labels, "bctest.node": node})
            except docker.errors.APIError as exc:
                raise InfraError(f"cannot create swarm config for {node}'s {relative}: {exc}") from None
            made.append((config.id, name, relative))
        return made

    def _wait_tasks(self) -> None:
        """Every node's task running, then its container id, host and overlay address."""
        deadline = time.monotonic() + TASK_TIMEOUT
        pending = {node.name for node in self.nodes}
        while pending:
            for node in self.nodes:
                if node.name not in pending:
                    continue
                task = self._task(node.name)
                if task is None:
                    continue
                state = task["Status"]["State"]
                if state in DONE_STATES:
                    raise InfraError(f"{node.name}'s task {state}: "
                                     f"{task['Status'].get('Err') or task['Status'].get('Message')}; "
                                     f"its log: {self.log_path(node)}")
                if state == "running":
                    node.container_id = task["Status"]["ContainerStatus"]["ContainerID"]
                    node.ip = overlay_address(task, self.network_name)
                    if task.get("NodeID") != self.local_node_id:   # its ports are on its own host
                        node.host = self._host_address(task.get("NodeID", ""))
                    pending.discard(node.name)
            if pending and time.monotonic() > deadline:
                states = ", ".join(f"{n} {(self.tasks.get(n) or {}).get('Status', {}).get('State', 'none')}"
                                   for n in sorted(pending))
                raise InfraError(f"swarm tasks not running after {TASK_TIMEOUT:g} s ({states}); "
                                 "is the image on every host? see docs/swarm.md")
            if pending:
                time.sleep(0.5)

    def _host_address(self, node_id: str) -> str:
        """A swarm node's address (where its host-mode ports are): the test center's own host."""
        try:
            address = (self.client.api.inspect_node(node_id).get("Status") or {}).get("Addr") or ""
        except docker.errors.APIError as exc:
            raise InfraError(f"cannot read swarm node {node_id}: {exc}") from None
        if not address or address == "0.0.0.0":
            raise InfraError(f"swarm node {node_id} has no address to reach its published ports at")
        return address

    def _task(self, name: str) -> dict[str, Any] | None:
        """The node's newest task (a service of restart condition none has one)."""
        tasks = self.client.api.tasks(filters={"service": swarmspec.service_name(self.run_id, name)})
        if not tasks:
            return None
        task = max(tasks, key=lambda t: t.get("CreatedAt", ""))
        self.tasks[name] = task
        return task

    # -- what the phases and the faults ask -------------------------------------------------

    def is_local(self, node: Node) -> bool:
        task = self.tasks.get(node.name) or self._task(node.name) or {}
        return task.get("NodeID") == self.local_node_id

    def container(self, node: Node) -> Any:
        """The node's task container: on this engine, or through its host's agent (pause)."""
        if self.is_local(node) and not (self.agents and self.options.faults_via == "agent"):
            return self.client.containers.get(node.container_id)
        return self._agent(node).container(node.container_id)

    def pid(self, node: Node) -> int:
        """The task's main process id on this host (0 when not running)."""
        if not self.is_local(node):
            raise InfraError(f"{node.name} runs on another swarm node: its namespace is reached "
                             "through the agent (runtime.namespace), not a pid")
        try:
            return int(self.client.containers.get(node.container_id).attrs["State"].get("Pid") or 0)
        except docker.errors.NotFound:
            return 0

    def namespace(self, node: Node) -> int | agents.AgentNamespace | None:
        """The node's network namespace (harness.faults.netns): the local pid, or an
        agent-backed handle when the task is on another host (or the suite asks for the
        agent); None while the task is not running."""
        if self.is_local(node) and self.options.faults_via != "agent":
            return self.pid(node) or None
        if self.exit_status(node) is not None:
            return None
        return self._agent(node).namespace(node.container_id)

    def _agent(self, node: Node) -> agents.AgentClient:
        task = self.tasks.get(node.name) or {}
        if self.agents is None:
            raise InfraError(f"no agent runs for {node.name}'s host (the run did not expect "
                             "network faults)")
        return self.agents.for_host(task.get("NodeID", ""))

    def exit_status(self, node: Node) -> int | None:
        """The task's exit code once it has stopped, None while it runs."""
        task = self._task(node.name)
        if task is None:
            return -1
        if task["Status"]["State"] in DONE_STATES:
            return int((task["Status"].get("ContainerStatus") or {}).get("ExitCode", -1))
        return None

    def refresh_ports(self, node: Node, pack: ChainPack) -> None:
        """Ports are pinned in the service spec: nothing moves."""

    def recreate(self, node: Node) -> None:
        raise InfraError("recreating a node (the wipe fault) is not supported on swarm")

    def start_twin(self, node: Node, files: dict[str, bytes], name: str) -> Node:
        raise InfraError("a twin node (security probes) is not supported on swarm")

    def remove_twin(self, twin: Node) -> None:
        raise InfraError("a twin node (security probes) is not supported on swarm")

    def save_logs(self) -> None:
        """Every service's log (nodes and agents), through the swarm: from any host."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for service in self._services():
            labels = service.attrs.get("Spec", {}).get("Labels") or {}
            name = labels.get("bctest.node") or service.name
            write_log(self.log_path(name), lambda service=service: self.client.api.service_logs(
                service.id, stdout=True, stderr=True, timestamps=True, follow=False))

    def data_bytes(self) -> dict[str, int | None]:
        """The writable layer of each task container on this host; None for the others."""
        sizes: dict[str, int | None] = {node.name: None for node in self.nodes}
        listed = self.client.api.containers(all=True, size=True,
                                            filters={"label": f"{RUN_LABEL}={self.run_id}"})
        for entry in listed:
            name = (entry.get("Labels") or {}).get("bctest.node")
            if name in sizes:
                sizes[name] = entry.get("SizeRw")
        return sizes

    def image_digest(self, image: str) -> dict[str, object]:
        return image_facts(self.client, image)

    def _services(self) -> list[Any]:
        try:
            return self.client.services.list(filters={"label": f"{RUN_LABEL}={self.run_id}"})
        except docker.errors.APIError:
            return []

    def teardown(self) -> None:
        """Save the logs, close the agents (their helper containers), remove everything."""
        try:
            self.save_logs()
        finally:
            try:
                if self.agents is not None:
                    self.agents.close()
            finally:
                remove_run(self.client, self.run_id)


def overlay_address(task: dict[str, Any], network: str) -> str:
    """The task's address on the run's overlay network (without the prefix length)."""
    for attachment in task.get("NetworksAttachments") or []:
        if (attachment.get("Network") or {}).get("Spec", {}).get("Name") == network:
            for address in attachment.get("Addresses") or []:
                return str(ipaddress.ip_interface(address).ip)
    raise InfraError(f"task {task.get('ID', '?')} has no address on {network}")
