"""The certification rounds: one module each, found by listing this package.

A round module defines
  ID        the catalogue case it is evidence for (`pressure-4`, `bft-threshold` …)
  ORDER     its place in the program (lower first)
  PROFILES  the profiles that run it ("smoke", "quick", "full")
  TITLE     {"en": …, "zh": …}
  applies   (program) -> str | None: why it cannot apply to this pack (None: it applies)
  suite     (program) -> dict: its suite document, without name/case/chain/standards (the
            program adds those)
Adding a round is adding that file and its test.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType


@cache
def registry() -> list[ModuleType]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for attr in ("ID", "ORDER", "PROFILES", "TITLE", "applies", "suite"):
            if not hasattr(module, attr):
                raise TypeError(f"certification round {module.__name__} defines no {attr}")
        found.append(module)
    return sorted(found, key=lambda m: m.ORDER)
