"""disk: fill the targets' own size-limited data filesystem; the heal frees it.

The filesystem is made at the start of the run (harness.runtime.disks, for the nodes a
disk step targets); a node that died of the full disk is started again at the heal, as
its supervisor would, and the record says so.
"""

from __future__ import annotations

from harness.faults.kinds.base import STOP_TIMEOUT, FaultContext, FaultKind

_METHOD = ("one preallocated file on the node's own size-limited ext4 data filesystem "
           "(loop-mounted at the chain pack's data_dir), deleted at the heal")


class Disk(FaultKind):
    name = "disk"
    settings = {
        "size": {"type": "string", "pattern": "^[0-9]+[kmgKMG]?$", "description": "disk: bytes to fill"},
        "restart_after": {"type": "boolean", "description": "disk: after freeing the space, restart the "
                          "node (an operator's recovery procedure)"},
    }
    required = ("size",)
    takes_out = True
    description = _METHOD

    def judged_out(self, nodes: int, tolerated: int) -> bool:
        """A full disk may take its nodes out (CometBFT's consensus stops on ENOSPC): with at
        most f of them the others must go on; with more, a node that works on without
        writing is no fault, so no halt can be demanded."""
        return nodes <= tolerated

    def method(self, ctx: FaultContext) -> str:
        return _METHOD + (", then docker restart" if ctx.step.settings.get("restart_after") else "")

    def skip_reason(self, ctx: FaultContext) -> str | None:
        without = [node.name for node in ctx.targets() if node.name not in ctx.runtime.disks]
        if not without:
            return None
        return (f"disk pressure not applied: {', '.join(without)} has no size-limited data filesystem "
                "(the chain pack declares no data_dir: the node's data would be the container's "
                "writable layer on the host's disk, and filling it would fill the host)")

    def apply(self, ctx: FaultContext) -> None:
        from harness.runtime import disks  # the runtime's, only when a fault really runs
        filled = {}
        for node in ctx.targets():
            disk = ctx.runtime.disks[node.name]
            taken = disks.fill(disk, disks.parse_size(ctx.step.settings["size"]))
            filled[node.name] = {"bytes": taken, "free_after": disks.free_bytes(disk)}
        ctx.params["filled"] = filled     # what the nodes were left with, for the report

    def heal(self, ctx: FaultContext) -> None:
        from harness.runtime import disks
        died: dict[str, int | None] = ctx.state.setdefault("exited", {})
        for node in ctx.targets():
            disks.unfill(ctx.runtime.disks[node.name])
            container = ctx.runtime.container(node)
            if container.status == "exited":   # died of the full disk: start it, as a supervisor would
                died[node.name] = container.attrs.get("State", {}).get("ExitCode")
                container.start()
            elif ctx.step.settings.get("restart_after"):
                container.restart(timeout=STOP_TIMEOUT)
        if died:
            ctx.params["exited_during_fault"] = died
            ctx.say(f"fault {ctx.step.id}: {', '.join(died)} had exited during the fault "
                    f"(exit codes {', '.join(str(c) for c in died.values())}); started again")


KIND = Disk()
