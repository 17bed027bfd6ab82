"""The vendor's path end to end, with real parts: `bctest bundle` of chains/anvil as vendor
acme, `bctest submit`, and `bctest worker` running the real `bctest certify --profile smoke`
(the shortest real program: these tests are about the queue and the worker around it;
tests/integration/test_certify.py covers the program) in the real engine, signed and verified.

(a) The worker is SIGKILLed once a container of its run exists; the row stays running; the
next `bctest worker --once` recovers it, cleans what the dead run left and certifies it on
attempt 2. In CI on a PostgreSQL queue (a real server, tests/postgres_server.py), which
takes the --queue URL through every command; on the default SQLite queue with
`scripts/test --long` (both backends' recovery logic: tests/unit/test_queue.py, on real
databases). (b) PostgreSQL without the kill (--long): certified on attempt 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.queue import open_queue
from tests import postgres_server
from tests.integration.conftest import ROOT, run_objects

pytestmark = pytest.mark.docker
VENDOR_TAG = "bctest-vendor/anvil:1.7.1"
PROFILE = "smoke"


@pytest.fixture
def env(tmp_path):
    keys = tmp_path / "keys"
    environment = {**os.environ, "BCTEST_KEYS": str(keys)}
    environment.pop("BCTEST_DATA", None)
    done = subprocess.run([sys.executable, "-m", "harness.cli", "keys", "init", "--dir", str(keys)],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return environment


def bctest(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def submitted(env: dict, tmp_path: Path, data: Path, queue: list[str]) -> str:
    claims = tmp_path / "claims.yaml"
    claims.write_text("latency_p99_ms: 10000\n")
    made = bctest(env, "bundle", "anvil", "--vendor", "acme", "--claims", str(claims), "--profile", PROFILE,
                  "--out", str(tmp_path / "submission"), timeout=600)
    assert made.returncode == 0, made.stdout + made.stderr
    done = bctest(env, "submit", str(tmp_path / "submission"), "--data", str(data), *queue)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split("submission id ")[1].split()[0]


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def run_ids_of(client, pids: set[int]) -> set[str]:
    """The run ids of containers whose harness (bctest.owner ns:pid:start) is one of `pids`."""
    ids = set()
    for container in client.containers.list(all=True, filters={"label": "bctest.run"}):
        owner = container.labels.get("bctest.owner", "")
        parts = owner.split(":")
        if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) in pids:
            ids.add(container.labels["bctest.run"])
    return ids


def assert_certified(env: dict, data: Path, sid: str, attempts: int, queue_url: str | None,
                     client) -> Path:
    with open_queue(queue_url, data) as queue:
        entry = queue.get(sid)
    assert (entry.state, entry.attempts) == ("certified", attempts), entry
    out = Path(entry.result)
    assert out == data / "results" / "acme" / sid / f"attempt-{attempts}"
    assert (out / "signature.json").is_file()
    verified = bctest(env, "verify", str(out), timeout=300)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["certify"]["vendor"] == {"name": "acme", "submission": sid}
    assert results["certify"]["profile"] == PROFILE
    assert not client.images.list(name=VENDOR_TAG), "the vendor's image outlived its certification"
    return out


def on_the_scorecard(env: dict, data: Path, tmp_path: Path, sid: str) -> None:
    """The certified folder is published: one listing line naming the vendor and submission."""
    site = tmp_path / "site"
    built = bctest(env, "scorecard", "build", str(data / "results"), "--out", str(site), timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    [line] = [json.loads(text) for text in (site / "listing.jsonl").read_text().splitlines()]
    assert line["vendor"]["name"] == "acme" and line["vendor"]["submission"] == sid
    assert line["profile"] == PROFILE
    assert (site / "index.html").is_file() and "acme" in (site / "index.html").read_text()


def leftovers(client, run_ids: set[str], data: Path) -> list[str]:
    left = [name for run_id in run_ids for name in run_objects(client, run_id)]
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    return left + [line for line in mounts if str(data) in line]


@pytest.fixture
def postgres_queue():
    with postgres_server.server() as url:
        yield postgres_server.fresh_database(url, "bctest_worker")


@pytest.fixture(params=["postgresql", pytest.param("sqlite", marks=pytest.mark.long)])
def queue_url(request) -> str | None:
    """The queue the kill test runs on: a real PostgreSQL server, or (None) the default SQLite file."""
    return request.getfixturevalue("postgres_queue") if request.param == "postgresql" else None


def test_a_killed_worker_leaves_the_submission_to_the_next_one(env, tmp_path, docker_client, anvil_image,
                                                               queue_url):
    started = time.monotonic()
    data = tmp_path / "data"
    queue = ["--queue", queue_url] if queue_url else []
    sid = submitted(env, tmp_path, data, queue)
    worker = subprocess.Popen([sys.executable, "-m", "harness.cli", "worker", *queue, "--data", str(data),
                               "--poll", "1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + 600
        while not seen:
            assert worker.poll() is None, worker.stdout.read().decode()
            assert time.monotonic() < deadline, "no container of the worker's run appeared"
            seen = run_ids_of(docker_client, descendants(worker.pid))
            time.sleep(0.5)
        certify = descendants(worker.pid)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    deadline = time.monotonic() + 20   # certify dies with its worker (parent-death signal)
    while any(Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
              for pid in certify):
        assert time.monotonic() < deadline, "certify outlived its killed worker"
        time.sleep(0.2)
    with open_queue(queue_url, data) as opened:
        entry = opened.get(sid)
    assert (entry.state, entry.attempts) == ("running", 1)
    killed_at = time.monotonic()

    again = bctest(env, "worker", "--once", *queue, "--data", str(data), timeout=3600)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert "died in attempt 1; now queued" in again.stdout
    out = assert_certified(env, data, sid, 2, queue_url, docker_client)
    ran = {json.loads(p.read_text()).get("run_id") for p in (out / "cases").glob("*/results.json")}
    assert not leftovers(docker_client, seen | ran, data)
    on_the_scorecard(env, data, tmp_path, sid)
    listing = bctest(env, "queue", *queue, "--data", str(data))
    assert f"{sid[:12]}  acme" in listing.stdout and "certified" in listing.stdout
    print(f"\nkilled attempt {killed_at - started:.0f}s, certified attempt "
          f"{time.monotonic() - killed_at:.0f}s, total {time.monotonic() - started:.0f}s")


@pytest.mark.long   # CI: the kill test above runs on PostgreSQL; this is its plain first-attempt path
def test_the_same_path_with_a_postgresql_queue(env, tmp_path, docker_client, anvil_image, postgres_queue):
    started = time.monotonic()
    data = tmp_path / "data"
    sid = submitted(env, tmp_path, data, ["--queue", postgres_queue])
    done = bctest(env, "worker", "--once", "--queue", postgres_queue, "--data", str(data), timeout=3600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = assert_certified(env, data, sid, 1, postgres_queue, docker_client)
    ran = {json.loads(p.read_text()).get("run_id") for p in (out / "cases").glob("*/results.json")}
    assert not leftovers(docker_client, ran, data)
    on_the_scorecard(env, data, tmp_path, sid)
    listing = bctest(env, "queue", "--queue", postgres_queue, "--data", str(data))
    assert f"{sid[:12]}  acme" in listing.stdout and "certified" in listing.stdout
    print(f"\ncertified through PostgreSQL in {time.monotonic() - started:.0f}s")
