"""stop: a graceful stop (SIGTERM, then SIGKILL); the heal starts the targets again."""

from __future__ import annotations

from harness.faults.kinds.base import STOP_TIMEOUT, FaultContext, FaultKind


class Stop(FaultKind):
    name = "stop"
    crash = True
    takes_out = True
    description = f"docker stop (SIGTERM, SIGKILL after {STOP_TIMEOUT} s), then docker start"

    def apply(self, ctx: FaultContext) -> None:
        for node in ctx.targets():
            ctx.runtime.container(node).stop(timeout=STOP_TIMEOUT)

    def heal(self, ctx: FaultContext) -> None:
        for node in ctx.targets():
            ctx.runtime.container(node).start()


KIND = Stop()
