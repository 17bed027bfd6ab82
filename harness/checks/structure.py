"""Facts of the three-tier structure (docs/topology.md), rebuilt from a History alone.

Shared by the `supervision` and `freshness` checkers and by results.json's topology figures
(the metrics a suite's `checks:` may name). Pure: the History's header (its `topology` and
`load.commit_nodes`), its tx sightings, its blocks, its faults and its final chains.

  supervision   every committed transaction (held by the commit share of the root tier)
                must reach every management node: completeness is the share of
                (transaction, management node) pairs held by the end of the run, lag the
                time from the commit to the management node's sighting.
  freshness     each application node's lag behind the root tier per block: when it first
                saw height h minus when the root tier had h (the threshold-th root node's
                first sighting, the rule a transaction's commit follows).

A lag whose wait overlapped a fault that acted on that node (the fault record's `nodes`: a
zone cut, a kill, a pause ...) is left out of the percentiles and counted apart: the node
could not receive then. It must still hold everything, and catch up, by the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness import metrics
from harness.checks import chain
from harness.history import History
from harness.topology import Topology


def topology(history: History) -> Topology | None:
    doc = history.header.get("topology")
    return Topology.from_header(doc) if doc else None


def cut_windows(history: History, node: int) -> list[tuple[str, float, float]]:
    """(fault id, start, end) of the applied faults that acted on `node`; a fault never
    healed lasts until the watchers stopped."""
    until = chain.watched_until(history)
    return [(f.id, f.start, f.end if f.end is not None else until)
            for f in chain.applied(history) if node in f.nodes]


def _overlaps(windows: list[tuple[str, float, float]], start: float, end: float) -> bool:
    return any(a <= end and start <= b for _, a, b in windows)


def lag_ms(lags_s: list[float]) -> dict[str, Any]:
    return metrics.lag_summary(lags_s)


# ---------------------------------------------------------------- supervision


@dataclass
class Missing:
    tx: int
    id: str
    node: int
    committed_at: float


@dataclass
class ManagerFacts:
    node: int
    held: int = 0
    held_in_final_only: int = 0        # held per the final read, never reported by the watcher
    lags: list[float] = field(default_factory=list)   # seconds after the commit
    excluded: int = 0                  # lags whose wait overlapped a fault on this node
    missing: list[Missing] = field(default_factory=list)   # not held, and the bound ran out
    pending: list[Missing] = field(default_factory=list)   # not held, the run ended too soon
    horizon: float = 0.0               # until when the run could see what this node held


@dataclass
class Supervision:
    managers: dict[int, ManagerFacts]
    committed: int
    bound: float

    @property
    def pairs(self) -> int:
        return self.committed * len(self.managers)

    @property
    def held(self) -> int:
        return sum(m.held for m in self.managers.values())

    @property
    def completeness(self) -> float | None:
        return round(self.held / self.pairs, 6) if self.pairs else None

    @property
    def lags(self) -> list[float]:
        return [lag for m in self.managers.values() for lag in m.lags]

    @property
    def missing(self) -> list[Missing]:
        return sorted((x for m in self.managers.values() for x in m.missing), key=lambda x: x.committed_at)

    @property
    def pending(self) -> list[Missing]:
        return sorted((x for m in self.managers.values() for x in m.pending), key=lambda x: x.committed_at)


def supervision(history: History, bound: float) -> Supervision | None:
    """What the management nodes held of the committed transactions; None when the run had
    no topology or no management node."""
    found = topology(history)
    managers = found.tier_nodes("management") if found is not None else ()
    if not managers:
        return None
    commits = chain.commit_times(history)
    readable, _ = chain.finals(history)
    watched = chain.watched_until(history)
    facts = {}
    for m in managers:
        final = readable.get(m)
        facts[m] = ManagerFacts(node=m, horizon=max(watched, final.at if final else watched))
    holds = {m: set(readable[m].holds) if m in readable else set() for m in managers}
    cuts = {m: cut_windows(history, m) for m in managers}
    for tx in history.txs:
        at = commits.get(tx.i)
        if at is None:
            continue
        seen = {node: t for node, t, _ in tx.commits if node in facts}
        for m, f in facts.items():
            if m in seen:
                f.held += 1
                if _overlaps(cuts[m], at, seen[m]):
                    f.excluded += 1
                else:
                    f.lags.append(seen[m] - at)
            elif tx.i in holds[m]:
                f.held += 1
                f.held_in_final_only += 1
            else:
                entry = Missing(tx.i, tx.id, m, at)
                (f.missing if f.horizon >= at + bound else f.pending).append(entry)
    return Supervision(managers=facts, committed=len(commits), bound=bound)


# ---------------------------------------------------------------- freshness


@dataclass
class Recovery:
    fault: str
    healed_at: float
    height: int | None             # the root tier's highest height at the heal
    caught_up_after: float | None  # seconds from the heal until the node saw that height


@dataclass
class NodeFreshness:
    node: int
    lags: list[float] = field(default_factory=list)   # seconds behind the root tier, per height
    excluded: int = 0                 # heights whose wait overlapped a fault on this node
    tip: int | None = None            # the highest height it reached (watchers or final read)
    recoveries: list[Recovery] = field(default_factory=list)


@dataclass
class Freshness:
    nodes: dict[int, NodeFreshness]
    root_tip: int | None             # the root tier's highest height when the settle began
    root_tip_at: float               # that moment

    def caught_up(self, node: int) -> bool | None:
        if self.root_tip is None:
            return None
        tip = self.nodes[node].tip
        return tip is not None and tip >= self.root_tip


def freshness(history: History) -> Freshness | None:
    """Each application node's lag behind the root tier; None without application nodes."""
    found = topology(history)
    apps = found.tier_nodes("application") if found is not None else ()
    if not apps:
        return None
    rule = metrics.commit_rule(history.header)
    sightings = metrics.first_sightings(history)
    roots = metrics.root_times(history, rule, sightings)
    phases = history.header.get("phases") or {}
    settle = (phases.get("settle") or [chain.watched_until(history)])[0]
    tip_times = sorted((t, h) for h, t in roots.items())
    root_tip = max((h for t, h in tip_times if t <= settle), default=None)
    readable, _ = chain.finals(history)
    out = {}
    for node in apps:
        facts = NodeFreshness(node=node)
        cuts = cut_windows(history, node)
        heights = sightings.get(node, {})
        for height, at in sorted(heights.items()):
            if height not in roots:
                continue
            if _overlaps(cuts, roots[height], at):
                facts.excluded += 1
            else:
                facts.lags.append(at - roots[height])
        final_tip = max((h for h, _ in readable[node].chain), default=None) if node in readable else None
        tips = [h for h in (max(heights, default=None), final_tip) if h is not None]
        facts.tip = max(tips) if tips else None
        for fault_id, _, healed in cuts:
            height = max((h for t, h in tip_times if t <= healed), default=None)
            reached = [at for h, at in heights.items() if height is not None and h >= height and at >= healed]
            facts.recoveries.append(Recovery(fault_id, healed, height,
                                             min(reached) - healed if reached else None))
        out[node] = facts
    return Freshness(nodes=out, root_tip=root_tip, root_tip_at=settle)


# ---------------------------------------------------------------- figures for results.json


def figures(history: History) -> dict[str, Any]:
    """supervision_completeness, supervision_lag_p99_ms, application_lag_p99_ms (the worst
    application node's p99): the structure metrics a suite's `checks:` may name."""
    sup = supervision(history, bound=float("inf"))
    fresh = freshness(history)
    worst = None
    if fresh is not None:
        p99s = [lag_ms(n.lags)["p99"] for n in fresh.nodes.values() if n.lags]
        worst = max(p99s) if p99s else None
    return {"supervision_completeness": sup.completeness if sup else None,
            "supervision_lag_p99_ms": lag_ms(sup.lags)["p99"] if sup else None,
            "application_lag_p99_ms": worst}
