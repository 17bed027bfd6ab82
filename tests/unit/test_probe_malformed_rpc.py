"""The malformed_rpc probe against stub nodes on 127.0.0.1 that do the right thing (errors to
garbage) and the wrong things: answer results to garbage, hang, close, die, block every
client while one request is half-sent. Plus its seeded generators, pinned with hypothesis."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import InputError
from harness.model import Node
from harness.security import registry
from harness.security.probe import NotApplicable, ProbeTarget, Reply
from harness.security.probes import _malformed_cases as cases
from harness.security.probes import malformed_rpc as probe

FAST = {**probe.DEFAULTS, "cases": 40, "timeout": 1, "seconds": 30, "batch_entries": 100,
        "nesting_depth": 2000, "oversized_mib": 2, "half_sent_connections": 2, "half_sent_hold": 0.6}
READ = {"evm": "eth_blockNumber", "cometbft": "health", "bitcoin": "getblockcount"}


def _reject(name: str) -> Any:
    raise ValueError(name)


def strict_answer(raw: bytes, read: str) -> tuple[int, Any]:
    """What a correct JSON-RPC 2.0 server answers: errors to anything but a valid `read` call."""
    def error(code: int, message: str, id_: Any = None) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": id_, "error": {"code": code, "message": message}}

    def one(doc: Any) -> dict[str, Any]:
        if not isinstance(doc, dict) or doc.get("jsonrpc") != "2.0" \
                or not isinstance(doc.get("method"), str) \
                or not isinstance(doc.get("params", []), (list, dict)) \
                or not isinstance(doc.get("id"), (str, int, type(None))) or isinstance(doc.get("id"), bool):
            return error(-32600, "Invalid request")
        if doc["method"] != read:
            return error(-32601, "Method not found", doc.get("id"))
        return {"jsonrpc": "2.0", "id": doc["id"], "result": "0x1"}

    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_reject)
    except (ValueError, RecursionError):
        return 200, error(-32700, "Parse error")
    if isinstance(doc, list):
        return 200, [one(d) for d in doc] if doc else error(-32600, "empty batch")
    return 200, one(doc)


@contextlib.asynccontextmanager
async def aiohttp_node(post, get=None):
    """An aiohttp stub node answering POST / with `post` (and GET /{route} with `get`)."""
    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/", post)
    if get is not None:
        app.router.add_get("/{route:.*}", get)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]
    finally:
        await runner.cleanup()


def http_bytes(status: int, doc: Any) -> bytes:
    body = json.dumps(doc).encode()
    return (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body


@contextlib.asynccontextmanager
async def raw_node(answer, serial: bool = False, die_after: int | None = None, on_headers: bool = False):
    """A raw HTTP/1.1 stub: one request per connection; `answer(body)` gives the reply bytes
    or None (close without a word). `serial`: one connection at a time, read and all (a
    half-sent request blocks everyone). `die_after`: stop listening after that many requests.
    `on_headers`: answer `answer(b"")` as soon as the headers are in, without the body."""
    lock = asyncio.Lock()
    served = 0
    server: asyncio.AbstractServer | None = None

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            async with lock if serial else contextlib.nullcontext():
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = b"" if on_headers else await reader.readexactly(length)
                served += 1
                out = answer(body)
                if out is not None:
                    writer.write(out)
                    await writer.drain()
                if die_after is not None and served >= die_after and server is not None:
                    server.close()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def make_target(session, family: str, port: int, overrides: dict[str, Any] | None = None,
                headers: dict[str, str] | None = None, said: list[str] | None = None) -> ProbeTarget:
    return ProbeTarget(
        probe=probe.ID, severity=probe.SEVERITY, family=family,
        pack=SimpleNamespace(ports={"rpc": 8545}), nodes=[Node("node0", 0, "cid", {"rpc": port})],
        adapter=SimpleNamespace(submit_headers=headers or {"Content-Type": "application/json"}),
        runtime=None, settings={**FAST, **(overrides or {})}, deadline=time.monotonic() + 60,
        run_dir=Path("/nonexistent"), say=(said.append if said is not None else lambda _: None),
        session=session)


async def run_probe(family: str, port: int, **kw: Any) -> list[Any]:
    async with aiohttp.ClientSession() as session:
        return await probe.run(make_target(session, family, port, **kw))


def by_case(attempts: list[Any]) -> dict[str, Any]:
    cases_seen = [a.case for a in attempts]
    assert len(cases_seen) == len(set(cases_seen)), cases_seen   # one Attempt per category and node
    return {a.case: a for a in attempts}


async def strict_post(request: web.Request) -> web.Response:
    status, doc = strict_answer(await request.read(), READ["evm"])
    return web.json_response(doc, status=status)


# -- the probe against stub nodes --------------------------------------------------------------

def test_the_probe_is_registered():
    entry = registry()["malformed_rpc"]
    assert (entry.order, entry.severity) == (40, "high")
    assert set(entry.defaults) == set(entry.settings_schema)


def test_a_strict_node_passes_every_category():
    async def scenario():
        async with aiohttp_node(strict_post) as port:
            return await run_probe("evm", port)

    found = by_case(asyncio.run(scenario()))
    assert set(found) == {"invalid_json", "wrong_types", "unknown_method", "non_utf8", "empty_batch",
                          "deep_nesting", "huge_batch", "oversized_body", "half_sent"}
    assert {a.case: a.verdict for a in found.values()} == {case: "pass" for case in found}, \
        [(a.case, a.why) for a in found.values() if a.verdict != "pass"]
    assert found["invalid_json"].why.startswith("10 requests: 10 answered an error")
    assert "answered (HTTP 200)" in found["half_sent"].why
    assert found["oversized_body"].answer.startswith("HTTP 413")   # aiohttp's 1 MiB body limit


def test_a_node_that_answers_results_to_garbage_fails_with_severity_low():
    async def yes(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": "0x1"})

    async def scenario():
        async with aiohttp_node(yes) as port:
            return await run_probe("evm", port)

    found = by_case(asyncio.run(scenario()))
    for case in ("invalid_json", "unknown_method", "non_utf8", "wrong_types", "deep_nesting"):
        assert (found[case].verdict, found[case].severity) == ("fail", "low"), (case, found[case].why)
        assert '"result"' in found[case].answer and found[case].request
        assert "answered a success result to garbage" in found[case].why
    # a valid batch, an empty one: a result there is not a finding
    assert found["huge_batch"].verdict == "pass" and "(noted, not failed)" in found["huge_batch"].why
    assert found["empty_batch"].verdict == "pass"


def test_a_node_that_hangs_on_invalid_json_fails_with_severity_medium_and_moves_on():
    async def hang_on_garbage(request: web.Request) -> web.Response:
        raw = await request.read()
        if not cases.is_json(raw):
            await asyncio.sleep(30)
        status, doc = strict_answer(raw, READ["evm"])
        return web.json_response(doc, status=status)

    async def scenario():
        async with aiohttp_node(hang_on_garbage) as port:
            started = time.monotonic()
            attempts = await run_probe("evm", port)
            return attempts, time.monotonic() - started

    attempts, took = asyncio.run(scenario())
    found = by_case(attempts)
    assert (found["invalid_json"].verdict, found["invalid_json"].severity) == ("fail", "medium")
    assert "went unanswered within the timeout" in found["invalid_json"].why
    assert "not sent (a request of it went unanswered)" in found["invalid_json"].why
    assert "no HTTP answer" in found["invalid_json"].answer
    assert found["unknown_method"].verdict == "pass"
    assert took < 15   # one timeout per hanging category, not one per request


def test_a_node_that_closes_the_connection_on_garbage_passes():
    def close_on_garbage(body: bytes) -> bytes | None:
        status, doc = strict_answer(body, READ["evm"])
        return http_bytes(status, doc) if "result" in json.dumps(doc) else None

    async def scenario():
        async with raw_node(close_on_garbage) as port:
            return await run_probe("evm", port, overrides={"half_sent_connections": 0})

    found = by_case(asyncio.run(scenario()))
    assert all(a.verdict == "pass" for a in found.values()), [(a.case, a.why) for a in found.values()]
    assert "closed the connection" in found["invalid_json"].why


def test_a_node_that_dies_stops_the_probe_early_and_says_after_what():
    said: list[str] = []

    def strict(body: bytes) -> bytes:
        return http_bytes(*strict_answer(body, READ["evm"]))

    async def scenario():
        async with raw_node(strict, die_after=6) as port:
            started = time.monotonic()
            attempts = await run_probe("evm", port, said=said)
            return attempts, time.monotonic() - started

    attempts, took = asyncio.run(scenario())
    found = by_case(attempts)
    stopped = found["node_stopped"]
    assert stopped.verdict == "fail" and stopped.severity == "high"
    assert "refused 5 connections in a row" in stopped.why and "not tried:" in stopped.why
    assert "invalid_json" in stopped.why and stopped.request   # the last request it answered
    assert "half_sent" not in found and "huge_batch" not in found
    assert any("stopped" in line for line in said)
    assert took < 10


def test_half_sent_requests_that_block_every_client_fail():
    def strict(body: bytes) -> bytes:
        return http_bytes(*strict_answer(body, READ["evm"]))

    async def scenario():
        async with raw_node(strict, serial=True) as port:
            return await run_probe("evm", port, overrides={"half_sent_hold": 1.5})

    found = by_case(asyncio.run(scenario()))
    half = found["half_sent"]
    assert (half.verdict, half.severity) == ("fail", "medium"), half.why
    assert "went unanswered within the timeout" in half.why
    assert "Content-Length:" in half.request and "held open" in half.request
    assert found["invalid_json"].verdict == "pass"


def test_a_half_sent_request_answered_with_a_result_fails_with_severity_low():
    def yes(body: bytes) -> bytes:
        return http_bytes(200, {"jsonrpc": "2.0", "id": 1, "result": "0x1"})

    async def scenario():
        async with raw_node(yes, on_headers=True) as port:
            return await run_probe("evm", port, overrides={"cases": 0, "batch_entries": 0,
                                                           "oversized_mib": 0})

    half = by_case(asyncio.run(scenario()))["half_sent"]
    assert (half.verdict, half.severity) == ("fail", "low"), half.why
    assert "the node answered 1 (HTTP 200)" in half.why and "left 1 open" in half.why
    assert half.answer.startswith("half-sent request: HTTP 200")


def test_a_raw_answer_is_parsed_even_chunked_or_cut():
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\n{\"res\r\n9\r\nult\": 1}\r\n0\r\n\r\n")
    assert probe._parse_http(chunked).json() == {"result": 1}
    assert probe._parse_http(b"HTTP/1.1 408 Request Timeout\r\n\r\n").status == 408
    assert probe._parse_http(b"\x00garbage").status is None


def test_bitcoin_gets_the_adapters_credentials_and_they_are_never_recorded():
    token = "Basic " + base64.b64encode(b"bctest:secret-run-password").decode()

    async def lax_behind_auth(request: web.Request) -> web.Response:
        await request.read()
        if request.headers.get("Authorization") != token:
            return web.Response(status=401)
        return web.json_response({"result": 0, "error": None, "id": 1})

    async def scenario(headers):
        async with aiohttp_node(lax_behind_auth) as port:
            return await run_probe("bitcoin", port, headers=headers)

    found = by_case(asyncio.run(scenario({"Content-Type": "application/json", "Authorization": token})))
    assert found["invalid_json"].verdict == "fail"    # the garbage reached the JSON-RPC server
    assert "Authorization: <redacted>" in found["half_sent"].request
    assert not any("secret" in a.request + a.answer or token in a.request + a.answer for a in found.values())

    # without the right credentials every answer is a 401: nothing can be judged, and it says so
    found = by_case(asyncio.run(scenario({"Authorization": "Basic d3Jvbmc6d3Jvbmc="})))
    assert list(found) == ["baseline"]
    assert found["baseline"].verdict == "unknown" and "HTTP 401" in found["baseline"].answer


@pytest.mark.parametrize("lax", [False, True])
def test_cometbft_uri_routes_are_fuzzed_too(lax):
    async def post(request: web.Request) -> web.Response:
        status, doc = strict_answer(await request.read(), READ["cometbft"])
        return web.json_response(doc, status=status)

    async def get(request: web.Request) -> web.Response:
        if lax:
            return web.json_response({"jsonrpc": "2.0", "id": -1, "result": {}})
        return web.json_response({"jsonrpc": "2.0", "id": -1, "error": {"code": -32602,
                                  "message": "Invalid params"}}, status=500)

    async def scenario():
        async with aiohttp_node(post, get) as port:
            return await run_probe("cometbft", port, overrides={"half_sent_connections": 0})

    uri = by_case(asyncio.run(scenario()))["uri_args"]
    assert uri.request.startswith("GET /")
    assert (uri.verdict, uri.severity) == (("fail", "low") if lax else ("pass", "medium")), uri.why


def test_the_time_budget_bounds_a_node_that_hangs_on_everything():
    async def hang_after_baseline(request: web.Request) -> web.Response:
        raw = await request.read()
        if raw != cases.dumps({"jsonrpc": "2.0", "id": 1, "method": READ["evm"], "params": []}):
            await asyncio.sleep(30)
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": "0x1"})

    async def scenario():
        async with aiohttp_node(hang_after_baseline) as port:
            started = time.monotonic()
            attempts = await run_probe("evm", port, overrides={"seconds": 3.5})
            return attempts, time.monotonic() - started

    attempts, took = asyncio.run(scenario())
    assert took < 6
    verdicts = {a.case: a.verdict for a in attempts}
    assert verdicts["invalid_json"] == "fail"
    assert "unknown" in verdicts.values()   # what the budget left unsent is not passed
    assert any("time budget ended" in a.why for a in attempts if a.verdict == "unknown")


def test_an_unknown_family_is_not_applicable():
    async def scenario():
        async with aiohttp.ClientSession() as session:
            await probe.run(make_target(session, "hyperledger", 1))

    with pytest.raises(NotApplicable, match="no malformed_rpc cases for the hyperledger family"):
        asyncio.run(scenario())


@pytest.mark.parametrize("name,value", [("cases", -1), ("cases", "200"), ("timeout", True),
                                        ("seconds", 0), ("oversized_mib", 1.5), ("nodes", None)])
def test_bad_settings_are_one_clear_input_error(name, value):
    with pytest.raises(InputError, match=f"security.settings.malformed_rpc.{name}: expected"):
        probe.settings_from({**probe.DEFAULTS, name: value})


@pytest.mark.parametrize("reply,strict,outcome", [
    (Reply(400, b"{}"), True, "error"),
    (Reply(200, b'{"jsonrpc":"2.0","id":1,"error":{"code":-32700}}'), True, "error"),
    (Reply(200, b'{"jsonrpc":"2.0","id":1,"result":null}'), True, "result"),
    (Reply(200, b'{"jsonrpc":"2.0","id":1,"result":"0x1"}'), False, "lenient"),
    (Reply(200, b'[{"error":{"code":1}},{"result":1}]'), True, "result"),
    (Reply(200, b'[{"error":{"code":1}}]'), True, "error"),
    (Reply(200, b""), True, "other"),
    (Reply(200, b"[]"), True, "other"),
    (Reply(200, b"<html>"), True, "other"),
    (Reply(None, error="TimeoutError"), True, "hung"),
    (Reply(None, error="ServerTimeoutError: Timeout on reading data from socket"), True, "hung"),
    (Reply(None, error="ClientConnectorError: Cannot connect to host 127.0.0.1:1"), True, "refused"),
    (Reply(None, error="ServerDisconnectedError: Server disconnected"), True, "closed"),
    (Reply(None, error="ClientOSError: [Errno 104] Connection reset by peer"), True, "closed"),
])
def test_classify(reply, strict, outcome):
    assert probe.classify(reply, strict) == outcome


# -- the generators ---------------------------------------------------------------------------

families = st.sampled_from(sorted(cases.FAMILIES.values(), key=lambda f: f.name))


@settings(max_examples=60, deadline=None)
@given(family=families, seed=st.integers(0, 2**63 - 1), count=st.integers(0, 120))
def test_generated_requests_keep_their_promises(family, seed, count):
    drawn = cases.generated(family, seed, count)
    assert drawn == cases.generated(family, seed, count)        # same seed, same bytes
    assert sum(len(v) for v in drawn.values()) == count
    assert ("uri_args" in drawn) == family.uri_routes
    for name, requests in drawn.items():
        for request in requests:
            assert request.category == name and request.note
            if request.body is None:
                assert request.method == "GET" and request.path.startswith("/") and request.strict
                continue
            if name == "invalid_json":
                assert not request.strict or not cases.is_json(request.body), request
                assert not cases.is_json(request.body)              # even the lax ones are not one value
            if name == "non_utf8":
                with pytest.raises(UnicodeDecodeError):
                    request.body.decode("utf-8")
            if name in ("wrong_types", "unknown_method"):
                doc = json.loads(request.body)
                if name == "unknown_method":
                    assert isinstance(doc["method"], str) and doc["method"] != family.read
                elif request.strict:
                    assert not isinstance(doc, dict) or not isinstance(doc.get("method"), str)
                else:
                    assert doc["method"] == family.read


def test_seeds_change_the_requests_and_the_heavy_cases_have_their_size():
    family = cases.FAMILIES["evm"]
    assert cases.generated(family, 1, 50) != cases.generated(family, 2, 50)
    assert len(cases.oversized(16).body) == 16 << 20
    batch = json.loads(cases.huge_batch(family, 10000).body)
    assert len(batch) == 10000 and all(entry["method"] == "eth_blockNumber" for entry in batch)
    assert [r.body[:3] for r in cases.deep_nesting(family, 100000)] == [b"[[[", b'{"j', b'{"a']


@settings(max_examples=200, deadline=None)
@given(status=st.one_of(st.none(), st.integers(100, 599)), body=st.binary(max_size=300),
       strict=st.booleans())
def test_no_answer_makes_the_judging_raise(status, body, strict):
    outcomes = {"error", "closed", "other", "lenient", "result", "hung", "refused"}
    assert probe.classify(Reply(status, body, error=None if status else "X"), strict) in outcomes
    assert probe.classify(probe._parse_http(b"HTTP/1.1 200 OK\r\n\r\n" + body), strict) in outcomes
    assert probe.classify(probe._parse_http(body), strict) in outcomes
