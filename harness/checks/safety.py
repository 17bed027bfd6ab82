"""Safety: no two nodes ever hold different blocks at the same height.

Chains with finality (bft, cft, single) must never show two hashes at one height, in any
block a watcher reported or in any final chain: that is a fork, and a fork loses committed
transactions. Proof-of-work chains fork by design and settle by reorganising, so for them
forks are only reported; the run fails if a node switched branches deeper than
`max_reorg_depth` blocks, or if two final chains still disagree that deep below the lower
tip (a depth counts the tip as 1, the convention of "6 confirmations").
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from typing import Any

from harness.checks import chain
from harness.history import History

ID = "safety"
DEFAULTS: dict[str, Any] = {"max_reorg_depth": 6}
ORDER = 10   # run order among the checkers (harness/checks/correctness.py)
# JSON Schema of each setting (the suite's checkers.safety), merged into the suite schema
SETTINGS: dict[str, Any] = {"max_reorg_depth": {"type": "integer", "minimum": 0}}
FINALITY = ("bft", "cft", "single")


def _hashes(history: History) -> dict[int, dict[str, set[int]]]:
    """height -> hash -> the nodes that reported it, over block records and final chains."""
    seen: dict[int, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for block in history.blocks:
        seen[block.number][block.hash].add(block.node)
    for final in history.finals:   # a partial (errored) read is still what the node said
        for number, block_hash in final.chain:
            seen[number][block_hash].add(final.node)
    return {h: dict(hashes) for h, hashes in sorted(seen.items())}


def _final_disagreements(history: History) -> list[dict[str, Any]]:
    """For each pair of final chains, the lowest height where they differ and its depth."""
    out = []
    chains = [(f.node, dict(f.chain)) for f in history.finals if f.chain]
    for (a, chain_a), (b, chain_b) in combinations(chains, 2):
        differ = [h for h in chain_a if h in chain_b and chain_a[h] != chain_b[h]]
        if differ:
            height = min(differ)
            depth = min(max(chain_a), max(chain_b)) - height + 1
            out.append({"nodes": chain.names(history, (a, b)), "height": height, "depth": depth})
    return out


def _describe(history: History, height: int, hashes: dict[str, set[int]]) -> str:
    held = [f"{h[:18]} on {', '.join(chain.names(history, sorted(nodes)))}"   # hashes cut for reading
            for h, nodes in hashes.items()]
    return f"height {height} has {len(hashes)} different blocks: " + " and ".join(held)


def check(history: History, config: dict[str, Any]) -> dict[str, Any]:
    limit = config["max_reorg_depth"]
    kind = chain.consensus_kind(history)
    hashes = _hashes(history)
    forks = {h: x for h, x in hashes.items() if len(x) > 1}
    reorgs = chain.reorgs(history)
    deepest = max((r.depth for r in reorgs), default=0)
    disagreements = _final_disagreements(history)
    evidence: dict[str, Any] = {
        "kind": kind,
        "heights": len(hashes),
        "fork_count": len(forks),
        "fork_heights": chain.first(forks),
        "forks": chain.first({"height": h, "hashes": {x: chain.names(history, sorted(nodes))
                                                      for x, nodes in fork.items()}}
                             for h, fork in forks.items()),
        "reorg_count": len(reorgs),
        "reorgs": chain.first({"node": chain.name(history, r.node), "height": r.height,
                               "depth": r.depth, "at": chain.r3(r.at)} for r in reorgs),
        "max_reorg_depth_seen": deepest,
        "final_disagreement_count": len(disagreements),
        "final_disagreements": chain.first(disagreements),
        "final_read_errors": chain.names(history, sorted(f.node for f in history.finals if f.error)),
    }
    if not hashes:
        return chain.result(ID, "unknown", "no node reported a block and no final chain was read",
                            evidence)
    if kind in FINALITY:
        if forks:
            height, fork = next(iter(forks.items()))
            more = f" ({len(forks) - 1} more forked heights)" if len(forks) > 1 else ""
            return chain.result(ID, "fail", f"{_describe(history, height, fork)} on a {kind} chain, "
                                f"which must never fork{more}", evidence)
        return chain.result(ID, "pass", None, evidence)
    if kind != "pow":
        return chain.result(ID, "unknown", f"the header names no known consensus kind ({kind!r}), "
                            "so forks cannot be judged", evidence)
    evidence["max_reorg_depth"] = limit
    too_deep = [r for r in reorgs if r.depth > limit]
    if too_deep:
        r = max(too_deep, key=lambda r: r.depth)
        return chain.result(ID, "fail", f"{chain.name(history, r.node)} switched branches at height "
                            f"{r.height} at {r.at:.3f} s, {r.depth} blocks deep (limit {limit})", evidence)
    split = [d for d in disagreements if d["depth"] > limit]
    if split:
        d = max(split, key=lambda d: d["depth"])
        return chain.result(ID, "fail", f"the final chains of {' and '.join(d['nodes'])} differ from "
                            f"height {d['height']}, {d['depth']} blocks below the lower tip "
                            f"(limit {limit})", evidence)
    return chain.result(ID, "pass", None, evidence)
