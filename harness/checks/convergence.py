"""Convergence: after the last fault heals, every node ends on the same chain, soon.

Agreement: the final chains (read after the run) hold the same block at the highest
height they all contain. Time: from the last heal until every node's watcher reported
the same block above the highest height reached by the heal, i.e. the first block made
after the heal that all nodes share; it must be within `bound` seconds. A node cut off
by a fault that rejoins but never catches up is as broken as one that forked.
"""

from __future__ import annotations

from typing import Any

from harness.checks import chain
from harness.history import FinalChain, History

ID = "convergence"
DEFAULTS: dict[str, Any] = {"bound": 30.0}
ORDER = 40   # run order among the checkers (harness/checks/correctness.py)
# JSON Schema of each setting (the suite's checkers.convergence), merged into the suite schema
SETTINGS: dict[str, Any] = {"bound": {"type": "number", "exclusiveMinimum": 0}}


def _first_seen(history: History) -> dict[tuple[int, int, str], float]:
    seen: dict[tuple[int, int, str], float] = {}
    for b in history.blocks:
        key = (b.node, b.number, b.hash)
        seen[key] = min(seen.get(key, b.seen), b.seen)
    return seen


def _timing(history: History, readable: dict[int, FinalChain], shared: list[int],
            config: dict[str, Any], evidence: dict[str, Any]) -> dict[str, Any]:
    """Judge the time from the last heal to a block every node shares."""
    bound = config["bound"]
    healed = [f.end for f in chain.applied(history) if f.end is not None]
    if not healed:
        return chain.result(ID, "pass", None, evidence)   # nothing to recover from: agreement suffices
    last = max(healed)
    before = chain.highest_seen(history.blocks, last)
    floor = -1 if before is None else before
    evidence.update(last_heal=chain.r3(last), height_at_last_heal=before)
    views = {node: dict(final.chain) for node, final in readable.items()}
    tips = {node: max(view) for node, view in views.items()}
    read_after = max(final.at for final in readable.values()) - last
    later = [h for h in shared if h > floor and len({views[n][h] for n in views}) == 1]
    if not later:
        lagging = sorted(n for n, tip in tips.items() if tip <= floor)
        if len(lagging) == len(tips):
            return chain.result(ID, "unknown", f"no node's final chain goes above height {floor}, reached by "
                                f"the last heal at {last:.3f} s: no block was made after it", evidence)
        who = ", ".join(f"{chain.name(history, n)} (tip {tips[n]})" for n in lagging)
        if read_after > bound:
            return chain.result(ID, "fail", f"{who} had not caught up {read_after:.1f} s after the last heal "
                                f"at {last:.3f} s: still at or below height {floor}, reached by the heal "
                                f"(bound {bound:g} s)", evidence)
        return chain.result(ID, "unknown", f"the final read came {read_after:.1f} s after the last heal, "
                            f"before the {bound:g} s bound, and {who} had not caught up yet", evidence)
    seen = _first_seen(history)
    for height in later:
        times = {n: seen.get((n, height, views[n][height])) for n in views}
        if None not in times.values():
            last_node = max(times, key=lambda n: times[n])
            took = times[last_node] - last
            evidence.update(converged_height=height, time_to_converge=chain.r3(took))
            if took <= bound:
                return chain.result(ID, "pass", None, evidence)
            return chain.result(ID, "fail", f"after the last heal at {last:.3f} s the nodes first shared "
                                f"a new block (height {height}) {took:.1f} s later, when "
                                f"{chain.name(history, last_node)} saw it (bound {bound:g} s)", evidence)
    # The watchers never saw one common block on every node, but the final reads did: an upper bound.
    evidence.update(converged_height=later[0], converged_by=chain.r3(read_after))
    if read_after <= bound:
        return chain.result(ID, "pass", None, evidence)
    silent = [n for n in views if (n, later[0], views[n][later[0]]) not in seen]
    return chain.result(ID, "unknown", f"the watchers of {', '.join(chain.names(history, silent))} never "
                        f"reported a block made after the last heal at {last:.3f} s; the final reads agree "
                        f"only {read_after:.1f} s after it (bound {bound:g} s)", evidence)


def check(history: History, config: dict[str, Any]) -> dict[str, Any]:
    readable, unread = chain.finals(history)
    empty = sorted(n for n, final in readable.items() if not final.chain)
    views = {node: dict(final.chain) for node, final in readable.items() if final.chain}
    tips = {node: max(view) for node, view in views.items()}
    shared = sorted(set.intersection(*(set(v) for v in views.values()))) if views else []
    common = shared[-1] if shared else None
    evidence: dict[str, Any] = {
        "bound": config["bound"], "common_height": common,
        "tips": {chain.name(history, n): tip for n, tip in sorted(tips.items())},
        "tip_lag": max(tips.values()) - min(tips.values()) if tips else None,
        "last_heal": None, "height_at_last_heal": None, "converged_height": None,
        "time_to_converge": None, "converged_by": None,
        "unread": [{"node": chain.name(history, n), "error": e} for n, e in sorted(unread.items())],
        "not_applied": chain.first(chain.not_applied(history)),
    }
    if common is not None:
        holders: dict[str, list[int]] = {}
        for node, view in sorted(views.items()):
            holders.setdefault(view[common], []).append(node)
        if len(holders) > 1:
            held = " but ".join(f"{', '.join(chain.names(history, nodes))} hold {h[:18]}"
                                for h, nodes in holders.items())
            evidence["hashes_at_common_height"] = {h: chain.names(history, n) for h, n in holders.items()}
            return chain.result(ID, "fail", f"the final chains disagree at height {common}: {held}", evidence)
    if unread:
        node, error = min(unread.items())
        return chain.result(ID, "unknown", f"{chain.name(history, node)}'s final chain could not be read: "
                            f"{error}", evidence)
    if empty:
        return chain.result(ID, "unknown", f"the final chain of {', '.join(chain.names(history, empty))} "
                            "is empty", evidence)
    if len(views) == 1 and chain.node_count(history) == 1:
        return chain.result(ID, "pass", f"{chain.name(history, next(iter(views)))} is the only node: there "
                            "is nothing to converge with", evidence)
    if len(views) < 2:
        return chain.result(ID, "unknown", "fewer than two final chains were read", evidence)
    if common is None:
        return chain.result(ID, "unknown", "the final chains share no height to compare", evidence)
    return _timing(history, {n: readable[n] for n in views}, shared, config, evidence)
