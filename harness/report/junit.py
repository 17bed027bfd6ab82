"""junit.xml for CI: one test case per check (and, later, per requirement)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def build(results: dict[str, Any]) -> ET.Element:
    suites = ET.Element("testsuites", name=f"bctest {results['suite']['name']}")
    suite = ET.SubElement(suites, "testsuite", name=results["suite"]["name"],
                          timestamp=results["started_at"])
    properties = ET.SubElement(suite, "properties")  # JUnit's schema wants it first
    for name, value in (("run_id", results["run_id"]), ("chain", results["chain"]["name"]),
                        ("chain_version", results["chain"]["version"]),
                        ("image_id", results["chain"]["image"]["id"]),
                        ("suite_sha256", results["suite"]["sha256"])):
        ET.SubElement(properties, "property", name=name, value=str(value))
    failures = skipped = 0
    cases = [("checks", c) for c in results["checks"]] + \
            [("checkers", c) for c in results.get("checkers", [])] + \
            [("requirements", r) for r in results.get("requirements", [])]
    if results["status"] != "complete":
        cases.append(("run", {"id": "run completed", "verdict": "fail",
                              "why": results.get("status_reason") or "incomplete"}))
    for group, item in cases:
        case = ET.SubElement(suite, "testcase", classname=f"bctest.{group}",
                             name=str(item.get("id")))
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
    return suites


def write(path: Path, results: dict[str, Any]) -> None:
    tree = ET.ElementTree(build(results))
    ET.indent(tree)
    partial = path.with_suffix(".xml.partial")
    tree.write(partial, encoding="utf-8", xml_declaration=True)
    os.replace(partial, path)
