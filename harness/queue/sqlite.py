"""The embedded queue: SQLite in the data folder (WAL, so `bctest queue` reads while a worker
writes; a busy timeout, so two processes wait for each other instead of failing)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import InfraError
from harness.queue import ATTEMPT_LIMIT, SqlQueue

BUSY_TIMEOUT_MS = 30_000


class SqliteQueue(SqlQueue):
    def __init__(self, path: Path, attempt_limit: int = ATTEMPT_LIMIT):
        super().__init__(f"sqlite:///{path}", attempt_limit)
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions; each write opens BEGIN IMMEDIATE
            # (the write lock up front), so a claim's read and update are one atomic step.
            self.conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self._create()
        except (sqlite3.Error, OSError) as exc:
            raise InfraError(f"queue {path}: {exc}") from None

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        cur = self.conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
        except sqlite3.Error as exc:
            raise InfraError(f"queue {self.path}: {exc}") from None
        finally:
            cur.close()
