"""Causality: no transaction is committed before it was submitted.

The harness signs the workload with a secret drawn for the run and sends each transaction
at its scheduled time, so no honest node can hold a transaction in a block before the
harness sent it. A commit seen before its submit means the node knew the workload in
advance (or forged its blocks' contents): a finding that fails the run, never a latency
clamped to a microsecond. Run on every chain (harness/suite.py).
"""

from __future__ import annotations

from typing import Any

from harness.checks import chain
from harness.history import History

ID = "causality"
DEFAULTS: dict[str, Any] = {"tolerance_ms": 1.0}
ORDER = 5   # run order among the checkers (harness/checks/correctness.py)
READS_FINAL_CHAINS = False   # judged from the tx lines alone: no final read for its sake
# JSON Schema of each setting (the suite's checkers.causality), merged into the suite schema
SETTINGS: dict[str, Any] = {"tolerance_ms": {"type": "number", "minimum": 0, "maximum": 1000}}


def check(history: History, config: dict[str, Any]) -> dict[str, Any]:
    tolerance = config["tolerance_ms"] / 1000
    early = []
    judged = 0
    for tx in history.txs:
        for node, seen, number in tx.commits:
            if tx.submitted is None:
                if tx.error and tx.error.startswith("not sent"):
                    early.append((tx, node, seen, number, None))   # held, yet never sent
                continue
            judged += 1
            if seen < tx.submitted - tolerance:
                early.append((tx, node, seen, number, tx.submitted))
    evidence = {
        "sightings_judged": judged,
        "early_count": len(early),
        "early": chain.first({"tx": tx.i, "id": tx.id, "node": chain.name(history, node),
                              "block": number, "seen": chain.r3(seen),
                              "submitted": chain.r3(submitted)}
                             for tx, node, seen, number, submitted in early),
        "tolerance_ms": config["tolerance_ms"],
    }
    if early:
        tx, node, seen, number, submitted = early[0]
        when = (f"{(submitted - seen) * 1000:.1f} ms before it was submitted" if submitted is not None
                else "although the harness never sent it")
        return chain.result(ID, "fail", f"{len(early)} sighting(s) of the run's transactions came before "
                            f"their submission: first tx {tx.i} in block {number} on "
                            f"{chain.name(history, node)}, {when}", evidence)
    if not judged:
        return chain.result(ID, "unknown", "no committed transaction to judge", evidence)
    return chain.result(ID, "pass", None, evidence)
