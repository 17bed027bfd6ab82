"""Fault tolerance: the chain keeps going with up to f nodes out, and stops with more.

A bft chain of n nodes promises to tolerate f = (n-1)//3 faulty nodes, a cft chain
f = (n-1)//2. For each crash-like fault (kill, stop, pause, wipe, a partition isolating
`nodes`, or a full disk on at most f nodes) lasting at least `grace` + `min_window`
seconds, with k nodes out:
  k <= f  expected to continue: the other nodes report at least one new height, with
          transactions in it when the load was running, between start + grace and the heal;
  k > f   expected to halt: no new height in that window (a quorum that should not exist
          produced blocks), and after the heal the chain resumes within `resume_bound`.
A halt is only correct together with safety; that is the safety checker's job.
Shorter faults are listed as `too_short`: a window of a fraction of a block interval
says nothing about whether the others go on (seen: a 5.7 s wipe left 0.7 s after the
grace, and CometBFT makes a block every ~1.3 s).
"""

from __future__ import annotations

from typing import Any

from harness import verdicts as merge
from harness.checks import chain
from harness.checks.liveness import DEFAULTS as LIVENESS
from harness.faults import kinds
from harness.history import FaultRecord, History

ID = "fault_tolerance"
DEFAULTS: dict[str, Any] = {"grace": 5.0, "min_window": 5.0, "resume_bound": LIVENESS["bound"]}
ORDER = 50   # run order among the checkers (harness/checks/correctness.py)
# JSON Schema of each setting (the suite's checkers.fault_tolerance), merged into the suite schema
SETTINGS: dict[str, Any] = {
    "grace": {"type": "number", "minimum": 0},
    "min_window": {"type": "number", "minimum": 0,
                   "description": "seconds after the grace a fault must last to be judged"},
    "resume_bound": {"type": "number", "exclusiveMinimum": 0,
                     "description": "seconds after the heal a halted chain has to resume"}}
KINDS = ("bft", "cft")
NOTE = "a halt is correct only if the safety checker passes too"


def _crash_like(fault: FaultRecord, f: int) -> bool:
    """Takes `nodes` out for a while, as its kind declares (harness/faults/kinds/): a
    restart is over too fast to judge what the others did; a full disk counts with at most
    f nodes. An action this version does not know is not judged."""
    kind = kinds.find(fault.action)
    return kind is not None and kind.judged_out(len(fault.nodes), f)


def _judge(history: History, fault: FaultRecord, f: int, commits: list[float],
           config: dict[str, Any]) -> tuple[dict[str, Any], str, str | None]:
    """(evidence, verdict, why) for one fault."""
    k, out = len(fault.nodes), set(fault.nodes)
    expected = "continue" if k <= f else "halt"
    opened = fault.start + config["grace"]
    closed = fault.end if fault.end is not None else chain.watched_until(history)
    before = chain.highest_seen(history.blocks, opened, strict=True)
    fresh = [b for b in history.blocks if b.node not in out and opened <= b.seen <= closed
             and (before is None or b.number > before)]
    heights = sorted({b.number for b in fresh})
    sent = sum(1 for tx in history.txs if tx.submitted is not None and opened <= tx.submitted <= closed)
    ev: dict[str, Any] = {
        "id": fault.id, "action": fault.action, "nodes": chain.names(history, fault.nodes), "k": k, "f": f,
        "expected": expected, "window": [chain.r3(opened), chain.r3(closed)], "height_before": before,
        "new_heights": len(heights), "new_heights_first": chain.first(heights),
        "blocks_with_txs": len({b.number for b in fresh if b.txs > 0}), "txs_sent_in_window": sent,
        "txs_committed_in_window": chain.count_between(commits, opened, closed), "resumed_after": None,
    }
    who = f"{fault.id} ({fault.action}) took {k} of {chain.node_count(history)} nodes out (f={f})"
    span = f"between {opened:.3f} s and {closed:.3f} s"
    others = ", ".join(chain.names(history, [n for n in range(chain.node_count(history)) if n not in out]))
    if expected == "continue":
        if not heights:
            return ev, "fail", f"{who}, yet {others} reported no new height {span}"
        if sent and not ev["blocks_with_txs"]:
            return ev, "fail", (f"{who}; {others} reported {len(heights)} new heights {span} but none "
                                f"carried any of the {sent} txs sent meanwhile")
        return ev, "pass", None
    if heights:
        return ev, "fail", (f"{who}, more than it tolerates, yet {others} reported {len(heights)} new "
                            f"heights ({heights[0]}-{heights[-1]}) {span}")
    if not chain.healed(fault):
        return ev, "unknown", f"{chain.not_healed(fault)}, so whether the chain resumes cannot be judged"
    resumed = chain.progress(history, fault.end, config["resume_bound"])
    ev["resumed_after"] = chain.r3(resumed.delay)
    if resumed.verdict == "unknown":
        return ev, "unknown", (f"{chain.ended_too_soon(resumed, fault.id)}; resuming needs "
                               f"{config['resume_bound']:g} s")
    if resumed.verdict == "fail":
        late = "none came" if resumed.delay is None else f"the first came {resumed.delay:.1f} s later"
        return ev, "fail", (f"the chain halted during {fault.id} as expected but did not resume within "
                            f"{config['resume_bound']:g} s of the heal at {fault.end:.3f} s ({late})")
    return ev, "pass", None


def check(history: History, config: dict[str, Any]) -> dict[str, Any]:
    model = history.header.get("fault_model")
    evidence: dict[str, Any] = {"grace": config["grace"], "min_window": config["min_window"],
                                "fault_model": model, "note": NOTE,
                                "faults": [], "too_short": [],
                                "not_applied": chain.first(chain.not_applied(history))}
    if not model:
        return chain.result(ID, "unknown", "the header has no fault_model, so the tolerated number of "
                            "faulty nodes is unknown", evidence)
    if model.get("kind") not in KINDS:
        return chain.result(ID, "unknown", f"the fault model gives no threshold for {model.get('kind')} "
                            "chains", evidence)
    commits = sorted(chain.commit_times(history).values())
    verdicts = []
    for fault in chain.applied(history):
        if not _crash_like(fault, model["f"]):
            continue
        end = fault.end if fault.end is not None else chain.watched_until(history)
        if end - fault.start < config["grace"] + config["min_window"]:
            evidence["too_short"].append(fault.id)
            continue
        ev, verdict, why = _judge(history, fault, model["f"], commits, config)
        evidence["faults"].append({**ev, "verdict": verdict})
        verdicts.append((verdict, why))
    evidence["fault_count"] = len(verdicts)
    evidence["faults"] = chain.first(evidence["faults"])
    worst = merge.worst(verdict for verdict, _ in verdicts)
    if worst != "pass":
        whys = [why for verdict, why in verdicts if verdict == worst]
        more = f" ({len(whys) - 1} more faults)" if len(whys) > 1 else ""
        return chain.result(ID, worst, whys[0] + more, evidence)
    if not verdicts:
        return chain.result(ID, "unknown", f"no crash-like fault (kill, stop, pause, wipe, partition) "
                            f"lasting the {config['grace']:g} s grace and a {config['min_window']:g} s "
                            "window was applied", evidence)
    return chain.result(ID, "pass", None, evidence)
