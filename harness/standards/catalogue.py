"""Requirement catalogues: standards/*.yaml (schema: harness/schemas/standard.schema.json).

Loading checks what the schema cannot: ids are unique, every threshold names a known
metric with a value of the right kind, and every method names a case some suite runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness import paths
from harness.errors import InputError
from harness.standards.metrics import METRICS
from harness.validation import load_and_validate

TEXT_OPS = ("==", "!=")


@dataclass(frozen=True)
class Catalogue:
    id: str
    version: str
    title: dict[str, str]
    path: Path
    sha256: str
    document: dict[str, Any]

    @property
    def requirements(self) -> list[dict[str, Any]]:
        return self.document["requirements"]


def thresholds(requirement: dict[str, Any]) -> list[dict[str, Any]]:
    value = requirement["threshold"]
    return value if isinstance(value, list) else [value]


def known_cases(root: Path | None = None) -> set[str]:
    """Names and `case:` ids of every suite under suites/, and the case ids of campaigns."""
    cases: set[str] = set()
    for path in sorted((root or paths.home() / "suites").rglob("*.yaml")):
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue  # a broken suite is reported when it is used, not here
        if isinstance(doc, dict) and isinstance(doc.get("name"), str):
            cases.add(doc["name"])
            if isinstance(doc.get("case"), str):
                cases.add(doc["case"])
            for case in doc.get("cases") or []:
                if isinstance(case, dict) and isinstance(case.get("id"), str):
                    cases.add(case["id"])
    return cases


def load(path: Path, cases: set[str] | None = None) -> Catalogue:
    doc = load_and_validate(path, "standard")
    file = str(path)
    seen: dict[str, int] = {}
    available = known_cases() if cases is None else cases
    for index, requirement in enumerate(doc["requirements"]):
        where = f"requirements[{index}]"
        rid = requirement["id"]
        if rid in seen:
            raise InputError(file, f"{where}.id", f"a unique requirement id; '{rid}' is also "
                             f"requirements[{seen[rid]}]")
        seen[rid] = index
        for number, threshold in enumerate(thresholds(requirement)):
            at = f"{where}.threshold" + (f"[{number}]" if isinstance(requirement["threshold"], list) else "")
            metric = threshold["metric"]
            if metric not in METRICS:
                raise InputError(file, f"{at}.metric", f"a known metric for requirement {rid} "
                                 f"(one of: {', '.join(sorted(METRICS))}), got '{metric}'")
            textual = METRICS[metric].unit == "verdict"
            if textual != isinstance(threshold["value"], str):
                kind = "a verdict string (pass, fail, unknown)" if textual else "a number"
                raise InputError(file, f"{at}.value", f"{kind} for metric {metric} of {rid}")
            if textual and threshold["op"] not in TEXT_OPS:
                raise InputError(file, f"{at}.op", f"== or != for the verdict metric {metric} of "
                                 f"{rid}, got '{threshold['op']}'")
        for number, case in enumerate(requirement["method"]["cases"]):
            if case not in available:
                raise InputError(file, f"{where}.method.cases[{number}]", f"a case some suite runs "
                                 f"(a suite name under suites/) for {rid}; no suite is named '{case}'")
    meta = doc["catalogue"]
    return Catalogue(id=meta["id"], version=meta["version"], title=meta["title"], path=path.resolve(),
                     sha256=hashlib.sha256(path.read_bytes()).hexdigest(), document=doc)
