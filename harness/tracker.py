"""Commit detection: which node held which transaction, and since when.

Adapters report blocks (from websocket subscriptions or polling); the tracker maps
their transaction ids to the run's pre-signed transactions. A transaction counts as
committed once `threshold` nodes hold it (DESIGN.md: 100% for bft/cft).
"""

from __future__ import annotations

import numpy as np

from harness.model import Block, threshold_nodes  # noqa: F401  (threshold_nodes re-exported)


class CommitTracker:
    def __init__(self, tx_ids: list[str], nodes: int, share: float):
        self.index = {tx_id.lower(): i for i, tx_id in enumerate(tx_ids)}
        self.nodes = nodes
        self.threshold = threshold_nodes(share, nodes)
        self.seen = np.full((len(tx_ids), nodes), np.nan)     # harness clock per node
        self.block = np.full((len(tx_ids), nodes), -1, dtype=np.int64)
        self.holders = np.zeros(len(tx_ids), dtype=np.int32)
        self.committed_at = np.full(len(tx_ids), np.nan)      # when the threshold was reached
        self.committed = 0
        self.commit_order: list[int] = []  # tx indexes in the order they reached the threshold
        self.blocks: list[Block] = []
        self.foreign = 0  # transactions in blocks that this run did not send

    def on_block(self, block: Block) -> None:
        self.blocks.append(block)
        for tx_id in block.tx_ids:
            i = self.index.get(tx_id.lower())
            if i is None:
                self.foreign += 1
                continue
            if not np.isnan(self.seen[i, block.node]):
                continue  # already held by this node (a re-reported block)
            self.seen[i, block.node] = block.seen
            self.block[i, block.node] = block.number
            self.holders[i] += 1
            if self.holders[i] == self.threshold:
                self.committed_at[i] = block.seen
                self.committed += 1
                self.commit_order.append(i)

    def pending(self, upto: int) -> int:
        """Transactions among the first `upto` that have not reached the threshold."""
        return int(np.count_nonzero(np.isnan(self.committed_at[:upto])))
