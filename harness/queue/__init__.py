"""The submission queue: one interface, two backends.

SQLite in the data folder is the default (one test host); PostgreSQL (`--queue
postgresql://…`) lets the workers of several test hosts share one queue. Both keep the same
table and the same rules, written once here (SqlQueue); a backend only says how to connect,
how to spell a placeholder and how to take one queued row without racing another worker.

States: queued → running → certified | rejected | failed, and running → queued again when a
worker dies or an attempt ends in an infrastructure failure, until the attempt limit.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness import lifetime
from harness.errors import InputError

STATES = ("queued", "running", "certified", "failed", "rejected")
FINAL = ("certified", "failed", "rejected")
ATTEMPT_LIMIT = 3
HEARTBEAT_TIMEOUT = 300.0   # seconds without a heartbeat before another host's worker counts as dead


def data_dir(given: Path | None = None) -> Path:
    """The data folder: --data, else $BCTEST_DATA, else ~/.local/share/bctest."""
    if given is not None:
        return given
    env = os.environ.get("BCTEST_DATA")
    return Path(env) if env else Path.home() / ".local" / "share" / "bctest"


@dataclass(frozen=True)
class Worker:
    """Who holds a lease: a process on a host, unambiguous with its start time and PID
    namespace (a reused pid is another process)."""

    host: str
    pid: int
    start: int
    pidns: str

    @classmethod
    def this(cls) -> Worker:
        me = lifetime.this_process()
        return cls(socket.gethostname(), me.pid, me.start, me.pidns)


@dataclass(frozen=True)
class NewSubmission:
    id: str          # sha256 of the stored content
    vendor: str
    chain: str       # pack name
    version: str     # pack version
    image: str       # the pack's image tag (bctest-vendor/…), removed after each attempt
    profile: str
    path: str        # the stored, read-only folder


@dataclass(frozen=True)
class Entry:
    id: str
    vendor: str
    chain: str
    version: str
    image: str
    profile: str
    path: str
    state: str
    attempts: int
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    result: str | None
    message: str | None
    worker_host: str | None
    worker_pid: int | None
    worker_start: int | None
    worker_pidns: str | None
    heartbeat_at: float | None

    @property
    def short(self) -> str:
        return self.id[:12]

    def held_by(self, worker: Worker) -> bool:
        return (self.worker_host, self.worker_pid, self.worker_start, self.worker_pidns) == \
            (worker.host, worker.pid, worker.start, worker.pidns)


COLUMNS = [f.name for f in fields(Entry)]
LEASE = ("worker_host", "worker_pid", "worker_start", "worker_pidns", "heartbeat_at")


def worker_dead(entry: Entry, here: Worker, now: float, timeout: float = HEARTBEAT_TIMEOUT,
                proc: Path = lifetime.PROC) -> bool:
    """Is the worker holding this running entry gone? On this host (same PID namespace) its
    pid and start time say so at once; elsewhere only a heartbeat older than `timeout` can."""
    if entry.worker_host == here.host and entry.worker_pidns == here.pidns \
            and entry.worker_pid is not None and entry.worker_start is not None:
        owner = lifetime.Owner(here.pidns, entry.worker_pid, entry.worker_start)
        return not lifetime.owner_alive(owner, proc)
    return entry.heartbeat_at is None or now - entry.heartbeat_at > timeout


@dataclass(frozen=True)
class Recovered:
    entry: Entry       # as it was, running under its dead worker
    state: str         # queued (another attempt) or failed (the attempt limit reached)


class SqlQueue:
    """The queue's rules in portable SQL; a backend subclass supplies the connection."""

    placeholder = "?"
    real = "REAL"
    big = "INTEGER"

    def __init__(self, url: str, attempt_limit: int = ATTEMPT_LIMIT):
        self.url, self.attempt_limit = url, attempt_limit
        self.conn: Any = None

    # -- backend hooks -------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Any]:   # pragma: no cover - each backend has its own
        raise NotImplementedError
        yield

    def _claim_select(self) -> str:
        return ("SELECT id FROM submissions WHERE state = 'queued' "
                "ORDER BY submitted_at, id LIMIT 1")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self) -> SqlQueue:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- shared -------------------------------------------------------------------------
    def _sql(self, text: str) -> str:
        return text.replace("?", self.placeholder)

    def _create(self) -> None:
        with self.transaction() as cur:
            self._create_in(cur)

    def _create_in(self, cur: Any) -> None:
        cur.execute(f"""CREATE TABLE IF NOT EXISTS submissions (
                id TEXT PRIMARY KEY, vendor TEXT NOT NULL, chain TEXT NOT NULL,
                version TEXT NOT NULL, image TEXT NOT NULL, profile TEXT NOT NULL,
                path TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('queued','running','certified','failed','rejected')),
                attempts INTEGER NOT NULL DEFAULT 0,
                submitted_at {self.real} NOT NULL, started_at {self.real}, finished_at {self.real},
                result TEXT, message TEXT,
                worker_host TEXT, worker_pid INTEGER, worker_start {self.big}, worker_pidns TEXT,
                heartbeat_at {self.real})""")
        cur.execute("CREATE INDEX IF NOT EXISTS submissions_state ON submissions (state, submitted_at)")

    def _row(self, row: Any) -> Entry:
        return Entry(*row)

    def get(self, submission_id: str) -> Entry | None:
        with self.transaction() as cur:
            cur.execute(self._sql(f"SELECT {', '.join(COLUMNS)} FROM submissions WHERE id = ?"),
                        (submission_id,))
            row = cur.fetchone()
        return self._row(row) if row else None

    def list(self) -> list[Entry]:
        with self.transaction() as cur:
            cur.execute(f"SELECT {', '.join(COLUMNS)} FROM submissions ORDER BY submitted_at, id")
            return [self._row(r) for r in cur.fetchall()]

    def add(self, new: NewSubmission, now: float | None = None) -> tuple[Entry, bool]:
        """Queue a submission; (entry, True) if it is new or re-queued after a failure,
        (entry, False) when the identical content is already queued, running or judged."""
        now = time.time() if now is None else now
        with self.transaction() as cur:
            cur.execute(self._sql("SELECT state FROM submissions WHERE id = ?"), (new.id,))
            row = cur.fetchone()
            if row is None:
                cur.execute(self._sql(
                    "INSERT INTO submissions (id, vendor, chain, version, image, profile, path, state, "
                    "attempts, submitted_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?)"),
                    (new.id, new.vendor, new.chain, new.version, new.image, new.profile, new.path, now))
                added = True
            elif row[0] == "failed":
                # An infrastructure failure is the test center's, not the vendor's: the same
                # content may be tried again, with a fresh attempt count.
                cur.execute(self._sql(
                    "UPDATE submissions SET state = 'queued', attempts = 0, submitted_at = ?, "
                    "started_at = NULL, finished_at = NULL, message = NULL WHERE id = ?"), (now, new.id))
                added = True
            else:
                added = False
        entry = self.get(new.id)
        assert entry is not None
        return entry, added

    def claim(self, worker: Worker, now: float | None = None) -> Entry | None:
        """Atomically take the oldest queued submission: running, attempt + 1, leased to
        `worker`. None when nothing is queued. Two workers never get the same row."""
        now = time.time() if now is None else now
        with self.transaction() as cur:
            cur.execute(self._claim_select())
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute(self._sql(
                "UPDATE submissions SET state = 'running', attempts = attempts + 1, started_at = ?, "
                "finished_at = NULL, worker_host = ?, worker_pid = ?, worker_start = ?, "
                "worker_pidns = ?, heartbeat_at = ? WHERE id = ? AND state = 'queued'"),
                (now, worker.host, worker.pid, worker.start, worker.pidns, now, row[0]))
            if cur.rowcount != 1:
                return None
        return self.get(row[0])

    def _lease_filter(self) -> str:
        return ("id = ? AND state = 'running' AND worker_host = ? AND worker_pid = ? "
                "AND worker_start = ? AND worker_pidns = ?")

    def heartbeat(self, submission_id: str, worker: Worker, now: float | None = None) -> bool:
        """Renew the lease; False when the worker no longer holds it (recovered by another)."""
        now = time.time() if now is None else now
        with self.transaction() as cur:
            cur.execute(self._sql(f"UPDATE submissions SET heartbeat_at = ? WHERE {self._lease_filter()}"),
                        (now, submission_id, worker.host, worker.pid, worker.start, worker.pidns))
            return cur.rowcount == 1

    def finish(self, submission_id: str, worker: Worker, state: str, result: str | None,
               message: str | None, now: float | None = None) -> Entry | None:
        """End the worker's attempt: certified, rejected or failed; `queued` gives the
        submission another attempt (failed instead once the attempt limit is reached).
        None when the worker no longer holds the lease (nothing changed)."""
        if state not in STATES or state == "running":
            raise ValueError(f"finish with state {state!r}")
        now = time.time() if now is None else now
        with self.transaction() as cur:
            cur.execute(self._sql(f"SELECT attempts FROM submissions WHERE {self._lease_filter()}"),
                        (submission_id, worker.host, worker.pid, worker.start, worker.pidns))
            row = cur.fetchone()
            if row is None:
                return None
            if state == "queued" and row[0] >= self.attempt_limit:
                state = "failed"
                message = f"{message}; attempt limit ({self.attempt_limit}) reached" if message \
                    else f"attempt limit ({self.attempt_limit}) reached"
            cur.execute(self._sql(
                "UPDATE submissions SET state = ?, result = ?, message = ?, finished_at = ?, "
                "worker_host = NULL, worker_pid = NULL, worker_start = NULL, worker_pidns = NULL, "
                f"heartbeat_at = NULL WHERE {self._lease_filter()}"),
                (state, result, message, None if state == "queued" else now,
                 submission_id, worker.host, worker.pid, worker.start, worker.pidns))
        return self.get(submission_id)

    def recover(self, here: Worker, now: float | None = None,
                timeout: float = HEARTBEAT_TIMEOUT, proc: Path = lifetime.PROC) -> list[Recovered]:
        """Running submissions whose worker is dead go back to queued (the attempt they used
        stays counted), or to failed once they used the attempt limit."""
        now = time.time() if now is None else now
        recovered = []
        for entry in self.list():
            if entry.state != "running" or not worker_dead(entry, here, now, timeout, proc):
                continue
            limit = entry.attempts >= self.attempt_limit
            state = "failed" if limit else "queued"
            why = (f"worker {entry.worker_pid} on {entry.worker_host} died during attempt "
                   f"{entry.attempts}" + (f"; attempt limit ({self.attempt_limit}) reached" if limit else ""))
            with self.transaction() as cur:   # only if the same dead lease still holds it
                cur.execute(self._sql(
                    "UPDATE submissions SET state = ?, message = ?, finished_at = ?, worker_host = NULL, "
                    "worker_pid = NULL, worker_start = NULL, worker_pidns = NULL, heartbeat_at = NULL "
                    "WHERE id = ? AND state = 'running' AND worker_host = ? AND worker_pid = ? "
                    "AND worker_start = ? AND worker_pidns = ? AND attempts = ?"),
                    (state, why, now if limit else None, entry.id, entry.worker_host, entry.worker_pid,
                     entry.worker_start, entry.worker_pidns, entry.attempts))
                if cur.rowcount == 1:
                    recovered.append(Recovered(entry, state))
        return recovered


def open_queue(url: str | None, data: Path, attempt_limit: int = ATTEMPT_LIMIT) -> SqlQueue:
    """`--queue`: nothing (SQLite in the data folder), sqlite:///path, or postgresql://…"""
    if url is None or url == "":
        from harness.queue.sqlite import SqliteQueue
        return SqliteQueue(data / "queue.sqlite", attempt_limit)
    if url.startswith("sqlite:///"):
        from harness.queue.sqlite import SqliteQueue
        return SqliteQueue(Path(url[len("sqlite://"):]), attempt_limit)
    if url.startswith(("postgresql://", "postgres://")):
        from harness.queue.postgresql import PostgresQueue
        return PostgresQueue(url, attempt_limit)
    raise InputError(None, "--queue", f"sqlite:///PATH or postgresql://… (or nothing: "
                     f"{data / 'queue.sqlite'}), got {url!r}")
