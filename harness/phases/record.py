"""The record stage: what the run saw, turned into the History (history.jsonl), then
results.json and the reports computed from the file as written.

The History is the single source of truth: everything the judge needs is copied into it
here, on the run clock (seconds after t0), so the judge never reads the run's live objects.
"""

from __future__ import annotations

import gc
import math
import resource
from collections.abc import Iterator
from typing import Any

from harness import history as history_module
from harness import results as results_module
from harness.history import History
from harness.load import spool
from harness.model import (
    BlockRecord,
    FinalChain,
    ProbeOutcome,
    QueryRecord,
    RunHeader,
    SendRecord,
    TxRecord,
    node_for,
    scheduled_offset,
)
from harness.phases.context import LoadState, RunContext
from harness.phases.query import QueryOutcome
from harness.report import write_reports

NOT_SENT = "not sent: run stopped"


def _rel(value: float | None, t0: float) -> float | None:
    return None if value is None or math.isnan(value) else value - t0


def iter_tx_records(state: LoadState, nodes: int) -> Iterator[TxRecord]:
    """Every transaction that came due (and those sent), each with its per-node commits, one
    at a time: the History's writer puts each on its line as it is made (a million-tx run is
    never a million records in memory)."""
    t0, tracker = state.t0, state.tracker
    warmup_end, measure_end = state.phases["warmup"][1], state.phases["measure"][1]
    seen, block = tracker.seen, tracker.block
    for i, tx_id in enumerate(spool.tx_ids(state.prepared)):
        record = state.records[i] if i < len(state.records) else None
        if record is None:
            scheduled = state.offsets[i] if state.offsets else scheduled_offset(i, state.rate)
            if scheduled >= measure_end:
                continue   # never due: the window ends where the schedule stopped
            # Due, but its sender had stopped: the harness's reason, never silently missing.
            record = SendRecord(i, scheduled, state.targets[node_for(i, len(state.targets))],
                                None, None, NOT_SENT)
        row = seen[i]
        commits = [(n, float(row[n] - t0), int(block[i, n]))
                   for n in range(nodes) if not math.isnan(row[n])]
        yield TxRecord(
            i=i, id=tx_id, phase="warmup" if record.scheduled < warmup_end else "measure",
            node=record.node, scheduled=record.scheduled,
            submitted=_rel(record.submitted, t0) if record.submitted else None,
            acked=_rel(record.acked, t0) if record.acked else None,
            error=record.error, commits=commits,
            withdrawn=[(n, seen_at - t0, b) for n, seen_at, b in tracker.withdrawals.get(i, [])])


def tx_records(state: LoadState, nodes: int) -> list[TxRecord]:
    return list(iter_tx_records(state, nodes))


def query_part(query: QueryOutcome, t0: float) -> tuple[dict[str, Any], list[QueryRecord],
                                                        list[float] | None, dict[str, Any]]:
    """The query phase as the History keeps it: settings (header), one record per query due,
    the scheduled window on the run clock, and the sender's own figures (footer)."""
    spec = query.spec
    settings = {"rate": spec.rate, "duration": spec.duration, "warmup": spec.warmup, "kind": spec.kind,
                "nodes": list(spec.nodes) if spec.nodes is not None else None,
                "workers": spec.workers, "max_in_flight": spec.max_in_flight,
                "connections": spec.connections, "submit_timeout": spec.submit_timeout,
                "subjects": query.subjects, "skipped": query.skipped,
                "interrupted": query.interrupted}
    if query.start is None:
        return settings, [], None, {}
    start = query.start - t0
    records = []
    for i, prepared in enumerate(query.prepared):
        record = query.records[i]
        if record is None:
            continue            # never due: the phase was stopped early
        records.append(QueryRecord(
            i=i, id=prepared.tx_id, node=record.node, scheduled=start + record.scheduled,
            submitted=_rel(record.submitted, t0) if record.submitted else None,
            answered=_rel(record.acked, t0) if record.acked else None, error=record.error))
    due = max((r.i for r in records), default=-1) + 1
    window = [round(start, 6), round(start + scheduled_offset(
        due if query.interrupted else len(query.prepared), spec.rate), 6)]
    progress = query.progress
    sender = {"late_sends": progress.late, "dropped": progress.dropped,
              "max_lag_ms": round(progress.max_lag * 1000, 3), "workers": progress.per_worker}
    return settings, records, window, sender


def build_history(header: RunHeader, state: LoadState, status: str, reason: str | None,
                  finals: list[FinalChain] | None = None, query: QueryOutcome | None = None,
                  audited: dict[str, Any] | None = None,
                  probes: list[ProbeOutcome] | None = None) -> History:
    t0, tracker = state.t0, state.tracker
    nodes = len(header.nodes)
    blocks = [BlockRecord(node=b.node, number=b.number, hash=b.hash, parent=b.parent,
                          seen=b.seen - t0, fetched=b.fetched - t0, timestamp=b.timestamp,
                          txs=len(b.tx_ids)) for b in tracker.blocks]
    sends = state.sends
    footer = {
        "status": status, "reason": reason, "watch_methods": state.watch_methods,
        "settle_end": state.settle_end,
        "converged": state.converged,
        "foreign_txs": tracker.foreign,
        "sender": {"late_sends": sends.late, "dropped": sends.dropped,
                   "max_lag_ms": round(sends.max_lag * 1000, 3), "workers": sends.per_worker},
        "warnings": state.warnings,
        "resources": state.resources,
    }
    header.phases = {name: [round(a, 6), round(b, 6)]
                     for name, (a, b) in {**state.phases, **state.windows}.items()}
    header.load = {**header.load, **state.shape}   # a load shape's windows and target (load/shape.py)
    queries: list[QueryRecord] = []
    if query is not None:
        header.query, queries, window, sender = query_part(query, t0)
        if window is not None:
            header.phases["query"] = window
        footer["query_sender"] = sender
    return History(header=header.to_dict(), txs=iter_tx_records(state, nodes), blocks=blocks,
                   faults=list(state.faults), finals=list(finals or []), queries=queries,
                   audit=audited, probes=list(probes or []), footer=footer)


def record(ctx: RunContext, header: RunHeader) -> dict[str, Any]:
    """Write history.jsonl, then results.json and the reports judged from it."""
    state = ctx.load
    status = "incomplete" if ctx.interrupted else "complete"
    history = build_history(header, state, status, ctx.interrupted, ctx.finals, ctx.query,
                            ctx.audited, ctx.security)
    history.readback = ctx.readback   # the workload's read-back (phases/readback.py)
    path = ctx.run_dir / "history.jsonl"
    history_module.write(path, history)
    del history
    _release_live_state(ctx)
    # Judge what was written (times rounded to the microsecond), not the live state:
    # `bctest report` and `bctest verify` recompute from the file and must agree exactly.
    ctx.results = results_module.compute(history_module.read(path))
    results_module.validate(ctx.results)
    results_module.write_json(ctx.run_dir / "results.json", ctx.results)
    write_reports(ctx.run_dir, ctx.results)
    ctx.say(peak_memory())
    return ctx.results


def peak_memory() -> str:
    """The harness's own peak resident memory (issue 13: a million-tx run stays < 2 GiB)."""
    main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024       # KiB on Linux
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return (f"harness peak memory: {main:.0f} MiB this process, {child:.0f} MiB the largest "
            f"sender or signing process")


def _release_live_state(ctx: RunContext) -> None:
    """Once history.jsonl is written it is the run's record: the live copies (the senders'
    records, the tracker with its id index and blocks) go before the judge reads the file
    back, so a million-transaction run never holds both (issue 13: < 2 GiB)."""
    state = ctx.load
    state.records = []
    state.tracker = None
    ctx.watchers = None
    gc.collect()
