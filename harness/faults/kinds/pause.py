"""pause: freeze the targets' processes (cgroup freezer); the heal thaws them."""

from __future__ import annotations

from harness.faults.kinds.base import FaultContext, FaultKind


class Pause(FaultKind):
    name = "pause"
    crash = True
    takes_out = True
    description = "docker pause (cgroup freezer), then docker unpause"

    def apply(self, ctx: FaultContext) -> None:
        for node in ctx.targets():
            ctx.runtime.container(node).pause()

    def heal(self, ctx: FaultContext) -> None:
        for node in ctx.targets():
            ctx.runtime.container(node).unpause()


KIND = Pause()
