"""The nemesis schedule: a suite's `faults:` list turned into concrete steps.

Pure: which nodes each fault hits, when it starts and heals, and for partitions who
can still reach whom. The run clock's 0 is the first scheduled send. Count targets
(one, minority, majority, f, f+1, all) take the highest-numbered nodes, so a suite can
keep its load on the low ones (`load.nodes`); `random` picks one node per repetition
with the suite's seed; with a topology, `zone:<name>` takes a zone and the zones below it
and `tier:<name>` a tier. What each action needs and how it places its nodes is its kind's
(harness/faults/kinds/).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from harness.errors import InputError
from harness.faults import kinds
from harness.topology import Topology


@dataclass(frozen=True)
class FaultStep:
    """One application of a fault: nodes, start and heal time on the run clock."""

    id: str
    action: str
    nodes: tuple[int, ...]                       # partitions: the side cut off (all for ring)
    start: float
    end: float                                   # == start for instant actions
    settings: dict[str, Any] = field(default_factory=dict)
    groups: tuple[tuple[int, ...], ...] | None = None     # partitions by group
    blocked: frozenset[tuple[int, int]] = frozenset()     # node pairs that cannot talk


QUORUM_TARGETS = ("minority", "majority", "f", "f+1")   # sized by the fault model


def target_count(target: str, nodes: int, tolerated: int) -> int:
    return {"one": 1, "minority": (nodes - 1) // 2, "majority": nodes // 2 + 1, "f": tolerated,
            "f+1": tolerated + 1, "all": nodes}[target]


def resolve_target(target: Any, nodes: int, tolerated: int, rng: random.Random,
                   file: str, where: str, topology: Topology | None = None) -> tuple[int, ...]:
    if isinstance(target, str) and target.startswith(("zone:", "tier:")):
        if topology is None:
            raise InputError(file, where, f"a node count or names; '{target}' needs the suite's topology")
        try:
            chosen = topology.nodes_in(target)
        except KeyError:
            known = ", ".join(z.name for z in topology.zones)
            raise InputError(file, where, f"a zone ({known}) or tier of this topology, "
                             f"got {target!r}") from None
        if not chosen:
            raise InputError(file, where, f"a selector that names at least one node; {target!r} names none")
        return chosen
    if isinstance(target, list):
        indexes = []
        for name in target:
            index = int(name.removeprefix("node"))
            if index >= nodes:
                raise InputError(file, where, f"a node of this {nodes}-node network "
                                 f"(node0..node{nodes - 1}), got {name}")
            indexes.append(index)
        return tuple(sorted(indexes))
    if target == "random":
        return (rng.randrange(nodes),)
    if topology is not None and target in QUORUM_TARGETS:
        # The fault model is the consensus participants': f of a topology is f of its root
        # tier, so `f+1` takes root nodes (the highest-numbered ones), never the regions.
        pool = topology.tier_nodes("root")
        count = target_count(target, len(pool), tolerated)
        if count < 1:
            raise InputError(file, where, f"a target that selects at least one node; '{target}' "
                             f"selects none of the {len(pool)} root nodes (tolerates {tolerated})")
        return pool[len(pool) - count:]
    count = target_count(target, nodes, tolerated)
    if count < 1:
        raise InputError(file, where, f"a target that selects at least one node; '{target}' "
                         f"selects none with {nodes} nodes (fault model tolerates {tolerated})")
    if count > nodes:
        raise InputError(file, where, f"at most {nodes} nodes; '{target}' needs {count}")
    return tuple(range(nodes - count, nodes))


def partition(shape: str, targets: tuple[int, ...], nodes: int
              ) -> tuple[tuple[tuple[int, ...], ...] | None, frozenset[tuple[int, int]]]:
    """Groups (None for a ring) and the node pairs that can no longer talk."""
    everyone = tuple(range(nodes))
    if shape == "isolate":
        rest = tuple(i for i in everyone if i not in targets)
        groups: tuple[tuple[int, ...], ...] | None = (rest, targets)
    elif shape == "halves":
        half = (nodes + 1) // 2
        groups = (everyone[:half], everyone[half:])
    elif shape == "bridge":  # Jepsen's bridge: two halves that share one node
        middle = nodes // 2
        groups = (everyone[:middle + 1], everyone[middle:])
    else:  # ring: each node still reaches its two neighbours, nobody else
        groups = None
        near = {frozenset((i, (i + 1) % nodes)) for i in everyone}
        return None, frozenset(p for p in itertools.combinations(everyone, 2)
                               if frozenset(p) not in near)
    blocked = frozenset(p for p in itertools.combinations(everyone, 2)
                        if not any(p[0] in g and p[1] in g for g in groups))
    return groups, blocked


def plan(faults: list[dict[str, Any]], nodes: int, tolerated: int, seed: int, load_end: float,
         file: str, topology: Topology | None = None) -> list[FaultStep]:
    """Every step of every fault, in start order. Errors name the suite field."""
    steps = []
    for number, fault in enumerate(faults):
        where = f"faults[{number}]"
        action = fault["action"]
        kind = kinds.get(action)   # the schema admitted only registered kinds
        fault_id = fault.get("id", f"{action}-{number}")
        for needed in kind.required:
            if needed not in fault:
                raise InputError(file, f"{where}.{needed}", f"required for action '{action}'")
        if not kind.instant and "duration" not in fault and "until" not in fault:
            raise InputError(file, f"{where}.duration", f"'duration' or 'until' for action '{action}'")
        if "duration" in fault and "until" in fault:
            raise InputError(file, f"{where}.until", "either 'duration' or 'until', not both")
        if "until" in fault and fault["until"] <= fault["at"]:
            raise InputError(file, f"{where}.until", f"a time after 'at' ({fault['at']})")
        length = 0.0
        if not kind.instant:
            length = fault.get("duration", fault.get("until", 0) - fault["at"])
        repeat = fault.get("repeat", {"every": 0, "times": 1})
        if repeat["times"] > 1 and repeat["every"] < length:
            raise InputError(file, f"{where}.repeat.every", f"at least the fault's length ({length} s): "
                             "a repetition starts after the previous one healed")
        rng = random.Random(f"{seed}:{number}")
        settings = {key: fault[key] for key in kinds.setting_names() if key in fault}
        for k in range(repeat["times"]):
            start = fault["at"] + k * repeat["every"]
            end = start + length
            if end > load_end:
                raise InputError(file, where, f"a fault that heals by the end of the load "
                                 f"({load_end:g} s on the run clock); repetition {k + 1} heals at {end:g} s")
            targets = resolve_target(fault.get("target", kind.default_target(fault)), nodes, tolerated,
                                     rng, file, f"{where}.target", topology)
            targets, groups, blocked = kind.place(fault, targets, nodes, file, where)
            steps.append(FaultStep(
                id=fault_id if repeat["times"] == 1 else f"{fault_id}#{k + 1}", action=action,
                nodes=targets, start=float(start), end=float(end), settings=dict(settings),
                groups=groups, blocked=blocked))
    return sorted(steps, key=lambda s: (s.start, s.id))
