"""The nemesis: applies the schedule's faults to the running network and heals them.

It runs beside the load on the run clock. Each step is applied at its start and healed
at its end; whatever is still applied when the run stops (end of load, error, Ctrl-C)
is healed by heal_all(), and a container's network rules and qdiscs die with the
container at teardown in any case. What was done, when, and how goes to the History
as FaultRecords.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import docker.errors

from harness.errors import InfraError
from harness.faults import kinds
from harness.faults.kinds.base import STOP_TIMEOUT, FaultContext, FaultKind
from harness.faults.schedule import FaultStep
from harness.model import FaultRecord, Node
from harness.runtime.docker import DockerRuntime

# Kept for run.py (netns.preflight when any step is one); prefer kinds.needs_preflight(steps).
NETWORK_ACTIONS = kinds.network_kinds()
__all__ = ["NETWORK_ACTIONS", "STOP_TIMEOUT", "Nemesis", "describe"]
_FAILURES = (InfraError, docker.errors.APIError, OSError)


class Nemesis:
    def __init__(self, runtime: DockerRuntime, nodes: list[Node], steps: list[FaultStep],
                 on_event: Callable[[str], None] = lambda message: None):
        self.runtime = runtime
        self.nodes = nodes
        self.steps = steps
        self.on_event = on_event
        self.records: dict[str, FaultRecord] = {}
        self.active: dict[str, FaultStep] = {}
        self.contexts: dict[str, FaultContext] = {}   # step id -> its kind's state, apply to heal
        self.number = {step.id: number for number, step in enumerate(steps)}
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

    # -- applying and healing: the schedule and the record here, the work in the kind ------

    async def _apply(self, step: FaultStep) -> None:
        kind = kinds.get(step.action)
        record = FaultRecord(id=step.id, action=step.action, nodes=list(step.nodes), start=None,
                             end=None, status="skipped", method="", groups=_groups(step),
                             params=_params(step))
        ctx = FaultContext(runtime=self.runtime, nodes=self.nodes, step=step,
                           number=self.number.get(step.id, 0), params=record.params, say=self.on_event)
        record.method = kind.method(ctx)
        self.records[step.id] = record
        self.contexts[step.id] = ctx
        names = ", ".join(self.nodes[i].name for i in step.nodes)
        try:
            reason = await asyncio.to_thread(kind.skip_reason, ctx)
        except _FAILURES as exc:
            reason = f"{step.action} not applied: {_short(exc)}"
        record.method = kind.method(ctx)   # the kind may have chosen how (delay: netem or nfqueue)
        if reason is not None:
            record.reason = reason
            self.on_event(f"fault {step.id}: skipped ({reason})")
            return
        begun = self._now()
        try:
            await asyncio.to_thread(kind.apply, ctx)
        except _FAILURES as exc:
            record.status, record.reason = "failed", f"apply: {_short(exc)}"
            self.on_event(f"fault {step.id}: {step.action} {names} failed: {record.reason}")
            await asyncio.to_thread(_heal_quietly, kind, ctx)
            return
        record.start = begun
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
            await asyncio.to_thread(kinds.get(step.action).heal, self.contexts[step.id])
            record.status = "healed"
        except _FAILURES as exc:
            record.status, record.reason = "failed", f"heal: {_short(exc)}"
        record.end = self._now()
        self.on_event(f"fault {step.id}: healed at {record.end:.1f} s"
                      + (f" ({record.reason})" if record.reason else ""))


def _heal_quietly(kind: FaultKind, ctx: FaultContext) -> None:
    try:
        kind.heal(ctx)
    except _FAILURES:
        pass  # half-applied rules die with the container at teardown


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
