"""Per-node resource use, sampled from the host's kernel while the load runs.

Each node's CPU time and memory come from its container's cgroup (v1 cpuacct/memory or
v2 cpu.stat/memory.current), its network bytes from /proc/PID/net/dev (the container's
own namespace). Reading files costs far less than the Docker stats API (which blocks a
second per call). Where the files are not visible (a remote engine, the harness inside a
container) nothing is sampled and the report says "not measured".
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from harness.runtime.docker import DockerRuntime, Node

CGROUP = Path("/sys/fs/cgroup")


def _cgroup_paths(pid: int) -> dict[str, Path]:
    """controller → the process's cgroup folder ("" is the v2 unified hierarchy)."""
    paths = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path.lstrip("/")
    out = {}
    for controller, path in paths.items():
        base = CGROUP / controller if controller and (CGROUP / controller).is_dir() else CGROUP
        if controller == "" and (CGROUP / "unified").is_dir():
            base = CGROUP / "unified"
        out[controller] = base / path
    return out


def read_usage(pid: int) -> tuple[float, int, int, int]:
    """(CPU seconds, memory bytes, network rx bytes, tx bytes) of the container of `pid`."""
    paths = _cgroup_paths(pid)
    if "cpuacct" in paths and (paths["cpuacct"] / "cpuacct.usage").is_file():
        cpu = int((paths["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
        memory = int((paths["memory"] / "memory.usage_in_bytes").read_text())
    else:  # cgroup v2
        stat = dict(line.split() for line in (paths[""] / "cpu.stat").read_text().splitlines())
        cpu = int(stat["usage_usec"]) / 1e6
        memory = int((paths[""] / "memory.current").read_text())
    rx = tx = 0
    for line in Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]:
        name, counters = line.split(":", 1)
        if name.strip() != "lo":
            fields = counters.split()
            rx, tx = rx + int(fields[0]), tx + int(fields[8])
    return cpu, memory, rx, tx


class ResourceSampler:
    """Samples every node once a `interval`; a node that is down (a fault) is skipped."""

    def __init__(self, runtime: DockerRuntime, nodes: list[Node], interval: float = 1.0):
        self.runtime = runtime
        self.nodes = nodes
        self.interval = interval
        self.samples: dict[str, list[list[float]]] = {n.name: [] for n in nodes}
        self.unavailable: str | None = None
        self._pids: dict[str, int] = {}

    def _sample(self, node: Node, at: float) -> None:
        pid = self._pids.get(node.name)
        try:
            if not pid:
                raise FileNotFoundError
            usage = read_usage(pid)
        except (OSError, ValueError, KeyError):
            pid = self._pids[node.name] = self.runtime.pid(node)  # restarted: new process
            if pid <= 0:
                return  # stopped or killed by a fault: no sample
            usage = read_usage(pid)
        self.samples[node.name].append([round(at, 3), round(usage[0], 4), *usage[1:]])

    def sample_all(self, t0: float) -> None:
        at = time.monotonic() - t0
        for node in self.nodes:
            try:
                self._sample(node, at)
            except Exception as exc:  # noqa: BLE001 — measuring must never break the run
                if not any(self.samples.values()):
                    self.unavailable = f"{type(exc).__name__}: {exc}"[:200]

    async def run(self, t0: float, stop: asyncio.Event) -> None:
        while not stop.is_set() and self.unavailable is None:
            await asyncio.to_thread(self.sample_all, t0)
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                pass

    def history(self) -> dict[str, object]:
        return {"interval": self.interval, "columns": ["t", "cpu_seconds", "memory_bytes",
                                                       "rx_bytes", "tx_bytes"],
                "nodes": self.samples, "unavailable": self.unavailable}
