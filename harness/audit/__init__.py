"""The authenticity audit: evidence that the system under test is a blockchain, not a
database behind an RPC facade.

From raw data fetched over the nodes' RPC the harness recomputes, itself:
  hash_links   every block hash from its header fields, and every parent link from the
               previous block's recomputed hash (a facade would have to reproduce each
               chain's exact header hashing, block after block);
  tx_root      the header's commitment to the block's transactions (merkle / trie root);
  signatures   the run's transactions are signed, validly, by the harness's own keys (EVM,
               Bitcoin); for CometBFT (kvstore transactions are unsigned) every block's commit
               carries valid precommit signatures of > 2/3 of the voting power, by the
               validators the harness generated;
  replication  the same block hash at a height on two or more nodes (from the History,
               `result.replication`).

Each family module (bitcoin, evm, cometbft) is pure: `verify_chain(blocks, ...)` over what
the adapter's `raw_blocks(node, numbers)` returned. `audit()` ties the two together.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from harness.audit.result import AuditResult, Check, replication

__all__ = ["AuditResult", "Check", "audit", "replication", "verify"]


def verify(family: str, blocks: list[dict[str, Any]], adapter: Any = None,
           tx_ids: Collection[str] | None = None) -> AuditResult:
    """Audit `blocks` of a `family`; with the run's `adapter`, also check the signers are
    the harness's keys (CometBFT: the validators, on the run's chain id) (`tx_ids`: the run's
    transaction ids, EVM only)."""
    if family == "evm":
        from harness.audit import evm
        signers = evm.harness_signers(adapter) if adapter is not None else None
        return evm.verify_chain(blocks, signers, tx_ids)
    if family == "bitcoin":
        from harness.audit import bitcoin
        return bitcoin.verify_chain(blocks, bitcoin.run_prevouts(adapter) if adapter is not None else None)
    if family == "cometbft":
        from harness.audit import cometbft
        keys = getattr(adapter, "validator_keys", None)
        return cometbft.verify_chain(blocks, getattr(adapter, "chain_id", None),
                                     {key.public for key in keys()} if keys else None)
    raise ValueError(f"no authenticity audit for chain family {family!r}")


async def audit(adapter: Any, node: Any, numbers: list[int],
                tx_ids: Collection[str] | None = None) -> AuditResult:
    """Fetch blocks `numbers` (ascending, consecutive for the parent links) from `node`
    and audit them."""
    blocks = await adapter.raw_blocks(node, numbers)
    return verify(adapter.family, blocks, adapter, tx_ids)
