"""Load shapes (suite `load.shape`): when each transaction of a run is due.

A shape compiles to pieces on one clock: linear stretches of target rate (fixed, step, ramp,
spike, and a trace's per-interval counts) or explicit send offsets (a trace of offsets). Tx k
of a linear stretch is due when the stretch's cumulative target reaches k, so the sends
follow the target whatever it is, and they stay open loop: the offsets are fixed before the
run and never wait for the chain.

The warmup is a prefix of `warmup` seconds at the shape's starting rate; the shape itself
follows in full, so every segment the suite names is measured whole (a trace cannot hide its
hard part in the warmup). The fixed shape keeps today's rounding (model.scheduled_offset) so a
fixed run schedules exactly what it always did.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import InputError
from harness.model import scheduled_offset

KINDS = ("fixed", "step", "ramp", "spike", "composite", "trace")
MAX_RATE = 1_000_000            # tx/s: the schema's cap on a fixed rate, for any shape's second
MAX_COUNT = 10_000_000          # transactions one schedule may hold (all are pre-signed)
MAX_SECONDS = 86_400            # a shape's length
MAX_TRACE_BYTES = 16 * 2**20    # a trace file
MAX_TRACE_ROWS = 1_000_000
# Names a composite part may not take: the run's own windows, and the shapes' segment names
# (a quiet part must not be judged under the name `spike`).
RESERVED = ("warmup", "measure", "settle", "converge", "query", "ramp", "baseline", "spike", "after",
            "trace")


@dataclass(frozen=True)
class Piece:
    """One stretch of the schedule: the target rate goes linearly from r0 to r1 over
    `seconds`, or (trace of offsets) the sends are given, relative to the stretch's start."""

    seconds: float
    r0: float = 0.0
    r1: float = 0.0
    offsets: tuple[float, ...] | None = None

    @property
    def planned(self) -> float:
        """The target's integral over the stretch (exact count for explicit offsets)."""
        if self.offsets is not None:
            return float(len(self.offsets))
        return (self.r0 + self.r1) / 2 * self.seconds


@dataclass(frozen=True)
class Shape:
    """A parsed `load.shape`: its pieces in order and its named segments, as (name, start,
    end) on the shape's own clock (0 = the end of the warmup)."""

    kind: str
    pieces: tuple[Piece, ...]
    segments: tuple[tuple[str, float, float], ...]
    described: dict[str, Any] = field(default_factory=dict)   # for the History header

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.pieces)

    @property
    def initial_rate(self) -> float:
        """The rate the warmup runs at: the shape's own at its start."""
        first = self.pieces[0]
        if first.offsets is None:
            return first.r0
        early = sum(1 for o in first.offsets if o < 1.0)   # a trace of offsets: its first second
        return float(early) / min(1.0, first.seconds)


@dataclass
class Schedule:
    """What the load stage sends and the judge measures: one offset per transaction
    (seconds after the common start, non-decreasing), the named windows on the same clock,
    and the target over time (planned sends per second)."""

    kind: str
    offsets: np.ndarray
    total: float                                # warmup + the shape's length
    warmup: float
    windows: dict[str, tuple[float, float]]     # warmup, measure, then the shape's segments
    described: dict[str, Any]

    @property
    def count(self) -> int:
        return int(len(self.offsets))

    @property
    def mean_rate(self) -> float:
        return self.count / self.total if self.total > 0 else 0.0

    def offset_list(self) -> list[float]:
        """The offsets as plain floats, one per global index (plan_workers' `offsets`)."""
        return self.offsets.tolist()

    def due_before(self, index: int) -> float:
        """Where a schedule stopped before tx `index` ends: that tx's offset (the total
        when every tx came due)."""
        if self.kind == "fixed":   # today's rule, to the rounding: i / rate
            return scheduled_offset(index, self.described["rate"])
        return float(self.offsets[index]) if index < self.count else self.total

    def planned(self, start: float, end: float) -> int:
        """Transactions the schedule puts in [start, end)."""
        return int(np.searchsorted(self.offsets, end, "left") - np.searchsorted(self.offsets, start, "left"))

    def target_rate(self, name: str) -> float:
        """A window's target: the sends it schedules over its length."""
        start, end = self.windows[name]
        return self.planned(start, end) / (end - start) if end > start else 0.0

    def per_second(self) -> list[int]:
        """Planned sends in each second [s, s+1) of the schedule: the target over time."""
        bins = max(1, math.ceil(self.total - 1e-9))
        counts = np.bincount(np.minimum(self.offsets.astype(np.int64), bins - 1), minlength=bins)
        return [int(c) for c in counts[:bins]]

    def header(self) -> dict[str, Any]:
        """What the History keeps of the shape (none for the fixed one: its header is today's)."""
        if self.kind == "fixed":
            return {}
        return {"shape": self.described,
                "windows": {name: {"window": [round(a, 6), round(b, 6)], "planned": self.planned(a, b),
                                   "target_rate": round(self.target_rate(name), 3)}
                            for name, (a, b) in self.windows.items()},
                "target": self.per_second()}


def fixed_offsets(count: int, rate: float) -> list[float]:
    """The fixed shape's offsets (the query phase's too): item i at i / rate."""
    return [scheduled_offset(i, rate) for i in range(count)]


# -- building the schedule ---------------------------------------------------------------


def schedule(shape: Shape, warmup: float, file: str = "", where: str = "load.shape") -> Schedule:
    """The shape behind a warmup prefix, as offsets and windows; refuses a schedule too big
    to sign or too steep to send before anything is allocated."""
    warm = Piece(warmup, shape.initial_rate, shape.initial_rate) if warmup > 0 else None
    pieces = ([warm] if warm else []) + list(shape.pieces)
    total = warmup + shape.seconds
    planned = sum(p.planned for p in pieces)
    if shape.kind == "fixed":
        planned = round(shape.pieces[0].r0 * total)
    if planned > MAX_COUNT:
        raise InputError(file or None, where, f"a schedule of at most {MAX_COUNT:,} transactions "
                         f"(all are signed before the run); this one plans {planned:,.0f}")
    if planned < 1 and shape.kind != "fixed":   # (a fixed rate keeps today's rule)
        raise InputError(file or None, where, "a schedule of at least one transaction; this one "
                         f"plans {planned:g} over {total:g} s")
    if shape.kind == "fixed":   # today's schedule, to the rounding
        rate = shape.pieces[0].r0
        offsets = np.array(fixed_offsets(int(round(rate * total)), rate), dtype=np.float64)
    else:
        offsets = _offsets(pieces)
    windows = {"warmup": (0.0, float(warmup)), "measure": (float(warmup), float(total))}
    for name, a, b in shape.segments:
        if b > a:
            windows[name] = (warmup + a, warmup + b)
    built = Schedule(shape.kind, offsets, total, warmup, windows, shape.described)
    peak = max(built.per_second())
    if peak > MAX_RATE:
        raise InputError(file or None, where, f"at most {MAX_RATE:,} sends in any second; this "
                         f"shape plans {peak:,} in one")
    return built


def _offsets(pieces: Sequence[Piece]) -> np.ndarray:
    """Tx k of a linear piece is due where the cumulative target reaches k (k integer)."""
    out: list[np.ndarray] = []
    start = 0.0
    cum = 0.0
    for piece in pieces:
        if piece.offsets is not None:
            cum = math.ceil(round(cum, 9))      # a trace's sends begin on a whole transaction
            out.append(start + np.asarray(piece.offsets, dtype=np.float64))
            cum += len(piece.offsets)
        else:
            end_cum = round(cum + piece.planned, 9)
            ks = np.arange(math.ceil(round(cum, 9)), math.ceil(end_cum), dtype=np.float64) - cum
            slope = (piece.r1 - piece.r0) / piece.seconds
            # t = the root of r0 t + slope t^2 / 2 = k, in its stable form (also slope = 0)
            root = np.sqrt(np.maximum(piece.r0 ** 2 + 2 * slope * ks, 0.0))
            denominator = piece.r0 + root
            safe = np.where(denominator > 0, denominator, 1.0)
            t = np.where(denominator > 0, 2 * np.maximum(ks, 0.0) / safe, 0.0)
            out.append(start + np.clip(t, 0.0, piece.seconds))
            cum = end_cum
        start += piece.seconds
    offsets = np.concatenate(out) if out else np.zeros(0)
    return np.maximum.accumulate(offsets) if len(offsets) else offsets   # monotone, float-safe


# -- parsing `load.shape` (the schema checked the types; here what it cannot) ----------------


def parse(doc: dict[str, Any], folder: Path, file: str, where: str = "load.shape") -> Shape:
    """A validated `load.shape` mapping as a Shape; a trace is read (bounded) from `folder`."""
    kind = doc["kind"]
    if kind == "composite":
        return _composite(doc, folder, file, where)
    return _simple(doc, folder, file, where)


def from_rate(rate: float, duration: float) -> Shape:
    """The short form `load: {rate, duration}`: the fixed shape."""
    return Shape("fixed", (Piece(duration, rate, rate),), (),
                 {"kind": "fixed", "rate": rate, "duration": duration})


def _simple(doc: dict[str, Any], folder: Path, file: str, where: str) -> Shape:
    kind = doc["kind"]
    if kind == "fixed":
        return from_rate(float(doc["rate"]), float(doc["duration"]))
    if kind == "step":
        steps = doc["steps"]
        pieces, segments, t = [], [], 0.0
        for n, step in enumerate(steps, 1):
            rate, seconds = float(step["rate"]), float(step["duration"])
            pieces.append(Piece(seconds, rate, rate))
            segments.append((f"step-{n}", t, t + seconds))
            t += seconds
        return _checked(Shape("step", tuple(pieces), tuple(segments),
                              {"kind": "step", "steps": [{"rate": float(s["rate"]),
                                                          "duration": float(s["duration"])}
                                                         for s in steps]}), file, where)
    if kind == "ramp":
        a, b, seconds = float(doc["from"]), float(doc["to"]), float(doc["duration"])
        if a == 0 and b == 0:
            raise InputError(file, f"{where}.to", "a ramp that sends something: from and to are both 0")
        return _checked(Shape("ramp", (Piece(seconds, a, b),), (("ramp", 0.0, seconds),),
                              {"kind": "ramp", "from": a, "to": b, "duration": seconds}), file, where)
    if kind == "spike":
        return _spike(doc, file, where)
    return _trace(doc, folder, file, where)


def _spike(doc: dict[str, Any], file: str, where: str) -> Shape:
    """Baseline, a spike of `length` seconds at `rate` from `start`, baseline again: the
    windows are fixed here, before the run, so none can be chosen where the chain looked good."""
    base, rate = float(doc["baseline"]), float(doc["rate"])
    start, length, seconds = float(doc["start"]), float(doc["length"]), float(doc["duration"])
    if rate <= base:
        raise InputError(file, f"{where}.rate", f"a spike above its baseline ({base:g} tx/s), got {rate:g}")
    if start + length > seconds + 1e-9:
        raise InputError(file, f"{where}.length", f"a spike that ends within the shape's "
                         f"{seconds:g} s (start {start:g} + length {length:g})")
    pieces = [p for p in (Piece(start, base, base), Piece(length, rate, rate),
                          Piece(seconds - start - length, base, base)) if p.seconds > 0]
    segments = (("baseline", 0.0, start), ("spike", start, start + length),
                ("after", start + length, seconds))
    return _checked(Shape("spike", tuple(pieces), segments,
                          {"kind": "spike", "baseline": base, "rate": rate, "start": start,
                           "length": length, "duration": seconds}), file, where)


def _composite(doc: dict[str, Any], folder: Path, file: str, where: str) -> Shape:
    """Parts in sequence; part i's window is its `name` (default part-i) and its own segments
    are `<name>.<segment>` (e.g. part-2.spike)."""
    pieces: list[Piece] = []
    segments: list[tuple[str, float, float]] = []
    described = []
    t = 0.0
    for i, part_doc in enumerate(doc["parts"]):
        part_where = f"{where}.parts[{i}]"
        part = _simple(part_doc, folder, file, part_where)
        name = part_doc.get("name", f"part-{i + 1}")
        if name in RESERVED or re.fullmatch(r"step-[0-9]+", name) or any(s[0] == name for s in segments):
            raise InputError(file, f"{part_where}.name", f"a window name of its own (not "
                             f"{', '.join(RESERVED)}, step-N nor another part's), got {name!r}")
        segments.append((name, t, t + part.seconds))
        segments += [(f"{name}.{s}", t + a, t + b) for s, a, b in part.segments]
        pieces += part.pieces
        described.append({**part.described, "name": name})
        t += part.seconds
    return _checked(Shape("composite", tuple(pieces), tuple(segments),
                          {"kind": "composite", "parts": described}), file, where)


def _checked(shape: Shape, file: str, where: str) -> Shape:
    if shape.seconds > MAX_SECONDS:
        raise InputError(file, where, f"a shape of at most {MAX_SECONDS} s, got {shape.seconds:g} s")
    return shape


# -- traces: hostile files -------------------------------------------------------------------


def _trace(doc: dict[str, Any], folder: Path, file: str, where: str) -> Shape:
    """A CSV of send offsets (format: offsets) or of per-interval counts (format: counts,
    e.g. a real chain's block-by-block tx counts at `interval` seconds, times `scale`)."""
    fmt = doc.get("format", "offsets")
    column = doc.get("column", "offset" if fmt == "offsets" else "count")
    path = _trace_path(doc["file"], folder, file, f"{where}.file")
    values, digest = _read_column(path, column)
    trace = str(path)
    # the suite's sha256 does not cover the trace: the History names the bytes replayed
    described: dict[str, Any] = {"kind": "trace", "file": doc["file"], "sha256": digest, "format": fmt,
                                 "column": column, "rows": len(values)}
    if fmt == "offsets":
        offsets = []
        for row, text in values:
            value = _number(text, trace, row, column, "an offset in seconds")
            if value < 0 or value > MAX_SECONDS:
                raise InputError(trace, f"row {row} ({column})",
                                 f"an offset within 0..{MAX_SECONDS} s, got {text!r}")
            if offsets and value < offsets[-1]:
                raise InputError(trace, f"row {row} ({column})", f"offsets in non-decreasing order; "
                                 f"{value:g} comes after {offsets[-1]:g}")
            offsets.append(value)
        if len(offsets) > 1 and offsets[-1] == offsets[0]:
            raise InputError(trace, column, f"sends spread over time; all {len(offsets)} offsets "
                             f"are at {offsets[0]:g} s (one burst, no rate to follow)")
        last = offsets[-1]
        seconds = float(doc["duration"]) if "duration" in doc else float(math.floor(last) + 1)
        if last >= seconds:
            raise InputError(file, f"{where}.duration", f"a duration past the trace's last offset "
                             f"({last:g} s), got {seconds:g}")
        described["duration"] = seconds
        shape = Shape("trace", (Piece(seconds, offsets=tuple(offsets)),), (("trace", 0.0, seconds),),
                      described)
        return _checked(shape, file, where)
    if "duration" in doc:
        raise InputError(file, f"{where}.duration", "no duration with format counts (the rows × "
                         "interval are the length)")
    interval, scale = float(doc.get("interval", 1.0)), float(doc.get("scale", 1.0))
    pieces = []
    for row, text in values:
        value = _number(text, trace, row, column, "a whole number of transactions")
        if value < 0 or value != int(value):
            raise InputError(trace, f"row {row} ({column})",
                             f"a whole number of transactions >= 0, got {text!r}")
        rate = value * scale / interval
        pieces.append(Piece(interval, rate, rate))
    if not any(p.r0 > 0 for p in pieces):
        raise InputError(trace, column, "at least one interval with transactions; every count is 0")
    described |= {"interval": interval, "scale": scale}
    return _checked(Shape("trace", tuple(pieces), (("trace", 0.0, interval * len(pieces)),),
                          described), file, where)


def _trace_path(reference: str, folder: Path, file: str, where: str) -> Path:
    """The trace, inside the suite's folder (relative, no escape), a regular file, bounded."""
    if os.path.isabs(reference):
        raise InputError(file, where, f"a path relative to the suite's folder, got {reference!r}")
    base = folder.resolve()
    path = (base / reference).resolve()
    if base not in path.parents:
        raise InputError(file, where, f"a file inside the suite's folder {base}, got {reference!r}")
    try:
        info = path.stat()
    except OSError:
        raise InputError(file, where, f"a trace file; {reference!r} not found next to the suite") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(file, where, f"a regular file, got {reference!r}")
    if info.st_size > MAX_TRACE_BYTES:
        raise InputError(str(path), None, f"a trace of at most {MAX_TRACE_BYTES} bytes, got "
                         f"{info.st_size}")
    return path


def _read_column(path: Path, column: str) -> tuple[list[tuple[int, str]], str]:
    """(row number, text) of `column` in a CSV whose first row names the columns, and the
    file's sha256."""
    with open(path, "rb") as handle:
        raw = handle.read(MAX_TRACE_BYTES + 1)   # a file that grew since its stat is still bounded
    if len(raw) > MAX_TRACE_BYTES:
        raise InputError(str(path), None, f"a trace of at most {MAX_TRACE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(str(path), None, f"UTF-8 CSV text ({exc.reason} at byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        head = next(reader, None)
        if not head:
            raise InputError(str(path), "row 1", "a header row naming the columns; the file is empty")
        names = [h.strip() for h in head]
        if column not in names:
            raise InputError(str(path), "row 1", f"a column named {column!r} (found: "
                             f"{', '.join(repr(n[:40]) for n in names[:10])})")
        at = names.index(column)
        out = []
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(out) >= MAX_TRACE_ROWS:
                raise InputError(str(path), f"row {reader.line_num}",
                                 f"a trace of at most {MAX_TRACE_ROWS:,} rows")
            if at >= len(row):
                raise InputError(str(path), f"row {reader.line_num}", f"a value in column {column!r}")
            out.append((reader.line_num, row[at].strip()))
    except csv.Error as exc:
        raise InputError(str(path), f"row {reader.line_num}", f"CSV ({exc})") from None
    if not out:
        raise InputError(str(path), None, "at least one row after the header")
    return out, hashlib.sha256(raw).hexdigest()


def _number(text: str, trace: str, row: int, column: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(trace, f"row {row} ({column})", f"{what}, got {text[:40]!r}")
    return value
