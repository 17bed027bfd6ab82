"""What runs beside the load on the run clock, behind one small event hook.

The block watchers, the nemesis and the resource sampler are companions: the load stage
tells the hook when the schedule starts (t0) and ends; the run closes the hook after the
settle (and on any exit). A new companion is a class with these three methods, not a
closure threaded through the load.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol


class Companion(Protocol):
    def started(self, t0: float) -> None:
        """The first scheduled send is at monotonic time t0 (called in the event loop)."""

    async def load_ended(self, interrupted: bool) -> None:
        """The send schedule ended (fully, or stopped early when `interrupted`)."""

    async def close(self) -> None:
        """After the settle and on any exit: stop, release, make nothing stay broken."""


class Hooks:
    """The companions of one run, told of the load's start and end, closed once."""

    def __init__(self) -> None:
        self.companions: list[Companion] = []
        self.warnings: list[str] = []
        self._closed = False

    def add(self, companion: Companion) -> Companion:
        self.companions.append(companion)
        return companion

    def started(self, t0: float) -> None:
        for companion in self.companions:
            companion.started(t0)

    async def load_ended(self, interrupted: bool) -> None:
        for companion in self.companions:
            await companion.load_ended(interrupted)

    async def close(self) -> None:
        """Close every companion, last added first; one failing does not stop the others."""
        if self._closed:
            return
        self._closed = True
        for companion in reversed(self.companions):
            try:
                await companion.close()
            except Exception as exc:  # evidence for the report, never a crash of the teardown
                self.warnings.append(f"{type(companion).__name__} failed to close: "
                                     f"{type(exc).__name__}: {exc}"[:300])


class Watchers:
    """One block watcher per node feeding the tracker, and the adapter's driver (e.g. the
    block producer of a regtest chain) beside them. They start at once (before t0, so the
    first blocks of the window are seen) and stop at close()."""

    def __init__(self, adapter: Any, nodes: list[Any], on_block: Any, subscribe: bool,
                 poll_interval: float):
        self.stop = asyncio.Event()
        self.tasks = {node.name: asyncio.create_task(adapter.watch(
            node, on_block, self.stop, subscribe, poll_interval)) for node in nodes}
        self.driver = asyncio.create_task(adapter.drive(nodes, self.stop))
        self.warnings: list[str] = []
        self.methods: dict[str, str] = {}

    def started(self, t0: float) -> None:
        pass

    async def load_ended(self, interrupted: bool) -> None:
        pass

    async def close(self) -> None:
        self.stop.set()
        try:
            await asyncio.wait_for(self.driver, 10)
        except Exception as exc:  # the driver's failure shows in what was (not) committed
            self.warnings.append(f"the chain driver failed: {type(exc).__name__}: {exc}"[:300])
        for name, task in self.tasks.items():
            try:
                self.methods[name] = await asyncio.wait_for(task, 10)
            except Exception as exc:  # a dead watcher is evidence, not a crash of the run
                self.methods[name] = f"failed: {type(exc).__name__} {exc}"[:200]


class NemesisCompanion:
    """Applies the fault schedule from t0; at the load's end every fault is healed before the
    settle starts; at close anything still applied is healed (error, Ctrl-C)."""

    def __init__(self, nemesis: Any):
        self.nemesis = nemesis
        self.stop = asyncio.Event()
        self.task: asyncio.Task | None = None

    def started(self, t0: float) -> None:
        self.task = asyncio.create_task(self.nemesis.run(t0, self.stop))

    async def load_ended(self, interrupted: bool) -> None:
        if self.task is not None:    # the schedule heals by the end of the load
            if interrupted:
                self.stop.set()
            await self.task
        await self.nemesis.heal_all()

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        await self.nemesis.heal_all()   # on any exit: nothing stays broken


class SamplerCompanion:
    """Samples each node's CPU, memory and network from t0 until close."""

    def __init__(self, sampler: Any):
        self.sampler = sampler
        self.stop = asyncio.Event()
        self.task: asyncio.Task | None = None

    def started(self, t0: float) -> None:
        self.task = asyncio.create_task(self.sampler.run(t0, self.stop))

    async def load_ended(self, interrupted: bool) -> None:
        pass

    async def close(self) -> None:
        self.stop.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 30)
