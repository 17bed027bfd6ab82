"""Commit detection: which node held which transaction, and since when.

Adapters report blocks (from websocket subscriptions or polling); the tracker maps
their transaction ids to the run's pre-signed transactions. A transaction counts as
committed once `threshold` of the commit nodes hold it (DESIGN.md: 100% for bft/cft). The
commit nodes are every node, or with a topology its root tier (the consensus participants):
the sightings of the other nodes are kept for the History but commit nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.model import Block, threshold_nodes  # noqa: F401  (threshold_nodes re-exported)


class CommitTracker:
    """Credit follows the block that stays: when a node reports another block at a height it
    had reported before (a reorganisation, or a block announced early and then replaced),
    the transactions of the abandoned blocks lose that node's sighting and are credited
    again only when they appear on the branch the node kept. A node cannot lower latency by
    announcing blocks that do not last."""

    def __init__(self, tx_ids: list[str], nodes: int, share: float,
                 commit_nodes: Sequence[int] | None = None):
        self.index = {tx_id.lower(): i for i, tx_id in enumerate(tx_ids)}
        self.nodes = nodes
        voters = range(nodes) if commit_nodes is None else commit_nodes
        self.voter = np.zeros(nodes, dtype=bool)    # whose sighting counts towards the threshold
        self.voter[list(voters)] = True
        self.threshold = threshold_nodes(share, max(1, int(self.voter.sum())))
        self.seen = np.full((len(tx_ids), nodes), np.nan)     # harness clock per node
        self.block = np.full((len(tx_ids), nodes), -1, dtype=np.int64)
        self.holders = np.zeros(len(tx_ids), dtype=np.int32)
        self.committed_at = np.full(len(tx_ids), np.nan)      # when the threshold was reached
        self.committed = 0
        self.commit_order: list[int] = []  # tx indexes in the order they reached the threshold
        self.blocks: list[Block] = []
        self.foreign = 0  # transactions in blocks that this run did not send
        self.withdrawn = 0  # sightings taken back because their block was replaced
        self.withdrawals: dict[int, list[tuple[int, float, int]]] = {}   # tx -> (node, seen, block)
        # per node: height -> (hash, the run's tx indexes credited from that block)
        self.views: list[dict[int, tuple[str, list[int]]]] = [{} for _ in range(nodes)]

    def on_block(self, block: Block) -> None:
        self.blocks.append(block)
        view = self.views[block.node]
        known = view.get(block.number)
        if known is not None and known[0] != block.hash:
            for number in [n for n in view if n >= block.number]:
                for i in view.pop(number)[1]:
                    self._withdraw(i, block.node)
        credited = []
        for tx_id in block.tx_ids:
            i = self.index.get(tx_id.lower())
            if i is None:
                if known is None or known[0] != block.hash:
                    self.foreign += 1
                continue
            if not np.isnan(self.seen[i, block.node]):
                continue  # already held by this node (a re-reported block)
            self.seen[i, block.node] = block.seen
            self.block[i, block.node] = block.number
            credited.append(i)
            if not self.voter[block.node]:
                continue
            self.holders[i] += 1
            if self.holders[i] == self.threshold:
                self.committed_at[i] = block.seen
                self.committed += 1
                self.commit_order.append(i)
        if known is None or known[0] != block.hash:
            view[block.number] = (block.hash, credited)
        else:
            known[1].extend(credited)

    def _withdraw(self, i: int, node: int) -> None:
        """Node `node` no longer holds tx i (its block was replaced)."""
        if np.isnan(self.seen[i, node]):
            return
        self.withdrawals.setdefault(i, []).append((node, float(self.seen[i, node]), int(self.block[i, node])))
        self.seen[i, node] = np.nan
        self.block[i, node] = -1
        self.withdrawn += 1
        if not self.voter[node]:
            return
        self.holders[i] -= 1
        if np.isnan(self.committed_at[i]):
            return
        if self.holders[i] < self.threshold:
            self.committed_at[i] = np.nan
            self.committed -= 1
            self.commit_order.remove(i)
        else:   # still committed: at the threshold-th of the sightings that remain
            held = self.seen[i][self.voter]
            self.committed_at[i] = np.sort(held[~np.isnan(held)])[self.threshold - 1]

    def pending(self, upto: int) -> int:
        """Transactions among the first `upto` that have not reached the threshold."""
        return int(np.count_nonzero(np.isnan(self.committed_at[:upto])))
