"""Commit detection: a tx is committed when the threshold share of nodes holds it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.adapters.base import Block
from harness.tracker import CommitTracker, threshold_nodes


def block(node: int, number: int, seen: float, *tx_ids: str) -> Block:
    return Block(node=node, number=number, hash=f"0x{node:02x}{number:04x}",
                 parent=f"0x{node:02x}{number - 1:04x}", seen=seen, fetched=seen + 0.001,
                 tx_ids=tuple(tx_ids))


# ---------------------------------------------------------------- threshold_nodes


@pytest.mark.parametrize("share, nodes, expected", [
    (1.0, 4, 4), (0.5, 4, 2), (0.51, 4, 3), (0.75, 4, 3), (0.76, 4, 4), (0.25, 4, 1),
    (2 / 3, 3, 2), (0.7, 10, 7), (0.3, 10, 3), (0.1, 10, 1), (1.0, 16, 16),
    (1.0, 1, 1), (0.5, 1, 1), (0.01, 1, 1), (1e-12, 7, 1),
])
def test_threshold_nodes_is_smallest_count_reaching_share(share, nodes, expected):
    assert threshold_nodes(share, nodes) == expected


@settings(max_examples=200, deadline=None)
@given(nodes=st.integers(1, 64), share=st.floats(min_value=1e-6, max_value=1.0))
def test_threshold_nodes_property(nodes, share):
    k = threshold_nodes(share, nodes)
    assert 1 <= k <= nodes
    # k nodes reach the share (up to float noise) and k-1 nodes do not
    assert k / nodes >= share - 1e-6
    assert k == 1 or (k - 1) / nodes < share


# ---------------------------------------------------------------- CommitTracker


def test_tx_held_by_fewer_than_threshold_nodes_is_not_committed():
    tracker = CommitTracker(["0xa", "0xb"], nodes=4, share=1.0)
    for node in range(3):
        tracker.on_block(block(node, 1, 1.0 + node, "0xa"))
    assert tracker.committed == 0
    assert math.isnan(tracker.committed_at[0])
    assert tracker.holders[0] == 3
    assert tracker.pending(2) == 2
    tracker.on_block(block(3, 1, 5.0, "0xa"))
    assert tracker.committed == 1
    assert tracker.committed_at[0] == 5.0
    assert tracker.pending(2) == 1
    assert tracker.pending(1) == 0


def test_committed_at_is_when_threshold_th_node_saw_it():
    tracker = CommitTracker(["0xa"], nodes=4, share=0.5)   # threshold 2
    tracker.on_block(block(2, 7, 3.0, "0xa"))
    tracker.on_block(block(0, 7, 3.4, "0xa"))
    tracker.on_block(block(1, 7, 9.0, "0xa"))               # third node: no change
    assert tracker.threshold == 2
    assert tracker.committed == 1
    assert tracker.committed_at[0] == 3.4
    assert tracker.holders[0] == 3
    assert tracker.seen[0].tolist()[:3] == [3.4, 9.0, 3.0]
    assert math.isnan(tracker.seen[0, 3])
    assert tracker.block[0].tolist() == [7, 7, 7, -1]


def test_re_reported_block_does_not_double_count():
    tracker = CommitTracker(["0xa", "0xb"], nodes=2, share=1.0)
    first = block(0, 1, 1.0, "0xa", "0xb")
    for _ in range(3):
        tracker.on_block(first)
    tracker.on_block(block(0, 2, 2.0, "0xa"))   # same tx again in another block on node 0
    assert tracker.holders.tolist() == [1, 1]
    assert tracker.committed == 0
    assert tracker.seen[0, 0] == 1.0 and tracker.block[0, 0] == 1
    tracker.on_block(block(1, 1, 4.0, "0xa", "0xb"))
    tracker.on_block(block(1, 1, 4.5, "0xa", "0xb"))
    assert tracker.committed == 2
    assert tracker.committed_at.tolist() == [4.0, 4.0]
    assert len(tracker.blocks) == 6


def test_foreign_transactions_are_counted_not_tracked():
    tracker = CommitTracker(["0xa"], nodes=1, share=1.0)
    tracker.on_block(block(0, 1, 1.0, "0xforeign1", "0xa", "0xforeign2"))
    tracker.on_block(block(0, 2, 2.0, "0xforeign3"))
    assert tracker.foreign == 3
    assert tracker.committed == 1
    assert tracker.holders.tolist() == [1]


def test_tx_ids_match_case_insensitively():
    tracker = CommitTracker(["0xABcd"], nodes=1, share=1.0)
    tracker.on_block(block(0, 1, 1.0, "0xabCD"))
    assert tracker.committed == 1 and tracker.foreign == 0


def test_single_node_commits_on_first_sight():
    tracker = CommitTracker(["0x1", "0x2", "0x3"], nodes=1, share=0.3)
    tracker.on_block(block(0, 1, 0.5, "0x2"))
    assert tracker.committed == 1
    assert np.isnan(tracker.committed_at[[0, 2]]).all()
    assert tracker.committed_at[1] == 0.5
    assert tracker.pending(3) == 2


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5), st.floats(0, 100)), max_size=40),
       st.sampled_from([0.25, 0.5, 0.51, 0.75, 1.0]))
def test_tracker_agrees_with_a_reference_model(reports, share):
    """Reported (node, tx, time) triples in any order, with repeats: committed_at equals the
    threshold-th earliest *first* sighting per node, or nothing below the threshold."""
    ids = [f"0x{i}" for i in range(6)]
    tracker = CommitTracker(ids, nodes=4, share=share)
    first_seen: dict[int, dict[int, float]] = {i: {} for i in range(6)}
    committed_at: dict[int, float] = {}
    k = threshold_nodes(share, 4)
    for number, (node, tx, t) in enumerate(reports):
        tracker.on_block(block(node, number, t, ids[tx]))
        if node not in first_seen[tx]:
            first_seen[tx][node] = t
            if len(first_seen[tx]) == k:
                committed_at[tx] = t
    assert tracker.committed == len(committed_at)
    for tx in range(6):
        assert tracker.holders[tx] == len(first_seen[tx])
        if tx in committed_at:
            assert tracker.committed_at[tx] == committed_at[tx]
        else:
            assert math.isnan(tracker.committed_at[tx])
