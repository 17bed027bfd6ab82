"""Report writers: each takes the run folder and its results and writes one file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.report import html, junit, sarif, summary


def write_reports(run_dir: Path, results: dict[str, Any]) -> None:
    junit.write(run_dir / "junit.xml", results)
    summary.write(run_dir / "summary.md", results)
    sarif.write(run_dir / "findings.sarif", results)
    html.write(run_dir / "report.html", results, run_dir)


def write_campaign_reports(run_dir: Path, results: dict[str, Any]) -> None:
    from harness.results import write_json

    write_json(run_dir / "results.json", results)
    junit.write(run_dir / "junit.xml", results)
    summary.write(run_dir / "summary.md", results)
    sarif.write(run_dir / "findings.sarif", results)
    html.write_campaign(run_dir / "report.html", results, run_dir)
