"""Requirement verdicts: a pure function of a catalogue and the stored results of the
cases that ran (no chain, no Docker), so an old run can be re-judged against another
catalogue.

pass            every case the method names ran, matched the conditions, met every threshold
fail            some case missed a threshold
inconclusive    evidence is missing: a case did not run or did not complete, a metric was
                not measured, a checker answered unknown, a case ran outside the conditions
not-applicable  the chain's consensus kind is outside the requirement's conditions

Grade (the test center's own rule, docs/standards.md): A every applicable requirement
passed; B every mandatory one passed; C no mandatory one failed but some are
inconclusive; F a mandatory requirement failed.
"""

from __future__ import annotations

import operator
from typing import Any

from harness import verdicts
from harness.standards import metrics
from harness.standards.catalogue import thresholds

OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
       "==": operator.eq, "!=": operator.ne}


def _outside(conditions: dict[str, Any], results: dict[str, Any]) -> str | None:
    """Why this case's run does not meet the requirement's conditions (None if it does)."""
    nodes = results.get("node_count")
    if "nodes" in conditions and nodes not in conditions["nodes"]:
        return f"ran {nodes} nodes; the requirement is for {conditions['nodes']}"
    workload = (results.get("load") or {}).get("workload")
    if "workload" in conditions and workload not in conditions["workload"]:
        return f"ran the {workload} workload; the requirement is for {conditions['workload']}"
    rate = (results.get("load") or {}).get("rate") or 0
    if rate < conditions.get("min_rate", 0):
        return f"ran at {rate:g} tx/s; the requirement needs at least {conditions['min_rate']:g}"
    return None


def _judge_case(requirement: dict[str, Any], case: str, results: dict[str, Any] | None,
                program: dict[str, Any] | None = None) -> tuple[str, str | None, dict[str, Any]]:
    evidence: dict[str, Any] = {"case": case}
    program = program or {}
    if results is None:
        skipped = (program.get("skipped") or {}).get(case)
        if skipped:   # the certification program left it out, and said why
            return skipped["verdict"], f"case {case} was not run: {skipped['why']}", evidence
        return "inconclusive", f"case {case} was not run", evidence
    evidence.update(run_id=results.get("run_id"), history=(results.get("artifacts") or {}).get("history"))
    if results.get("status") != "complete":
        return "inconclusive", f"case {case} did not complete ({results.get('status_reason')})", evidence
    conditions = requirement.get("conditions") or {}
    outside = _outside(conditions, results)
    if outside:
        largest = program.get("max_nodes")
        if largest is not None and "nodes" in conditions and largest < min(conditions["nodes"]):
            return "not-applicable", (f"case {case} {outside}, and the chain runs at most {largest} "
                                      f"node(s) (its pack's consensus.max_nodes)"), evidence
        return "inconclusive", f"case {case} {outside}", evidence
    figures, failures, missing, inapplicable = {}, [], [], []
    for threshold in thresholds(requirement):
        value, why = metrics.read(threshold["metric"], results)
        figures[threshold["metric"]] = value
        if value == "not-applicable":  # e.g. replication on a one-node network
            inapplicable.append(f"{threshold['metric']} does not apply to this chain (case {case})")
        elif value is None:
            missing.append(why)
        elif value == "unknown":
            missing.append(f"{threshold['metric']} answered unknown in case {case}")
        elif not OPS[threshold["op"]](value, threshold["value"]):
            unit = f" {threshold['unit']}" if threshold.get("unit") else ""
            failures.append(f"{threshold['metric']} = {value}{unit} in case {case}, expected "
                            f"{threshold['op']} {threshold['value']}{unit}")
    evidence["figures"] = figures
    if failures:
        return "fail", "; ".join(failures), evidence
    if missing:
        return "inconclusive", "; ".join(missing), evidence
    if inapplicable:
        return "not-applicable", "; ".join(inapplicable), evidence
    return "pass", None, evidence


def judge_requirement(requirement: dict[str, Any], cases: dict[str, dict[str, Any]],
                      consensus: str | None, program: dict[str, Any] | None = None) -> dict[str, Any]:
    conditions = requirement.get("conditions") or {}
    base = {"id": requirement["id"], "title": requirement["title"],
            "category": requirement["category"], "obligation": requirement["obligation"],
            "source": requirement["source"], "threshold": thresholds(requirement),
            "method": requirement["method"]}
    if consensus and "consensus" in conditions and consensus not in conditions["consensus"]:
        return {**base, "verdict": "not-applicable", "measured": None, "evidence": [],
                "why": f"applies to {', '.join(conditions['consensus'])} chains; this chain is {consensus}"}
    judged = [_judge_case(requirement, case, cases.get(case), program)
              for case in requirement["method"]["cases"]]
    verdict = verdicts.outcome(verdicts.worst((v for v, _, _ in judged), default="not-applicable"))
    why = "; ".join(w for v, w, _ in judged if w and v == verdict) or None
    measured = {e["case"]: e.get("figures") for _, _, e in judged}
    return {**base, "verdict": verdict, "why": why, "measured": measured,
            "evidence": [e for _, _, e in judged]}


def grade(requirements: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {v: 0 for v in ("pass", "fail", "inconclusive", "not-applicable")}
    for r in requirements:
        counts[r["verdict"]] += 1
    mandatory = verdicts.worst(r["verdict"] for r in requirements if r["obligation"] == "mandatory")
    if mandatory == "fail":
        letter, verdict = "F", "fail"
    elif mandatory == "unknown":
        letter, verdict = "C", "inconclusive"
    elif verdicts.worst(r["verdict"] for r in requirements) == "pass":
        letter, verdict = "A", "pass"
    else:
        letter, verdict = "B", "pass"
    return {"grade": letter, "verdict": verdict, "counts": counts}


def describe(certification: dict[str, Any]) -> str:
    """One line for the console, e.g. "pass (grade B; 17 pass, 0 fail, 2 inconclusive, …)"."""
    counts = ", ".join(f"{n} {v}" for v, n in certification["counts"].items())
    return f"{certification['verdict']} (grade {certification['grade']}; {counts})"


def judge(catalogue: dict[str, Any], cases: dict[str, dict[str, Any]],
          program: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every requirement of `catalogue` judged on the results of `cases` (case id → results).
    `program` (a certification's, from certify.json): `skipped` {case: {verdict, why}} for the
    cases it left out, `max_nodes` the pack's largest network (node conditions above it are
    not-applicable, not inconclusive)."""
    consensus = next((r["chain"].get("consensus") for r in cases.values() if r.get("chain")), None)
    if consensus is None and program:
        consensus = program.get("consensus")
    requirements = [judge_requirement(r, cases, consensus, program) for r in catalogue["requirements"]]
    meta = catalogue["catalogue"]
    return {"standard": {"id": meta["id"], "version": meta["version"], "title": meta["title"]},
            "requirements": requirements, **grade(requirements)}
