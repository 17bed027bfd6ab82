"""Security probes: the registry, found by listing harness/security/probes/.

A probe is one module there that defines
  ID        its id (the suite's `security.probes` entry, results.json's security[].probe)
  ORDER     its place in the run order (lower first)
  TITLE     {"en": ..., "zh": ...}: what it attacks, one line
  SEVERITY  the default severity of its attempts (harness.model.SEVERITIES)
  DEFAULTS  its settings with their default values (the suite's `security.settings.<id>`)
  SETTINGS  (optional) the JSON Schema of each setting
  run       async (target: harness.security.probe.ProbeTarget) -> list[Attempt]; raises
            harness.security.probe.NotApplicable(reason) when the family cannot be probed so
Adding a probe is adding that file and its tests (a stub node doing the wrong thing, and a
real node). The security stage (harness/phases/security.py) runs the suite's probes after
the load, with a time budget each, and judges survival (the nodes still run and still
make blocks) after every probe itself.

Importing this package reads only the registry; probes import their network code lazily.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

from harness.model import SEVERITIES


@dataclass(frozen=True)
class Probe:
    id: str
    order: int
    title: dict[str, str]
    severity: str
    defaults: dict[str, Any]
    settings_schema: dict[str, Any]
    module: ModuleType

    async def run(self, target: Any) -> list[Any]:
        return await self.module.run(target)


def _probe(module: ModuleType) -> Probe:
    name = module.__name__
    for attr in ("ID", "ORDER", "TITLE", "SEVERITY", "run"):
        if not hasattr(module, attr):
            raise TypeError(f"security probe {name} defines no {attr}")
    if module.SEVERITY not in SEVERITIES:
        raise TypeError(f"security probe {name}: SEVERITY {module.SEVERITY!r} is not one of {SEVERITIES}")
    return Probe(id=module.ID, order=module.ORDER, title=dict(module.TITLE), severity=module.SEVERITY,
                 defaults=dict(getattr(module, "DEFAULTS", {})),
                 settings_schema=dict(getattr(module, "SETTINGS", {})), module=module)


def probe_ids() -> list[str]:
    """The probes' ids without importing them (a probe's ID is its module's name): what the
    judge layer may know of the registry without loading any network code."""
    import harness.security.probes as package

    return sorted(info.name for info in pkgutil.iter_modules(package.__path__)
                  if not info.name.startswith("_"))


@cache
def registry() -> dict[str, Probe]:
    """Every probe by id, in run order. Modules whose names start with '_' are helpers."""
    import harness.security.probes as package

    found: dict[str, Probe] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        probe = _probe(importlib.import_module(f"{package.__name__}.{info.name}"))
        if probe.id != info.name:   # the judge layer finds ids by module name (probe_ids)
            raise TypeError(f"security probe {probe.module.__name__}: ID {probe.id!r} must be "
                            f"its module's name {info.name!r}")
        found[probe.id] = probe
    return dict(sorted(found.items(), key=lambda item: (item[1].order, item[0])))


def names() -> list[str]:
    return list(registry())


def settings_schema() -> dict[str, Any]:
    """The suite's `security.settings`: per probe, an object of that probe's settings."""
    return {"type": "object", "additionalProperties": False,
            "properties": {probe.id: {"type": "object", "additionalProperties": False,
                                      "properties": {key: probe.settings_schema.get(key, {})
                                                     for key in probe.defaults}}
                           for probe in registry().values()}}
