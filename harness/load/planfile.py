"""One sender's share of the schedule as files, so a process that must not share the
harness's interpreter (a Locust worker: gevent) can read it: `plan-<w>.json` (urls, headers,
classifier, bounds) and `plan-<w>.bin` (per send: offset, target, body).

Both sides are the test center's own code, but the worker still checks what it reads, since
a truncated or mixed-up file must end the run with a reason, not send half a schedule.
Standard library only: the worker imports this after Locust has patched the interpreter.
"""

from __future__ import annotations

import json
import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

MAGIC = b"BCTPLAN1"
HEADER = struct.Struct("<8sQ")      # magic, count


@dataclass(frozen=True)
class PlanMeta:
    worker: int
    count: int
    urls: list[str]
    headers: dict[str, str]
    classifier: str
    max_in_flight: int
    submit_timeout: float
    connections: int


@dataclass
class PlanData:
    """What a worker sends: meta plus arrays it can index without copying every body."""

    meta: PlanMeta
    offsets: Sequence[float]
    targets: Sequence[int]
    starts: Sequence[int]           # body k is blob[starts[k]:starts[k + 1]]
    blob: memoryview

    def body(self, k: int) -> bytes:
        return bytes(self.blob[self.starts[k]:self.starts[k + 1]])


def paths(directory: Path, worker: int) -> tuple[Path, Path]:
    return directory / f"plan-{worker}.json", directory / f"plan-{worker}.bin"


def _array(code: str, raw: memoryview) -> array:
    values = array(code)
    values.frombytes(raw)
    return _little(values)


def _little(values: array) -> array:
    if sys.byteorder != "little":
        values.byteswap()
    return values


def write(directory: Path, meta: PlanMeta, offsets: Sequence[float], targets: Sequence[int],
          bodies: Sequence[bytes]) -> None:
    """Write one worker's plan; bodies are streamed (any indexable sequence, e.g. a spool)."""
    count = meta.count
    if not (len(offsets) == len(targets) == len(bodies) == count):
        raise ValueError("plan arrays differ in length")
    meta_path, bin_path = paths(directory, meta.worker)
    starts = array("Q", [0]) * (count + 1)
    with open(bin_path, "wb") as out:
        out.write(HEADER.pack(MAGIC, count))
        out.write(_little(array("d", offsets)).tobytes())
        out.write(_little(array("I", targets)).tobytes())
        starts_at = out.tell()
        out.write(b"\0" * (8 * (count + 1)))   # filled in once the body sizes are known
        position = 0
        for k in range(count):
            body = bodies[k]
            out.write(body)
            position += len(body)
            starts[k + 1] = position
        out.seek(starts_at)
        out.write(_little(starts).tobytes())
    meta_path.write_text(json.dumps(asdict(meta)))


def read(directory: Path, worker: int) -> PlanData:
    """Read one worker's plan; ValueError naming the file when it is not a whole plan."""
    meta_path, bin_path = paths(directory, worker)
    try:
        meta = PlanMeta(**json.loads(meta_path.read_text()))
        raw = memoryview(bin_path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{meta_path}: not a readable plan ({exc})") from exc
    count = meta.count
    if len(raw) < HEADER.size or HEADER.unpack_from(raw)[0] != MAGIC \
            or HEADER.unpack_from(raw)[1] != count:
        raise ValueError(f"{bin_path}: header does not match {meta_path.name}")
    at = HEADER.size
    fixed = at + 8 * count + 4 * count + 8 * (count + 1)
    if len(raw) < fixed:
        raise ValueError(f"{bin_path}: truncated")
    offsets = _array("d", raw[at:at + 8 * count])
    at += 8 * count
    targets = _array("I", raw[at:at + 4 * count])
    at += 4 * count
    starts = _array("Q", raw[at:at + 8 * (count + 1)])
    at += 8 * (count + 1)
    blob = raw[at:]
    if starts[-1] != len(blob) or any(t >= len(meta.urls) for t in targets):
        raise ValueError(f"{bin_path}: bodies or targets do not match {meta_path.name}")
    return PlanData(meta=meta, offsets=offsets, targets=targets, starts=starts, blob=blob)
