"""findings.sarif: security findings in SARIF 2.1.0 (for code-scanning dashboards).

Security requirements that failed are the findings; until security cases exist the log
is valid and empty, and says which requirements were judged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVEL = {"fail": "error", "inconclusive": "warning"}


def build(results: dict[str, Any]) -> dict[str, Any]:
    security = [r for r in results.get("requirements", []) if r["category"] == "security"]
    rules = [{"id": r["id"], "name": r["id"], "shortDescription": {"text": r["title"]["en"]},
              "fullDescription": {"text": r["title"]["zh"]},
              "properties": {"obligation": r["obligation"], "source": r["source"]}} for r in security]
    findings = [{"ruleId": r["id"], "level": LEVEL[r["verdict"]],
                 "message": {"text": r.get("why") or r["verdict"]},
                 "locations": [{"physicalLocation": {"artifactLocation": {
                     "uri": e.get("history") or "history.jsonl"}}} for e in r.get("evidence", [])][:1]
                 or [{"physicalLocation": {"artifactLocation": {"uri": "results.json"}}}]}
                for r in security if r["verdict"] in LEVEL]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "bctest", "version": results["harness"]["version"],
                                "informationUri": "https://bctest.dev", "rules": rules}},
            "automationDetails": {"id": f"bctest/{results['run_id']}"},
            "results": findings,
            "properties": {"chain": (results.get("chain") or {}).get("name"),
                           "security_requirements_judged": len(security)},
        }],
    }


def write(run_dir: Path, results: dict[str, Any]) -> None:
    """findings.sarif in `run_dir` (the report writer `sarif`)."""
    path = run_dir / "findings.sarif"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(build(results), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)
