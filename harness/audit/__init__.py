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

Two halves, joined here: the adapter fetches (`raw_blocks(node, numbers)`, and
`audit_expectations()`: what the harness generated that the chain must match), and a pure
verifier judges (`verify(raw: RawChain) -> AuditResult`, no network). Verifiers are found
through the entry-point group `bctest.audits`, one per adapter family (bitcoin, evm, cometbft
ship with bctest), so a vendor's adapter package can bring its own audit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from importlib.metadata import entry_points
from typing import Any

from harness.audit.result import AuditResult, Check, RawChain, replication

__all__ = ["GROUP", "AuditResult", "Check", "RawChain", "audit", "replication", "verifier", "verify"]

GROUP = "bctest.audits"
Verify = Callable[[RawChain], AuditResult]


def verifier(family: str) -> Verify:
    """The audit registered for `family`; ValueError naming the group when there is none or
    it cannot be loaded (the run records that as the audit's `unknown` evidence)."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    if family not in found:
        raise ValueError(f"no authenticity audit for chain family {family!r} (audits register in the "
                         f"entry-point group '{GROUP}'; installed: {', '.join(sorted(found)) or 'none'})")
    try:
        return found[family].load()
    except Exception as exc:  # a broken vendor package must not crash the harness
        raise ValueError(f"the authenticity audit for {family!r} ({found[family].value}) failed to "
                         f"load: {type(exc).__name__}: {exc}") from None


def verify(family: str, blocks: list[dict[str, Any]], adapter: Any = None,
           tx_ids: Collection[str] | None = None) -> AuditResult:
    """Audit `blocks` of a `family`; with the run's `adapter`, also against what the harness
    generated for the run (its `audit_expectations()`: signers, validators, chain id...)."""
    check = verifier(family)
    expected = getattr(adapter, "audit_expectations", None)
    return check(RawChain(family=family, blocks=blocks, expected=dict(expected()) if expected else {},
                          tx_ids=frozenset(tx_ids) if tx_ids is not None else None))


async def audit(adapter: Any, node: Any, numbers: list[int],
                tx_ids: Collection[str] | None = None) -> AuditResult:
    """Fetch blocks `numbers` (ascending, consecutive for the parent links) from `node`
    through the adapter and audit them with its family's verifier."""
    blocks = await adapter.raw_blocks(node, numbers)
    return verify(adapter.family, blocks, adapter, tx_ids)
