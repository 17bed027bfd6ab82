"""A throwaway PostgreSQL server for the queue tests: a real server from Debian's
`postgresql` package (scripts/setup installs it), a cluster in a temp folder, listening on a
free 127.0.0.1 port, run as the `postgres` user (the server refuses root) and ended with the
test session. It dies with the test process too (parent-death signal), even on SIGKILL.

Missing server: the tests skip with the reason, or fail when BCTEST_REQUIRE_DOCKER=1 (CI)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PR_SET_PDEATHSIG = 1


def _missing(reason: str) -> None:
    if os.environ.get("BCTEST_REQUIRE_DOCKER") == "1":
        pytest.fail(f"BCTEST_REQUIRE_DOCKER=1 but {reason}")
    pytest.skip(reason)


def _binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_user(uid: int, gid: int, die_with_parent: bool) -> object:
    def become() -> None:
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        if die_with_parent:   # armed after setuid: a credential change clears it
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    return become


@contextlib.contextmanager
def server() -> Iterator[str]:
    """Yields the URL of a superuser connection to a fresh server's `postgres` database."""
    try:
        import psycopg
    except ImportError:
        _missing("psycopg is not installed (pip install -e '.[test]')")
    bin_dir = _binaries()
    if bin_dir is None:
        _missing("PostgreSQL is not installed: no /usr/lib/postgresql/<version>/bin/postgres "
                 "(scripts/setup installs the Debian package `postgresql`)")
    try:
        user = pwd.getpwnam("postgres") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    except KeyError:
        _missing("no `postgres` user to run the server as (the Debian package creates it)")
    folder = Path(tempfile.mkdtemp(prefix="bctest-pg-"))
    data = folder / "data"
    process = None
    try:
        os.chown(folder, user.pw_uid, user.pw_gid)
        env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "HOME": str(folder)}
        initdb = subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                                 "--auth=trust", "-E", "UTF8", "--no-sync"],
                                preexec_fn=_as_user(user.pw_uid, user.pw_gid, False), env=env,
                                capture_output=True, text=True, timeout=120)
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr[-2000:]}")
        port = _free_port()
        log = open(folder / "server.log", "wb")
        process = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(folder),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=50"],
            preexec_fn=_as_user(user.pw_uid, user.pw_gid, True), env=env,
            stdout=log, stderr=subprocess.STDOUT)
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(url, connect_timeout=2).close()
                break
            except psycopg.Error:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start: "
                                       + (folder / "server.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        yield url
    finally:
        if process is not None:
            process.send_signal(signal.SIGINT)   # fast shutdown: ends the sessions, then exits
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(url: str, name: str) -> str:
    """A new empty database on the server at `url`; returns its URL."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name
