"""The Locust engine's own logic: plan files, and every send ending in a record whatever a
(hostile, local, fake) endpoint answers. The Locust processes are real; the endpoint is a
small asyncio server on 127.0.0.1 that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import InfraError
from harness.load import planfile
from harness.load.driver import plan_workers
from harness.load.locust_engine import available, run_locust
from harness.load.sender import MAX_REPLY_BYTES
from harness.model import DROPPED, Prepared
from harness.suite import LocustSpec

needs_locust = pytest.mark.skipif(available() is not None, reason=available() or "")
OK = b'{"jsonrpc":"2.0","id":1,"result":"0x' + b"ab" * 32 + b'"}'


def test_plan_file_round_trip(tmp_path):
    bodies = [b"", b"x", bytes(range(256)) * 3]
    meta = planfile.PlanMeta(worker=2, count=3, urls=["http://127.0.0.1:1/a", "http://127.0.0.1:2/"],
                             headers={"A": "b"}, classifier="m:C", max_in_flight=5,
                             submit_timeout=1.5, connections=3)
    planfile.write(tmp_path, meta, [0.0, 0.5, 0.75], [0, 1, 1], bodies)
    plan = planfile.read(tmp_path, 2)
    assert plan.meta == meta
    assert list(plan.offsets) == [0.0, 0.5, 0.75] and list(plan.targets) == [0, 1, 1]
    assert [plan.body(k) for k in range(3)] == bodies


def test_a_truncated_or_mismatched_plan_is_refused_with_the_file_named(tmp_path):
    meta = planfile.PlanMeta(0, 2, ["u"], {}, "m:C", 1, 1.0, 1)
    planfile.write(tmp_path, meta, [0.0, 1.0], [0, 0], [b"ab", b"cd"])
    _, bin_path = planfile.paths(tmp_path, 0)
    bin_path.write_bytes(bin_path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="plan-0.bin"):
        planfile.read(tmp_path, 0)
    planfile.write(tmp_path, meta, [0.0, 1.0], [0, 3], [b"ab", b"cd"])   # target 3 of 1 url
    with pytest.raises(ValueError, match="targets"):
        planfile.read(tmp_path, 0)


def test_the_harness_never_imports_locust():
    code = ("import sys, harness.load.locust_engine, harness.phases.load; "
            "print('locust' in sys.modules, 'gevent' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.split() == ["False", "False"]


async def _hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Per request, by the body's first byte: o ok, r refused (JSON-RPC error), b 5 MiB
    reply, 5 a 500, c close without a reply, s never answer, g redirect elsewhere."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            body = await reader.readexactly(length)
            kind = body[:1]
            if kind == b"c":
                break
            if kind == b"s":
                await asyncio.sleep(5)
                break
            status, reply, extra = b"200 OK", OK, b""
            if kind == b"r":
                reply = b'{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"nonce too low"}}'
            elif kind == b"b":
                reply = b"[" * (5 << 20)
            elif kind == b"5":
                status, reply = b"500 Internal Server Error", b"oops"
            elif kind == b"g":
                status, reply, extra = b"307 Temporary Redirect", b"", b"Location: http://10.0.0.1/\r\n"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n" + extra
                         + b"Content-Length: " + str(len(reply)).encode() + b"\r\n\r\n" + reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError, StopIteration):
        pass
    finally:
        writer.close()


def _run(tmp_path, kinds: bytes, rate: float, spec: LocustSpec, max_in_flight: int = 4096,
         submit_timeout: float = 2.0, stop_after: float | None = None, connections: int = 8):
    async def main():
        server = await asyncio.start_server(_hostile, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        prepared = [Prepared(bytes([k]) + b"-payload", str(i)) for i, k in enumerate(kinds)]
        fixed = "offsets" not in inspect.signature(plan_workers).parameters   # before load shapes
        plans = plan_workers(prepared, [(0, f"http://127.0.0.1:{port}/")],
                             rate if fixed else [i / rate for i in range(len(prepared))],
                             spec.workers + spec.remote_workers, max_in_flight, submit_timeout,
                             {"Content-Type": "application/json"},
                             "harness.adapters.evm:EvmAdapter", connections)
        started: list[float] = []
        loop = asyncio.get_running_loop()

        def stop() -> bool:
            return stop_after is not None and bool(started) and loop.time() > started[0] + stop_after

        async with server:
            return await run_locust(plans, len(prepared), stop, lambda p: None,
                                    lambda at: started.append(loop.time()), spec,
                                    log_dir=tmp_path / "logs")
    return asyncio.run(main())


@needs_locust
def test_every_send_ends_acked_or_refused_whatever_the_node_answers(tmp_path):
    kinds = b"orb5csg" * 3
    records, progress = _run(tmp_path, kinds, rate=40, spec=LocustSpec(workers=2))
    assert all(r is not None for r in records), [i for i, r in enumerate(records) if r is None]
    by_kind = {}
    for record, kind in zip(records, kinds, strict=True):
        by_kind.setdefault(chr(kind), []).append(record)
    assert all(r.error is None and r.acked is not None for r in by_kind["o"])
    assert all("nonce too low" in r.error for r in by_kind["r"])
    assert all(f"{MAX_REPLY_BYTES} bytes" in r.error for r in by_kind["b"])
    assert all(r.error for k in "5csg" for r in by_kind[k]), by_kind
    assert all("Timeout" in r.error for r in by_kind["s"])
    assert all(r.acked - r.submitted < 2.0 + 1.0 for r in records)   # the submit timeout holds
    assert [r.node for r in records] == [0] * len(kinds)
    assert progress.sent == len(kinds) and progress.errors == len(kinds) - 3
    # times are the harness's monotonic clock: a send is never before its scheduled instant
    start = min(r.submitted - r.scheduled for r in records)
    assert all(r.submitted >= start + r.scheduled - 0.001 for r in records)
    assert not _locust_processes()


@needs_locust
def test_past_max_in_flight_sends_are_recorded_dropped(tmp_path):
    records, progress = _run(tmp_path, b"s" * 6, rate=50, spec=LocustSpec(workers=1),
                             max_in_flight=2, submit_timeout=1.0)
    errors = [r.error for r in records]
    assert errors.count(DROPPED) == 4 and progress.dropped == 4
    assert not _locust_processes()


@needs_locust
def test_a_stop_ends_the_schedule_early_and_keeps_what_was_sent(tmp_path):
    records, _ = _run(tmp_path, b"o" * 400, rate=50, spec=LocustSpec(workers=1), stop_after=1.0)
    sent = [r for r in records if r is not None]
    assert 20 <= len(sent) < 200, len(sent)
    assert all(r.error is None for r in sent)
    assert not _locust_processes()


@needs_locust
def test_workers_that_never_connect_end_the_run_with_a_reason(tmp_path):
    with pytest.raises(InfraError, match="not ready"):
        _run(tmp_path, b"o" * 4, rate=10, spec=LocustSpec(workers=1, remote_workers=1,
                                                           ready_timeout=2))
    assert not _locust_processes()


def _locust_processes() -> list[str]:
    """Locust processes this test process started (children carrying our pid as parent)."""
    mine = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"BCTEST_LOCUST_PARENT={os.getpid()}".encode() in env and b"locust" in command:
            mine.append(command.replace(b"\0", b" ").decode(errors="replace"))
    return mine


@needs_locust
def test_a_remote_worker_gets_its_share_shipped_by_the_master(tmp_path):
    """A worker started by hand (as on another host: no plan directory, no parent to die
    with) connects to the master's port, gets its plan over the Locust connection, sends."""
    from harness.load.locust_engine import _free_port
    port = _free_port("127.0.0.1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCTEST_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    remote = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", "harness/load/locust_worker.py", "--worker",
         "--master-host", "127.0.0.1", "--master-port", str(port)], env=env,
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        records, progress = _run(tmp_path, b"o" * 60, rate=30,
                                 spec=LocustSpec(workers=1, remote_workers=1, master_port=port))
        assert remote.wait(timeout=30) is not None     # the master's quit ends it too
    finally:
        if remote.poll() is None:
            remote.kill()
    assert all(r is not None and r.error is None for r in records)
    assert sorted(progress.per_worker) == [0, 1]       # both shares were sent
    assert not _locust_processes()


def test_suite_load_engine_and_locust_keys(tmp_path):
    import copy

    from harness import suite as suite_module
    from harness.errors import InputError

    from .conftest import VALID_SUITE, make_suite

    doc = copy.deepcopy(VALID_SUITE)
    assert suite_module.load(make_suite(tmp_path / "a", doc)).load.engine == "builtin"
    doc["load"].update(engine="locust", locust={"workers": 3, "remote_workers": 2,
                                                "master_bind": "0.0.0.0", "master_port": 5557})
    spec = suite_module.load(make_suite(tmp_path / "b", doc)).load
    assert spec.engine == "locust" and spec.locust == LocustSpec(3, 2, "0.0.0.0", 5557, 60.0)
    for bad, field in (({"workers": 0}, "load.locust"), ({"threads": 2}, "load.locust.threads"),
                       ({"master_bind": "example.org"}, "load.locust.master_bind")):
        doc["load"]["locust"] = bad
        with pytest.raises(InputError) as info:
            suite_module.load(make_suite(tmp_path / "c", doc))
        assert info.value.field == field, str(info.value)
    doc["load"].pop("locust")
    doc["load"]["engine"] = "jmeter"
    with pytest.raises(InputError, match="load.engine"):
        suite_module.load(make_suite(tmp_path / "d", doc))
