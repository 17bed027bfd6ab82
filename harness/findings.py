"""Security findings: the probes' attempts (History `probe` lines) judged into one verdict
per probe, for results.json `security`, the standards' `security_<probe>` metrics, the
report's Security section and findings.sarif.

A probe's verdict is the worst of its attempts (pass < unknown < fail). A probe that did not
apply is not-applicable, with the probe's reason. A probe that broke (the harness's failure,
or its time budget ran out) is unknown unless an attempt already failed: the harness's
trouble never passes a chain, and never fails one either. Judge layer: model only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from harness import verdicts
from harness.model import SEVERITIES, ProbeOutcome


def probe_entry(outcome: ProbeOutcome) -> dict[str, Any]:
    attempts = outcome.attempts
    counts = {v: sum(1 for a in attempts if a.verdict == v) for v in ("pass", "fail", "unknown")}
    failed = [a for a in attempts if a.verdict == "fail"]
    if outcome.status == "not-applicable":
        verdict, why = "not-applicable", outcome.reason
    elif failed:   # lead with the worst finding, then the first of that severity
        first = min(failed, key=lambda a: SEVERITIES.index(a.severity))
        verdict = "fail"
        why = (f"{len(failed)} of {len(attempts)} attempts failed; worst: {first.title} — "
               f"{first.why}" if first.why else f"{len(failed)} of {len(attempts)} attempts failed")
    elif outcome.status == "error":
        verdict, why = "unknown", f"the probe did not complete: {outcome.reason}"
    elif not attempts:
        verdict, why = "unknown", "the probe made no attempt"
    else:
        verdict = verdicts.worst(a.verdict for a in attempts)
        why = None if verdict == "pass" else \
            f"{counts['unknown']} of {len(attempts)} attempts could not be judged"
    severity = min((a.severity for a in failed), key=SEVERITIES.index, default=None)
    return {"probe": outcome.probe, "title": outcome.title, "status": outcome.status,
            "reason": outcome.reason, "verdict": verdict, "why": why, "severity": severity,
            "started": outcome.started, "ended": outcome.ended, "counts": counts,
            "attempts": [asdict(a) for a in attempts]}


def entry(probes: list[ProbeOutcome]) -> dict[str, Any] | None:
    """results.json `security`: None when the run probed nothing."""
    if not probes:
        return None
    entries = [probe_entry(p) for p in probes]
    findings = {s: sum(1 for e in entries for a in e["attempts"]
                       if a["verdict"] == "fail" and a["severity"] == s) for s in SEVERITIES}
    return {"verdict": _overall(e["verdict"] for e in entries), "findings": findings, "probes": entries}


def _overall(judged: Iterable[str]) -> str:
    """The worst verdict in a run's words; not-applicable when nothing applied."""
    applied = [v for v in judged if v != "not-applicable"]
    return verdicts.outcome(verdicts.worst(applied)) if applied else "not-applicable"


def merge(cases: dict[str, dict[str, Any] | None]) -> dict[str, Any] | None:
    """A campaign's `security`: every case's probes (each entry names its `case`), the
    findings summed, the verdict the worst of the cases' (None when no case probed)."""
    probed = {case: entry for case, entry in cases.items() if entry}
    if not probed:
        return None
    probes = [{**probe, "case": case} for case, entry in probed.items() for probe in entry["probes"]]
    return {"verdict": _overall(e["verdict"] for e in probed.values()),
            "findings": {s: sum(e["findings"][s] for e in probed.values()) for s in SEVERITIES},
            "probes": probes}
