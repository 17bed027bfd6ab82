"""ChainFollower: every canonical block reported once, branch switches re-walked."""

from __future__ import annotations

import asyncio

from harness.adapters.base import Block
from harness.adapters.follow import BlockMissing, ChainFollower


class FakeNode:
    """A node's canonical chain: height -> (hash, parent)."""

    def __init__(self, branch: str, height: int):
        self.chain = {0: ("g", "")}
        self.extend(branch, 1, height)

    def extend(self, branch: str, start: int, end: int) -> None:
        for n in range(start, end + 1):
            self.chain[n] = (f"{branch}{n}", self.chain[n - 1][0])
        for n in [h for h in self.chain if h > end]:
            del self.chain[n]

    async def fetch(self, number: int, seen: float) -> Block:
        if number not in self.chain:
            raise BlockMissing(f"block {number} not found")
        block_hash, parent = self.chain[number]
        return Block(node=0, number=number, hash=block_hash, parent=parent, seen=seen,
                     fetched=seen, tx_ids=(f"tx-{block_hash}",))


def follow(node: FakeNode, start: int = 0):
    reported: list[str] = []
    follower = ChainFollower(node.fetch, lambda b: reported.append(b.hash), start)
    return follower, reported


def run(coro):
    return asyncio.run(coro)


def test_linear_growth_reports_each_block_once_in_order():
    node = FakeNode("a", 3)
    follower, reported = follow(node)
    run(follower.advance(3, 1.0))
    node.extend("a", 4, 5)
    run(follower.advance(5, 2.0))
    run(follower.advance(5, 2.5, "a5"))  # a repeated head notice changes nothing
    assert reported == ["a1", "a2", "a3", "a4", "a5"]


def test_same_height_branch_switch_reports_the_new_block():
    node = FakeNode("a", 3)
    follower, reported = follow(node)
    run(follower.advance(3, 1.0))
    node.extend("b", 3, 3)  # block 3 replaced
    run(follower.advance(3, 2.0, "b3"))
    assert reported == ["a1", "a2", "a3", "b3"] and follower.reorgs == [3]


def test_deeper_switch_found_through_parent_mismatch_rewalks_from_the_fork():
    node = FakeNode("a", 4)
    follower, reported = follow(node)
    run(follower.advance(4, 1.0))
    node.extend("b", 3, 5)  # blocks 3 and 4 replaced, chain now longer
    run(follower.advance(5, 2.0))
    assert reported == ["a1", "a2", "a3", "a4", "b3", "b4", "b5"]
    assert follower.reorgs == [3]
    assert follower.hashes[5] == "b5" and follower.hashes[2] == "a2"


def test_following_starts_above_the_start_height():
    node = FakeNode("a", 6)
    follower, reported = follow(node, start=4)
    run(follower.advance(6, 1.0))
    assert reported == ["a5", "a6"]


def test_an_announced_head_that_is_gone_is_followed_at_the_next_head():
    # geth Clique (seen in CI): newHeads announced block 18, then the node switched to a
    # heavier branch one block shorter, and eth_getBlockByNumber(18) answered null.
    node = FakeNode("a", 17)
    follower, reported = follow(node, 15)
    run(follower.advance(18, 1.0))                 # 16, 17 reported; 18 is not there
    assert reported == ["a16", "a17"] and follower.last == 17
    node.extend("b", 17, 18)                       # the heavier branch replaces 17, then grows
    run(follower.advance(18, 2.0, "b18"))
    assert reported == ["a16", "a17", "b17", "b18"] and follower.reorgs == [17]
