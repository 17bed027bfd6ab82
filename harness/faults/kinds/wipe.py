"""wipe: SIGKILL the targets; the heal recreates them from the image with an empty
data directory (same address, ports and run files): they must re-sync from peers."""

from __future__ import annotations

from harness.faults.kinds.base import FaultContext, FaultKind


class Wipe(FaultKind):
    name = "wipe"
    crash = True
    takes_out = True
    description = ("docker kill (SIGKILL), then the container recreated from the image: same address, "
                   "ports and run files, empty data directory")

    def apply(self, ctx: FaultContext) -> None:
        for node in ctx.targets():
            ctx.runtime.container(node).kill("SIGKILL")

    def heal(self, ctx: FaultContext) -> None:
        for node in ctx.targets():
            ctx.runtime.recreate(node)


KIND = Wipe()
