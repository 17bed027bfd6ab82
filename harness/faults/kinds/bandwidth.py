"""bandwidth: a token bucket on the targets' egress (all of it, harness replies too)."""

from __future__ import annotations

from harness.faults import netns
from harness.faults.kinds import _network
from harness.faults.kinds.base import FaultContext, FaultKind


class Bandwidth(FaultKind):
    name = "bandwidth"
    settings = {
        "rate": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?(bit|kbit|mbit|gbit)$",
                 "description": "bandwidth: tc rate, e.g. 1mbit"},
    }
    required = ("rate",)
    network = True
    description = "tc tbf on the targets' eth0 egress (all traffic, harness replies too)"

    def apply(self, ctx: FaultContext) -> None:
        for node in ctx.targets():
            netns.set_root_qdisc(ctx.runtime.namespace(node), "tbf", "rate", ctx.step.settings["rate"],
                                 "burst", "32kbit", "latency", "400ms")

    def heal(self, ctx: FaultContext) -> None:
        _network.clear_qdisc(ctx)


KIND = Bandwidth()
