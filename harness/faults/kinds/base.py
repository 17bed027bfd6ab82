"""What a fault kind is: the declarations schedule, schema and checkers read, and the
apply/heal hooks the nemesis calls.

Importing this (and every kind file) must not import the docker SDK or aiohttp: the
checkers read the declarations, and the judge layer runs without an engine. The
runtime reaches a kind only through the FaultContext, at apply and heal time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from harness.faults.schedule import FaultStep

STOP_TIMEOUT = 10  # seconds `stop` and `restart` give a node to shut down before SIGKILL


@dataclass
class FaultContext:
    """One step's view of the running network, kept from its apply to its heal."""

    runtime: Any                      # harness.runtime.docker.DockerRuntime (not imported here)
    nodes: list[Any]                  # harness.runtime.docker.Node, by index
    step: FaultStep
    number: int                       # the step's place in the schedule (names its rules)
    params: dict[str, Any]            # the FaultRecord's params: what was really done
    state: dict[str, Any] = field(default_factory=dict)   # the kind's own, apply -> heal
    say: Callable[[str], None] = lambda message: None     # a console line

    def targets(self) -> list[Any]:
        return [self.nodes[i] for i in self.step.nodes]


@dataclass(frozen=True)
class ContainerOptions:
    """What a kind needs in a node's container from its creation on (the environment is
    fixed at create): read-only bind mounts (host path -> container path) and variables."""

    binds: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)

    def merged(self, other: ContainerOptions) -> ContainerOptions:
        return ContainerOptions({**self.binds, **other.binds}, {**self.environment, **other.environment})


class FaultKind:
    """One `action:` of the suite's faults. Subclass it in a module of this package and
    bind one instance to the module-level name KIND; the registry finds it."""

    name: ClassVar[str]
    settings: ClassVar[dict[str, dict[str, Any]]] = {}   # suite key -> JSON Schema fragment
    required: ClassVar[tuple[str, ...]] = ()             # settings a suite must give
    instant: ClassVar[bool] = False      # applied and done (no duration, nothing to heal)
    crash: ClassVar[bool] = False        # interrupts the node's process (durability: crashed/resynced)
    takes_out: ClassVar[bool] = False    # the targets are out while it lasts (fault_tolerance)
    network: ClassVar[bool] = False      # runs iptables/tc in node namespaces: needs netns.preflight
    description: ClassVar[str] = ""      # the method text recorded in the History

    def judged_out(self, nodes: int, tolerated: int) -> bool:
        """Does fault_tolerance judge what the others did while `nodes` targets were out?
        An instant fault is over too fast to judge."""
        return self.takes_out and not self.instant

    def default_target(self, fault: dict[str, Any]) -> str:
        """The suite's `target` when it names none."""
        return "one"

    def place(self, fault: dict[str, Any], targets: tuple[int, ...], nodes: int, file: str, where: str
              ) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...] | None, frozenset[tuple[int, int]]]:
        """(nodes acted on, groups, node pairs cut) for one step, from its resolved targets;
        partitions draw their groups here. InputError naming `where` for a shape that
        cannot be."""
        return targets, None, frozenset()

    def method(self, ctx: FaultContext) -> str:
        """How it is done, for FaultRecord.method."""
        return self.description

    def skip_reason(self, ctx: FaultContext) -> str | None:
        """Why this step cannot be applied here, or None. Blocking: runs in a thread."""
        return None

    def apply(self, ctx: FaultContext) -> None:
        """Apply the step on its targets. Blocking: runs in a thread."""
        raise NotImplementedError

    def heal(self, ctx: FaultContext) -> None:
        """Undo apply (also after a half-done apply). Blocking: runs in a thread."""

    def container_options(self, steps: list[FaultStep], index: int, workdir: Path) -> ContainerOptions | None:
        """What node `index`'s container needs at creation for this kind's `steps`."""
        return None
