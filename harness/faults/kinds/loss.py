"""loss: drop a share of the targets' node-to-node packets, both directions."""

from __future__ import annotations

from harness.faults import netns
from harness.faults.kinds import _network
from harness.faults.kinds.base import FaultContext, FaultKind


class Loss(FaultKind):
    name = "loss"
    settings = {
        "probability": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                        "description": "loss: share of node-to-node packets dropped"},
    }
    required = ("probability",)
    network = True
    description = "iptables statistic (random) DROP of node-to-node packets at the targets"

    def apply(self, ctx: FaultContext) -> None:
        for node in ctx.targets():
            netns.add_drop_chain(ctx.runtime.namespace(node), _network.chain(ctx), _network.peers(ctx, node),
                                 float(ctx.step.settings["probability"]))

    def heal(self, ctx: FaultContext) -> None:
        _network.remove_chain(ctx)


KIND = Loss()
