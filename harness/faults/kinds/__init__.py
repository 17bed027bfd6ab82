"""The fault-kind registry: one module per `action:`, found by listing this package.

A kind module defines KIND, an instance of base.FaultKind: its settings (the suite
schema's fault part is generated from them), whether it is instant, whether it
crashes or takes its nodes out (the checkers read that), whether it needs the
network-namespace preflight, how it applies and heals, its method text and when it
must be skipped. Adding a fault kind is one new file here, plus its test.

Importing this package, or calling anything below, never imports the docker SDK or
aiohttp: the judge layer reads these declarations without an engine.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.faults.kinds.base import ContainerOptions, FaultContext, FaultKind

if TYPE_CHECKING:
    from harness.faults.schedule import FaultStep

__all__ = ["ContainerOptions", "FaultContext", "FaultKind", "container_options", "crash_kinds",
           "find", "get", "names", "needs_preflight", "network_kinds", "registry", "schema",
           "setting_names"]


@cache
def registry() -> dict[str, FaultKind]:
    """Every kind by its action name, in module-name order. Modules whose names start with
    '_' (shared helpers) and `base` are not kinds."""
    found: dict[str, FaultKind] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if not isinstance(kind, FaultKind):
            raise TypeError(f"{module.__name__} defines no KIND (a harness.faults.kinds.base.FaultKind)")
        if kind.name in found:
            raise TypeError(f"fault kind '{kind.name}' is defined twice ({module.__name__})")
        found[kind.name] = kind
    _check_settings(found.values())
    return found


def _check_settings(kinds: Iterable[FaultKind]) -> None:
    """A setting two kinds share must mean the same: the schema has one property per key."""
    seen: dict[str, tuple[str, dict[str, Any]]] = {}
    for kind in kinds:
        for key, fragment in kind.settings.items():
            if key in seen and seen[key][1] != fragment:
                raise TypeError(f"setting '{key}' of fault kind '{kind.name}' differs from "
                                f"'{seen[key][0]}''s")
            seen.setdefault(key, (kind.name, fragment))
        missing = [key for key in kind.required if key not in kind.settings]
        if missing:
            raise TypeError(f"fault kind '{kind.name}' requires undeclared settings {missing}")


def names() -> tuple[str, ...]:
    return tuple(registry())


def get(name: str) -> FaultKind:
    return registry()[name]


def find(name: str) -> FaultKind | None:
    """The kind, or None for an action this version does not know (e.g. an old History's)."""
    return registry().get(name)


def setting_names() -> tuple[str, ...]:
    """Every kind's setting keys, each once, in registry order."""
    return tuple(dict.fromkeys(key for kind in registry().values() for key in kind.settings))


def crash_kinds() -> tuple[str, ...]:
    """Kinds that interrupt the node's process (durability's crashed/resynced nodes)."""
    return tuple(name for name, kind in registry().items() if kind.crash)


def network_kinds() -> tuple[str, ...]:
    """Kinds that run iptables/tc in the nodes' network namespaces."""
    return tuple(name for name, kind in registry().items() if kind.network)


def needs_preflight(steps: Iterable[FaultStep]) -> bool:
    """Does any step need harness.faults.netns.preflight() before the run starts?"""
    return any(find(step.action) is not None and get(step.action).network for step in steps)


def container_options(steps: list[FaultStep], count: int, workdir: Path) -> dict[int, ContainerOptions]:
    """node index -> what its container needs at creation for the run's faults (e.g. the
    skew kind's LD_PRELOAD). Nodes nothing asks for are left out."""
    out: dict[int, ContainerOptions] = {}
    for name, kind in registry().items():
        mine = [s for s in steps if s.action == name]
        if not mine:
            continue
        for index in range(count):
            options = kind.container_options(mine, index, workdir)
            if options is not None:
                out[index] = out[index].merged(options) if index in out else options
    return out


def schema(common: dict[str, Any]) -> dict[str, Any]:
    """The suite schema's fault item: the schedule's own keys (`common`: id, target, at,
    duration, until, repeat) plus `action` (the kinds) and every kind's settings."""
    item = copy.deepcopy(common)
    item.pop("$comment", None)
    item["additionalProperties"] = False
    properties = item.setdefault("properties", {})
    properties["action"] = {"enum": list(names()),
                            "description": "the fault kind (harness/faults/kinds/<action>.py)"}
    for kind in registry().values():
        for key, fragment in kind.settings.items():
            properties[key] = copy.deepcopy(fragment)
    return item
