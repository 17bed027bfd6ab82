"""junit.xml for CI: one test case per check, checker and requirement (a campaign: per case
and per requirement; a certification: also per claim of the vendor)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.report import certify_view
from harness.report.text import xml


def build(results: dict[str, Any]) -> ET.Element:
    campaign = results.get("format", "").startswith("bctest-campaign")
    title = results["name"] if campaign else results["suite"]["name"]
    suites = ET.Element("testsuites", name=f"bctest {title}")
    suite = ET.SubElement(suites, "testsuite", name=title, timestamp=results["started_at"])
    properties = ET.SubElement(suite, "properties")  # JUnit's schema wants it first
    chain = results.get("chain") or {}
    for name, value in (("run_id", results["run_id"]), ("chain", chain.get("name")),
                        ("chain_version", chain.get("version")),
                        ("image_id", (chain.get("image") or {}).get("id")),
                        ("sha256", results["sha256"] if campaign else results["suite"]["sha256"])):
        ET.SubElement(properties, "property", name=name, value=str(value))
    failures = skipped = 0
    if campaign:
        cases = [("cases", {"id": c["id"],   # an inconclusive case is skipped, not failed
                            "verdict": c["verdict"] if c["verdict"] in ("pass", "inconclusive") else "fail",
                            "why": f"case {c['id']}: {c['status']}, verdict {c['verdict']}"})
                 for c in results["cases"]]
    else:
        cases = [("checks", c) for c in results["checks"]] + \
                [("checkers", c) for c in results.get("checkers", [])] + \
                [("security", {"id": p["probe"], "verdict": p["verdict"],
                               "why": p.get("why") or p.get("reason")})
                 for p in (results.get("security") or {}).get("probes", [])]
    cases += [("requirements", r) for r in results.get("requirements", [])]
    if isinstance(results.get("certify"), dict):   # a `bctest certify` folder: each claim judged
        cases += [("claims", {"id": c["id"], "verdict": c["verdict"], "why": c["why"]["en"]})
                  for c in certify_view.claim_rows(results["certify"])]
    if results["status"] != "complete":
        cases.append(("run", {"id": "run completed", "verdict": "fail",
                              "why": results.get("status_reason") or "incomplete"}))
    for group, item in cases:
        classname = f"bctest.{group}" + (f".{item['category']}" if group == "requirements" else "")
        case = ET.SubElement(suite, "testcase", classname=classname, name=str(item.get("id")))
        verdict = item.get("verdict")
        if verdict == "fail":
            failures += 1
            ET.SubElement(case, "failure", message=item.get("why") or "failed")
        elif verdict in ("unknown", "inconclusive", "not-applicable"):
            skipped += 1
            ET.SubElement(case, "skipped", message=item.get("why") or verdict)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    for element in suites.iter():   # pack and node strings may hold what XML 1.0 cannot
        for key, value in element.attrib.items():
            element.set(key, xml(value))
    return suites


def write(run_dir: Path, results: dict[str, Any]) -> None:
    """junit.xml in `run_dir` (the report writer `junit`)."""
    path = run_dir / "junit.xml"
    tree = ET.ElementTree(build(results))
    ET.indent(tree)
    partial = path.with_suffix(".xml.partial")
    tree.write(partial, encoding="utf-8", xml_declaration=True)
    os.replace(partial, path)
