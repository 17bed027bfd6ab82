"""Application-node freshness: each application node follows the root tier closely, and
catches up after a fault (docs/topology.md, "Checks").

Per application node and per height h: the moment its watcher first reported h minus the
moment the root tier had h (the threshold-th root node's first sighting). Its p99 must be
at most `bound` seconds. Heights whose wait overlapped a fault on that node (a zone cut,
a kill ...) are left out of the p99, but the node must catch up by the end: its highest
height (watcher or final read) at least the root tier's tip when the settle began.
Fail: a node's p99 above the bound, or a node that never caught up. Unknown: no
application node (or no topology), no height the root tier reached, or a node whose
watcher reported nothing measurable although its final chain caught up.
"""

from __future__ import annotations

from typing import Any

from harness import metrics
from harness.checks import chain, structure
from harness.history import History

ID = "freshness"
ORDER = 65                 # after the chain checkers (harness/checks/correctness.py)
TOPOLOGY = "application"   # runs by default on a topology with application nodes (harness/suite.py)
DEFAULTS: dict[str, Any] = {"bound": 5.0}
SETTINGS: dict[str, Any] = {"bound": {"type": "number", "exclusiveMinimum": 0,
                                      "description": "seconds: the p99 of each application node's "
                                                     "block lag behind the root tier"}}


def _node_evidence(history: History, facts: structure.Freshness, node: int) -> dict[str, Any]:
    n = facts.nodes[node]
    return {"zone": metrics.zone_name(history.header, node), "samples": len(n.lags),
            "excluded": n.excluded, "lag_ms": structure.lag_ms(n.lags), "tip": n.tip,
            "caught_up": facts.caught_up(node),
            "recoveries": [{"fault": r.fault, "healed_at": chain.r3(r.healed_at), "root_height": r.height,
                            "caught_up_after_s": chain.r3(r.caught_up_after)} for r in n.recoveries]}


def check(history: History, config: dict[str, Any]) -> dict[str, Any]:
    bound = float(config["bound"])
    facts = structure.freshness(history)
    if facts is None:
        why = ("the run had no topology" if not history.header.get("topology")
               else "the topology has no application node")
        return chain.result(ID, "unknown", f"{why}: there is no node whose freshness to judge",
                            {"bound": bound})
    per_node = {chain.name(history, node): _node_evidence(history, facts, node) for node in facts.nodes}
    p99s = [e["lag_ms"]["p99"] for e in per_node.values() if e["lag_ms"]["p99"] is not None]
    evidence: dict[str, Any] = {
        "bound": bound, "root_tip_at_settle": facts.root_tip, "settle_began": chain.r3(facts.root_tip_at),
        "application_lag_p99_ms": max(p99s) if p99s else None, "nodes": per_node,
    }
    if facts.root_tip is None:
        return chain.result(ID, "unknown", "the root tier reached no height the run saw: there is nothing "
                            "to be fresh against", evidence)
    stale = [(name, e) for name, e in per_node.items() if e["lag_ms"]["p99"] is not None
             and e["lag_ms"]["p99"] > bound * 1000]
    behind = [(name, e) for name, e in per_node.items() if not e["caught_up"]]
    problems = [f"{name} lagged the root tier by {e['lag_ms']['p99'] / 1000:.2f} s at p99 over "
                f"{e['samples']} blocks (bound {bound:g} s)" for name, e in stale]
    problems += [f"{name} ended at height {e['tip'] if e['tip'] is not None else 'none'}, below the root "
                 f"tier's {facts.root_tip} when the settle began" for name, e in behind]
    if problems:
        return chain.result(ID, "fail", "; ".join(problems), evidence)
    silent = [name for name, e in per_node.items() if e["samples"] == 0]
    if silent:
        return chain.result(ID, "unknown", f"the watcher of {', '.join(silent)} reported no block the root "
                            "tier also reached outside a fault: its lag was not measured", evidence)
    return chain.result(ID, "pass", None, evidence)
