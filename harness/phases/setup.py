"""Setup: start the nodes and wait until each answers its readiness probe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from harness.adapters.base import Adapter
from harness.errors import InfraError
from harness.faults import kinds
from harness.runtime.disks import CAPACITY as DATA_DISK_BYTES
from harness.runtime.docker import DockerRuntime, Node
from harness.suite import Suite


async def _tcp_probe(node: Node) -> str | None:
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", node.host_ports["rpc"]), 2)
        writer.close()
        return None
    except (OSError, TimeoutError) as exc:
        return f"tcp connect to 127.0.0.1:{node.host_ports['rpc']}: {exc or type(exc).__name__}"


async def wait_ready(runtime: DockerRuntime, adapter: Adapter, node: Node, probe: str,
                     timeout: float, started: float, interrupted: Callable[[], bool]) -> float:
    """Seconds from container start to a passing probe; InfraError naming node and log."""
    reason = "no probe answered yet"
    while True:
        code = await asyncio.to_thread(runtime.exit_status, node)
        if code is not None:
            raise InfraError(f"node {node.name} exited with code {code} during startup; "
                             f"its log: {runtime.log_path(node)}")
        reason = await (_tcp_probe(node) if probe == "tcp" else adapter.ready(node)) or ""
        elapsed = time.monotonic() - started
        if not reason:
            return elapsed
        if elapsed > timeout:
            raise InfraError(f"node {node.name} not ready after {timeout:g} s (last probe: "
                             f"{reason}); its log: {runtime.log_path(node)}")
        if interrupted():
            raise InfraError("interrupted during setup")
        await asyncio.sleep(0.25)


async def start_network(runtime: DockerRuntime, suite: Suite, adapter: Adapter, image: str,
                        interrupted: Callable[[], bool]) -> tuple[list[Node], list[dict[str, Any]]]:
    files = adapter.node_files()
    started = time.monotonic()
    disk_nodes = {i for step in suite.faults if step.action == "disk" for i in step.nodes}
    extras = kinds.container_options(suite.faults, suite.nodes, runtime.log_dir.parent)
    nodes = await asyncio.to_thread(runtime.start, suite.chain, image, suite.nodes, files,
                                    suite.params, dict.fromkeys(disk_nodes, DATA_DISK_BYTES), extras)
    ready = await asyncio.gather(*(
        wait_ready(runtime, adapter, node, suite.chain.readiness_probe, suite.ready_timeout,
                   started, interrupted) for node in nodes))
    info = [{"name": node.name, "ready_seconds": round(seconds, 3),
             "ports": {k: f"127.0.0.1:{v}" for k, v in node.host_ports.items()},
             "log": str(runtime.log_path(node).relative_to(runtime.log_dir.parent))}
            for node, seconds in zip(nodes, ready, strict=True)]
    return nodes, info


async def wait_progress(adapter: Adapter, nodes: list[Node], blocks: int, timeout: float,
                        interrupted: Callable[[], bool]) -> dict[str, int]:
    """Every node must advance `blocks` past the highest start height: proof that the nodes
    reach consensus together. Otherwise InfraError with the height each node reached."""
    async def heights() -> dict[str, int | str]:
        async def one(node: Node) -> int | str:
            try:
                return await adapter.height(node)
            except Exception as exc:  # an unreachable node is reported, not raised
                return f"unreachable ({type(exc).__name__})"
        values = await asyncio.gather(*(one(node) for node in nodes))
        return {node.name: value for node, value in zip(nodes, values, strict=True)}

    start = await heights()
    target = max((h for h in start.values() if isinstance(h, int)), default=0) + blocks
    deadline = time.monotonic() + timeout
    while True:
        now = await heights()
        if all(isinstance(h, int) and h >= target for h in now.values()):
            return {name: int(h) for name, h in now.items()}
        if time.monotonic() > deadline or interrupted():
            reached = ", ".join(f"{name} {h}" for name, h in now.items())
            raise InfraError(f"the network did not reach height {target} within {timeout:g} s "
                             f"(heights: {reached}); node logs are in the run folder's logs/")
        await asyncio.sleep(0.5)
