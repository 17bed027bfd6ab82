"""The History: every transaction and every block a run saw, on one clock.

It is the single source of truth (DESIGN.md): results.json is computed from this
file alone, so a stored run can be re-judged later. Format: JSON Lines, first a
header, then one line per transaction, per block, per fault, per query (the read
workload) and per node's final chain, last a footer. Times are seconds on the run clock
(time.monotonic() minus the header's t0), with t0_wall giving the wall-clock time of t0.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.model import (  # noqa: F401  (re-exported: the History's records)
    Attempt,
    BlockRecord,
    FaultRecord,
    FinalChain,
    ProbeOutcome,
    QueryRecord,
    TxRecord,
)

FORMAT = "bctest-history/4"
# /2 added `query` lines (the read workload), /3 `probe` lines (the security probes), /4 the
# `readback` line (a workload's effects read back from the chain's state). An older
# file is a newer one without them, so all are read; an older reader refuses newer files
# rather than silently dropping their lines.
READABLE = ("bctest-history/1", "bctest-history/2", "bctest-history/3", FORMAT)


@dataclass
class History:
    header: dict[str, Any]
    txs: list[TxRecord] = field(default_factory=list)
    blocks: list[BlockRecord] = field(default_factory=list)
    faults: list[FaultRecord] = field(default_factory=list)
    finals: list[FinalChain] = field(default_factory=list)
    queries: list[QueryRecord] = field(default_factory=list)
    audit: dict[str, Any] | None = None   # the authenticity audit of one node's chain
    probes: list[ProbeOutcome] = field(default_factory=list)   # the security stage
    readback: dict[str, Any] | None = None   # a workload's read-back (phases/readback.py)
    footer: dict[str, Any] = field(default_factory=dict)


def _round(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(value, 6)


def write(path: Path, history: History) -> None:
    """Write atomically: a reader never sees a half-written history."""
    partial = path.with_suffix(path.suffix + ".partial")
    try:
        _write_lines(partial, history)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def _write_lines(partial: Path, history: History) -> None:
    with open(partial, "w", encoding="utf-8") as out:
        out.write(json.dumps({"type": "header", "format": FORMAT, **history.header}) + "\n")
        for tx in history.txs:
            out.write(json.dumps({
                "type": "tx", "i": tx.i, "id": tx.id, "phase": tx.phase, "node": tx.node,
                "scheduled": _round(tx.scheduled), "submitted": _round(tx.submitted),
                "acked": _round(tx.acked), "error": tx.error,
                "commits": [[n, _round(t), b] for n, t, b in tx.commits],
                **({"withdrawn": [[n, _round(t), b] for n, t, b in tx.withdrawn]} if tx.withdrawn else {}),
            }, separators=(",", ":")) + "\n")
        for block in history.blocks:
            out.write(json.dumps({
                "type": "block", "node": block.node, "number": block.number, "hash": block.hash,
                "parent": block.parent, "seen": _round(block.seen), "fetched": _round(block.fetched),
                "timestamp": block.timestamp, "txs": block.txs,
            }, separators=(",", ":")) + "\n")
        for fault in history.faults:
            out.write(json.dumps({
                "type": "fault", "id": fault.id, "action": fault.action, "nodes": fault.nodes,
                "start": _round(fault.start), "end": _round(fault.end), "status": fault.status,
                "method": fault.method, "groups": fault.groups, "params": fault.params,
                "reason": fault.reason}, separators=(",", ":")) + "\n")
        for final in history.finals:
            out.write(json.dumps({
                "type": "final", "node": final.node, "at": _round(final.at),
                "chain": [[n, h] for n, h in final.chain], "holds": final.holds,
                "error": final.error}, separators=(",", ":")) + "\n")
        for query in history.queries:
            out.write(json.dumps({
                "type": "query", "i": query.i, "id": query.id, "node": query.node,
                "scheduled": _round(query.scheduled), "submitted": _round(query.submitted),
                "answered": _round(query.answered), "error": query.error},
                separators=(",", ":")) + "\n")
        for probe in history.probes:
            out.write(json.dumps({"type": "probe", **asdict(probe)}, separators=(",", ":"),
                                 ensure_ascii=False) + "\n")
        if history.readback is not None:
            out.write(json.dumps({"type": "readback", **history.readback}, separators=(",", ":"),
                                 ensure_ascii=False) + "\n")
        if history.audit is not None:
            out.write(json.dumps({"type": "audit", **history.audit}, separators=(",", ":")) + "\n")
        out.write(json.dumps({"type": "footer", **history.footer}) + "\n")
        out.flush()
        os.fsync(out.fileno())


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None


def read(path: Path) -> History:
    history: History | None = None
    for entry in _lines(path):
        kind = entry.pop("type", None)
        if kind == "header":
            if entry.get("format") not in READABLE:
                raise ValueError(f"{path}: format {entry.get('format')!r}, expected one of "
                                 f"{', '.join(READABLE)}")
            history = History(header=entry)
        elif history is None:
            raise ValueError(f"{path}: the first line must be the header")
        elif kind == "tx":
            history.txs.append(TxRecord(
                i=entry["i"], id=entry["id"], phase=entry["phase"], node=entry["node"],
                scheduled=entry["scheduled"], submitted=entry["submitted"], acked=entry["acked"],
                error=entry["error"], commits=[tuple(c) for c in entry["commits"]],
                withdrawn=[tuple(c) for c in entry.get("withdrawn", [])]))
        elif kind == "block":
            history.blocks.append(BlockRecord(**entry))
        elif kind == "fault":
            history.faults.append(FaultRecord(**entry))
        elif kind == "final":
            history.finals.append(FinalChain(
                node=entry["node"], at=entry["at"], chain=[tuple(c) for c in entry["chain"]],
                holds=entry["holds"], error=entry["error"]))
        elif kind == "query":
            history.queries.append(QueryRecord(**entry))
        elif kind == "probe":
            attempts = [Attempt(**a) for a in entry.pop("attempts", [])]
            history.probes.append(ProbeOutcome(**entry, attempts=attempts))
        elif kind == "audit":
            history.audit = entry
        elif kind == "readback":
            history.readback = entry
        elif kind == "footer":
            history.footer = entry
    if history is None:
        raise ValueError(f"{path}: empty history")
    return history
