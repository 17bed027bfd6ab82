"""Durability: every transaction that committed during the run is in every node's final chain.

A transaction that reached the commit threshold was reported to the client as done, so
losing it later (a crashed node that restarts without it, a fork that drops it) is data
loss. The final reads are taken after the run ended and every fault healed, so a node
that never caught up also counts as missing what it lacks.

With a topology, only the commit nodes (the root tier) had to hold a transaction for it
to commit: a management or application node whose final tip is still below a committed
transaction's block is behind, not losing data (supervision and freshness judge its lag);
what it lacks at or below its own tip is lost.

Proof-of-work chains may orphan a recent block: a committed transaction missing from a
final chain is reported as orphaned, and fails only if a node that held it dropped its
block after the block was `max_reorg_depth` or more deep on that node. The depth is
read from the node's reports (the highest height it had reported before the switch that
removed the block); without a recorded switch, from the highest height it ever reported.
"""

from __future__ import annotations

from typing import Any

from harness import metrics
from harness.checks import chain
from harness.history import History, TxRecord

ID = "durability"
DEFAULTS: dict[str, Any] = {"max_reorg_depth": 6}
ORDER = 30   # run order among the checkers (harness/checks/correctness.py)
# JSON Schema of each setting (the suite's checkers.durability), merged into the suite schema
SETTINGS: dict[str, Any] = {"max_reorg_depth": {"type": "integer", "minimum": 0}}


def _block(tx: TxRecord) -> int:
    return min(number for _, _, number in chain.sightings(tx, ever=True))


def _drop_depth(history: History, reorgs: list[chain.Reorg], node: int, number: int, seen: float) -> int:
    """How deep block `number` was on `node` when a later branch switch removed it."""
    for reorg in reorgs:
        if reorg.node == node and reorg.at >= seen and reorg.height <= number:
            return reorg.top - number + 1
    return max((b.number for b in history.blocks if b.node == node), default=number) - number + 1


def _orphans(history: History, missing: dict[int, list[int]],
             txs: dict[int, TxRecord], readable: set[int]) -> list[dict[str, Any]]:
    """pow: each committed tx missing somewhere, with its depth on the node that dropped it."""
    reorgs = chain.reorgs(history)
    lost_on = {node: set(lost) for node, lost in missing.items()}
    out = []
    for i in sorted(set().union(*lost_on.values())):
        droppers = [(node, seen, number) for node, seen, number in chain.sightings(txs[i], ever=True)
                    if node in readable and i in lost_on[node]]
        depths = [(_drop_depth(history, reorgs, node, number, seen), node) for node, seen, number in droppers]
        depth, node = max(depths, key=lambda d: d[0]) if depths else (None, None)
        out.append({"id": txs[i].id, "block": _block(txs[i]), "depth": depth,
                    "dropped_by": None if node is None else chain.name(history, node)})
    return out


def check(history: History, config: dict[str, Any]) -> dict[str, Any]:
    limit = config["max_reorg_depth"]
    kind = chain.consensus_kind(history)
    # What was committed at any time: a block a node replaced takes its credit for latency,
    # not the chain's duty to keep what it had committed.
    committed = chain.commit_times(history, ever=True)
    txs = {tx.i: tx for tx in history.txs}
    readable, unread = chain.finals(history)
    missing = {node: sorted(set(committed) - set(final.holds)) for node, final in sorted(readable.items())}
    tips = {node: max((n for n, _ in final.chain), default=-1) for node, final in readable.items()}
    voters = set(metrics.commit_nodes(history.header))
    behind = {node: [i for i in lost if _block(txs[i]) > tips[node]]
              for node, lost in missing.items() if node not in voters}
    for node, late in behind.items():   # a non-voting node that is behind: not a loss
        missing[node] = [i for i in missing[node] if i not in set(late)]
    crashed = sorted({n for f in chain.applied(history) if f.action in chain.CRASH_ACTIONS for n in f.nodes})
    evidence: dict[str, Any] = {
        "kind": kind,
        "committed": len(committed),
        "nodes": [{"node": chain.name(history, node), "missing": len(lost),
                   "missing_ids": chain.first(txs[i].id for i in lost),
                   "above_tip": sum(1 for i in lost if _block(txs[i]) > tips[node])}
                  for node, lost in missing.items()],
        "unread": [{"node": chain.name(history, node), "error": error}
                   for node, error in sorted(unread.items())],
        "behind": [{"node": chain.name(history, node), "txs": len(late), "final_tip": tips[node]}
                   for node, late in behind.items() if late],
        "crashed": chain.names(history, crashed),
        "resynced": chain.names(history, [n for n in crashed if n in readable and not missing[n]]),
    }
    if kind == "pow":
        return _judge_pow(history, evidence, missing, txs, readable, unread, limit)
    losers = [(node, lost) for node, lost in missing.items() if lost]
    if losers:
        node, lost = losers[0]
        tx = txs[lost[0]]
        above = sum(1 for i in lost if _block(txs[i]) > tips[node])
        behind = (f"; {above} of them lie above its final tip {tips[node]}, so it had not caught up"
                  if above else "")
        more = f" (and {len(losers) - 1} more nodes)" if len(losers) > 1 else ""
        return chain.result(ID, "fail", (
            f"{chain.name(history, node)}'s final chain is missing {len(lost)} of {len(committed)} committed "
            f"txs, first {tx.id} (committed at {committed[tx.i]:.3f} s in block {_block(tx)}){behind}{more}"),
            evidence)
    return _undecided(history, evidence, unread)


def _judge_pow(history: History, evidence: dict[str, Any], missing: dict[int, list[int]],
               txs: dict[int, TxRecord], readable: dict[int, Any], unread: dict[int, str],
               limit: int) -> dict[str, Any]:
    orphans = _orphans(history, missing, txs, set(readable))
    deep = [o for o in orphans if o["depth"] is not None and o["depth"] >= limit]
    evidence.update(max_reorg_depth=limit, orphaned=len(orphans), orphaned_txs=chain.first(orphans))
    if deep:
        o = max(deep, key=lambda o: o["depth"])
        more = f" ({len(deep) - 1} more such txs)" if len(deep) > 1 else ""
        return chain.result(ID, "fail", f"tx {o['id']} (block {o['block']}) was dropped by "
                            f"{o['dropped_by']} after its block was {o['depth']} deep (limit {limit}){more}",
                            evidence)
    return _undecided(history, evidence, unread)


def _undecided(history: History, evidence: dict[str, Any], unread: dict[int, str]) -> dict[str, Any]:
    """No loss among the nodes read: pass, unless some evidence is missing."""
    if unread:
        node, error = min(unread.items())
        return chain.result(ID, "unknown", f"{chain.name(history, node)}'s final chain could not be read: "
                            f"{error}", evidence)
    if not evidence["committed"]:
        return chain.result(ID, "unknown", "no transaction reached the commit threshold during the run, "
                            "so there is nothing to check", evidence)
    return chain.result(ID, "pass", None, evidence)
