"""partition: iptables DROP between groups of nodes, in each target's namespace.

Its shape decides the groups (harness.faults.schedule.partition): the targets against
the rest (isolate), halves, a ring, or a bridge; one side's rules cut both directions.
"""

from __future__ import annotations

from typing import Any

from harness.errors import InputError
from harness.faults import netns
from harness.faults.kinds import _network
from harness.faults.kinds.base import FaultContext, FaultKind


class Partition(FaultKind):
    name = "partition"
    settings = {
        "shape": {"enum": ["isolate", "halves", "ring", "bridge"],
                  "description": "partition: isolate the targets (default), halves, ring, bridge"},
    }
    takes_out = True
    network = True
    description = "iptables DROP between the groups, in each node's network namespace"

    def default_target(self, fault: dict[str, Any]) -> str:
        return "all" if fault.get("shape", "isolate") != "isolate" else "one"

    def place(self, fault: dict[str, Any], targets: tuple[int, ...], nodes: int, file: str, where: str
              ) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...] | None, frozenset[tuple[int, int]]]:
        from harness.faults.schedule import partition
        shape = fault.get("shape", "isolate")
        if nodes < 2 or (shape == "isolate" and len(targets) == nodes):
            raise InputError(file, f"{where}.target", "a partition needs nodes on both sides")
        groups, blocked = partition(shape, targets, nodes)
        if shape == "halves":
            targets = groups[1]   # the side cut off from the (larger or equal) first half
        elif shape != "isolate":
            targets = tuple(sorted({i for pair in blocked for i in pair}))
        return targets, groups, blocked

    def apply(self, ctx: FaultContext) -> None:
        for node in ctx.targets():
            cut = [ctx.nodes[b if a == node.index else a].ip for a, b in ctx.step.blocked
                   if node.index in (a, b)]
            netns.add_drop_chain(ctx.runtime.namespace(node), _network.chain(ctx), cut)

    def heal(self, ctx: FaultContext) -> None:
        _network.remove_chain(ctx)


KIND = Partition()
