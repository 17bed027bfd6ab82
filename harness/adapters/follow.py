"""Following one node's canonical chain by height, across reorganisations.

Adapters fetch blocks by number; the follower decides which numbers to fetch. When a
fetched block's parent is not the block it recorded one height below (or a head
arrives whose hash differs from the one recorded at its height), the node has
switched branches: the follower steps back to the fork point and reports the new
branch's blocks again. The tracker then credits their transactions to the node, and
the History holds both blocks at that height, which is the evidence of the reorg.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from harness.adapters.base import Block, OnBlock

KEEP = 512  # heights of hashes remembered: deeper reorgs are re-walked from the oldest kept

Fetch = Callable[[int, float], Awaitable[Block]]


class BlockMissing(Exception):
    """The node has no block at a height it announced (adapters raise a subclass)."""


class ChainFollower:
    def __init__(self, fetch: Fetch, on_block: OnBlock, start_height: int):
        self.fetch = fetch
        self.on_block = on_block
        self.last = start_height          # the head height last followed to
        self.hashes: dict[int, str] = {}  # the canonical chain as last seen: height -> hash
        self.reorgs: list[int] = []       # heights at which the node switched branches

    async def advance(self, head: int, seen: float, head_hash: str | None = None) -> None:
        """Report every block up to `head` on the node's current canonical chain."""
        number = self.last + 1
        if head_hash is not None and self.hashes.get(head, head_hash) != head_hash:
            number = head  # the block at an already followed height changed
        while number <= head:
            try:
                block = await self.fetch(number, seen)
            except BlockMissing:
                # Announced, then gone: the node switched to a shorter, heavier branch (seen
                # on a geth Clique head) or has not made it readable yet. Not a broken
                # subscription: follow on from here at the next head.
                self.last = number - 1
                return
            parent = self.hashes.get(number - 1)
            if parent is not None and block.parent != parent:
                number -= 1  # switched branches below this height: walk back to the fork
                continue
            if self.hashes.get(number) != block.hash:
                if number in self.hashes:
                    self.reorgs.append(number)
                for stale in [h for h in self.hashes if h >= number]:
                    del self.hashes[stale]
                self.hashes[number] = block.hash
                self.on_block(block)
            number += 1
        self.last = head
        for old in [h for h in self.hashes if h <= head - KEEP or h > head]:
            del self.hashes[old]
