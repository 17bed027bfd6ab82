"""restart: an instant graceful restart; nothing to heal."""

from __future__ import annotations

from harness.faults.kinds.base import STOP_TIMEOUT, FaultContext, FaultKind


class Restart(FaultKind):
    name = "restart"
    instant = True        # over too fast for fault_tolerance to judge what the others did
    crash = True
    takes_out = True
    description = f"docker restart (SIGTERM, SIGKILL after {STOP_TIMEOUT} s)"

    def apply(self, ctx: FaultContext) -> None:
        for node in ctx.targets():
            ctx.runtime.container(node).restart(timeout=STOP_TIMEOUT)


KIND = Restart()
