"""Read-back: every committed effect of the workload is in the chain's state, and every
transaction that had to be refused (e.g. an e-invoice's double redemption) took no effect.

Judges the History's `readback` line (phases/readback.py), which the run's workload filled
from the chain's state after the settle:
  effects       {expected, found, missing, wrong}: effects the committed transactions must
                have left, and how many were there, absent, or different
  mismatches    the first ≤ 20 effects that were absent or wrong (what, expected, found)
  must_refuse   [{i, what, outcome, refused}]: the transactions signed into the load that the
                chain had to refuse; refused true/false, or null when it was never sent
  error         set instead when the read-back could not be done
Fail when an effect is missing or wrong, or a must-be-refused transaction took effect;
unknown when there was no read-back, it could not be done, nothing was expected, or a
must-be-refused transaction was never tested; pass otherwise.
"""

from __future__ import annotations

from typing import Any

from harness.history import History

ID = "readback"
DEFAULTS: dict[str, Any] = {}
ORDER = 70                    # after the chain checkers (harness/checks/correctness.py)
READS_FINAL_CHAINS = False    # it reads the workload's state read-back, not the final chains


def _result(verdict: str, why: str, evidence: dict[str, Any]) -> dict[str, Any]:
    return {"id": ID, "verdict": verdict, "why": why, "evidence": evidence}


def _count(effects: dict[str, Any], name: str) -> int | None:
    value = effects.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def check(history: History, config: dict[str, Any]) -> dict[str, Any]:
    read = history.readback
    if read is None:
        return _result("unknown", "no read-back in the History (the run stopped before it)", {})
    evidence = {k: read.get(k) for k in ("workload", "node", "committed", "effects", "mismatches",
                                         "must_refuse", "method") if k in read}
    if read.get("error"):
        return _result("unknown", f"the read-back could not be done: {str(read['error'])[:300]}",
                       {**evidence, "error": str(read["error"])[:500]})
    effects = read.get("effects") if isinstance(read.get("effects"), dict) else {}
    counts = {name: _count(effects, name) for name in ("expected", "found", "missing", "wrong")}
    if None in counts.values():
        return _result("unknown", f"the read-back's effect counts are malformed: {effects!r}"[:300],
                       evidence)
    refusals = read.get("must_refuse") or []
    if not isinstance(refusals, list) or not all(isinstance(r, dict) for r in refusals):
        return _result("unknown", "the read-back's must_refuse list is malformed", evidence)
    took_effect = [r for r in refusals if r.get("refused") is False]
    untested = [r for r in refusals if r.get("refused") is None]
    problems = []
    if counts["missing"] or counts["wrong"]:
        problems.append(f"{counts['missing']} of {counts['expected']} committed effects missing and "
                        f"{counts['wrong']} wrong in the chain's state")
    if counts["found"] + counts["missing"] + counts["wrong"] != counts["expected"]:
        problems.append(f"found {counts['found']} + missing {counts['missing']} + wrong "
                        f"{counts['wrong']} is not the {counts['expected']} expected")
    if took_effect:
        problems.append(f"{len(took_effect)} transaction(s) that had to be refused took effect "
                        f"(first: {str(took_effect[0].get('what'))[:120]})")
    if problems:
        return _result("fail", "; ".join(problems), evidence)
    if counts["expected"] == 0 and not refusals:
        return _result("unknown", "nothing to read back: no effect of the workload was expected "
                       "(no transaction of it committed)", evidence)
    if untested:
        return _result("unknown", f"{len(untested)} transaction(s) that had to be refused were never "
                       "sent, so their refusal was not tested", evidence)
    refused = f"; all {len(refusals)} that had to be refused were" if refusals else ""
    return _result("pass", f"all {counts['expected']} committed effects found in the chain's state"
                   f"{refused}", evidence)
