"""One listing.jsonl line per certification: what the index shows and what a reader checks,
built from a checked folder's results.json (the `certify` block, the campaign's requirements,
cases and security findings). Nothing is recomputed: the signed figures are read, and the
line is validated against harness/schemas/listing.schema.json before it is written.

Every string in a line came from a vendor's pack or submission: the site escapes them,
this module only picks them out, refusing shapes it cannot read (InputError naming the
folder and field).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from harness import validation
from harness.errors import InputError
from harness.model import SEVERITIES
from harness.scorecard.collect import Certification

FORMAT = "bctest-scorecard/1"
SCHEMA = "listing"
PREFIX = 16                      # hex digits of the digest naming the folder in the site
CATEGORIES = ("function", "performance", "security", "reliability")
VERDICTS = ("pass", "fail", "inconclusive", "not-applicable")
LATENCY_CASE = "pressure-4"      # the headline p99 (docs/scorecard.md)
FAULT_REQUIREMENT = "REL-FT-THRESHOLD"
FAULT_NODES = 4                  # the bft-threshold round runs at 4 nodes
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def prefix(digest: str) -> str:
    return digest[:PREFIX]


def tolerated(consensus: str, nodes: int) -> int | None:
    """f, the faulty nodes the consensus kind tolerates at `nodes` (None: it names none)."""
    return {"bft": (nodes - 1) // 3, "cft": (nodes - 1) // 2}.get(consensus)


def line(cert: Certification) -> dict[str, Any]:
    """The listing line of one certification (validated)."""
    results, certify = cert.results, cert.results["certify"]
    where = str(cert.origin / "results.json")
    pack = _object(certify.get("pack"), where, "certify.pack")
    vendor = _object(certify.get("vendor"), where, "certify.vendor")
    consensus = pack.get("consensus")
    if isinstance(consensus, dict):   # a pack's `consensus: {kind: …}` as well as the kind
        consensus = consensus.get("kind")
    started = results.get("started_at")
    date = started[:10] if isinstance(started, str) and DATE.match(started[:10]) else None
    requirements = [r for r in results.get("requirements") or [] if isinstance(r, dict)]
    capacity = certify.get("capacity") if isinstance(certify.get("capacity"), dict) else {}
    claims = certify.get("claims") if isinstance(certify.get("claims"), dict) else {}
    certification = results.get("certification") if isinstance(results.get("certification"), dict) else {}
    run = f"runs/{prefix(cert.digest)}"
    entry = {
        "format": FORMAT,
        "digest": cert.digest,
        "key_id": cert.key_id,
        "signed_at": cert.signed_at,
        "run_id": results.get("run_id"),
        "vendor": {"name": vendor.get("name"), "submission": vendor.get("submission")},
        "chain": {"name": pack.get("name"), "family": pack.get("family"), "consensus": consensus,
                  "version": pack.get("version"), "manifest_sha256": pack.get("manifest_sha256")},
        "date": date,
        "started_at": started,
        "profile": certify.get("profile"),
        "grade": certification.get("grade"),
        "verdict": results.get("verdict"),
        "categories": _categories(requirements),
        "capacity": {"value": capacity.get("capacity"), "limited_by": capacity.get("limited_by"),
                     "confirmed": capacity.get("confirmed"), "nodes": capacity.get("nodes"),
                     "claimed": _claimed(claims, capacity.get("nodes")), "why": capacity.get("why")},
        "latency_p99_ms": _latency(results.get("cases")),
        "fault_tolerance": _fault_tolerance(requirements, consensus),
        "security": _security(results.get("security")),
        "links": {"folder": run, "report": f"{run}/report.html", "results": f"{run}/results.json"},
    }
    # the field named is the line's (listing.schema.json), read from results.json
    validation.validate(entry, SCHEMA, f"{where}, its listing line")
    return entry


def requirement_verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every requirement's id, category, obligation, title and verdict (the compare page)."""
    out = []
    for r in results.get("requirements") or []:
        if isinstance(r, dict) and isinstance(r.get("id"), str):
            title = r.get("title") if isinstance(r.get("title"), dict) else {}
            en = str(title.get("en") or r["id"])
            out.append({"id": r["id"], "category": str(r.get("category") or ""),
                        "obligation": str(r.get("obligation") or ""), "verdict": str(r.get("verdict") or ""),
                        "title": {"en": en, "zh": str(title.get("zh") or en)}})
    return out


def write(path: Path, lines: list[dict[str, Any]]) -> None:
    """listing.jsonl: one JSON object a line, validated again as it is written."""
    with open(path, "w", encoding="utf-8") as out:
        for entry in lines:
            validation.validate(entry, SCHEMA, str(path))
            out.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")


def read(path: Path) -> list[dict[str, Any]]:
    """The lines of a listing.jsonl, each validated (InputError naming the line)."""
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            entry = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{path}:{number}", None, f"one JSON object a line ({exc})") from None
        validation.validate(entry, SCHEMA, f"{path}:{number}")
        lines.append(entry)
    return lines


def _object(value: Any, where: str, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(where, field, "an object (the certify block, docs/scorecard.md)")
    return value


def _categories(requirements: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts = {c: dict.fromkeys(VERDICTS, 0) for c in CATEGORIES}
    for r in requirements:
        category, verdict = r.get("category"), r.get("verdict")
        if category in counts and verdict in VERDICTS:
            counts[category][verdict] += 1
    return counts


def _claimed(claims: dict[str, Any], nodes: Any) -> float | None:
    """The claimed throughput at the search's node count; a single-node chain's claim is
    recorded under 4 (claims.yaml `throughput`, the headline claim)."""
    throughput = claims.get("throughput") if isinstance(claims.get("throughput"), dict) else {}
    value = throughput.get(str(nodes), throughput.get("4"))
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _latency(cases: Any) -> float | None:
    for case in cases if isinstance(cases, list) else []:
        if isinstance(case, dict) and case.get("id") == LATENCY_CASE:
            headline = case.get("headline") if isinstance(case.get("headline"), dict) else {}
            return headline.get("latency_p99")
    return None


def _fault_tolerance(requirements: list[dict[str, Any]], consensus: Any) -> dict[str, Any]:
    verdict = next((r.get("verdict") for r in requirements if r.get("id") == FAULT_REQUIREMENT), None)
    applies = isinstance(consensus, str) and verdict != "not-applicable"
    f = tolerated(consensus, FAULT_NODES) if applies else None
    return {"requirement": FAULT_REQUIREMENT, "verdict": verdict, "f": f, "nodes": FAULT_NODES}


def _security(security: Any) -> dict[str, Any]:
    if not isinstance(security, dict):
        return {"verdict": None, "findings": dict.fromkeys(SEVERITIES, 0)}
    findings = security.get("findings") if isinstance(security.get("findings"), dict) else {}
    return {"verdict": security.get("verdict"),
            "findings": {s: findings.get(s, 0) for s in SEVERITIES}}
