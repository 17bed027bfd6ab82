"""results.json's `certify` block: a pure function of certify.json (what was planned and
which steps the search ran) and the cases' results, so `bctest report` and `bctest verify`
recompute it without a chain."""

from __future__ import annotations

from typing import Any

from harness import verdicts
from harness.certify import capacity, claims
from harness.certify.program import PROFILES, ROUND_NODES
from harness.standards import metrics

PLAN = "certify.json"   # the program as planned and run (harness/certify/execute.py writes it)


def judge(plan: dict[str, Any], cases: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    bars = capacity.Criteria(**plan["criteria"])
    steps = [capacity.judge_step(s["case"], s["stage"], s["offered"], cases.get(s["case"]), bars)
             for s in plan.get("capacity_steps", [])]
    searched = (capacity.judge(PROFILES[plan["profile"]], plan["capacity_nodes"], steps, bars)
                if steps else None)
    claimed = claims.from_entry(plan.get("claims"))
    return {"format": plan["format"], "profile": plan["profile"], "vendor": plan["vendor"],
            "pack": plan["pack"], "claims": plan.get("claims"),
            "claim_verdicts": claim_verdicts(claimed, cases, plan["pack"]["consensus"]),
            "capacity": searched,
            "not_applicable": [{"case": r["case"], "why": r["why"]} for r in plan["rounds"]
                               if r["status"] == "not-applicable"],
            "not_run": [{"case": r["case"], "why": r["why"]} for r in plan["rounds"]
                        if r["status"] == "not-run"]}


def worst_claim(block: dict[str, Any] | None) -> str:
    """The claims' verdicts merged (pass when there are none)."""
    return verdicts.worst((c["verdict"] for c in (block or {}).get("claim_verdicts", [])), default="pass")


def _value(name: str, results: dict[str, Any] | None) -> Any:
    return None if results is None else metrics.read(name, results)[0]


def _unrun(case: str, results: dict[str, Any] | None) -> str | None:
    if results is None:
        return f"case {case} was not run"
    if results.get("status") != "complete":
        return f"case {case} did not complete"
    return None


def _throughput(nodes: int, claimed: float, case: str, results: dict[str, Any] | None) -> dict[str, Any]:
    ran = (results or {}).get("node_count") or nodes   # a single-node chain's round runs 1
    entry = {"id": f"throughput-{nodes}", "case": case, "claimed": claimed, "unit": "tx/s",
             "title": {"en": f"Sustained throughput at {ran} node(s)", "zh": f"{ran} 节点持续吞吐"},
             "measured": _value("throughput", results)}
    missing = _unrun(case, results)
    if missing:
        return {**entry, "verdict": "unknown", "why": missing}
    kept = _value("send_rate_ratio", results)
    success = _value("success_ratio", results)
    measured = entry["measured"]
    if not isinstance(kept, (int, float)) or kept < capacity.HARNESS_SHARE:
        return {**entry, "verdict": "unknown",
                "why": f"the harness did not keep the claimed rate (send ÷ target {kept}): "
                       "no evidence either way"}
    if not isinstance(measured, (int, float)) or not isinstance(success, (int, float)):
        return {**entry, "verdict": "unknown", "why": "throughput or success ratio was not measured"}
    if measured >= capacity.COMMIT_SHARE * claimed and success >= 0.95:
        return {**entry, "verdict": "pass",
                "why": f"offered {claimed:g} tx/s, committed {measured:.4g} tx/s with {success:.2%} success"}
    return {**entry, "verdict": "fail",
            "why": f"offered the claimed {claimed:g} tx/s, committed {measured:.4g} tx/s "
                   f"({measured / claimed:.0%} of it; needs ≥ {capacity.COMMIT_SHARE:.0%}) "
                   f"with {success:.2%} "
                   "success (needs ≥ 95 %)"}


def claim_verdicts(claimed: claims.Claims | None, cases: dict[str, dict[str, Any] | None],
                   consensus: str) -> list[dict[str, Any]]:
    if claimed is None:
        return []
    out = [_throughput(nodes, rate, f"pressure-{nodes}", cases.get(f"pressure-{nodes}"))
           for nodes, rate in sorted(claimed.throughput.items())]
    if claimed.latency_p99_ms is not None:
        results = cases.get("pressure-4")
        entry = {"id": "latency-p99", "case": "pressure-4", "claimed": claimed.latency_p99_ms, "unit": "ms",
                 "title": {"en": "p99 latency at the claimed rate", "zh": "声明速率下的 p99 时延"},
                 "measured": _value("latency_p99", results)}
        missing = _unrun("pressure-4", results)
        measured = entry["measured"]
        if missing or not isinstance(measured, (int, float)):
            entry.update(verdict="unknown", why=missing or "latency p99 was not measured")
        elif measured <= claimed.latency_p99_ms:
            entry.update(verdict="pass",
                         why=f"p99 {measured:.4g} ms ≤ the claimed {claimed.latency_p99_ms:g} ms")
        else:
            entry.update(verdict="fail",
                         why=f"p99 {measured:.4g} ms > the claimed {claimed.latency_p99_ms:g} ms")
        out.append(entry)
    if claimed.fault_tolerance is not None:
        out.append(_fault_tolerance(claimed.fault_tolerance, cases.get("bft-threshold"), consensus))
    return out


def _fault_tolerance(f: int, results: dict[str, Any] | None, consensus: str) -> dict[str, Any]:
    entry = {"id": "fault-tolerance-4", "case": "bft-threshold", "claimed": f, "unit": "nodes",
             "title": {"en": f"Tolerates f faulty nodes of {ROUND_NODES}",
                       "zh": f"{ROUND_NODES} 节点中容忍 f 个故障节点"},
             "measured": None}
    if f == 0:
        return {**entry, "measured": 0, "verdict": "pass", "why": "the vendor claims no fault tolerance"}
    if consensus not in ("bft", "cft"):
        return {**entry, "verdict": "unknown",
                "why": f"a {consensus} chain has no fault-tolerance threshold round to judge the claim by"}
    missing = _unrun("bft-threshold", results)
    if missing:
        return {**entry, "verdict": "unknown", "why": missing}
    checker = _value("checker_fault_tolerance", results)
    tolerated = (ROUND_NODES - 1) // 3 if consensus == "bft" else (ROUND_NODES - 1) // 2
    if checker == "pass":
        return {**entry, "measured": tolerated, "verdict": "pass",
                "why": f"kept committing with {tolerated} of {ROUND_NODES} nodes down and halted "
                       "without a fork beyond"}
    if checker == "fail":
        return {**entry, "measured": 0, "verdict": "fail",
                "why": "the fault-tolerance checker failed in the bft-threshold round (see its report)"}
    return {**entry, "verdict": "unknown", "why": f"the fault-tolerance checker answered {checker}"}
