"""The query phase: the read workload (JR/T 0193-2020 §7.2; the Hyperledger PSWG's read
throughput and read latency), after the transaction load's settle.

The chain then holds the run's transactions. Queries are pre-built (like the signed
transactions) and sent open loop by the same sender processes: query i is due at
start + i / rate whatever the node answers; lateness is counted, never hidden. A query is
*answered* when the adapter's `query_error` finds no error AND the reply holds the thing
asked for (a receipt, the transaction, a balance), so a node answering "null" fast does
not count as a fast read.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.adapters.base import Adapter, Committed, Prepared
from harness.load.driver import SendProgress, plan_workers, run_senders
from harness.load.shape import fixed_offsets
from harness.model import Node, SendRecord
from harness.phases.context import RunContext
from harness.progress import Progress, Snapshot
from harness.suite import QuerySpec
from harness.tracker import CommitTracker


@dataclass
class QueryOutcome:
    spec: QuerySpec
    start: float | None                      # monotonic time of the first scheduled query
    prepared: list[Prepared] = field(default_factory=list)
    records: list[SendRecord | None] = field(default_factory=list)   # each with its node
    progress: SendProgress = field(default_factory=SendProgress)
    subjects: int = 0                        # how many distinct things could be asked for
    interrupted: str | None = None
    skipped: str | None = None               # why no query was sent (e.g. nothing committed)


def committed_txs(tracker: CommitTracker, tx_ids: list[str]) -> list[Committed]:
    """The run's transactions that reached the commit threshold, each with the block (number
    and hash) the first node that held it reported."""
    hashes: dict[tuple[int, int], str] = {}
    for block in tracker.blocks:          # in arrival order: after a reorg, the last one wins
        hashes[(block.node, block.number)] = block.hash
    out = []
    for i, tx_id in enumerate(tx_ids):
        if tracker.committed_at[i] != tracker.committed_at[i]:   # NaN: never committed
            continue
        for node in range(tracker.nodes):
            number = int(tracker.block[i, node])
            if number >= 0:
                out.append(Committed(tx_id=tx_id, block=number,
                                     block_hash=hashes.get((node, number), "")))
                break
    return out


def query_order(population: int, count: int, seed: int) -> list[int]:
    """`count` indexes into the population in a seeded random order: every subject is asked
    once per pass (each pass a fresh shuffle) so reads spread over the whole ledger."""
    if population <= 0:
        return []
    rng = random.Random(f"bctest/query/{seed}")
    order: list[int] = []
    while len(order) < count:
        batch = list(range(population))
        rng.shuffle(batch)
        order.extend(batch[:count - len(order)])
    return order


def build_queries(adapter: Any, spec: QuerySpec, subjects: list[Any], seed: int) -> list[Prepared]:
    return [adapter.query_request(spec.kind, subjects[k], i)
            for i, k in enumerate(query_order(len(subjects), spec.count, seed))]


def query_classifier(adapter: Any) -> str:
    """The sender processes' reference to the reader's static query_error."""
    cls = type(adapter)
    return f"{cls.__module__}:{cls.__qualname__}.query_error"


def reader_for(kind: str, adapter: Adapter, workload: Any = None) -> Any:
    """Who builds and judges queries of `kind`: the suite's registered workload when the
    kind is one of its QUERY_KINDS (e.g. ycsb reads over eth_call), else the adapter."""
    if workload is not None and kind in getattr(workload, "query_kinds", ()):
        return workload
    return adapter


async def run_query(spec: QuerySpec, adapter: Adapter, nodes: list[Node], tracker: CommitTracker,
                    tx_ids: list[str], seed: int, progress_view: Progress,
                    interrupted: Callable[[], str | None], workload: Any = None) -> QueryOutcome:
    """Build the queries, send them open loop to the query nodes, gather the answers."""
    reader = reader_for(spec.kind, adapter, workload)
    subjects = reader.query_subjects(spec.kind, committed_txs(tracker, tx_ids))
    if not subjects:
        return QueryOutcome(spec=spec, start=None, skipped=f"nothing to query: no {spec.kind} "
                            "subject (no transaction of the run committed)")
    prepared = build_queries(reader, spec, subjects, seed)
    chosen = [n for n in nodes if spec.nodes is None or n.index in spec.nodes]
    plans = plan_workers(prepared, [(n.index, n.url() + adapter.submit_path) for n in chosen],
                         fixed_offsets(len(prepared), spec.rate),
                         spec.workers, spec.max_in_flight, spec.submit_timeout,
                         adapter.submit_headers, query_classifier(reader), spec.connections)
    start: dict[str, float] = {}

    def on_start(at: float) -> None:
        start["t"] = at

    def on_progress(sends: SendProgress) -> None:
        t = start.get("t", time.monotonic())
        progress_view.update(Snapshot(
            phase="query", elapsed=max(0.0, time.monotonic() - t), target_rate=spec.rate,
            sent=sends.sent, committed=sends.acked - sends.errors, failed=sends.errors,
            late=sends.late, p99_ms=None, unit="q", done="answered"))

    records, sends = await run_senders(plans, len(prepared), lambda: interrupted() is not None,
                                       on_progress, on_start)
    return QueryOutcome(spec=spec, start=start.get("t", time.monotonic()), prepared=prepared,
                        records=records, progress=sends, subjects=len(subjects), interrupted=interrupted())


async def query(ctx: RunContext) -> None:
    """The query stage: after the settle (and any convergence) the chain holds the run's
    transactions; read them back. A fresh progress view, so its live rates do not start
    from the load's totals."""
    if ctx.suite.query is None or ctx.interrupted:
        return
    with Progress(ctx.console) as view:
        ctx.query = await run_query(ctx.suite.query, ctx.adapter, ctx.nodes, ctx.load.tracker,
                                    [p.tx_id for p in ctx.prepared], ctx.suite.seed, view,
                                    ctx.stopped, ctx.workload_impl)
    if ctx.query.skipped:
        ctx.say(f"query phase skipped: {ctx.query.skipped}")
