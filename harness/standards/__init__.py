"""Standards: requirement catalogues (catalogue), the metrics they may name (metrics) and
the requirement verdicts (verdicts). See docs/standards.md."""

from __future__ import annotations

from typing import Any

from harness.standards import verdicts
from harness.standards.catalogue import Catalogue


def entry(catalogue: Catalogue) -> dict[str, Any]:
    """How a catalogue travels with a run: its identity and its whole text, so the run can
    be re-judged (and verified) without the file."""
    return {"id": catalogue.id, "version": catalogue.version, "title": catalogue.title,
            "file": str(catalogue.path), "sha256": catalogue.sha256, "document": catalogue.document}


def judge_all(catalogues: list[dict[str, Any]], cases: dict[str, dict[str, Any]],
              program: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every catalogue judged on the same cases; the certification grade over all of them
    (`program`: a certification program's skipped cases and node limit, verdicts.judge)."""
    requirements, summaries = [], []
    for catalogue in catalogues:
        judged = verdicts.judge(catalogue["document"], cases, program)
        requirements += [{**r, "standard": catalogue["id"]} for r in judged["requirements"]]
        summaries.append({k: catalogue[k] for k in ("id", "version", "title", "file", "sha256",
                                                      "document")}
                         | {"grade": judged["grade"], "verdict": judged["verdict"],
                            "counts": judged["counts"]})
    return {"requirements": requirements, "standards": summaries,
            "certification": verdicts.grade(requirements)}
