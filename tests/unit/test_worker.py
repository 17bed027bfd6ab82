"""The worker's own logic with an injected fake certify command (a real child process that
exits with a chosen code): exit-code mapping, heartbeat, recovery after a dead worker, the
attempt limit, one worker per host, the signing key, and a child that dies with its worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness import signing, submission, worker
from harness.errors import InputError
from harness.queue import NewSubmission, Worker, open_queue
from harness.queue.sqlite import SqliteQueue
from tests.unit.test_submission import make

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def keys(tmp_path, monkeypatch):
    monkeypatch.setenv("BCTEST_KEYS", str(tmp_path / "keys"))
    signing.init_keys(tmp_path / "keys")


def queued(data: Path, source: Path, profile: str = "quick") -> str:
    stored = submission.accept(source, data)
    with open_queue(None, data) as q:
        q.add(NewSubmission(stored.digest, stored.vendor, stored.pack.name, stored.pack.version,
                            stored.pack.image_tag, stored.profile, str(stored.folder)))
    return stored.digest


def fake(code: int, sign: bool = True, sleep: float = 0.0, pid_file: Path | None = None):
    """A certify stand-in: writes OUT (signed if asked), sleeps, exits with `code`."""
    script = textwrap.dedent(f"""
        import os, sys, time, pathlib
        out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True)
        if {str(pid_file)!r} != 'None':
            pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))
        (out / 'results.json').write_text('{{}}')
        if {sign}:
            (out / 'signature.json').write_text('{{}}')
        time.sleep({sleep})
        sys.exit({code})
    """)
    seen: list[tuple[str, str, Path]] = []

    def command(entry, sub, out):
        seen.append((entry.id, sub.vendor, out))
        return [sys.executable, "-c", script, str(out)]
    command.seen = seen
    return command


def options(data: Path, command, **extra) -> worker.Options:
    removed: list[str] = []
    lines: list[str] = []
    settings = dict(data=data, once=True, poll=0.1, heartbeat_every=0.2, command=command,
                    remove_image=lambda tag, log: removed.append(tag), clean=lambda log: None,
                    log=lines.append)
    opts = worker.Options(**{**settings, **extra})
    opts.removed, opts.lines = removed, lines
    return opts


def state(data: Path, submission_id: str):
    with open_queue(None, data) as q:
        return q.get(submission_id)


@pytest.mark.parametrize(("code", "sign", "expected"), [
    (0, True, "certified"), (1, True, "certified"), (4, True, "certified"),
    (0, False, "queued"),        # certify must sign what it files
    (2, True, "rejected"),
    (3, True, "queued"), (130, True, "queued"), (-9, True, "queued"), (7, True, "queued"),
])
def test_exit_codes_map_to_states(tmp_path, code, sign, expected):
    data = tmp_path / "data"
    sid = queued(data, make(tmp_path / "s"))
    command = fake(code, sign=sign)
    if code < 0:   # killed by a signal: the child kills itself
        script = "import os, sys; os.kill(os.getpid(), 9)"
        command = lambda entry, sub, out: [sys.executable, "-c", script, str(out)]  # noqa: E731
    assert worker.run(options(data, command)) == 0
    entry = state(data, sid)
    assert (entry.state, entry.attempts) == (expected, 1)
    out = data / "results" / "acme" / sid / "attempt-1"
    if expected == "certified":
        assert entry.result == str(out) and "signed" in entry.message
    assert (data / "results" / "acme" / sid / "attempt-1.log").is_file()


def test_the_command_gets_the_stored_submission_and_the_vendor_image_is_removed(tmp_path):
    data = tmp_path / "data"
    sid = queued(data, make(tmp_path / "s"))
    command = fake(0)
    opts = options(data, command)
    worker.run(opts)
    [(entry_id, vendor, out)] = command.seen
    assert (entry_id, vendor, out) == (sid, "acme", data / "results" / "acme" / sid / "attempt-1")
    assert opts.removed == ["bctest-vendor/demo:1.0", "bctest-vendor/demo:1.0"]   # before and after


def test_default_command_is_certify_of_the_stored_pack():
    sub = type("S", (), {})()
    sub.pack = type("P", (), {"folder": Path("/d/submissions/x/pack")})()
    sub.profile, sub.vendor, sub.claims = "quick", "acme", Path("/d/submissions/x/claims.yaml")
    entry = type("E", (), {"id": "x" * 64})()
    command = worker.certify_command(entry, sub, Path("/d/results/acme/x/attempt-1"))
    assert command[1:4] == ["-m", "harness.cli", "certify"]
    assert command[4] == "/d/submissions/x/pack"
    for flag, value in [("--profile", "quick"), ("--vendor", "acme"), ("--submission", "x" * 64),
                        ("--out", "/d/results/acme/x/attempt-1"),
                        ("--claims", "/d/submissions/x/claims.yaml")]:
        assert command[command.index(flag) + 1] == value


def test_an_infra_failure_is_retried_until_the_attempt_limit(tmp_path):
    data = tmp_path / "data"
    sid = queued(data, make(tmp_path / "s"))
    for attempt in (1, 2, 3):
        worker.run(options(data, fake(3)))
        assert state(data, sid).attempts == attempt
    entry = state(data, sid)
    assert entry.state == "failed" and "attempt limit (3)" in entry.message
    assert sorted(p.name for p in (data / "results" / "acme" / sid).glob("attempt-?")) == \
        ["attempt-1", "attempt-2", "attempt-3"]
    worker.run(options(data, fake(0)))   # nothing left to take
    assert state(data, sid).state == "failed"


class CountingQueue(SqliteQueue):
    beats = 0

    def heartbeat(self, submission_id, who, now=None):
        self.beats += 1
        return super().heartbeat(submission_id, who, now)


def test_the_worker_heartbeats_while_certify_runs(tmp_path):
    data = tmp_path / "data"
    sid = queued(data, make(tmp_path / "s"))
    queue = CountingQueue(data / "queue.sqlite")
    worker.run(options(data, fake(0, sleep=1.2)), queue=queue)
    assert queue.beats >= 3
    assert state(data, sid).state == "certified"


def test_a_worker_that_lost_its_lease_ends_the_attempt(tmp_path):
    data = tmp_path / "data"
    sid = queued(data, make(tmp_path / "s"))

    class Stolen(SqliteQueue):
        def heartbeat(self, submission_id, who, now=None):
            return False
    started = time.monotonic()
    worker.run(options(data, fake(0, sleep=30)), queue=Stolen(data / "queue.sqlite"))
    assert time.monotonic() - started < 10
    assert state(data, sid).state == "running"   # left to whoever holds it now


def test_recovery_after_a_dead_worker_requeues_with_the_attempt_counted(tmp_path):
    data = tmp_path / "data"
    sid = queued(data, make(tmp_path / "s"))
    me = Worker.this()
    dead = Worker(me.host, me.pid, me.start + 1, me.pidns)
    with open_queue(None, data) as q:
        assert q.claim(dead).attempts == 1
    cleaned: list[bool] = []
    opts = options(data, fake(0), clean=lambda log: cleaned.append(True))
    worker.run(opts)
    entry = state(data, sid)
    assert (entry.state, entry.attempts) == ("certified", 2) and cleaned
    assert entry.result.endswith("attempt-2")
    assert any("died in attempt 1; now queued" in line for line in opts.lines)


def test_a_stored_submission_that_no_longer_validates_is_rejected(tmp_path):
    data = tmp_path / "data"
    sid = queued(data, make(tmp_path / "s"))
    stored = data / "submissions" / sid
    os.chmod(stored, 0o755)
    (stored / "submission.yaml").chmod(0o644)
    (stored / "submission.yaml").write_text("vendor: {name: acme}\n")   # no pack
    command = fake(0)
    worker.run(options(data, command))
    entry = state(data, sid)
    assert entry.state == "rejected" and "pack" in entry.message and command.seen == []


def test_a_stored_submission_that_changed_is_rejected(tmp_path):
    data = tmp_path / "data"
    sid = queued(data, make(tmp_path / "s"))
    claims = data / "submissions" / sid / "claims.yaml"
    claims.chmod(0o644)
    claims.write_text("latency_p99_ms: 1\n")
    worker.run(options(data, fake(0)))
    entry = state(data, sid)
    assert entry.state == "rejected" and "no longer holds the content submitted" in entry.message


def test_a_submission_missing_from_this_hosts_data_folder_is_retried_not_rejected(tmp_path):
    data = tmp_path / "data"
    sid = queued(data, make(tmp_path / "s"))
    worker.run(options(tmp_path / "other-host-data", fake(0), queue_url=f"sqlite:///{data / 'queue.sqlite'}"))
    entry = state(data, sid)
    assert (entry.state, entry.attempts) == ("queued", 1) and "shared data folder" in entry.message


def test_no_signing_key_no_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("BCTEST_KEYS", str(tmp_path / "nokeys"))
    with pytest.raises(InputError, match="bctest keys init"):
        worker.run(options(tmp_path / "data", fake(0)))


def test_one_worker_per_host(tmp_path):
    data = tmp_path / "data"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from harness.worker import HostLock
        HostLock(Path({str(data)!r})); print('held', flush=True); time.sleep(60)
    """)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=f"worker pid {holder.pid} is already running on this host"):
            worker.run(options(data, fake(0)))
    finally:
        holder.kill()
        holder.wait()
    worker.run(options(data, fake(0)))   # the lock went with its holder


def test_one_worker_per_host_whatever_its_data_folder(tmp_path):
    from harness.worker import HostLock
    host = tmp_path / "host.lock"
    first = HostLock(tmp_path / "a", host)
    try:
        with pytest.raises(InputError, match=f"worker pid {os.getpid()}") as refused:
            HostLock(tmp_path / "b", host)
        assert str(host) in str(refused.value)
        HostLock(tmp_path / "b", tmp_path / "other-host.lock").release()
    finally:
        first.release()
    HostLock(tmp_path / "b", host).release()


def test_certify_dies_with_a_killed_worker(tmp_path):
    """SIGKILL of the worker: its certify child is gone too (parent-death signal), and the
    row stays running under the dead lease until the next worker recovers it."""
    data = tmp_path / "data"
    sid = queued(data, make(tmp_path / "s"))
    pid_file = tmp_path / "child.pid"
    script = textwrap.dedent(f"""
        import sys, textwrap
        from pathlib import Path
        from harness import worker
        from tests.unit.test_worker import fake
        worker.run(worker.Options(data=Path({str(data)!r}), once=True, heartbeat_every=0.2,
                                  command=fake(0, sleep=60, pid_file=Path({str(pid_file)!r})),
                                  remove_image=lambda tag, log: None, clean=lambda log: None))
    """)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**os.environ})
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        child = int(pid_file.read_text())
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}").exists() and (Path(f"/proc/{child}/stat").read_text().split()[2] != "Z"):
            assert time.monotonic() < deadline, "certify outlived its worker"
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert state(data, sid).state == "running"
    worker.run(options(data, fake(0)))
    entry = state(data, sid)
    assert (entry.state, entry.attempts) == ("certified", 2)


def test_sigterm_ends_the_attempt_and_queues_the_submission_again(tmp_path):
    data = tmp_path / "data"
    sid = queued(data, make(tmp_path / "s"))
    pid_file = tmp_path / "child.pid"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from harness import worker
        from tests.unit.test_worker import fake
        try:
            worker.run(worker.Options(data=Path({str(data)!r}), once=True, heartbeat_every=0.2,
                                      command=fake(0, sleep=60, pid_file=Path({str(pid_file)!r})),
                                      remove_image=lambda tag, log: None, clean=lambda log: None))
        except KeyboardInterrupt:
            raise SystemExit(130)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not Path(f"/proc/{pid_file.read_text()}").exists()
    entry = state(data, sid)
    assert (entry.state, entry.attempts, entry.message) == ("queued", 1, "the worker was interrupted")
