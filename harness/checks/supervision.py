"""Supervision completeness: every committed transaction reaches every management node,
each within `bound` seconds of its commit (docs/topology.md, "Checks").

A transaction is committed when the root tier holds it (load.commit_nodes); a management
node holds it when its watcher reported it in a block that stayed, or its final chain
(read after the run) contains it. Fail: a committed transaction a management node still
lacked `bound` seconds after the commit, by the end of what the run could see; or a lag
p99 above the bound. Unknown: no management node (or no topology), nothing committed, or
transactions committed so late that the run ended before their bound ran out.
Lags whose wait overlapped a fault on that management node are counted apart, not in the
p99: a cut national node must still hold everything by the end.
"""

from __future__ import annotations

from typing import Any

from harness.checks import chain, structure
from harness.history import History

ID = "supervision"
ORDER = 60                 # after the chain checkers (harness/checks/correctness.py)
TOPOLOGY = "management"   # runs by default on a topology with management nodes (harness/suite.py)
DEFAULTS: dict[str, Any] = {"bound": 10.0}
SETTINGS: dict[str, Any] = {"bound": {"type": "number", "exclusiveMinimum": 0,
                                      "description": "seconds after its commit by which every "
                                                     "management node must hold a transaction"}}
SHOWN = 5                  # missing transactions listed in the evidence


def _missing(history: History, items: list[structure.Missing]) -> list[dict[str, Any]]:
    return [{"tx": x.tx, "id": x.id, "node": chain.name(history, x.node),
             "committed_at": chain.r3(x.committed_at)} for x in items[:SHOWN]]


def check(history: History, config: dict[str, Any]) -> dict[str, Any]:
    bound = float(config["bound"])
    facts = structure.supervision(history, bound)
    if facts is None:
        why = ("the run had no topology" if not history.header.get("topology")
               else "the topology has no management node")
        return chain.result(ID, "unknown", f"{why}: there is nothing to supervise with", {"bound": bound})
    lag = structure.lag_ms(facts.lags)
    missing, pending = facts.missing, facts.pending
    names = chain.names(history, facts.managers)
    evidence: dict[str, Any] = {
        "bound": bound, "management_nodes": names, "committed": facts.committed,
        "held": facts.held, "pairs": facts.pairs, "completeness": facts.completeness,
        "lag_ms": lag, "late": sum(1 for x in facts.lags if x > bound),
        "excluded_during_faults": sum(m.excluded for m in facts.managers.values()),
        "held_in_final_read_only": sum(m.held_in_final_only for m in facts.managers.values()),
        "missing_count": len(missing), "missing": _missing(history, missing),
        "pending_count": len(pending), "pending": _missing(history, pending),
        "per_node": {chain.name(history, m.node): {
            "held": m.held, "lag_ms": structure.lag_ms(m.lags), "excluded": m.excluded,
            "missing": len(m.missing), "pending": len(m.pending)} for m in facts.managers.values()},
    }
    who = " and ".join(names)
    if facts.committed == 0:
        return chain.result(ID, "unknown", "no transaction was committed by the root tier: there is "
                            f"nothing {who} should hold", evidence)
    if missing:
        first = missing[0]
        return chain.result(ID, "fail", f"{len(missing)} of {facts.pairs} committed transaction copies "
                            f"never reached the management tier within {bound:g} s (e.g. tx {first.tx}, "
                            f"committed at {first.committed_at:.3f} s, is missing on "
                            f"{chain.name(history, first.node)}); completeness "
                            f"{facts.completeness:.2%}", evidence)
    if lag["p99"] is not None and lag["p99"] > bound * 1000:
        return chain.result(ID, "fail", f"{who} held every committed transaction, but the p99 lag "
                            f"after the commit was {lag['p99'] / 1000:.2f} s, above the {bound:g} s bound "
                            f"({evidence['late']} transactions later than the bound)", evidence)
    if pending:
        return chain.result(ID, "unknown", f"{len(pending)} transactions committed in the last "
                            f"{bound:g} s of the run had not reached {who} when the run stopped watching; "
                            "the bound had not run out", evidence)
    if lag["p99"] is None:
        return chain.result(ID, "unknown", f"{who} held every committed transaction, but only the final "
                            "read showed it: the lag after the commit was not measured", evidence)
    return chain.result(ID, "pass", None, evidence)

