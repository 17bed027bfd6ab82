"""results.json (the report writer `json`): the judged results as they are, atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write(run_dir: Path, results: dict[str, Any]) -> None:
    path = run_dir / "results.json"
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)
