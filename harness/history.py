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
from collections.abc import Callable, Iterable, Iterator
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
    # A list once read. The record stage hands `write` a generator here instead, so a run
    # of a million transactions is written line by line, never held as a million records.
    txs: Iterable[TxRecord] = field(default_factory=list)
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


# -- one encoder a line type: record -> the line's fields (after "type") -------------------

def _tx(tx: TxRecord) -> dict[str, Any]:
    return {"i": tx.i, "id": tx.id, "phase": tx.phase, "node": tx.node,
            "scheduled": _round(tx.scheduled), "submitted": _round(tx.submitted),
            "acked": _round(tx.acked), "error": tx.error,
            "commits": [[n, _round(t), b] for n, t, b in tx.commits],
            **({"withdrawn": [[n, _round(t), b] for n, t, b in tx.withdrawn]} if tx.withdrawn else {})}


def _block(block: BlockRecord) -> dict[str, Any]:
    return {"node": block.node, "number": block.number, "hash": block.hash,
            "parent": block.parent, "seen": _round(block.seen), "fetched": _round(block.fetched),
            "timestamp": block.timestamp, "txs": block.txs}


def _fault(fault: FaultRecord) -> dict[str, Any]:
    return {"id": fault.id, "action": fault.action, "nodes": fault.nodes,
            "start": _round(fault.start), "end": _round(fault.end), "status": fault.status,
            "method": fault.method, "groups": fault.groups, "params": fault.params,
            "reason": fault.reason}


def _final(final: FinalChain) -> dict[str, Any]:
    return {"node": final.node, "at": _round(final.at), "chain": [[n, h] for n, h in final.chain],
            "holds": final.holds, "error": final.error}


def _query(query: QueryRecord) -> dict[str, Any]:
    return {"i": query.i, "id": query.id, "node": query.node,
            "scheduled": _round(query.scheduled), "submitted": _round(query.submitted),
            "answered": _round(query.answered), "error": query.error}


Encoder = Callable[[Any], dict[str, Any]]


def _sections(history: History) -> Iterator[tuple[str, Iterable[Any], Encoder]]:
    """The body's lines in file order: (type, records, encoder). A new line type is one
    encoder here, one decoder in DECODERS and a bump of FORMAT."""
    yield "tx", history.txs, _tx
    yield "block", history.blocks, _block
    yield "fault", history.faults, _fault
    yield "final", history.finals, _final
    yield "query", history.queries, _query
    yield "probe", history.probes, asdict
    yield "readback", [] if history.readback is None else [history.readback], dict
    yield "audit", [] if history.audit is None else [history.audit], dict


RAW_TEXT = {"probe", "readback"}   # lines written with non-ASCII characters as they are (probe payloads)


FLUSH_EVERY = 4096   # lines joined per write: one syscall for thousands of tx lines


def _write_lines(partial: Path, history: History) -> None:
    compact = {raw: json.JSONEncoder(separators=(",", ":"), ensure_ascii=not raw).encode
               for raw in (False, True)}
    with open(partial, "w", encoding="utf-8") as out:
        out.write(json.dumps({"type": "header", "format": FORMAT, **history.header}) + "\n")
        for kind, records, encode in _sections(history):
            lines: list[str] = []
            dump = compact[kind in RAW_TEXT]
            for record in records:
                lines.append(dump({"type": kind, **encode(record)}))
                if len(lines) == FLUSH_EVERY:
                    out.write("\n".join(lines) + "\n")
                    lines.clear()
            if lines:
                out.write("\n".join(lines) + "\n")
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


# -- one decoder a line type: (the History being read, the line's fields) -> None ---------

def _read_tx(history: History, entry: dict[str, Any]) -> None:
    history.txs.append(TxRecord(  # type: ignore[attr-defined]  (a list while read)
        i=entry["i"], id=entry["id"], phase=entry["phase"], node=entry["node"],
        scheduled=entry["scheduled"], submitted=entry["submitted"], acked=entry["acked"],
        error=entry["error"], commits=[tuple(c) for c in entry["commits"]],
        withdrawn=[tuple(c) for c in entry.get("withdrawn", [])]))


def _read_final(history: History, entry: dict[str, Any]) -> None:
    history.finals.append(FinalChain(node=entry["node"], at=entry["at"],
                                     chain=[tuple(c) for c in entry["chain"]],
                                     holds=entry["holds"], error=entry["error"]))


def _read_probe(history: History, entry: dict[str, Any]) -> None:
    attempts = [Attempt(**a) for a in entry.pop("attempts", [])]
    history.probes.append(ProbeOutcome(**entry, attempts=attempts))


def _read_audit(history: History, entry: dict[str, Any]) -> None:
    history.audit = entry


def _read_readback(history: History, entry: dict[str, Any]) -> None:
    history.readback = entry


def _read_footer(history: History, entry: dict[str, Any]) -> None:
    history.footer = entry


DECODERS: dict[str, Callable[[History, dict[str, Any]], None]] = {
    "tx": _read_tx,
    "block": lambda h, e: h.blocks.append(BlockRecord(**e)),
    "fault": lambda h, e: h.faults.append(FaultRecord(**e)),
    "final": _read_final,
    "query": lambda h, e: h.queries.append(QueryRecord(**e)),
    "probe": _read_probe,
    "audit": _read_audit,
    "readback": _read_readback,
    "footer": _read_footer,
}


def read(path: Path) -> History:
    history: History | None = None
    for entry in _lines(path):
        kind = entry.pop("type", None)
        if kind == "header":
            if entry.get("format") not in READABLE:
                raise ValueError(f"{path}: format {entry.get('format')!r}, expected one of "
                                 f"{', '.join(READABLE)}")
            history = History(header=entry, txs=[])
        elif history is None:
            raise ValueError(f"{path}: the first line must be the header")
        elif kind in DECODERS:
            DECODERS[kind](history, entry)
    if history is None:
        raise ValueError(f"{path}: empty history")
    return history
