"""Pre-built request bodies kept in a file instead of in memory.

A run of a million transactions holds a million signed bodies (~300 bytes each) from the
prepare stage to the end of the load; as Python objects, and again as the pickled copies
each sender process received, they cost gigabytes. A spool writes the bodies once, in
index order, to one temporary file; the main process keeps only their end offsets and the
transaction ids, and each sender maps the file and reads its own bodies as it sends them.

`PreparedSpool` is a `Sequence[Prepared]` (what `adapter.prepare` returns), so code that
indexes or iterates the prepared transactions works unchanged; `bodies_for` gives a worker's
bodies as a lazy, picklable `Sequence[bytes]` (WorkerPlan.bodies).
"""

from __future__ import annotations

import os
import tempfile
import weakref
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO, overload

from harness.model import Prepared

READ_AHEAD = 1 << 20   # bytes read per miss: a sender reads its bodies in index order


class SpoolBodies(Sequence[bytes]):
    """Some of a spool's bodies, read from its file on demand. Pickles as the file's path and
    the bodies' offsets (16 bytes a body), so a sender process gets it cheaply. Reads go
    through one read-ahead window (pread), not a memory map: a sender's resident memory does
    not grow with the bodies it has sent."""

    def __init__(self, path: str, starts: array, ends: array):
        self.path, self.starts, self.ends = path, starts, ends
        self._file: BinaryIO | None = None
        self._window, self._window_start = b"", 0

    def __len__(self) -> int:
        return len(self.starts)

    @overload
    def __getitem__(self, k: int) -> bytes: ...
    @overload
    def __getitem__(self, k: slice) -> list[bytes]: ...

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        start, end = self.starts[k], self.ends[k]
        offset = start - self._window_start
        if offset < 0 or end - self._window_start > len(self._window):
            # in order (a sender): read ahead; anywhere else (random access): just this body
            window_end = self._window_start + len(self._window)
            ahead = READ_AHEAD if window_end <= start < window_end + READ_AHEAD else 0
            self._window = os.pread(self._open().fileno(), max(ahead, end - start), start)
            self._window_start, offset = start, 0
            if len(self._window) < end - start:
                raise IndexError(f"spool {self.path} is shorter than its index")
        return self._window[offset:offset + end - start]

    def __getstate__(self) -> dict:
        return {"path": self.path, "starts": self.starts, "ends": self.ends}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["starts"], state["ends"])
        self._open()   # now, while the process that made the spool surely holds it open

    def _open(self) -> BinaryIO:
        if self._file is None:
            self._file = open(self.path, "rb", buffering=0)  # noqa: SIM115 (held open)
            if len(self.ends) and os.fstat(self._file.fileno()).st_size < max(self.ends):
                raise OSError(f"spool {self.path} is shorter than its index")
        return self._file


class PreparedSpool(Sequence[Prepared]):
    """The prepared transactions of a run: bodies in a temporary file, ids in memory as one
    ASCII blob. On Linux the file is unlinked as soon as it is made and reached through
    /proc/<pid>/fd/<fd>, so it is gone with the last process that holds it, SIGKILLed harness
    included (its senders die with it); elsewhere it is removed when the spool is collected
    or the process exits."""

    def __init__(self, path: str, fd: int, named: str | None, ends: array, ids: bytes,
                 id_ends: array):
        self.path = path
        self._ends = ends            # body i is file[ends[i-1]:ends[i]]
        self._ids, self._id_ends = ids, id_ends
        self._bodies = SpoolBodies(path, self._starts(self._ends), ends)
        self._finalizer = weakref.finalize(self, _release, fd, named)

    @staticmethod
    def _starts(ends: array) -> array:
        return array("q", [0]) + ends[:-1] if len(ends) else array("q")

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, i: int) -> Prepared: ...
    @overload
    def __getitem__(self, i: slice) -> list[Prepared]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        return Prepared(body=self._bodies[i], tx_id=self.tx_id(i))

    def __iter__(self) -> Iterator[Prepared]:
        for i in range(len(self)):
            yield self[i]

    def tx_id(self, i: int) -> str:
        start = self._id_ends[i - 1] if i else 0
        return self._ids[start:self._id_ends[i]].decode("ascii")

    def tx_ids(self) -> Iterator[str]:
        for i in range(len(self)):
            yield self.tx_id(i)

    def bodies(self, indexes: Sequence[int]) -> SpoolBodies:
        """The bodies of `indexes`, lazily (for one sender's WorkerPlan)."""
        if isinstance(indexes, range):
            return SpoolBodies(self.path, self._bodies.starts[indexes.start:indexes.stop:indexes.step],
                               self._ends[indexes.start:indexes.stop:indexes.step])
        return SpoolBodies(self.path, array("q", (self._bodies.starts[i] for i in indexes)),
                           array("q", (self._ends[i] for i in indexes)))

    def close(self) -> None:
        """Release the file now (senders that opened it keep reading it until they exit)."""
        self._finalizer()


def _release(fd: int, named: str | None) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
    if named is not None:
        try:
            os.unlink(named)
        except OSError:
            pass


class SpoolWriter:
    """Collects prepared transactions in index order into a new spool file."""

    def __init__(self, directory: str | None = None):
        fd, named = tempfile.mkstemp(prefix="bctest-spool-", suffix=".bodies", dir=directory)
        self.path: str = named
        self._named: str | None = named
        if os.path.isdir(f"/proc/{os.getpid()}/fd"):
            os.unlink(named)          # anonymous from now on: nothing outlives the run
            self._named, self.path = None, f"/proc/{os.getpid()}/fd/{fd}"
        self._fd = fd
        self._file = os.fdopen(fd, "wb", buffering=1 << 20, closefd=False)
        self._ends, self._id_ends = array("q"), array("q")
        self._ids = bytearray()
        self._size = 0
        # released if the writer is dropped before finish() (a failed prepare)
        self._finalizer = weakref.finalize(self, _release, fd, self._named)

    def add(self, body: bytes, tx_id: str) -> None:
        self._file.write(body)
        self._size += len(body)
        self._ends.append(self._size)
        self._ids += tx_id.encode("ascii")
        self._id_ends.append(len(self._ids))

    def add_batch(self, bodies: bytes, lengths: Iterable[int], ids: bytes,
                  id_lengths: Iterable[int]) -> None:
        """A batch as a signing worker returns it: bodies and ids concatenated, their lengths."""
        self._file.write(bodies)
        for length in lengths:
            self._size += length
            self._ends.append(self._size)
        self._ids += ids
        total = len(self._ids) - len(ids)
        for length in id_lengths:
            total += length
            self._id_ends.append(total)

    def finish(self) -> PreparedSpool:
        self._file.close()
        self._finalizer.detach()
        return PreparedSpool(self.path, self._fd, self._named, self._ends, bytes(self._ids),
                             self._id_ends)

    def abort(self) -> None:
        self._file.close()
        self._finalizer()


def spool(prepared: Iterable[Prepared], directory: str | None = None) -> PreparedSpool:
    """Any prepared transactions (a list from an adapter or a workload) as a spool."""
    writer = SpoolWriter(directory)
    try:
        for p in prepared:
            writer.add(p.body, p.tx_id)
    except BaseException:
        writer.abort()
        raise
    return writer.finish()


def bodies_for(prepared: Sequence[Prepared], indexes: Sequence[int]) -> Sequence[bytes]:
    """The bodies of `indexes` for a WorkerPlan: lazy over a spool, a list otherwise."""
    if isinstance(prepared, PreparedSpool):
        return prepared.bodies(indexes)
    return [prepared[i].body for i in indexes]


def tx_ids(prepared: Sequence[Prepared]) -> Iterator[str]:
    """The ids in index order, without reading a spool's bodies."""
    if isinstance(prepared, PreparedSpool):
        return prepared.tx_ids()
    return (p.tx_id for p in prepared)
