"""Facts the correctness checkers share, rebuilt from a History alone.

Everything here is a pure function of the History: which faults were applied, when a
transaction reached the commit threshold, the highest block seen by a time, reorgs per
node, and whether the chain made progress after a moment (the liveness rule, which
fault_tolerance re-uses for "the chain resumed after the heal").
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from harness import metrics
from harness.faults import kinds
from harness.history import BlockRecord, FaultRecord, FinalChain, History, TxRecord

LIST_CAP = 20
CRASH_ACTIONS = kinds.crash_kinds()   # the fault kinds that interrupt a node's process


def result(check_id: str, verdict: str, why: str | None, evidence: dict[str, Any]) -> dict[str, Any]:
    return {"id": check_id, "verdict": verdict, "why": why, "evidence": evidence}


def r3(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def first(items: Iterable[Any], cap: int = LIST_CAP) -> list[Any]:
    """At most `cap` items, so results.json stays small (callers report the full count)."""
    out = []
    for item in items:
        if len(out) == cap:
            break
        out.append(item)
    return out


def node_count(history: History) -> int:
    return len(history.header.get("nodes", []))


def name(history: History, node: int) -> str:
    nodes = history.header.get("nodes", [])
    return nodes[node].get("name", f"node{node}") if 0 <= node < len(nodes) else f"node{node}"


def names(history: History, nodes: Iterable[int]) -> list[str]:
    return [name(history, n) for n in nodes]


def consensus_kind(history: History) -> str | None:
    """bft | cft | pow | single: from the fault model, else the chain pack's consensus kind."""
    kind = (history.header.get("fault_model") or {}).get("kind")
    return kind or (history.header.get("chain") or {}).get("consensus")


def sightings(tx: TxRecord, ever: bool = False) -> list[tuple[int, float, int]]:
    """(node, seen, block) of the blocks that stayed; with `ever`, also the sightings taken
    back when a node replaced their block (each node's earliest)."""
    if not ever or not tx.withdrawn:
        return list(tx.commits)
    earliest: dict[int, tuple[int, float, int]] = {}
    for node, seen, number in [*tx.withdrawn, *tx.commits]:
        if node not in earliest or seen < earliest[node][1]:
            earliest[node] = (node, seen, number)
    return list(earliest.values())


def commit_times(history: History, ever: bool = False) -> dict[int, float]:
    """tx index -> when the threshold-th commit node held it, for the txs that reached the threshold
    (with `ever`: at any time, counting sightings whose blocks were replaced later).

    Transactions the node answered with an error still count: if they are in blocks, they
    are committed as far as the chain is concerned.
    """
    rule = metrics.commit_rule(history.header)   # the commit nodes: a topology's root tier
    threshold = history.header.get("threshold_nodes") or rule.threshold
    times = {}
    for tx in history.txs:
        held = sorted(seen for node, seen, _ in sightings(tx, ever) if node in rule.nodes)
        if len(held) >= threshold:
            times[tx.i] = held[threshold - 1]
    return times


def count_between(times: list[float], start: float, end: float) -> int:
    """How many of the sorted `times` fall in [start, end)."""
    return bisect_left(times, end) - bisect_left(times, start)


def applied(history: History) -> list[FaultRecord]:
    return [f for f in history.faults if f.start is not None]


def healed(fault: FaultRecord) -> bool:
    """Applied and healed; a fault whose heal failed (status failed, end set) may still be in force."""
    return fault.start is not None and fault.end is not None and fault.status == "healed"


def not_healed(fault: FaultRecord) -> str:
    return f"{fault.id} was not healed ({fault.reason or 'no heal was recorded'})"


def not_applied(history: History) -> list[dict[str, Any]]:
    """Skipped or failed faults, for evidence: the checkers say they ignored them."""
    return [{"id": f.id, "action": f.action, "status": f.status, "reason": f.reason}
            for f in history.faults if f.start is None]


def watched_until(history: History) -> float:
    """When the block watchers stopped: the end of the last phase (settle or converge, if any)."""
    return max([w[1] for w in history.header.get("phases", {}).values()] + [0.0])


def highest_seen(blocks: Iterable[BlockRecord], by: float, strict: bool = False) -> int | None:
    """The highest block number any of `blocks` reported at `by` (before it, if strict)."""
    return max((b.number for b in blocks if (b.seen < by if strict else b.seen <= by)), default=None)


def finals(history: History) -> tuple[dict[int, FinalChain], dict[int, str]]:
    """(readable final chains by node, error text by node for reads that failed or are absent)."""
    readable: dict[int, FinalChain] = {}
    unread: dict[int, str] = {}
    for final in history.finals:
        if final.error is None:
            readable[final.node] = final
        else:
            unread[final.node] = final.error
    for node in range(node_count(history)):
        if node not in readable and node not in unread:
            unread[node] = "no final read was recorded"
    return readable, unread


@dataclass
class Progress:
    """Did any node report a block above the height reached by `at`, within `bound` seconds?"""

    at: float
    bound: float
    height: int | None             # highest block any node had reported by `at`
    delay: float | None            # from `at` to the first higher block (even if beyond the bound)
    verdict: str                   # pass | fail | unknown
    watched_for: float             # how long after `at` the watchers kept reporting


def progress(history: History, at: float, bound: float) -> Progress:
    height = highest_seen(history.blocks, at)
    later = [b.seen for b in history.blocks if height is None or b.number > height]
    delay = min(later) - at if later else None
    watched_for = watched_until(history) - at
    if delay is not None and delay <= bound:
        verdict = "pass"
    elif delay is not None or watched_for >= bound:
        verdict = "fail"
    else:
        verdict = "unknown"   # the watchers stopped before the bound ran out
    return Progress(at, bound, height, delay, verdict, watched_for)


def ended_too_soon(p: Progress, fault_id: str) -> str:
    """Why a progress verdict is unknown: the watchers stopped too soon after the heal."""
    if p.watched_for < 0:
        return f"{fault_id} healed at {p.at:.3f} s, {-p.watched_for:.1f} s after the block watchers stopped"
    return f"the run ended {p.watched_for:.1f} s after {fault_id} healed"


@dataclass
class Reorg:
    node: int
    height: int          # the first height where the node switched to another hash
    top: int             # the highest height the node had reported before the switch
    at: float            # when the new branch's block was seen
    old: str
    new: str

    @property
    def depth(self) -> int:
        return self.top - self.height + 1


def reorgs(history: History) -> list[Reorg]:
    """Branch switches per node, from the order each node's watcher reported its blocks.

    A report at a height at or below the node's highest with a different hash than before
    is a switch; the old branch's blocks above it are forgotten so that the rest of the new
    branch, reported next, does not count as more switches.
    """
    views: dict[int, dict[int, str]] = {}
    found = []
    for block in history.blocks:
        view = views.setdefault(block.node, {})
        old = view.get(block.number)
        if old is not None and old != block.hash:
            found.append(Reorg(block.node, block.number, max(view), block.seen, old, block.hash))
            for number in [n for n in view if n > block.number]:
                del view[number]
        view[block.number] = block.hash
    return found
