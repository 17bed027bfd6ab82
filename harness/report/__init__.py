"""Report writers: each takes the run folder and its results and writes one file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.report import html, junit


def write_reports(run_dir: Path, results: dict[str, Any]) -> None:
    junit.write(run_dir / "junit.xml", results)
    html.write(run_dir / "report.html", results, run_dir)
