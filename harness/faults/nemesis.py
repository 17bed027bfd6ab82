"""The nemesis: applies the schedule's faults to the running network and heals them.

It runs beside the load on the run clock. Each step is applied at its start and healed
at its end; whatever is still applied when the run stops (end of load, error, Ctrl-C)
is healed by heal_all(), and a container's network rules and qdiscs die with the
container at teardown in any case. What was done, when, and how goes to the History
as FaultRecords.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import zlib
from collections.abc import Callable
from typing import Any

import docker.errors

from harness.errors import InfraError
from harness.faults import netns, nfqueue
from harness.faults.schedule import FaultStep
from harness.history import FaultRecord
from harness.runtime import disks as data_disks
from harness.runtime.docker import DockerRuntime, Node

NETWORK_ACTIONS = ("partition", "loss", "bandwidth", "delay")
STOP_TIMEOUT = 10  # seconds `stop` and `restart` give a node to shut down before SIGKILL


def skip_reason(step: FaultStep) -> str | None:
    """Faults this harness cannot apply to a container: say exactly why."""
    if step.action == "skew":
        return ("clock skew not applied: containers share the host kernel's clock, and "
                "changing it would skew every node and the harness; needs a chain image with "
                "libfaketime, which the vendor contract does not provide yet")
    return None


class Nemesis:
    def __init__(self, runtime: DockerRuntime, nodes: list[Node], steps: list[FaultStep],
                 on_event: Callable[[str], None] = lambda message: None):
        self.runtime = runtime
        self.nodes = nodes
        self.steps = steps
        self.on_event = on_event
        self.records: dict[str, FaultRecord] = {}
        self.active: dict[str, FaultStep] = {}
        self.chain_of = {step.id: f"bct-{number}" for number, step in enumerate(steps)}
        self.queue_of = {step.id: number for number, step in enumerate(steps)}
        self.delay_via: dict[str, str] = {}        # delay step -> "netem" | "nfqueue"
        self.delayers: dict[tuple[str, int], subprocess.Popen[str]] = {}
        self.filled: dict[tuple[str, int], tuple[int, int]] = {}   # (disk step, node) -> bytes taken, left
        self.exited: dict[tuple[str, int], int | None] = {}          # (disk step, node) -> exit code
        self.t0 = 0.0

    def _now(self) -> float:
        return time.monotonic() - self.t0

    async def run(self, t0: float, stop: asyncio.Event) -> None:
        """Apply and heal every step on time until the schedule ends or `stop` is set."""
        self.t0 = t0
        events = sorted([(s.start, 1, s) for s in self.steps]
                        + [(s.end, 0, s) for s in self.steps if s.end > s.start],
                        key=lambda e: (e[0], e[1]))  # heals first when one heals as another starts
        for at, is_start, step in events:
            delay = t0 + at - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    return
                except TimeoutError:
                    pass
            if stop.is_set():
                return
            if is_start:
                await self._apply(step)
            elif step.id in self.active:
                await self._heal(step)

    async def heal_all(self) -> None:
        for step in reversed(list(self.active.values())):
            await self._heal(step)

    def history(self) -> list[FaultRecord]:
        """Every scheduled step, applied or not, in schedule order."""
        out = []
        for step in self.steps:
            out.append(self.records.get(step.id) or FaultRecord(
                id=step.id, action=step.action, nodes=list(step.nodes), start=None, end=None,
                status="skipped", method="", groups=_groups(step), params=_params(step),
                reason="not reached: the run stopped before its start time"))
        return out

    # -- applying and healing -----------------------------------------------------------

    async def _apply(self, step: FaultStep) -> None:
        record = FaultRecord(id=step.id, action=step.action, nodes=list(step.nodes), start=None,
                             end=None, status="skipped", method=_method(step), groups=_groups(step),
                             params=_params(step))
        self.records[step.id] = record
        names = ", ".join(self.nodes[i].name for i in step.nodes)
        reason = skip_reason(step)
        if reason is None and step.action == "disk":
            reason = self._no_disk(step)
        if reason is None and step.action == "delay":
            reason = await asyncio.to_thread(self._choose_delay, step)
            record.method = _method(step, self.delay_via.get(step.id))
        if reason is not None:
            record.reason = reason
            self.on_event(f"fault {step.id}: skipped ({reason})")
            return
        begun = self._now()
        try:
            await asyncio.to_thread(self._do, step, True)
        except (InfraError, docker.errors.APIError, OSError) as exc:
            record.status, record.reason = "failed", f"apply: {_short(exc)}"
            self.on_event(f"fault {step.id}: {step.action} {names} failed: {record.reason}")
            await asyncio.to_thread(self._undo_quietly, step)
            return
        record.start = begun
        if step.action == "disk":   # what the nodes were left with, for the report
            record.params["filled"] = {self.nodes[i].name: {"bytes": taken, "free_after": left}
                                       for (sid, i), (taken, left) in self.filled.items() if sid == step.id}
        if step.end > step.start:
            self.active[step.id] = step
            record.status = "active"
            self.on_event(f"fault {step.id}: {step.action} {names} at {begun:.1f} s")
        else:  # instant (restart): done when the call returned
            record.end, record.status = self._now(), "healed"
            self.on_event(f"fault {step.id}: {step.action} {names} at {begun:.1f}–{record.end:.1f} s")

    async def _heal(self, step: FaultStep) -> None:
        record = self.records[step.id]
        self.active.pop(step.id, None)
        try:
            await asyncio.to_thread(self._do, step, False)
            record.status = "healed"
        except (InfraError, docker.errors.APIError, OSError) as exc:
            record.status, record.reason = "failed", f"heal: {_short(exc)}"
        record.end = self._now()
        died = {self.nodes[i].name: code for (sid, i), code in self.exited.items() if sid == step.id}
        if died:
            record.params["exited_during_fault"] = died
            self.on_event(f"fault {step.id}: {', '.join(died)} had exited during the fault "
                          f"(exit codes {', '.join(str(c) for c in died.values())}); started again")
        self.on_event(f"fault {step.id}: healed at {record.end:.1f} s"
                      + (f" ({record.reason})" if record.reason else ""))

    def _undo_quietly(self, step: FaultStep) -> None:
        try:
            self._do(step, False)
        except (InfraError, docker.errors.APIError, OSError):
            pass  # half-applied rules die with the container at teardown

    def _start_if_exited(self, step: FaultStep, index: int) -> bool:
        """A node that died of the full disk is started again once there is room, as its
        supervisor would; the record says it died and how."""
        container = self.runtime.container(self.nodes[index])
        if container.status != "exited":
            return False
        code = container.attrs.get("State", {}).get("ExitCode")
        self.exited[(step.id, index)] = code
        container.start()
        return True

    def _no_disk(self, step: FaultStep) -> str | None:
        without = [self.nodes[i].name for i in step.nodes if self.nodes[i].name not in self.runtime.disks]
        if not without:
            return None
        return (f"disk pressure not applied: {', '.join(without)} has no size-limited data filesystem "
                "(the chain pack declares no data_dir: the node's data would be the container's "
                "writable layer on the host's disk, and filling it would fill the host)")

    def _choose_delay(self, step: FaultStep) -> str | None:
        """netem where the kernel has it, else the NFQUEUE delayer (or the one `via` asks
        for); None when one is chosen, else why neither can be used."""
        pid = self.runtime.pid(self.nodes[step.nodes[0]])
        wanted = step.settings.get("via")
        no_netem = netns.netem_missing(pid) if wanted in (None, "netem") else None
        if wanted == "netem" or (wanted is None and no_netem is None):
            if no_netem is None:
                self.delay_via[step.id] = "netem"
                return None
            return (f"delay not applied: this kernel has no netem qdisc (tc said: {no_netem}); "
                    "the suite asked for via: netem")
        no_queue = netns.nfqueue_missing(pid)
        if no_queue is None:
            self.delay_via[step.id] = "nfqueue"
            return None
        netem_part = f"this kernel has no netem qdisc (tc said: {no_netem}), and " if no_netem else ""
        return (f"delay not applied: {netem_part}iptables cannot queue packets to userspace "
                f"(NFQUEUE: {no_queue})")

    def _do(self, step: FaultStep, apply: bool) -> None:
        """Apply (or heal) one step on every node it names. Blocking: run in a thread."""
        action = step.action
        if action == "disk":
            for index in step.nodes:
                disk = self.runtime.disks[self.nodes[index].name]
                if apply:
                    taken = data_disks.fill(disk, data_disks.parse_size(step.settings["size"]))
                    self.filled[(step.id, index)] = (taken, data_disks.free_bytes(disk))
                else:
                    data_disks.unfill(disk)
                    started = self._start_if_exited(step, index)
                    if step.settings.get("restart_after") and not started:
                        self.runtime.container(self.nodes[index]).restart(timeout=STOP_TIMEOUT)
            return
        if action in NETWORK_ACTIONS:
            for index in step.nodes:
                self._network(step, self.nodes[index], apply)
            return
        for index in step.nodes:
            container = self.runtime.container(self.nodes[index])
            if action == "kill":
                container.kill("SIGKILL") if apply else container.start()
            elif action == "stop":
                container.stop(timeout=STOP_TIMEOUT) if apply else container.start()
            elif action == "pause":
                container.pause() if apply else container.unpause()
            elif action == "restart" and apply:
                container.restart(timeout=STOP_TIMEOUT)
            elif action == "wipe":
                container.kill("SIGKILL") if apply else self.runtime.recreate(self.nodes[index])

    def _network(self, step: FaultStep, node: Node, apply: bool) -> None:
        pid = self.runtime.pid(node)
        chain = self.chain_of[step.id]
        queued = step.action == "delay" and self.delay_via.get(step.id) == "nfqueue"
        if not apply:
            if pid > 0:   # else the container is down: its namespace and rules are gone with it
                if step.action in ("partition", "loss") or queued:
                    netns.remove_chain(pid, chain)
                else:
                    netns.clear_root_qdisc(pid)
            delayer = self.delayers.pop((step.id, node.index), None)
            if delayer is not None:
                nfqueue.stop(delayer)   # after the rule is gone: nothing new reaches the queue
            return
        if step.action == "partition":
            peers = [self.nodes[b if a == node.index else a].ip for a, b in step.blocked
                     if node.index in (a, b)]
            netns.add_drop_chain(pid, chain, peers)
        elif step.action == "loss":
            peers = [n.ip for n in self.nodes if n.index != node.index]
            netns.add_drop_chain(pid, chain, peers, float(step.settings["probability"]))
        elif step.action == "bandwidth":
            netns.set_root_qdisc(pid, "tbf", "rate", step.settings["rate"], "burst", "32kbit",
                                 "latency", "400ms")
        elif queued:
            peers = [n.ip for n in self.nodes if n.index != node.index]
            self.delayers[(step.id, node.index)] = nfqueue.start(
                pid, self.queue_of[step.id], float(step.settings["delay_ms"]),
                float(step.settings.get("jitter_ms") or 0), zlib.crc32(f"{step.id}/{node.index}".encode()))
            netns.add_queue_chain(pid, chain, peers, self.queue_of[step.id])
        elif step.action == "delay":
            jitter = step.settings.get("jitter_ms")
            netns.set_root_qdisc(pid, "netem", "delay", f"{step.settings['delay_ms']}ms",
                                 *([f"{jitter}ms"] if jitter else []))


def _method(step: FaultStep, delay_via: str | None = None) -> str:
    if step.action == "disk" and step.settings.get("restart_after"):
        return ("one preallocated file on the node's own size-limited ext4 data filesystem "
                "(loop-mounted at the chain pack's data_dir), deleted at the heal, then docker restart")
    if step.action == "delay" and delay_via == "nfqueue":
        return ("NFQUEUE userspace delayer (harness.faults.nfqueue) holding the targets' packets to "
                "the other nodes (node-to-node egress; harness traffic undelayed; order kept)")
    return {
        "kill": "docker kill (SIGKILL), then docker start",
        "wipe": ("docker kill (SIGKILL), then the container recreated from the image: same address, "
                 "ports and run files, empty data directory"),
        "stop": f"docker stop (SIGTERM, SIGKILL after {STOP_TIMEOUT} s), then docker start",
        "restart": f"docker restart (SIGTERM, SIGKILL after {STOP_TIMEOUT} s)",
        "pause": "docker pause (cgroup freezer), then docker unpause",
        "partition": "iptables DROP between the groups, in each node's network namespace",
        "loss": "iptables statistic (random) DROP of node-to-node packets at the targets",
        "bandwidth": "tc tbf on the targets' eth0 egress (all traffic, harness replies too)",
        "delay": "tc netem on the targets' eth0 egress (all traffic, harness replies too)",
        "disk": ("one preallocated file on the node's own size-limited ext4 data filesystem "
                 "(loop-mounted at the chain pack's data_dir), deleted at the heal"),
    }.get(step.action, "")


def _groups(step: FaultStep) -> list[list[int]] | None:
    return [list(g) for g in step.groups] if step.groups is not None else None


def _params(step: FaultStep) -> dict[str, Any]:
    """The step's settings; a ring (no groups) also records who was cut from whom."""
    if step.groups is None and step.blocked:
        return {**step.settings, "blocked": sorted([list(p) for p in step.blocked])}
    return dict(step.settings)


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def describe(steps: list[FaultStep]) -> list[dict[str, Any]]:
    """The planned schedule for the History header."""
    return [{"id": s.id, "action": s.action, "nodes": list(s.nodes), "start": s.start,
             "end": s.end, "settings": s.settings,
             "groups": [list(g) for g in s.groups] if s.groups else None,
             "blocked": sorted([list(p) for p in s.blocked])} for s in steps]
