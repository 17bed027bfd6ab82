"""Liveness: after every fault heals, the chain makes progress and its throughput recovers.

For each fault that was applied and healed:
  progress  some node reports a block above the highest height reached by the heal,
            within `bound` seconds of the heal;
  recovery  the best commit rate over a `window`-second window starting within `bound`
            seconds of the heal is at least `recovery_share` of the baseline: the commit
            rate in the `window` seconds before the fault started, capped at the rate the
            load offered in those seconds.
The cap matters when one fault follows another: the window before the second fault
holds the first one's backlog draining (seen: 68.6 tx/s committed under a 50 tx/s load),
a burst no chain can repeat once the backlog is gone. What the chain can be held to is
carrying the offered load again.
A chain that stays stuck, or limps on at a fraction of its rate after a fault is gone,
has not recovered even if it is safe.
"""

from __future__ import annotations

from typing import Any

from harness.checks import chain
from harness.history import FaultRecord, History

ID = "liveness"
DEFAULTS: dict[str, Any] = {"bound": 20.0, "recovery_share": 0.8, "window": 10.0}
ORDER = 20   # run order among the checkers (harness/checks/correctness.py)
# JSON Schema of each setting (the suite's checkers.liveness), merged into the suite schema
SETTINGS: dict[str, Any] = {"bound": {"type": "number", "exclusiveMinimum": 0},
            "recovery_share": {"type": "number", "minimum": 0, "maximum": 1},
            "window": {"type": "number", "exclusiveMinimum": 0}}
MIN_PRE_SECONDS = 2.0
STEP = 0.5


def _rate(commits: list[float], start: float, seconds: float) -> float:
    return chain.count_between(commits, start, start + seconds) / seconds


def _recovery(history: History, fault: FaultRecord, commits: list[float], scheduled: list[float],
              config: dict[str, Any]) -> tuple[dict[str, Any], str, str | None]:
    """(figures, verdict, why) of the throughput-recovery rule for one healed fault."""
    bound, window, share = config["bound"], config["window"], config["recovery_share"]
    phases = history.header["phases"]
    load_start = phases.get("warmup", phases["measure"])[0]
    load_end = phases["measure"][1]
    pre_start = max(fault.start - window, load_start)
    pre_seconds = fault.start - pre_start
    figures: dict[str, Any] = {"pre_rate": None, "offered_rate": None, "baseline": None, "post_rate": None,
                               "ratio": None}
    if pre_seconds < MIN_PRE_SECONDS:
        return figures, "unknown", (f"{fault.id} started {max(pre_seconds, 0.0):.1f} s after the load "
                                    f"began; recovery needs {MIN_PRE_SECONDS:g} s of load before the fault")
    if fault.end + bound + window > load_end:
        return figures, "unknown", (f"the load ended at {load_end:.3f} s, before the {window:g} s windows "
                                    f"within {bound:g} s of {fault.id}'s heal at {fault.end:.3f} s had "
                                    "closed")
    pre = _rate(commits, pre_start, pre_seconds)   # a window clipped at the load's start: its own length
    offered = _rate(scheduled, pre_start, pre_seconds)
    baseline = min(pre, offered) if offered else pre
    starts = [fault.end + STEP * i for i in range(int(bound / STEP) + 1)]
    post = max(_rate(commits, s, window) for s in starts)
    ratio = post / baseline if baseline else None
    figures = {"pre_rate": round(pre, 3), "offered_rate": round(offered, 3), "baseline": round(baseline, 3),
               "post_rate": round(post, 3), "ratio": None if ratio is None else round(ratio, 3)}
    if post >= share * baseline:
        return figures, "pass", None
    before = (f"the {baseline:.1f} tx/s before it" if baseline == pre else
              f"the {baseline:.1f} tx/s offered before it ({pre:.1f} tx/s committed, backlog included)")
    return figures, "fail", (f"after {fault.id} healed at {fault.end:.3f} s the best {window:g} s commit "
                             f"rate within {bound:g} s was {post:.1f} tx/s, {ratio:.0%} of {before} "
                             f"(needs {share:.0%})")


def _progress_why(fault: FaultRecord, p: chain.Progress) -> str | None:
    if p.verdict == "pass":
        return None
    if p.verdict == "unknown":
        return f"{chain.ended_too_soon(p, fault.id)}; liveness needs {p.bound:g} s"
    if p.delay is not None:
        return (f"after {fault.id} healed at {fault.end:.3f} s the first new block came {p.delay:.1f} s "
                f"later (bound {p.bound:g} s)")
    return (f"after {fault.id} healed at {fault.end:.3f} s no node reported a block above height "
            f"{p.height} in the {p.watched_for:.1f} s the run still watched (bound {p.bound:g} s)")


def check(history: History, config: dict[str, Any]) -> dict[str, Any]:
    commits = sorted(chain.commit_times(history).values())
    scheduled = sorted(tx.scheduled for tx in history.txs)
    faults, fails, unknowns = [], [], []
    for fault in chain.applied(history):
        if not chain.healed(fault):
            unknowns.append(f"{chain.not_healed(fault)}, so recovery after it cannot be judged")
            faults.append({"id": fault.id, "action": fault.action, "start": chain.r3(fault.start),
                           "healed": None, "status": fault.status})
            continue
        p = chain.progress(history, fault.end, config["bound"])
        figures, recovered, recovery_why = _recovery(history, fault, commits, scheduled, config)
        for verdict, why in ((p.verdict, _progress_why(fault, p)), (recovered, recovery_why)):
            if verdict == "fail":
                fails.append(why)
            elif verdict == "unknown":
                unknowns.append(why)
        faults.append({"id": fault.id, "action": fault.action, "start": chain.r3(fault.start),
                       "healed": chain.r3(fault.end), "height_at_heal": p.height,
                       "time_to_first_block": chain.r3(p.delay), "progress": p.verdict,
                       **figures, "recovery": recovered})
    evidence = {"bound": config["bound"], "recovery_share": config["recovery_share"],
                "window": config["window"], "fault_count": len(faults), "faults": chain.first(faults),
                "not_applied": chain.first(chain.not_applied(history))}
    if fails:
        more = f" ({len(fails) - 1} more problems)" if len(fails) > 1 else ""
        return chain.result(ID, "fail", fails[0] + more, evidence)
    if unknowns:
        more = f" (and {len(unknowns) - 1} more gaps in the evidence)" if len(unknowns) > 1 else ""
        return chain.result(ID, "unknown", unknowns[0] + more, evidence)
    if not faults:
        return chain.result(ID, "unknown", "no fault healed during the run", evidence)
    return chain.result(ID, "pass", None, evidence)
