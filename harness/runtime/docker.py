"""The Docker runtime: one run's network and node containers in a real Docker Engine.

Every object carries the label bctest.run=<run id> and is removed by teardown();
`bctest clean` removes what runs that died without teardown left behind.
"""

from __future__ import annotations

import io
import ipaddress
import os
import socket
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import docker.types

from harness import lifetime
from harness.chainpack import ChainPack
from harness.errors import InfraError
from harness.model import Node  # noqa: F401  (re-exported: runtime callers name it here)
from harness.runtime import disks as data_disks
from harness.runtime import hostguard

if TYPE_CHECKING:
    from harness.faults.kinds.base import ContainerOptions

RUN_LABEL = "bctest.run"
PID_LABEL = "bctest.pid"
HOST_LABEL = "bctest.host"
PIDNS_LABEL = "bctest.pidns"
OWNER_LABEL = "bctest.owner"   # pid namespace, pid and start time of the harness (harness.lifetime)


def _pid_namespace() -> str:
    """Which PID namespace our pid label means something in (containers share hostnames)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "unknown"


def connect() -> docker.DockerClient:
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise InfraError(f"cannot reach the Docker Engine at {host}: {exc}. Start it "
                         "(e.g. `dockerd &`) or set DOCKER_HOST.") from None


def _tar_files(files: dict[str, bytes]) -> bytes:
    """A tar of the generated files, rooted at /bctest, world-readable for non-root images."""
    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        dirs = {"bctest"}
        for relative in files:
            parent = Path("bctest", relative).parent
            while str(parent) not in (".", ""):
                dirs.add(str(parent))
                parent = parent.parent
        for directory in sorted(dirs):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for relative, content in sorted(files.items()):
            info = tarfile.TarInfo(f"bctest/{relative}")
            info.size, info.mode, info.mtime = len(content), 0o644, now
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now. Pinned at create so a node restarted by a fault comes
    back on the same port (Docker picks a new ephemeral port at every start)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _memory_bytes(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    if text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


# The test center's ceilings for one node, whatever the pack asks (and its defaults when the
# pack asks nothing): a vendor image never gets the host's whole CPU, memory or pid space.
NODE_CEILING = {"cpus": float(os.cpu_count() or 1), "memory": 8 * 1024**3, "pids": 4096}
NODE_DEFAULT = {"cpus": 1.0, "memory": 2 * 1024**3, "pids": 1024}


def node_limits(resources: dict[str, Any]) -> dict[str, int]:
    """The container's cgroup limits: the pack's resources, defaulted, capped at the ceiling."""
    cpus = min(float(resources.get("cpus", NODE_DEFAULT["cpus"])), NODE_CEILING["cpus"])
    memory = min(_memory_bytes(resources["memory"]) if "memory" in resources else NODE_DEFAULT["memory"],
                 NODE_CEILING["memory"])
    pids = min(int(resources.get("pids", NODE_DEFAULT["pids"])), NODE_CEILING["pids"])
    return {"nano_cpus": int(cpus * 1e9), "mem_limit": memory, "pids_limit": pids}


# The run network: nodes reach each other; the harness reaches them through ports published
# on 127.0.0.1; no masquerading, so nothing a node sends leaves the machine. (An internal
# network would be stricter, but the engine publishes no ports from one.)
CONTAINED_NETWORK = {"com.docker.network.bridge.enable_ip_masquerade": "false"}


def write_log(path: Path, chunks: Callable[[], Iterable[bytes]]) -> None:
    """Stream a log to `path` (never whole into memory; the engine caps its size); an engine
    that cannot give it leaves the reason in the file instead."""
    try:
        with open(path, "wb") as out:
            for chunk in chunks():
                out.write(chunk)
    except docker.errors.APIError as exc:
        path.write_bytes(f"(log unavailable: {exc})\n".encode())


def _save_log(container: Any, path: Path) -> None:
    write_log(path, lambda: container.logs(stdout=True, stderr=True, timestamps=True, stream=True,
                                           follow=False))


def image_facts(client: docker.DockerClient, image: str) -> dict[str, object]:
    """The image the nodes ran, for the run header: its id, registry digests and tags."""
    found = client.images.get(image)
    return {"id": found.id, "repo_digests": found.attrs.get("RepoDigests") or [], "tags": found.tags}


class DockerRuntime:
    """Starts, inspects and removes the containers of one run."""

    def __init__(self, client: docker.DockerClient, run_id: str, log_dir: Path):
        self.client = client
        self.run_id = run_id
        self.log_dir = log_dir
        self.labels = {RUN_LABEL: run_id, PID_LABEL: str(os.getpid()),
                       HOST_LABEL: socket.gethostname(), PIDNS_LABEL: _pid_namespace(),
                       OWNER_LABEL: lifetime.this_process().token()}
        self.network_name = f"bctest-{run_id}"
        self.nodes: list[Node] = []
        self._network = None
        self._recipes: dict[str, tuple[dict[str, Any], dict[str, bytes]]] = {}   # node -> create args, files
        self.wipes: dict[str, int] = {}
        self.disks: dict[str, data_disks.DataDisk] = {}   # nodes with a size-limited data_dir
        self.unguarded: str | None = None   # why nodes could reach the host, if they could

    def log_path(self, node: Node | str) -> Path:
        name = node.name if isinstance(node, Node) else node
        return self.log_dir / f"{name}.log"

    def start(self, pack: ChainPack, image: str, count: int, files: dict[int, dict[str, bytes]],
              params: dict[str, object], disks: dict[int, int] | None = None,
              extras: dict[int, ContainerOptions] | None = None,
              zones: dict[int, str] | None = None) -> list[Node]:
        """Create the run network and `count` node containers, then start them all.
        `disks`: node index -> bytes of a size-limited filesystem at the pack's data_dir.
        `extras`: node index -> read-only binds and variables a fault kind (or the topology)
        needs from creation. `zones`: node index -> zone; one host holds every zone here
        (placement by zone is the Swarm runtime's)."""
        if disks and pack.data_dir:
            data_disks.preflight()
        addresses = self._create_network(count)
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
        resources = pack.resources
        unused_ports = free_ports(count * len(container_ports))  # all at once: no repeats
        created = []
        for index, name in enumerate(names):
            recipe = dict(
                image=image,
                command=pack.command,
                name=f"bctest-{self.run_id}-{name}",
                hostname=name,
                labels={**self.labels, "bctest.node": name},
                environment={**env_common, "BCTEST_NODE_INDEX": str(index),
                             "BCTEST_NODE_NAME": name},
                network=self.network_name,
                # Peers find each other by node name on the run network (BCTEST_PEERS).
                # A fixed address: a restarted node must be where its peers remember it.
                networking_config={self.network_name: self.client.api.create_endpoint_config(
                    aliases=[name], ipv4_address=addresses[index])},
                ports={f"{p}/tcp": ("127.0.0.1", unused_ports.pop())
                       for p in container_ports},
                cap_drop=["ALL"],
                # No IPv6 inside the node: link-local v6 between nodes would go around the
                # IPv4 rules of a partition (and the run network has no v6 of its own).
                sysctls={"net.ipv6.conf.all.disable_ipv6": "1"},
                cap_add=pack.capabilities or None,
                security_opt=["no-new-privileges"],
                **node_limits(resources),
                # Capped logs: a node cannot fill the host's disk (or our memory) by logging.
                log_config=docker.types.LogConfig(type="json-file",
                                                  config={"max-size": "64m", "max-file": "2"}),
                detach=True,
            )
            if pack.data_dir and index in (disks or {}):
                disk = self.disks[name] = data_disks.create(self.run_id, name, (disks or {})[index])
                recipe["mounts"] = [docker.types.Mount(target=pack.data_dir, source=str(disk.mountpoint),
                                                       type="bind")]
            extra = (extras or {}).get(index)
            if extra is not None:   # e.g. the skew fault's libfaketime: preloaded from the start
                recipe["mounts"] = [*recipe.get("mounts", []), *(
                    docker.types.Mount(target=inside, source=host, type="bind", read_only=True)
                    for host, inside in extra.binds.items())]
                recipe["environment"] = {**recipe["environment"], **extra.environment}
            self._recipes[name] = (recipe, files.get(index, {}))
            created.append((name, index, self._create(name)))
        for name, _index, container in created:
            try:
                container.start()
            except docker.errors.APIError as exc:
                raise InfraError(f"cannot start {name}: {exc}") from None
        for name, index, container in created:
            container.reload()
            bindings = container.attrs["NetworkSettings"]["Ports"] or {}
            host_ports = {}
            for port_name, port in pack.ports.items():
                bound = bindings.get(f"{port}/tcp") or []
                if bound:
                    host_ports[port_name] = int(bound[0]["HostPort"])
            self.nodes.append(Node(name=name, index=index, container_id=container.id,
                                   host_ports=host_ports, ip=addresses[index]))
        return self.nodes

    def _create(self, name: str):
        """The node's container, as the run first made it: same address, ports and files."""
        recipe, node_files = self._recipes[name]
        try:
            container = self.client.containers.create(**recipe)
        except docker.errors.APIError as exc:
            raise InfraError(f"cannot create container for {name}: {exc}") from None
        if node_files:
            container.put_archive("/", _tar_files(node_files))
        return container

    def recreate(self, node: Node) -> None:
        """Replace a node's container by a fresh one from the image (the `wipe` fault):
        everything the node wrote is gone; address, ports and the run's files are as at
        the start. The old container's log is kept beside the node's log."""
        old = self.container(node)
        self.wipes[node.name] = self.wipes.get(node.name, 0) + 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _save_log(old, self.log_dir / f"{node.name}.before-wipe-{self.wipes[node.name]}.log")
        old.remove(force=True, v=True)   # with its anonymous volumes: nothing of the old node stays
        if node.name in self.disks:
            data_disks.reformat(self.disks[node.name])
        container = self._create(node.name)
        try:
            container.start()
        except docker.errors.APIError as exc:
            raise InfraError(f"cannot start the recreated {node.name}: {exc}") from None
        node.container_id = container.id

    def start_twin(self, node: Node, files: dict[str, bytes], name: str) -> Node:
        """Start a second container for `node` (a security probe's Byzantine twin): the node's
        own recipe, so the same image, command, limits, capabilities and security options,
        on the run network at a free address, with the node's /bctest files overlaid by
        `files`, its rpc published on 127.0.0.1 and the run's labels (teardown and `bctest
        clean` remove it). No data disk or fault mount of the node's. The Node returned has
        the node's index; remove it with remove_twin()."""
        recipe, node_files = self._recipes[node.name]
        used = {n.ip for n in self.nodes}
        for other in self._containers():
            for endpoint in ((other.attrs.get("NetworkSettings") or {}).get("Networks") or {}).values():
                used.add(endpoint.get("IPAddress") or "")
        config = ((self._network.attrs.get("IPAM") or {}).get("Config") or [{}])[0] if self._network \
            else {}
        subnet = ipaddress.ip_network(config.get("Subnet", "0.0.0.0/32"))
        # From the top of the subnet down: nodes hold the bottom (and keep it across restarts).
        top = (str(subnet.broadcast_address - i) for i in range(1, subnet.num_addresses - 1))
        address = next((h for h in top if h not in used and h != config.get("Gateway")), None)
        if address is None:
            raise InfraError(f"network {self.network_name}: no free address for {name}")
        twin = {**recipe,
                "name": f"bctest-{self.run_id}-{name}", "hostname": name,
                "labels": {**self.labels, "bctest.node": name, "bctest.twin": node.name},
                "environment": {**{k: v for k, v in recipe["environment"].items()
                                   if k.startswith("BCTEST_")}, "BCTEST_NODE_NAME": name},
                "networking_config": {self.network_name: self.client.api.create_endpoint_config(
                    aliases=[name], ipv4_address=address)},
                "ports": {key: ("127.0.0.1", port) for key, port in
                          zip(recipe["ports"], free_ports(len(recipe["ports"])), strict=True)}}
        twin.pop("mounts", None)
        container = None
        try:
            container = self.client.containers.create(**twin)
            container.put_archive("/", _tar_files({**node_files, **files}))
            container.start()
            container.reload()
        except docker.errors.APIError as exc:
            if container is not None:
                container.remove(force=True, v=True)
            raise InfraError(f"cannot start {name}: {exc}") from None
        # The pack's port names: the node's published ports, matched to the recipe's.
        inside = {host: key for key, (_ip, host) in recipe["ports"].items()}
        bindings = container.attrs["NetworkSettings"]["Ports"] or {}
        host_ports = {port_name: int(bindings[inside[port]][0]["HostPort"])
                      for port_name, port in node.host_ports.items()
                      if port in inside and bindings.get(inside[port])}
        return Node(name=name, index=node.index, container_id=container.id, host_ports=host_ports,
                    ip=address)

    def remove_twin(self, twin: Node) -> None:
        """Save a twin's log beside the nodes' and remove its container (gone already: fine)."""
        try:
            container = self.client.containers.get(twin.container_id)
        except docker.errors.NotFound:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _save_log(container, self.log_path(twin))
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass

    def _create_network(self, count: int) -> list[str]:
        """The run network with a subnet of its own, and one fixed address per node.

        Docker only honours fixed addresses on networks created with an explicit subnet,
        so the engine picks a free subnet first and the network is made again with it."""
        try:
            probe = self.client.networks.create(self.network_name, driver="bridge",
                                                labels=self.labels, check_duplicate=True)
            config = (probe.attrs.get("IPAM", {}).get("Config") or [{}])[0]
            probe.remove()
            subnet = ipaddress.ip_network(config["Subnet"])
            gateway = config.get("Gateway") or str(next(subnet.hosts()))
            pool = docker.types.IPAMPool(subnet=str(subnet), gateway=gateway)
            self._network = self.client.networks.create(
                self.network_name, driver="bridge", labels=self.labels, check_duplicate=True,
                ipam=docker.types.IPAMConfig(pool_configs=[pool]),
                options={**CONTAINED_NETWORK,
                         "com.docker.network.bridge.name": hostguard.bridge_name(self.run_id)})
        except (docker.errors.APIError, KeyError, ValueError) as exc:
            raise InfraError(f"cannot create network {self.network_name}: {exc}") from None
        self.unguarded = hostguard.guard(self.run_id)   # nodes may not open connections to the host
        hosts = (str(h) for h in subnet.hosts() if str(h) != gateway)
        addresses = [next(hosts, None) for _ in range(count)]
        if None in addresses:
            raise InfraError(f"network {self.network_name}: subnet {subnet} has no room for "
                             f"{count} nodes")
        return addresses

    def container(self, node: Node):
        return self.client.containers.get(node.container_id)

    def pid(self, node: Node) -> int:
        """The node's main process id in the engine's PID namespace (0 when not running)."""
        return int(self.container(node).attrs["State"].get("Pid") or 0)

    def namespace(self, node: Node) -> int | None:
        """Where the network faults reach the node (harness.faults.netns): its pid, entered with
        nsenter on this host; None while the container is down."""
        return self.pid(node) or None

    def exit_status(self, node: Node) -> int | None:
        """The container's exit code if it has stopped, None while it runs."""
        try:
            container = self.client.containers.get(node.container_id)
        except docker.errors.NotFound:
            return -1
        if container.status in ("exited", "dead"):
            return int(container.attrs["State"].get("ExitCode", -1))
        return None

    def refresh_ports(self, node: Node, pack: ChainPack) -> None:
        """Host ports are only known once the container runs; read them again after a start."""
        container = self.client.containers.get(node.container_id)
        bindings = container.attrs["NetworkSettings"]["Ports"] or {}
        for port_name, port in pack.ports.items():
            bound = bindings.get(f"{port}/tcp") or []
            if bound:
                node.host_ports[port_name] = int(bound[0]["HostPort"])

    def save_logs(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for container in self._containers():
            _save_log(container, self.log_path(container.labels.get("bctest.node", container.name)))

    def data_bytes(self) -> dict[str, int | None]:
        """Bytes each node has written: its container's writable layer (SizeRw), plus its
        data filesystem's used space when it has one. For the ledger growth figure."""
        sizes: dict[str, int | None] = {}
        listed = self.client.api.containers(all=True, size=True,
                                            filters={"label": f"{RUN_LABEL}={self.run_id}"})
        for entry in listed:
            name = (entry.get("Labels") or {}).get("bctest.node")
            if name is None:
                continue
            size = entry.get("SizeRw")
            disk = self.disks.get(name)
            if disk is not None and size is not None:
                size += data_disks.used_bytes(disk)
            sizes[name] = size
        return sizes

    def image_digest(self, image: str) -> dict[str, object]:
        return image_facts(self.client, image)

    def _containers(self):
        return self.client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={self.run_id}"})

    def teardown(self) -> None:
        """Save every node's log, then remove the run's containers, volumes and network."""
        try:
            self.save_logs()
        finally:
            remove_run(self.client, self.run_id)


@dataclass
class Removed:
    """What remove_run_objects() removed of one run, by name."""

    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    disks: int = 0          # data filesystems unmounted (runtime.disks)
    host_rules: int = 0     # host iptables rules keeping the nodes off the host (runtime.hostguard)
    services: list[str] = field(default_factory=list)   # Swarm runtime: nodes and agents
    configs: list[str] = field(default_factory=list)    # Swarm runtime: the nodes' /bctest files
    secrets: list[str] = field(default_factory=list)    # Swarm runtime: the agents' token

    @property
    def count(self) -> int:
        return (len(self.containers) + len(self.networks) + len(self.volumes) + self.disks
                + len(self.services) + len(self.configs) + len(self.secrets))

    def describe(self) -> str:
        """E.g. "2 containers (a, b); 1 network (n); 1 data disk (unmounted)"."""
        def count(n: int, kind: str) -> str:
            return f"{n} {kind}{'' if n == 1 else 's'}"
        parts = [f"{count(len(names), kind)} ({', '.join(names)})" for kind, names in
                 (("service", self.services), ("container", self.containers),
                  ("network", self.networks), ("volume", self.volumes), ("config", self.configs),
                  ("secret", self.secrets)) if names]
        if self.disks:
            parts.append(f"{count(self.disks, 'data disk')} (unmounted)")
        if self.host_rules:
            parts.append(f"{count(self.host_rules, 'host iptables rule')} (the nodes' guard)")
        return "; ".join(parts) or "nothing (already gone)"


def remove_run_objects(client: docker.DockerClient, run_id: str) -> Removed:
    """Remove every service (Swarm runtime), container, network, volume, config and secret
    labelled with this run id, then its data disks and its host guard rule
    (runtime/hostguard.py). Host iptables rules for the run's network and published ports
    are the engine's and go with the network and containers; fault chains live in the
    nodes' namespaces and die with them."""
    label = {"label": f"{RUN_LABEL}={run_id}"}
    removed = Removed()
    _remove_swarm_services(client, label, removed)
    for container in client.containers.list(all=True, filters=label):
        try:
            container.remove(force=True, v=True)
            removed.containers.append(container.name)
        except docker.errors.NotFound:
            pass
    for network in client.networks.list(filters=label):
        try:
            network.remove()
            removed.networks.append(network.name)
        except docker.errors.NotFound:
            pass
    for volume in client.volumes.list(filters=label):
        try:
            volume.remove(force=True)
            removed.volumes.append(volume.name)
        except docker.errors.NotFound:
            pass
    for kind, names in (("configs", removed.configs), ("secrets", removed.secrets)):
        for obj in _swarm_list(client, kind, label):   # after the services that used them
            try:
                obj.remove()
                names.append(obj.name)
            except docker.errors.NotFound:
                pass
    removed.disks = data_disks.remove_run(run_id)   # after the containers that used them
    removed.host_rules = hostguard.unguard(run_id)
    return removed


def _swarm_list(client: docker.DockerClient, kind: str, filters: dict[str, str]) -> list[Any]:
    """A run's services, configs or secrets; none when this engine is no swarm manager."""
    objects = getattr(client, kind, None)   # (a test's stand-in engine may have none)
    if objects is None:
        return []
    try:
        return list(objects.list(filters=filters))
    except docker.errors.APIError:   # 503: not a swarm manager (the docker runtime's case)
        return []


def _remove_swarm_services(client: docker.DockerClient, filters: dict[str, str], removed: Removed,
                           wait: float = 30.0) -> None:
    """Remove the run's services, then wait (bounded) for the swarm to remove their task
    containers here: the run network cannot go while a task is attached."""
    for service in _swarm_list(client, "services", filters):
        try:
            service.remove()
            removed.services.append(service.name)
        except docker.errors.NotFound:
            pass
    if not removed.services:
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(
            "com.docker.swarm.task.id" in (c.attrs.get("Labels") or {})
            for c in client.containers.list(all=True, sparse=True, filters=filters)):
        time.sleep(0.5)


def remove_run(client: docker.DockerClient, run_id: str) -> int:
    """remove_run_objects(), counted."""
    return remove_run_objects(client, run_id).count


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftover_runs(client: docker.DockerClient, include_live: bool = False) -> list[str]:
    """Run ids with objects in the engine whose harness process on this host is gone."""
    here, pidns = socket.gethostname(), _pid_namespace()
    runs: dict[str, bool] = {}
    # sparse: the labels are in the listing; inspecting each container after it would fail
    # with 404 when another run removes one of its containers in between.
    objects = list(client.containers.list(all=True, sparse=True, filters={"label": RUN_LABEL}))
    objects += client.networks.list(filters={"label": RUN_LABEL})
    objects += client.volumes.list(filters={"label": RUN_LABEL})
    for kind in ("services", "configs", "secrets"):   # the Swarm runtime's
        objects += _swarm_list(client, kind, {"label": RUN_LABEL})
    for obj in objects:
        labels = (obj.attrs.get("Labels") or obj.attrs.get("Config", {}).get("Labels")
                  or obj.attrs.get("Spec", {}).get("Labels") or {})
        run_id = labels.get(RUN_LABEL)
        if not run_id:
            continue
        pid = labels.get(PID_LABEL, "")
        # A run driven from another host, container or PID namespace is never ours to judge:
        # its pid means nothing here.
        foreign = labels.get(HOST_LABEL) != here or labels.get(PIDNS_LABEL) != pidns
        owner = lifetime.parse_owner(labels.get(OWNER_LABEL, ""))
        if owner is not None and not foreign:   # pid and start time: a reused pid is not the run
            alive = lifetime.owner_alive(owner)
        else:
            alive = foreign or not pid.isdigit() or _pid_alive(int(pid))
        runs[run_id] = runs.get(run_id, False) or alive
    for run_id in data_disks.orphaned_runs(set(runs)):
        runs[run_id] = False
    for run_id in hostguard.guarded_runs() - set(runs):   # a rule whose run has no object left
        runs[run_id] = False
    return sorted(r for r, alive in runs.items() if include_live or not alive)
