"""A node that lies in its replies cannot raise its success ratio.

Before: a reply the sender could not classify (`{"error":{"message":0}}`, deeply nested
JSON, ...) raised inside the send task, the record stayed empty, the transaction counted
as "not sent" and the success ratio rose (a stub refusing half the txs this way went from
0.88 to 1.0). Now every due send ends acknowledged or refused with a reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.adapters import jsonrpc
from harness.adapters.bitcoin import BitcoinAdapter
from harness.adapters.cometbft import query_error as comet_query_error
from harness.adapters.cometbft import response_error as comet_response_error
from harness.adapters.evm import EvmAdapter
from harness.load.driver import plan_workers, run_senders
from harness.load.sender import MAX_REPLY_BYTES, classify
from harness.load.shape import fixed_offsets
from harness.model import Prepared

CLASSIFIERS = {
    "evm submit": EvmAdapter.response_error, "evm read": EvmAdapter.query_error,
    "cometbft submit": comet_response_error, "cometbft read": comet_query_error,
    "bitcoin submit": BitcoinAdapter.response_error, "bitcoin read": BitcoinAdapter.query_error,
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["error", "result", "message", "code", "data", "log", "id", "jsonrpc"])
        | st.text(max_size=8), inner, max_size=5),
    max_leaves=20)

DEEP = b"[" * 100_000 + b"]" * 100_000
LIES = [b'{"error":{"message":0}}', DEEP, b"not json at all", b'{"result":null}', b"{}",
        b'{"jsonrpc":"2.0","id":1}', b'{"error":[1,2]}', b'\xff\xfe', b'{"result":{"code":"x"}}',
        b'{"error":{"message":""},"result":"0xab"}']


@pytest.fixture(autouse=True)
def default_recursion_limit():
    """The harness runs with Python's default limit (1000), under which json refuses deep
    nesting with RecursionError. eth-account (a test dependency) raises it to 100000, where
    DEEP overflows the C stack instead: judge the harness as it runs."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(limit)


def test_the_harness_keeps_the_default_recursion_limit():
    code = ("import sys, harness.run, harness.adapters.evm, harness.adapters.bitcoin, "
            "harness.adapters.cometbft, harness.load.sender; print(sys.getrecursionlimit())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "1000", done.stderr[-500:]


@contextlib.asynccontextmanager
async def stub_node(handle):
    """A lying node: an HTTP server on 127.0.0.1 answering POST / with `handle`; yields its url."""
    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"
    finally:
        await runner.cleanup()


def truly_accepted(body: bytes) -> bool:
    """The stub's own truth for a submission reply: a JSON object with a non-null result
    and no error (what every family's protocol calls an acceptance)."""
    try:
        reply = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return isinstance(reply, dict) and not reply.get("error") and reply.get("result") is not None


@settings(max_examples=300, deadline=None)
@given(value=json_values, status=st.sampled_from([200, 200, 200, 400, 500]))
def test_no_reply_shape_makes_a_classifier_raise_or_accept_without_a_result(value, status):
    body = json.dumps(value).encode()
    for name, classifier in CLASSIFIERS.items():
        error = classify(classifier, status, body)
        assert error is None or (isinstance(error, str) and 0 < len(error) <= 200), (name, error)
        if error is None:   # accepted: then the reply really said so
            assert status == 200 and truly_accepted(body), (name, body)


@settings(max_examples=100, deadline=None)
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes_never_count_as_accepted_unless_they_are_an_acceptance(body):
    for name, classifier in CLASSIFIERS.items():
        error = classify(classifier, 200, body)
        assert error is None or error, name
        if error is None:
            assert truly_accepted(body), (name, body)


def test_known_lies_are_refusals_with_a_reason():
    for lie in LIES:
        for name, classifier in CLASSIFIERS.items():
            error = classify(classifier, 200, lie)
            assert error, (name, lie[:40])


def test_an_oversized_reply_is_refused_unread():
    assert classify(jsonrpc.response_error, 200, b" " * (MAX_REPLY_BYTES + 1)).startswith("reply larger")


def test_a_classifier_that_raises_or_answers_oddly_still_gives_a_reason():
    def boom(status, body):
        raise KeyError("result")

    assert classify(boom, 200, b"{}").startswith("unclassifiable reply (KeyError)")
    assert classify(lambda s, b: 0, 200, b"{}") == "0"
    assert classify(lambda s, b: "", 200, b"{}") == "refused (empty reason)"


def test_real_senders_against_a_lying_node_count_exactly_the_truth():
    """Sender processes against a stub node on 127.0.0.1 that accepts even txs properly and
    answers odd ones with a lie: the success ratio is the truth (1/2), every due send has a
    record, every refusal a reason."""
    count = 40

    async def scenario():
        async def handle(request: web.Request) -> web.Response:
            i = int((await request.read()).decode())
            if i % 2 == 0:
                return web.Response(body=b'{"jsonrpc":"2.0","id":1,"result":"0x%064x"}' % i)
            return web.Response(body=LIES[i // 2 % len(LIES)])

        async with stub_node(handle) as url:
            prepared = [Prepared(body=str(i).encode(), tx_id=str(i)) for i in range(count)]
            plans = plan_workers(prepared, [(0, url)], fixed_offsets(len(prepared), 100.0), 2, 64, 10.0,
                                 {}, "harness.adapters.evm:EvmAdapter")
            return await run_senders(plans, count, lambda: False, lambda p: None, lambda t: None)

    records, progress = asyncio.run(scenario())
    assert all(r is not None for r in records)
    accepted = [r for r in records if r.error is None]
    assert len(accepted) == count // 2 and all(r.i % 2 == 0 for r in accepted)
    assert all(r.error for r in records if r.i % 2) and progress.errors == count // 2


def test_control_calls_refuse_oversized_and_deep_replies():
    """The harness's own calls (heights, blocks, tips) read at most a bounded reply and turn
    deep or non-JSON answers into an RpcError, never a crash or an unbounded read."""

    async def scenario():
        async def handle(request: web.Request) -> web.Response:
            kind = request.query.get("kind")
            return web.Response(body=DEEP if kind == "deep" else b"x" * 4096)

        async with stub_node(handle) as url:
            async with aiohttp.ClientSession() as session:
                with pytest.raises(jsonrpc.RpcError, match="not JSON"):
                    await jsonrpc.call(session, url + "?kind=deep", "eth_blockNumber")
                async with session.post(url) as resp:
                    with pytest.raises(jsonrpc.RpcError, match="larger than 1024 bytes"):
                        await jsonrpc.read_capped(resp, "test", limit=1024)

    asyncio.run(scenario())


def test_a_large_reply_arriving_in_pieces_is_read_whole():
    """Bounded reads must not stop at the first piece that arrived (a CometBFT /block of a
    busy height once failed to parse this way): a 1 MB reply streamed in 4 KB writes."""

    payload = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"txs": ["ab" * 50] * 10_000}}).encode()

    async def scenario():
        async def handle(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse()
            await response.prepare(request)
            for at in range(0, len(payload), 4096):
                await response.write(payload[at:at + 4096])
                await asyncio.sleep(0)
            await response.write_eof()
            return response

        async with stub_node(handle) as url:
            async with aiohttp.ClientSession() as session:
                return await jsonrpc.call(session, url, "getblock")

    result = asyncio.run(scenario())
    assert len(result["txs"]) == 10_000


def test_read_bounded_loops_until_the_end_or_past_the_limit():
    from harness.httpread import read_bounded

    class Trickle:
        def __init__(self, data: bytes):
            self.data = data

        async def read(self, n: int) -> bytes:
            piece, self.data = self.data[:min(n, 3)], self.data[min(n, 3):]
            return piece

    assert asyncio.run(read_bounded(Trickle(b"0123456789"), 100)) == b"0123456789"
    assert asyncio.run(read_bounded(Trickle(b"0123456789"), 4)) == b"01234"
