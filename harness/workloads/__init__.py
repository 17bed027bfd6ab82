"""Workloads: what the load's transactions do, beyond a family adapter's own default
(EVM transfers, CometBFT kv writes, Bitcoin payments). A registry found, not listed.

A workload is one module `harness/workloads/<family>_<id>.py` that declares
  ID           its kind, the suite's `workload.kind` (e.g. "erc20")
  FAMILY       the adapter family it runs on ("evm", "cometbft", "bitcoin")
  TITLE        one line for the report and `bctest validate`
  SETTINGS     JSON-Schema properties of the suite's `workload.settings`
  DEFAULTS     the settings' default values
  QUERY_KINDS  read kinds it adds to the query phase (may be empty)
  Workload     class Workload(adapter, settings, seed, accounts) with
                 async bootstrap(nodes, count) -> dict      after the adapter's bootstrap
                 prepare(count) -> list[Prepared]           signed, pre-built
                 async read_back(node, committed) -> dict   the chain's state vs. the run
               and, when QUERY_KINDS is not empty, query_subjects(kind, committed),
               query_request(kind, subject, request_id) and a static query_error(status, body)
               (the adapter's query hooks, harness/phases/query.py).
Adding one is adding that file (and its test). The modules must import nothing heavy at
module level: `bctest validate` and the suite loader read the registry.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import jsonschema

from harness.errors import InputError

REQUIRED = ("ID", "FAMILY", "TITLE", "SETTINGS", "DEFAULTS", "QUERY_KINDS", "Workload")


@dataclass(frozen=True)
class WorkloadSpec:
    """One registered workload (its module's declarations)."""

    id: str
    family: str
    title: str
    settings_schema: dict[str, Any]     # setting -> JSON Schema
    defaults: dict[str, Any]
    query_kinds: tuple[str, ...]
    module: str

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    def create(self, adapter: Any, settings: dict[str, Any], seed: int, accounts: int) -> Any:
        """A Workload object for one run, its settings merged over the DEFAULTS."""
        return self.load().Workload(adapter, {**self.defaults, **settings}, seed, accounts)

    @property
    def classifier(self) -> str:
        """The sender processes' reference to its query_error (harness/load/sender.py)."""
        return f"{self.module}:Workload.query_error"


def _is_workload(module: ModuleType) -> bool:
    return all(hasattr(module, name) for name in REQUIRED)


@cache
def registry() -> dict[tuple[str, str], WorkloadSpec]:
    """Every workload module in this package, keyed by (family, id)."""
    found: dict[tuple[str, str], WorkloadSpec] = {}
    for info in pkgutil.iter_modules(__path__, __name__ + "."):
        module = importlib.import_module(info.name)
        if not _is_workload(module):
            continue   # shared helpers (evm contracts, state readers)
        key = (module.FAMILY, module.ID)
        if key in found:
            raise RuntimeError(f"workload {key} is defined by both {found[key].module} and "
                               f"{module.__name__}")
        found[key] = WorkloadSpec(
            id=module.ID, family=module.FAMILY, title=module.TITLE,
            settings_schema=dict(module.SETTINGS), defaults=dict(module.DEFAULTS),
            query_kinds=tuple(module.QUERY_KINDS), module=module.__name__)
    return dict(sorted(found.items()))


def reload() -> None:
    """Forget what was discovered (tests that add a workload module)."""
    registry.cache_clear()


def find(family: str, kind: str | None) -> WorkloadSpec | None:
    """The registered workload `kind` of `family`, or None (the adapter's own, or unknown)."""
    if kind is None:
        return None
    return registry().get((family, kind))


def of_family(family: str) -> list[str]:
    return [kind for (fam, kind) in registry() if fam == family]


def resolve(family: str, offered: tuple[str, ...], kind: str | None, settings: dict[str, Any] | None,
            file: str) -> tuple[WorkloadSpec | None, dict[str, Any]]:
    """The suite's `workload.kind` + `workload.settings` for a family whose adapter offers
    `offered`: (None, {}) for the adapter's own, or (spec, settings merged over DEFAULTS).
    One InputError naming the field for an unknown kind, an unknown setting or a bad value."""
    given = dict(settings or {})
    if kind is None or kind in offered:
        if given:
            raise InputError(file, f"workload.settings.{sorted(given)[0]}", f"no settings: the "
                             f"'{family}' adapter's own workload '{kind or offered[0]}' takes none")
        return None, {}
    spec = find(family, kind)
    if spec is None:
        known = [*offered, *of_family(family)]
        raise InputError(file, "workload.kind", f"one of {', '.join(known)} for the '{family}' "
                         f"family, got '{kind}'")
    unknown = sorted(set(given) - set(spec.settings_schema))
    if unknown:
        raise InputError(file, f"workload.settings.{unknown[0]}", f"a setting of workload "
                         f"'{kind}' ({', '.join(sorted(spec.settings_schema)) or 'none'})")
    for name, value in given.items():
        try:
            jsonschema.validate(value, spec.settings_schema[name])
        except jsonschema.ValidationError as exc:
            raise InputError(file, f"workload.settings.{name}", f"{exc.message} "
                             f"(schema: {spec.settings_schema[name]})") from None
    return spec, {**spec.defaults, **given}
