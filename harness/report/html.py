"""report.html (placeholder until the full report lands)."""

from __future__ import annotations

import html as escape
import json
from pathlib import Path
from typing import Any


def write(path: Path, results: dict[str, Any], run_dir: Path) -> None:
    path.write_text("<!doctype html><meta charset=utf-8><title>bctest</title><pre>"
                    + escape.escape(json.dumps(results["phases"], indent=2)) + "</pre>")
