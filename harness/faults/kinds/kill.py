"""kill: SIGKILL the targets; the heal starts them again."""

from __future__ import annotations

from harness.faults.kinds.base import FaultContext, FaultKind


class Kill(FaultKind):
    name = "kill"
    crash = True
    takes_out = True
    description = "docker kill (SIGKILL), then docker start"

    def apply(self, ctx: FaultContext) -> None:
        for node in ctx.targets():
            ctx.runtime.container(node).kill("SIGKILL")

    def heal(self, ctx: FaultContext) -> None:
        for node in ctx.targets():
            ctx.runtime.container(node).start()


KIND = Kill()
