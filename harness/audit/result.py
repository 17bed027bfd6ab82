"""What an authenticity audit found: one verdict per check, with counts and first failures.

Checks (the same keys for every family, so reports need no per-family code):
  hash_links  every block's hash, recomputed by the harness from its header, equals the
              hash the node reported, and every block names its predecessor's recomputed
              hash as its parent
  tx_root     the header commits to the block's transactions (Bitcoin merkle root, EVM
              transactionsRoot, CometBFT data_hash), recomputed from the transactions
  signatures  the run's transactions carry valid signatures by the harness's own keys (EVM,
              Bitcoin); CometBFT, whose kvstore transactions are unsigned: every block's commit
              carries valid validator precommit signatures of more than 2/3 of the voting power
  replication the same block hash at a height on at least two nodes (from the History)

Verdicts: pass, fail, not-applicable (the chain has no such thing, with why) and unknown
(nothing could be checked, with why): a check that looked at nothing never passes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from harness.history import History
from harness.verdicts import worst

MAX_FAILURES = 10   # failures kept per check; `failed` counts them all


@dataclass
class Failure:
    height: int | None
    hash: str | None
    reason: str


@dataclass
class Check:
    verdict: str                      # pass | fail | not-applicable | unknown
    rule: str                         # what was checked, in one line
    checked: int = 0                  # items judged (blocks, block pairs, transactions)
    failed: int = 0
    skipped: int = 0                  # items that could not be judged (e.g. an unsupported tx type)
    failures: list[Failure] = field(default_factory=list)
    why: str | None = None            # for not-applicable / unknown, and skip reasons
    counts: dict[str, int] = field(default_factory=dict)   # finer figures, e.g. signatures verified

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "rule": self.rule, "checked": self.checked,
                "failed": self.failed, "skipped": self.skipped, "why": self.why,
                "failures": [vars(f) for f in self.failures], "counts": dict(self.counts)}


class Tally:
    """Collects one check's outcomes while a verifier walks the blocks."""

    def __init__(self, rule: str):
        self.rule = rule
        self.checked = self.failed = self.skipped = 0
        self.failures: list[Failure] = []
        self.skip_reasons: list[str] = []
        self.counts: dict[str, int] = {}

    def ok(self) -> None:
        self.checked += 1

    def fail(self, height: int | None, block_hash: str | None, reason: str) -> None:
        self.checked += 1
        self.failed += 1
        if len(self.failures) < MAX_FAILURES:
            self.failures.append(Failure(height, block_hash, reason))

    def fail_all(self, height: int | None, block_hash: str | None, reasons: list[str]) -> None:
        """One item failed for several reasons: counted once, each reason kept."""
        self.checked += 1
        self.failed += 1
        for reason in reasons:
            if len(self.failures) < MAX_FAILURES:
                self.failures.append(Failure(height, block_hash, reason))

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value

    def skip(self, reason: str) -> None:
        self.skipped += 1
        if reason not in self.skip_reasons and len(self.skip_reasons) < 3:
            self.skip_reasons.append(reason)

    def check(self, nothing: str) -> Check:
        """The verdict: fail on any failure, pass if something was judged, else unknown."""
        why = "; ".join(self.skip_reasons) or None
        if self.failed:
            verdict = "fail"
        elif self.checked:
            verdict = "pass"
        else:
            verdict, why = "unknown", "; ".join([nothing, *self.skip_reasons])
        return Check(verdict, self.rule, self.checked, self.failed, self.skipped, self.failures, why,
                     dict(self.counts))


def hash_and_link(links: Tally, height: int, reported: str, recomputed: str, parent: str,
                  parent_field: str, previous: tuple[int, str] | None) -> tuple[int, str]:
    """The rule every family shares: the node's hash is the one the harness recomputed, and
    the block names the previous block's *recomputed* hash as its parent. Hashes are compared
    as given (callers normalise case). Returns this block as the next one's `previous`."""
    if recomputed == reported:
        links.ok()
    else:
        links.fail(height, reported, f"recomputed hash {recomputed} differs from the node's")
    if previous is not None and previous[0] == height - 1:
        if parent == previous[1]:
            links.ok()
        else:
            links.fail(height, recomputed, f"{parent_field} {parent} is not block {height - 1}'s "
                       f"recomputed hash {previous[1]}")
    return height, recomputed


def not_applicable(rule: str, why: str) -> Check:
    return Check("not-applicable", rule, why=why)


@dataclass(frozen=True)
class RawChain:
    """What an audit verifies: the blocks as the adapter's `raw_blocks(node, numbers)`
    returned them (ascending heights), what the harness itself generated for the run and
    the chain must match (the adapter's `audit_expectations()`: e.g. EVM `signers`, Bitcoin
    `prevouts`, CometBFT `chain_id` and `validators`), and the run's transaction ids."""

    family: str
    blocks: list[dict[str, Any]]
    expected: dict[str, Any] = field(default_factory=dict)
    tx_ids: frozenset[str] | None = None


@dataclass
class AuditResult:
    family: str
    blocks: int                       # blocks audited
    txs: int                          # transactions in them
    checks: dict[str, Check]

    @property
    def verdict(self) -> str:
        return worst(c.verdict for c in self.checks.values())   # not-applicable counts for nothing

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "verdict": self.verdict, "blocks": self.blocks, "txs": self.txs,
                "checks": {k: c.to_dict() for k, c in self.checks.items()}}


REPLICATION_RULE = "each height up to the second-highest node tip has one block hash held by >= 2 nodes"


def replication(history: History, min_nodes: int = 2) -> Check:
    """The same block at a height on at least `min_nodes` independent nodes (containers).

    Judged from the History alone: the blocks the watchers reported and the final chains.
    Heights above the second-highest node tip are left out (a block only its producer has
    seen yet is not a replication failure)."""
    nodes = len(history.header.get("nodes", []))
    if nodes < min_nodes:
        return not_applicable(REPLICATION_RULE, f"the network has {nodes} node(s)")
    held: dict[int, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for block in history.blocks:
        held[block.number][block.hash].add(block.node)
    for final in history.finals:
        for number, block_hash in final.chain:
            held[number][block_hash].add(final.node)
    tips: dict[int, int] = {}
    for number, hashes in held.items():
        for holders in hashes.values():
            for node in holders:
                tips[node] = max(tips.get(node, -1), number)
    tally = Tally(REPLICATION_RULE)
    if len(tips) < min_nodes:
        return tally.check(f"only {len(tips)} node(s) reported blocks")
    cutoff = sorted(tips.values())[-min_nodes]
    for number in sorted(h for h in held if h <= cutoff):
        best = max(held[number].items(), key=lambda item: len(item[1]))
        if len(best[1]) >= min_nodes:
            tally.ok()
        else:
            tally.fail(number, best[0], f"no hash at this height is held by {min_nodes} nodes: "
                       + ", ".join(f"{h[:18]} on {sorted(n)}" for h, n in held[number].items()))
    return tally.check("no height was reported by enough nodes")
