"""From a History to results.json.

results.json is a pure function of the History (plus nothing): `bctest report
RUN_DIR` recomputes it from history.jsonl alone. (The run's record stage,
harness/phases/record.py, writes the History.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema

from harness import audit, findings, metrics, standards, verdicts
from harness import history as history_module
from harness.checks import correctness, structure, thresholds
from harness.checks.chain import commit_times
from harness.history import History
from harness.model import FaultRecord
from harness.validation import schema

RESULTS_FORMAT = "bctest-results/1"


def fault_entry(fault: FaultRecord) -> dict[str, Any]:
    """A fault as results.json and the report show it (node names, times on the run clock)."""
    return {"id": fault.id, "action": fault.action, "nodes": [f"node{i}" for i in fault.nodes],
            "start": fault.start, "end": fault.end, "status": fault.status, "method": fault.method,
            "groups": [[f"node{i}" for i in g] for g in fault.groups] if fault.groups else None,
            "params": fault.params, "reason": fault.reason}


AUDIT_CHECKS = ("hash_links", "tx_root", "signatures", "replication")


def audit_entry(history: History) -> dict[str, Any] | None:
    """The authenticity audit's checks (recorded at run time) plus replication (judged here
    from the History's blocks and final chains)."""
    if history.audit is None:
        return None
    recorded = history.audit
    missing = {"verdict": "unknown", "why": recorded.get("error") or "not audited"}
    checks = {name: (recorded.get("checks") or {}).get(name, missing) for name in AUDIT_CHECKS[:3]}
    checks["replication"] = audit.replication(history).to_dict()
    overall = verdicts.worst(c["verdict"] for c in checks.values())
    return {"family": recorded.get("family"), "node": recorded.get("node"),
            "heights": recorded.get("heights"), "blocks": recorded.get("blocks"),
            "txs": recorded.get("txs"), "error": recorded.get("error"), "verdict": overall, **checks}


def topology_entry(history: History) -> dict[str, Any] | None:
    """The run's topology as the History's header gives it (zones, links, per-node roles, the
    links as applied and measured) with the structure metrics a suite's `checks:` may name."""
    doc = history.header.get("topology")
    if not doc:
        return None
    return {"zones": doc.get("zones") or [], "links": doc.get("links") or [],
            "roles": doc.get("roles") or [], "links_applied": doc.get("links_applied"),
            **structure.figures(history)}


def harness_warnings(figures: dict[str, Any], footer: dict[str, Any],
                     history_faults: list[FaultRecord] = ()) -> list[str]:
    """Say loudly when the harness, not the chain, limited what was measured."""
    warnings = list(footer.get("warnings", []))
    measure = figures["phases"].get("measure")
    ratio = measure["send_rate_ratio"] if measure else None
    on_time = measure.get("on_time_ratio") if measure else None
    if footer.get("status") == "complete" and on_time is not None and on_time < 0.98 and (
            ratio is None or ratio >= 0.98):
        warnings.append(f"only {on_time:.1%} of the measure window's transactions left within 10 ms "
                        f"of their schedule (send lag p99 {measure['send_lag_p99_ms']} ms): the offered "
                        "load was burstier than the target rate; add load.workers or lower the rate")
    if footer.get("status") == "complete" and ratio is not None and ratio < 0.98:
        warnings.append(f"the harness sent {measure['send_rate']} tx/s against a target of "
                        f"{measure['target_rate']} tx/s ({measure['send_rate_ratio']:.1%}): the "
                        "figures describe the harness's ceiling, not the chain's; add load.workers")
    for name, window in figures["phases"].items():   # a load shape's windows (a spike...)
        if name in ("warmup", "measure", "query") or footer.get("status") != "complete":
            continue
        if window.get("send_rate_ratio") is not None and window["send_rate_ratio"] < 0.98:
            warnings.append(f"in the {name} window the harness sent {window['send_rate']} tx/s against "
                            f"a target of {window['target_rate']} tx/s ({window['send_rate_ratio']:.1%}): "
                            "that window describes the harness's ceiling, not the chain's")
    query = figures["phases"].get("query")
    if footer.get("status") == "complete" and query and query.get("on_time_ratio") is not None \
            and query["on_time_ratio"] < 0.98:
        warnings.append(f"only {query['on_time_ratio']:.1%} of the queries left within 10 ms of their "
                        f"schedule (send lag p99 {query['send_lag_p99_ms']} ms): the harness, short of "
                        "CPU beside the nodes, offered a burstier read load than the target rate; add "
                        "query.workers or lower query.rate")
    sender = footer.get("sender", {})
    if sender.get("dropped"):
        warnings.append(f"{sender['dropped']} transactions were not sent because "
                        "load.max_in_flight requests were outstanding")
    if sender.get("late_sends"):
        warnings.append(f"{sender['late_sends']} sends left more than 10 ms behind schedule "
                        f"(worst {sender.get('max_lag_ms')} ms)")
    for fault in history_faults:
        if fault.status == "skipped" and fault.reason:
            warnings.append(f"fault {fault.id} was not applied: {fault.reason}")
    if footer.get("converged") is False:
        warnings.append("the nodes did not agree on one tip before the final read "
                        "(see the convergence checker)")
    for name, method in footer.get("watch_methods", {}).items():
        if method.startswith("failed") or "websocket failed" in method:
            warnings.append(f"commit detection on {name}: {method}")
    return warnings


def compute(history: History, catalogues: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """results.json from the History; judged against `catalogues` (standards entries), by
    default the ones the run named (kept in the History's header)."""
    header, footer = history.header, history.footer
    figures = metrics.compute(history)
    shape = topology_entry(history)
    checks = thresholds.evaluate(header.get("checks", []), figures["phases"],
                                 {k: shape[k] for k in thresholds.STRUCTURE} if shape else None)
    faults = [fault_entry(f) for f in history.faults]
    checkers = correctness.evaluate(history, header.get("checkers") or {})
    checkers += [{"id": f"fault {f['id']} applied", "verdict": "unknown",
                  "why": f"the {f['action']} fault {f['status']}: {f['reason']}", "evidence": {}}
                 for f in faults if f["status"] == "failed"]
    status = footer.get("status", "incomplete")
    results = {
        "format": RESULTS_FORMAT,
        "run_id": header["run_id"],
        "status": status,
        "status_reason": footer.get("reason"),
        "verdict": None,  # judged last, over everything below (verdicts.run_verdict)
        "harness": header["harness"],
        "suite": header["suite"],
        "chain": header["chain"],
        "host": header["host"],
        "started_at": header["started_at"],
        "node_count": len(header["nodes"]),
        "time_to_ready_seconds": header.get("time_to_ready_seconds"),
        "load": header["load"],
        "bootstrap": header.get("bootstrap", {}),
        "threshold_nodes": figures["threshold_nodes"],
        "commit_nodes": [n.get("name", f"node{i}") for i, n in enumerate(header["nodes"])
                         if i in figures["commit_nodes"]],
        "phases": {name: {**figures["phases"][name]} for name in figures["phases"]}
        | ({"settle": {"window": header["phases"]["settle"], "ended": footer.get("settle_end")}}
           if "settle" in header["phases"] else {}),
        "timeseries": figures["timeseries"],
        "nodes": figures["nodes"],
        "resources": {"cpu_percent": figures["cpu"],
                      "unavailable": (footer.get("resources") or {}).get("unavailable")
                      if footer.get("resources") else "not sampled in this run"},
        "commit_detection": figures["commit_detection"],
        "ledger": metrics.ledger_growth(history, len(commit_times(history))),
        "sender": footer.get("sender", {}),
        "faults": faults,
        "checks": checks,
        "checkers": checkers,
        "requirements": [],
        "warnings": harness_warnings(figures, footer, history.faults),
        "artifacts": {"history": "history.jsonl", "report": "report.html", "junit": "junit.xml",
                      "logs": [n["log"] for n in header["nodes"]]},
    }
    if shape is not None:   # a topology run: its tiers, zones, links and per-zone figures
        results["topology"] = shape
        results["zones"] = figures["zones"]
    results["audit"] = audit_entry(history)
    results["security"] = findings.entry(history.probes)
    catalogues = header.get("standards", []) if catalogues is None else catalogues
    case = header["suite"].get("case") or header["suite"]["name"]
    results.update(standards.judge_all(catalogues, {case: results})
                   if catalogues else {"standards": [], "certification": None})
    results["verdict"] = verdicts.run_verdict(results)
    return results


def validate(results: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schema("results")).validate(results)


def write_json(path: Path, document: dict[str, Any]) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


def write_history_and_results(run_dir: Path, history: History) -> dict[str, Any]:
    history_module.write(run_dir / "history.jsonl", history)
    # Judge what was written (times rounded to the microsecond), not the in-memory copy:
    # `bctest report` and `bctest verify` recompute from the file and must agree exactly.
    results = compute(history_module.read(run_dir / "history.jsonl"))
    validate(results)
    write_json(run_dir / "results.json", results)
    return results
