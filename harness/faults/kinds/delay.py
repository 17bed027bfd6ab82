"""delay: hold the targets' packets for delay_ms ± jitter_ms.

tc netem where the kernel has sch_netem (all egress, the harness's replies too), else
the harness's NFQUEUE userspace delayer (harness.faults.nfqueue) on node-to-node
egress only; `via` insists on one. Neither usable: the step is skipped with the tool's
own error.
"""

from __future__ import annotations

import zlib

from harness.faults import netns
from harness.faults.kinds import _network
from harness.faults.kinds.base import FaultContext, FaultKind


class Delay(FaultKind):
    name = "delay"
    settings = {
        "delay_ms": {"type": "number", "exclusiveMinimum": 0, "maximum": 60000},
        "jitter_ms": {"type": "number", "minimum": 0, "maximum": 60000},
        "via": {"enum": ["netem", "nfqueue"],
                "description": "delay: tc netem, or the harness's NFQUEUE userspace delayer; default "
                               "netem where the kernel has it, else nfqueue"},
    }
    required = ("delay_ms",)
    network = True
    description = "tc netem on the targets' eth0 egress (all traffic, harness replies too)"

    def method(self, ctx: FaultContext) -> str:
        if ctx.state.get("via") == "nfqueue":
            return ("NFQUEUE userspace delayer (harness.faults.nfqueue) holding the targets' packets to "
                    "the other nodes (node-to-node egress; harness traffic undelayed; order kept)")
        return self.description

    def skip_reason(self, ctx: FaultContext) -> str | None:
        """netem where the kernel has it, else the NFQUEUE delayer (or the one `via` asks
        for); None when one is chosen, else why neither can be used."""
        pid = ctx.runtime.namespace(ctx.targets()[0])
        wanted = ctx.step.settings.get("via")
        no_netem = netns.netem_missing(pid) if wanted in (None, "netem") else None
        if wanted == "netem" or (wanted is None and no_netem is None):
            if no_netem is None:
                ctx.state["via"] = "netem"
                return None
            return (f"delay not applied: this kernel has no netem qdisc (tc said: {no_netem}); "
                    "the suite asked for via: netem")
        no_queue = netns.nfqueue_missing(pid)
        if no_queue is None:
            ctx.state["via"] = "nfqueue"
            return None
        netem_part = f"this kernel has no netem qdisc (tc said: {no_netem}), and " if no_netem else ""
        return (f"delay not applied: {netem_part}iptables cannot queue packets to userspace "
                f"(NFQUEUE: {no_queue})")

    def apply(self, ctx: FaultContext) -> None:
        settings = ctx.step.settings
        delayers = ctx.state.setdefault("delayers", {})
        for node in ctx.targets():
            pid = ctx.runtime.namespace(node)
            if ctx.state.get("via") == "nfqueue":
                delayers[node.index] = netns.start_delayer(
                    pid, ctx.number, float(settings["delay_ms"]), float(settings.get("jitter_ms") or 0),
                    zlib.crc32(f"{ctx.step.id}/{node.index}".encode()))
                netns.add_queue_chain(pid, _network.chain(ctx), _network.peers(ctx, node), ctx.number)
            else:
                jitter = settings.get("jitter_ms")
                netns.set_root_qdisc(pid, "netem", "delay", f"{settings['delay_ms']}ms",
                                     *([f"{jitter}ms"] if jitter else []))

    def heal(self, ctx: FaultContext) -> None:
        delayers = ctx.state.get("delayers", {})
        for node in ctx.targets():
            pid = ctx.runtime.namespace(node)
            if pid is not None:   # else the container is down: its namespace and rules are gone with it
                if ctx.state.get("via") == "nfqueue":
                    netns.remove_chain(pid, _network.chain(ctx))
                else:
                    netns.clear_root_qdisc(pid)
            delayer = delayers.pop(node.index, None)
            if delayer is not None:
                delayer.stop()   # after the rule is gone: nothing new reaches the queue


KIND = Delay()
