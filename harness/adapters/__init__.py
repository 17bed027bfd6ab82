"""Chain adapters, one module per chain family, found through the entry-point group
`bctest.adapters` so a vendor can ship an adapter as a separate pip package."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from harness.errors import InputError

if TYPE_CHECKING:
    from harness.adapters.base import Adapter, Block, Prepared

GROUP = "bctest.adapters"


def installed() -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def adapter_class(family: str, manifest: str | None = None) -> type[Adapter]:
    found = installed()
    if family not in found:
        raise InputError(manifest, "family", f"no adapter '{family}' is installed (installed: "
                         f"{', '.join(sorted(found)) or 'none'}; adapters register in the "
                         f"entry-point group '{GROUP}')")
    try:
        return found[family].load()
    except Exception as exc:  # a broken vendor package must not crash the harness
        raise InputError(manifest, "family", f"adapter '{family}' is installed but failed to load "
                         f"({found[family].value}): {type(exc).__name__}: {exc}") from None


def workload_for(adapter: type[Adapter], requested: str | None, suite_file: str) -> str:
    """The suite's workload kind if the adapter can generate it, else its default."""
    offered = getattr(adapter, "workloads", ("transfer",))
    if requested is None:
        return offered[0]
    if requested not in offered:
        from harness import workloads  # a registered workload of the family (harness/workloads/)
        if workloads.find(adapter.family, requested) is not None:
            return requested
        raise InputError(suite_file, "workload.kind", f"the '{adapter.family}' adapter generates "
                         f"{', '.join(offered)}, not {requested}")
    return requested


def __getattr__(name: str) -> Any:
    # Lazily: importing a pure module of this package (bitcoin_tx, evm_tx; the audit does)
    # must not load base.py's network and engine clients.
    if name in ("Adapter", "Block", "Prepared"):
        from harness.adapters import base
        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Adapter", "Block", "Prepared", "adapter_class", "installed", "workload_for"]
