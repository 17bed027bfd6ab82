"""A node that announces a block early (holding the run's transactions) and then replaces
it cannot lower its latency: the tracker used to keep a transaction's first sighting even
after that block was reorganised away (issue 10, item 8). Credit follows the block that
stays; a chain that claims finality is always judged by the safety checker."""

from __future__ import annotations

import math

from harness.model import Block
from harness.tracker import CommitTracker


def block(node, number, hash_, seen, *txs):
    return Block(node=node, number=number, hash=hash_, parent="p", seen=seen, fetched=seen, tx_ids=txs)


def test_a_replaced_early_block_loses_its_credit_until_the_kept_branch_holds_the_tx():
    tracker = CommitTracker(["t0", "t1"], nodes=1, share=1.0)
    tracker.on_block(block(0, 5, "early", 1.0, "t0", "t1"))      # announced early, then replaced
    assert tracker.committed == 2
    tracker.on_block(block(0, 5, "real", 2.0, "t1"))
    assert tracker.committed == 1 and math.isnan(tracker.committed_at[0])
    assert tracker.committed_at[1] == 2.0 and tracker.commit_order == [1]
    tracker.on_block(block(0, 6, "next", 3.0, "t0"))
    assert tracker.committed_at[0] == 3.0 and tracker.block[0, 0] == 6
    assert tracker.withdrawn == 2


def test_a_reorg_takes_back_every_block_above_the_switch():
    tracker = CommitTracker(["a", "b", "c"], nodes=1, share=1.0)
    tracker.on_block(block(0, 1, "x1", 1.0, "a"))
    tracker.on_block(block(0, 2, "x2", 2.0, "b"))
    tracker.on_block(block(0, 3, "x3", 3.0, "c"))
    tracker.on_block(block(0, 2, "y2", 4.0))                       # switch at height 2
    assert tracker.committed == 1 and tracker.commit_order == [0]
    assert math.isnan(tracker.committed_at[1]) and math.isnan(tracker.committed_at[2])


def test_one_lying_node_cannot_move_a_commit_earlier_on_a_shared_threshold():
    """Three nodes, threshold 2 (share 0.5): node0 lies early, nodes 1 and 2 hold the real
    block later. Once node0's block is replaced, the commit time is the real second sighting."""
    tracker = CommitTracker(["t"], nodes=3, share=0.5)
    tracker.on_block(block(0, 9, "fake", 1.0, "t"))
    tracker.on_block(block(1, 9, "real", 5.0, "t"))
    assert tracker.committed_at[0] == 5.0
    tracker.on_block(block(0, 9, "real", 6.0, "t"))               # node0 switches to the real one
    tracker.on_block(block(2, 9, "real", 7.0, "t"))
    assert tracker.committed_at[0] == 6.0                          # not 5.0 (its fake sighting's pair)
    assert sorted(tracker.seen[0]) == [5.0, 6.0, 7.0]


def test_a_re_reported_block_changes_nothing():
    tracker = CommitTracker(["t"], nodes=1, share=1.0)
    tracker.on_block(block(0, 1, "h", 1.0, "t", "foreign"))
    tracker.on_block(block(0, 1, "h", 2.0, "t", "foreign"))
    assert tracker.committed_at[0] == 1.0 and tracker.withdrawn == 0 and tracker.foreign == 1


def test_a_commit_taken_back_still_binds_durability():
    """A restarted single node that rebuilt a different chain loses the credit of the old
    blocks (no latency from blocks that vanished), but durability still judges what had been
    committed: the History keeps the withdrawn sightings."""
    from harness.checks import durability
    from harness.history import History
    from harness.model import FinalChain, TxRecord

    tracker = CommitTracker(["t"], nodes=1, share=1.0)
    tracker.on_block(block(0, 3, "old", 1.0, "t"))
    tracker.on_block(block(0, 3, "rebuilt", 9.0))                 # the tx is gone from height 3
    assert tracker.committed == 0 and tracker.withdrawals == {0: [(0, 1.0, 3)]}
    history = History(
        header={"nodes": [{"name": "node0"}], "load": {"commit_share": 1.0},
                "fault_model": {"kind": "single"}},
        txs=[TxRecord(i=0, id="t", phase="measure", node=0, scheduled=0.0, submitted=0.5, acked=0.6,
                      error=None, commits=[], withdrawn=[(0, 1.0, 3)])],
        finals=[FinalChain(node=0, at=10.0, chain=[(3, "rebuilt")], holds=[])])
    judged = durability.check(history, durability.DEFAULTS)
    assert judged["verdict"] == "fail" and judged["evidence"]["committed"] == 1
