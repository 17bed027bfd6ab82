"""How verdicts merge, after Jepsen: pass < unknown < fail.

One rule for every place a worst verdict is taken (a run's checks and checkers, the audit's
checks, a requirement over its cases, a grade, a campaign over its cases): a fail anywhere
fails; otherwise an unknown anywhere makes the whole undecided (inconclusive), never a pass
and never silently a fail. `not-applicable` is left out of the merge: a rule that does not
apply to this chain is neither evidence for nor against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness.errors import EXIT_INCONCLUSIVE, EXIT_PASS, EXIT_VERDICT_FAILED

PASS, UNKNOWN, FAIL = "pass", "unknown", "fail"
INCONCLUSIVE, NOT_APPLICABLE = "inconclusive", "not-applicable"
LATTICE = (PASS, UNKNOWN, FAIL)
# Other vocabularies for the same three answers: requirements and runs say "inconclusive";
# a run or case that did not complete cannot claim anything, so it merges as unknown.
_SAME_AS = {INCONCLUSIVE: UNKNOWN, "incomplete": UNKNOWN}


def rank(verdict: str) -> int:
    """The verdict's place in the lattice; ValueError for a word that is not a verdict."""
    word = _SAME_AS.get(verdict, verdict)
    if word not in LATTICE:
        raise ValueError(f"not a verdict: {verdict!r} (expected one of pass, unknown, fail, "
                         "inconclusive, incomplete, not-applicable)")
    return LATTICE.index(word)


def worst(verdicts: Iterable[str | None], default: str = PASS) -> str:
    """The merged verdict (pass, unknown or fail) of `verdicts`; not-applicable and None are
    left out, and `default` is the answer when nothing is left."""
    ranks = [rank(v) for v in verdicts if v is not None and v != NOT_APPLICABLE]
    return LATTICE[max(ranks)] if ranks else default


def outcome(verdict: str) -> str:
    """A merged verdict in the words of a run, case or requirement: unknown is inconclusive."""
    return INCONCLUSIVE if verdict == UNKNOWN else verdict


def exit_code(results: Mapping[str, Any]) -> int:
    """The exit code for a judged run or campaign (results.json): 0 pass, 4 inconclusive,
    1 anything else (a failed verdict; an incomplete run also certifies nothing)."""
    verdict = results.get("verdict")
    if verdict == PASS:
        return EXIT_PASS
    if verdict == INCONCLUSIVE:
        return EXIT_INCONCLUSIVE
    return EXIT_VERDICT_FAILED


def run_verdict(results: Mapping[str, Any]) -> str:
    """A run's verdict from its results.json: `incomplete` if it did not complete, else the
    worst of its checks, checkers, authenticity audit, security probes and certification, in a run's words
    (pass, fail, inconclusive). A requirement of a standard counts through the certification
    grade: a non-mandatory inconclusive one, or a not-applicable one, does not hold a run back."""
    if results.get("status") != "complete":
        return "incomplete"
    judged = [c["verdict"] for c in results.get("checks") or []]
    judged += [c["verdict"] for c in results.get("checkers") or []]
    if results.get("audit"):
        judged.append(results["audit"]["verdict"])  # a chain that does not recompute is no blockchain
    if results.get("security") and results["security"]["verdict"] != NOT_APPLICABLE:
        judged.append(results["security"]["verdict"])  # a probe's finding fails the run
    if results.get("certification"):
        judged.append(results["certification"]["verdict"])  # a named standard not met: not certified
    return outcome(worst(judged))
