"""The setup stage: clear what dead runs left, build or find the image, start the nodes,
wait until each answers its readiness probe and the network makes progress; then the
prepare stage (bootstrap, sign every transaction before the window)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

from harness import adapters, hostinfo, lifetime, workloads
from harness.adapters.base import Adapter
from harness.errors import InfraError
from harness.faults import kinds, links, netns
from harness.faults.kinds.base import ContainerOptions
from harness.model import Node
from harness.phases.context import RunContext
from harness.runtime import images
from harness.runtime.disks import CAPACITY as DATA_DISK_BYTES
from harness.runtime.docker import DockerRuntime, connect, leftover_runs, remove_run
from harness.suite import Suite


async def _tcp_probe(node: Node) -> str | None:
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(node.host, node.host_ports["rpc"]), 2)
        writer.close()
        return None
    except (OSError, TimeoutError) as exc:
        return f"tcp connect to {node.host}:{node.host_ports['rpc']}: {exc or type(exc).__name__}"


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


def topology_options(suite: Suite) -> dict[int, ContainerOptions]:
    """Each node's role and zone, for the vendor contract (docs/vendor-contract.md)."""
    if suite.topology is None:
        return {}
    return {i: ContainerOptions(environment={"BCTEST_NODE_ROLE": suite.topology.role_of(i),
                                             "BCTEST_ZONE": suite.topology.zone_of(i).name})
            for i in range(suite.nodes)}


async def start_network(runtime: DockerRuntime, suite: Suite, adapter: Adapter, image: str,
                        interrupted: Callable[[], bool]) -> tuple[list[Node], list[dict[str, Any]]]:
    files = adapter.node_files()
    started = time.monotonic()
    disk_nodes = {i for step in suite.faults if step.action == "disk" for i in step.nodes}
    extras = kinds.container_options(suite.faults, suite.nodes, runtime.log_dir.parent)
    for index, options in topology_options(suite).items():
        extras[index] = extras[index].merged(options) if index in extras else options
    zones = ({i: suite.topology.zone_of(i).name for i in range(suite.nodes)}
             if suite.topology is not None else None)
    nodes = await asyncio.to_thread(runtime.start, suite.chain, image, suite.nodes, files,
                                    suite.params, dict.fromkeys(disk_nodes, DATA_DISK_BYTES), extras,
                                    zones)
    ready = await asyncio.gather(*(
        wait_ready(runtime, adapter, node, suite.chain.readiness_probe, suite.ready_timeout,
                   started, interrupted) for node in nodes))
    info = [{"name": node.name, "ready_seconds": round(seconds, 3),
             "ports": {k: f"{node.host}:{v}" for k, v in node.host_ports.items()},
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


def workload_seed(suite_seed: int, secret: str) -> int:
    """The seed the adapter derives keys and transactions from (64 bits)."""
    digest = hashlib.sha256(f"bctest/workload/{suite_seed}/{secret}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


async def setup(ctx: RunContext) -> None:
    """Everything up to a running network that makes progress; fills ctx.client, runtime,
    adapter, nodes, node_info, host and image. Raises InfraError/InputError on failure."""
    suite = ctx.suite
    ctx.client = await asyncio.to_thread(connect)
    for dead in await asyncio.to_thread(leftover_runs, ctx.client):
        removed = await asyncio.to_thread(remove_run, ctx.client, dead)
        ctx.say(f"removed {removed} objects left by dead run {dead}")
    stray = await asyncio.to_thread(lifetime.orphans)
    if stray:    # processes of a harness that was killed: they would compete for the CPU
        await asyncio.to_thread(lifetime.end, stray)
        ctx.say(f"ended {len(stray)} processes left by dead runs")
    if kinds.needs_preflight(suite.faults):
        netns.preflight()
    adapter_cls = adapters.adapter_class(suite.chain.family, str(suite.chain.manifest))
    ctx.workload = adapters.workload_for(adapter_cls, suite.workload, str(suite.path))
    # Keys and transactions derive from the suite's seed AND a secret drawn for this run: a
    # node that knows the suite cannot precompute the workload (the secret is recorded in
    # the History after the run, so the run can be reproduced).
    ctx.key_secret = ctx.key_secret or secrets.token_hex(16)
    ctx.adapter = adapter_cls(suite.chain, suite.params, suite.nodes,
                              workload_seed(suite.seed, ctx.key_secret), suite.accounts)
    ctx.adapter.identity_seed = suite.seed   # node keys: the same network on every run
    # Each node's role (management / root / application), read by node_files(): e.g. only
    # root nodes are CometBFT validators. None: no topology, every node alike.
    ctx.adapter.roles = suite.topology.roles() if suite.topology is not None else None
    spec = workloads.find(suite.chain.family, ctx.workload)
    if spec is not None:   # a registered workload: same secret seed, same accounts as the adapter
        ctx.workload_impl = spec.create(ctx.adapter, suite.workload_settings,
                                        workload_seed(suite.seed, ctx.key_secret), suite.accounts)
    image_id = await asyncio.to_thread(images.ensure, ctx.client, suite.chain, ctx.rebuild,
                                       lambda message: ctx.say(f"  {message}"))
    if suite.runtime == "swarm":   # nodes as services of the engine's swarm (docs/swarm.md)
        from harness.runtime.swarm import SwarmRuntime
        shaped = suite.topology is not None and bool(suite.topology.links)
        ctx.runtime = SwarmRuntime(ctx.client, ctx.run_id, ctx.run_dir / "logs", suite.swarm,
                                   netns=kinds.needs_preflight(suite.faults) or shaped)
    else:
        ctx.runtime = DockerRuntime(ctx.client, ctx.run_id, ctx.run_dir / "logs")
    ctx.host = await asyncio.to_thread(hostinfo.host_facts, ctx.client)
    ctx.say(f"starting {suite.nodes} × {suite.chain.name} {suite.chain.version} ({image_id[:19]})")
    interrupted = lambda: ctx.stopped() is not None  # noqa: E731
    # Pinned to the image id: a tag re-pointed during the run cannot swap the nodes' image.
    ctx.nodes, ctx.node_info = await start_network(ctx.runtime, suite, ctx.adapter, image_id,
                                                   interrupted)
    ctx.say(f"ready in {max(n['ready_seconds'] for n in ctx.node_info):.1f} s")
    if ctx.runtime.unguarded:
        ctx.warnings.append(f"the nodes could open connections to this host's services: "
                            f"{ctx.runtime.unguarded}")
    # The topology's link profiles, for the whole run (shaped and measured before progress).
    ctx.links = await links.apply(ctx)
    if suite.chain.progress_blocks:
        heights = await wait_progress(ctx.adapter, ctx.nodes, suite.chain.progress_blocks,
                                      suite.ready_timeout, interrupted)
        ctx.say(f"consensus running: heights {heights}")
    ctx.image = {"tag": suite.chain.image_tag, **ctx.runtime.image_digest(image_id)}


async def prepare(ctx: RunContext) -> None:
    """Bootstrap (fund accounts, mine coinbases...) and sign every transaction before the
    window; record the nodes' written bytes before the load (ledger growth)."""
    count = ctx.suite.load.plan().count      # the load shape's schedule (harness/load/shape.py)
    ctx.bootstrap = await ctx.adapter.bootstrap(ctx.nodes, count)
    generator = ctx.adapter
    if ctx.workload_impl is not None:   # after the adapter's: deploy contracts, issue invoices...
        facts = await ctx.workload_impl.bootstrap(ctx.nodes, count)
        ctx.bootstrap = {**ctx.bootstrap, "workload": {
            "kind": ctx.workload, "settings": ctx.suite.workload_settings, **facts}}
        generator = ctx.workload_impl
    ctx.prepared = await asyncio.to_thread(generator.prepare, count)
    ctx.say(f"{count} transactions signed")
    ctx.ledger_before = await asyncio.to_thread(ctx.runtime.data_bytes)


async def measure_ledger(ctx: RunContext) -> None:
    """The nodes' written bytes after the settle, beside those before the warmup."""
    ctx.ledger = {"method": "container writable layer (SizeRw) + data filesystem used, before "
                            "the warmup and after the settle", "before": ctx.ledger_before,
                  "after": await asyncio.to_thread(ctx.runtime.data_bytes)}


async def teardown(ctx: RunContext) -> None:
    """Close the companions (heal every fault), the adapter's connections, and remove every
    container, network, volume and disk of the run."""
    await ctx.hooks.close()
    await links.release(ctx)   # the link delayers (their rules go with the containers)
    if ctx.adapter is not None:
        await ctx.adapter.close()
    if ctx.runtime is not None:
        await asyncio.to_thread(ctx.runtime.teardown)
