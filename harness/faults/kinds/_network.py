"""What the network kinds share: each step's iptables chain and the node's peers.

Rules and qdiscs are made with the host's iptables and tc inside each target's network
namespace (harness.faults.netns); a container that is down has lost its namespace and
its rules with it, so the heal has nothing to remove there.
"""

from __future__ import annotations

from typing import Any

from harness.faults import netns
from harness.faults.kinds.base import FaultContext


def chain(ctx: FaultContext) -> str:
    """The step's own iptables chain, hooked from INPUT and OUTPUT."""
    return f"bct-{ctx.number}"


def peers(ctx: FaultContext, node: Any) -> list[str]:
    """Every other node's address on the run network."""
    return [n.ip for n in ctx.nodes if n.index != node.index]


def remove_chain(ctx: FaultContext) -> None:
    for node in ctx.targets():
        namespace = ctx.runtime.namespace(node)
        if namespace is not None:
            netns.remove_chain(namespace, chain(ctx))


def clear_qdisc(ctx: FaultContext) -> None:
    for node in ctx.targets():
        namespace = ctx.runtime.namespace(node)
        if namespace is not None:
            netns.clear_root_qdisc(namespace)
