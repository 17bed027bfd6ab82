"""findings.sarif: the security findings in SARIF 2.1.0 (for code-scanning dashboards).

One rule per security probe the run ran (its id, title and the severity of its worst
finding), one result per failed attempt: the node, the case, the exact request sent and the
answer got (in the result's properties, so a vendor can replay it). Failed security
requirements of a catalogue are results too, under a rule of their own. A run without
probes writes a valid, empty log that says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# SARIF has three levels; a tester's five severities map onto them
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
# GitHub-style numeric severity, which dashboards sort by
SCORE = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}


def _probe_rule(probe: dict[str, Any]) -> dict[str, Any]:
    severity = probe.get("severity") or "info"
    return {"id": probe["probe"], "name": probe["probe"],
            "shortDescription": {"text": probe["title"]},
            "defaultConfiguration": {"level": LEVEL[severity]},
            "properties": {"verdict": probe["verdict"], "security-severity": SCORE[severity],
                           "counts": probe["counts"], "status": probe["status"]}}


def _attempt_result(probe: dict[str, Any], attempt: dict[str, Any], run_id: str) -> dict[str, Any]:
    where = f"{probe['case']}/" if probe.get("case") else ""   # a campaign's case
    fingerprint = f"{where}{probe['probe']}/{attempt['case']}/{attempt['node']}"
    return {"ruleId": probe["probe"], "level": LEVEL[attempt["severity"]],
            "message": {"text": f"{attempt['node']}: {attempt['title']}: {attempt['why']}".strip(": ")},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": "results.json"}},
                           "logicalLocations": [{"name": attempt["node"], "kind": "node"}]}],
            "partialFingerprints": {"bctest/case": fingerprint},
            "properties": {"case": attempt["case"], "node": attempt["node"],
                           "severity": attempt["severity"], "request": attempt["request"],
                           "answer": attempt["answer"], "run": run_id,
                           **({"campaign_case": probe["case"]} if probe.get("case") else {})}}


def build(results: dict[str, Any]) -> dict[str, Any]:
    security = results.get("security") or {"probes": []}
    probes = [p for p in security["probes"] if p["status"] != "not-applicable"]
    rules = list({p["probe"]: _probe_rule(p) for p in probes}.values())   # a rule once per probe
    findings = [_attempt_result(p, a, results["run_id"]) for p in probes for a in p["attempts"]
                if a["verdict"] == "fail"]
    requirements = [r for r in results.get("requirements", []) if r["category"] == "security"]
    failed = [r for r in requirements if r["verdict"] == "fail"]
    for r in failed:
        rules.append({"id": r["id"], "name": r["id"], "shortDescription": {"text": r["title"]["en"]},
                      "fullDescription": {"text": r["title"]["zh"]},
                      "properties": {"obligation": r["obligation"], "source": r["source"]}})
        findings.append({"ruleId": r["id"], "level": "error", "message": {"text": r.get("why") or "fail"},
                         "locations": [{"physicalLocation": {"artifactLocation": {"uri": "results.json"}}}]})
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "bctest", "version": results["harness"]["version"],
                                "informationUri": "https://bctest.dev", "rules": rules}},
            "automationDetails": {"id": f"bctest/{results['run_id']}"},
            "results": findings,
            "properties": {"chain": (results.get("chain") or {}).get("name"),
                           "probes_run": [p["probe"] for p in probes],
                           "probes_not_applicable": [p["probe"] for p in security["probes"]
                                                     if p["status"] == "not-applicable"],
                           "security_requirements_judged": len(requirements)},
        }],
    }


def write(run_dir: Path, results: dict[str, Any]) -> None:
    """findings.sarif in `run_dir` (the report writer `sarif`)."""
    path = run_dir / "findings.sarif"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(build(results), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)
