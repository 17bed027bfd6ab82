"""The shared queue for a test center with several test hosts: PostgreSQL (psycopg 3).

A claim locks the oldest queued row with SELECT … FOR UPDATE SKIP LOCKED, so workers on
different hosts each take a different submission without waiting for one another."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.errors import InfraError
from harness.queue import ATTEMPT_LIMIT, SqlQueue


class PostgresQueue(SqlQueue):
    placeholder = "%s"
    real = "DOUBLE PRECISION"
    big = "BIGINT"

    def __init__(self, url: str, attempt_limit: int = ATTEMPT_LIMIT):
        super().__init__(url, attempt_limit)
        try:
            import psycopg
        except ImportError:
            raise InfraError("a PostgreSQL queue needs psycopg 3: pip install 'bctest[postgres]'") from None
        self._errors = psycopg.Error
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise InfraError(f"queue {self._safe_url()}: {str(exc).strip()}") from None
        self._create()

    def _safe_url(self) -> str:
        """The URL without its password, for messages."""
        head, sep, tail = self.url.partition("@")
        if not sep:
            return self.url
        scheme, _, user = head.partition("://")
        return f"{scheme}://{user.split(':', 1)[0]}@{tail}"

    def _create(self) -> None:
        # Two workers starting at once would race on CREATE TABLE IF NOT EXISTS (a unique
        # violation in the catalogue): one at a time, under an advisory lock.
        with self.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(4242001)")
            super()._create_in(cur)

    def _claim_select(self) -> str:
        return super()._claim_select() + " FOR UPDATE SKIP LOCKED"

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                yield cur
        except self._errors as exc:
            raise InfraError(f"queue {self._safe_url()}: {str(exc).strip()}") from None
