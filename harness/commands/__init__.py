"""Commands of `bctest` that live in their own module (certify, submit, queue, worker,
scorecard …), found by listing this package, so adding a command is adding one file.

A command module defines
  NAME        the subcommand (`bctest NAME …`)
  HELP        one line for `bctest --help`
  configure   (parser: argparse.ArgumentParser) -> None: its arguments
  run         (args: argparse.Namespace, console: rich.console.Console) -> int: the exit code;
              bad input raises harness.errors.InputError (exit 2, one message), never a traceback
The older commands (run, validate, report, …) are still functions in harness/cli.py.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def modules() -> list[ModuleType]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for attr in ("NAME", "HELP", "configure", "run"):
            if not hasattr(module, attr):
                raise TypeError(f"command module {module.__name__} defines no {attr}")
        found.append(module)
    return found
