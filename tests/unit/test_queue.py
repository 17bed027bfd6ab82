"""The submission queue's rules, the same tests against both backends: SQLite in a temp
folder and a real PostgreSQL server started for the session (tests/postgres_server.py)."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.queue import COLUMNS, NewSubmission, Worker, open_queue, worker_dead
from tests import postgres_server

_names = itertools.count()


@pytest.fixture(scope="module")
def postgres_url():
    with postgres_server.server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def queue_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.sqlite'}"
    base = request.getfixturevalue("postgres_url")
    return postgres_server.fresh_database(base, f"queue_{next(_names)}")


@pytest.fixture
def queue(queue_url, tmp_path):
    with open_queue(queue_url, tmp_path) as q:
        yield q


def submission(n: int = 0, vendor: str = "acme") -> NewSubmission:
    return NewSubmission(id=f"{n:064x}", vendor=vendor, chain="anvil", version="1.7.1",
                         image="bctest-vendor/anvil:1.7.1", profile="quick", path=f"/data/submissions/{n}")


HERE = Worker.this()
OTHER_PROCESS = Worker(HERE.host, HERE.pid, HERE.start + 1, HERE.pidns)   # same pid, later start: gone


def test_add_queues_once_and_again_is_idempotent(queue):
    entry, added = queue.add(submission(1), now=100.0)
    assert added and entry.state == "queued" and entry.attempts == 0 and entry.submitted_at == 100.0
    again, added = queue.add(submission(1), now=200.0)
    assert not added and again == entry
    assert [e.id for e in queue.list()] == [entry.id]


def test_a_failed_submission_resubmitted_is_queued_afresh(queue):
    queue.attempt_limit = 1
    queue.add(submission(1))
    entry = queue.claim(HERE)
    assert queue.finish(entry.id, HERE, "queued", None, "engine down").state == "failed"
    entry, added = queue.add(submission(1))
    assert added and entry.state == "queued" and entry.attempts == 0


def test_claim_takes_the_oldest_and_leases_it(queue):
    queue.add(submission(2), now=20.0)
    queue.add(submission(1), now=10.0)
    entry = queue.claim(HERE, now=30.0)
    assert entry.id == submission(1).id
    assert (entry.state, entry.attempts, entry.started_at, entry.heartbeat_at) == ("running", 1, 30.0, 30.0)
    assert entry.held_by(HERE) and (entry.worker_host, entry.worker_pid) == (HERE.host, HERE.pid)
    assert queue.claim(HERE).id == submission(2).id
    assert queue.claim(HERE) is None


def test_two_connections_claiming_at_once_get_distinct_rows(queue_url, tmp_path):
    with open_queue(queue_url, tmp_path) as q:
        for n in range(20):
            q.add(submission(n), now=float(n))
    taken: dict[int, list[str]] = {0: [], 1: []}
    start = threading.Barrier(2)

    def work(index: int) -> None:
        me = Worker(HERE.host, 900000 + index, 1, HERE.pidns)
        with open_queue(queue_url, tmp_path) as q:
            start.wait()
            while (entry := q.claim(me)) is not None:
                taken[index].append(entry.id)

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not set(taken[0]) & set(taken[1])
    assert sorted(taken[0] + taken[1]) == sorted(submission(n).id for n in range(20))
    with open_queue(queue_url, tmp_path) as q:
        assert all(e.state == "running" and e.attempts == 1 for e in q.list())


def test_heartbeat_renews_only_the_holders_lease(queue):
    queue.add(submission(1))
    entry = queue.claim(HERE, now=1.0)
    assert queue.heartbeat(entry.id, HERE, now=5.0)
    assert queue.get(entry.id).heartbeat_at == 5.0
    assert not queue.heartbeat(entry.id, OTHER_PROCESS, now=9.0)
    assert queue.get(entry.id).heartbeat_at == 5.0


@pytest.mark.parametrize("state", ["certified", "rejected", "failed"])
def test_finish_records_state_result_and_message(queue, state):
    queue.add(submission(1))
    entry = queue.claim(HERE, now=1.0)
    done = queue.finish(entry.id, HERE, state, "/results/acme/x/attempt-1", "why", now=2.0)
    assert (done.state, done.result, done.message, done.finished_at) == \
        (state, "/results/acme/x/attempt-1", "why", 2.0)
    assert done.worker_pid is None and done.heartbeat_at is None


def test_finish_by_a_worker_without_the_lease_changes_nothing(queue):
    queue.add(submission(1))
    entry = queue.claim(HERE)
    assert queue.finish(entry.id, OTHER_PROCESS, "certified", "/r", None) is None
    assert queue.get(entry.id).state == "running"


def test_requeue_until_the_attempt_limit_then_failed(queue):
    queue.add(submission(1))
    for attempt in (1, 2):
        entry = queue.claim(HERE)
        assert entry.attempts == attempt
        assert queue.finish(entry.id, HERE, "queued", None, "exit 3").state == "queued"
    entry = queue.claim(HERE)
    done = queue.finish(entry.id, HERE, "queued", None, "exit 3")
    assert (done.state, done.attempts) == ("failed", 3)
    assert "attempt limit (3)" in done.message


def test_recover_requeues_the_rows_of_a_dead_worker_on_this_host(queue):
    queue.add(submission(1))
    queue.add(submission(2))
    dead = queue.claim(OTHER_PROCESS)
    alive = queue.claim(HERE)
    recovered = queue.recover(HERE)
    assert [(r.entry.id, r.state) for r in recovered] == [(dead.id, "queued")]
    entry = queue.get(dead.id)
    assert (entry.state, entry.attempts, entry.worker_pid) == ("queued", 1, None)
    assert "died during attempt 1" in entry.message
    assert queue.get(alive.id).state == "running"
    assert queue.claim(HERE).attempts == 2   # the attempt the dead worker used stays counted


def test_recover_judges_other_hosts_by_their_heartbeat(queue):
    elsewhere = Worker("other-host", HERE.pid, HERE.start, HERE.pidns)
    queue.add(submission(1))
    entry = queue.claim(elsewhere, now=1000.0)
    assert queue.recover(HERE, now=1000.0 + 299, timeout=300) == []
    assert queue.get(entry.id).state == "running"
    assert [r.state for r in queue.recover(HERE, now=1000.0 + 301, timeout=300)] == ["queued"]


def test_recover_fails_a_submission_at_the_attempt_limit(queue):
    queue.attempt_limit = 2
    queue.add(submission(1))
    for _ in range(2):
        queue.claim(OTHER_PROCESS)
        queue.recover(HERE)
    entry = queue.get(submission(1).id)
    assert (entry.state, entry.attempts) == ("failed", 2)
    assert entry.finished_at is not None and "attempt limit (2)" in entry.message


def test_both_backends_have_the_same_columns(queue):
    with queue.transaction() as cur:
        cur.execute("SELECT * FROM submissions WHERE 1 = 0")
        assert [d[0] for d in cur.description] == COLUMNS


def test_worker_dead_on_this_host_needs_pid_and_start_time():
    queue_entry = type("E", (), {})()
    for name, value in dict(worker_host=HERE.host, worker_pidns=HERE.pidns, worker_pid=HERE.pid,
                            worker_start=HERE.start, heartbeat_at=0.0).items():
        setattr(queue_entry, name, value)
    assert not worker_dead(queue_entry, HERE, now=1e12)   # alive, however old its heartbeat
    queue_entry.worker_start = HERE.start + 1
    assert worker_dead(queue_entry, HERE, now=0.0)


def test_an_unknown_queue_url_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="--queue.*postgresql://"):
        open_queue("mysql://x", tmp_path)


def test_sqlite_queue_uses_wal(tmp_path):
    with open_queue(None, tmp_path) as q:
        assert Path(q.path) == tmp_path / "queue.sqlite"
        assert q.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
