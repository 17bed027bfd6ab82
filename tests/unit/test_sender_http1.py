"""The sender's HTTP/1.1 reply parser (harness/load/http1.py): every framing a node may use is
read whole, however the bytes are split; every reply that is malformed, ambiguous or larger
than the bound is a ReplyError with a reason, never an exception of another kind or an
unbounded buffer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.load.http1 import MAX_HEAD_BYTES, Pool, ReplyError, ReplyParser

BODY = b'{"jsonrpc":"2.0","id":1,"result":"0xab"}'
LIMIT = 1 << 20


def length_reply(body: bytes = BODY, extra_headers: bytes = b"") -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra_headers
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def chunked_reply(body: bytes = BODY, pieces: int = 3) -> bytes:
    step = max(1, len(body) // pieces)
    out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for at in range(0, len(body), step):
        chunk = body[at:at + step]
        out += b"%x;ext=1\r\n%b\r\n" % (len(chunk), chunk)
    return out + b"0\r\nX-Trailer: yes\r\n\r\n"


def feed_in_pieces(parser: ReplyParser, data: bytes, cuts: list[int]):
    """Feed `data` cut at `cuts`; return the first completed reply (or None)."""
    at = 0
    for cut in sorted(set(c for c in cuts if 0 < c < len(data))) + [len(data)]:
        done = parser.feed(data[at:cut])
        at = cut
        if done is not None:
            return done
    return None


@pytest.mark.parametrize("reply", [length_reply(), chunked_reply(), chunked_reply(pieces=1),
                                   chunked_reply(pieces=40)])
def test_whole_reply_in_one_piece(reply):
    status, body, keep_alive, extra = ReplyParser(LIMIT).feed(reply)
    assert (status, body, keep_alive, extra) == (200, BODY, True, b"")


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=12),
       chunked=st.booleans())
def test_reply_split_anywhere_reads_the_same(cuts, chunked):
    reply = chunked_reply() if chunked else length_reply()
    assert feed_in_pieces(ReplyParser(LIMIT), reply, cuts) == (200, BODY, True, b"")


def test_byte_by_byte():
    for reply in (length_reply(), chunked_reply()):
        assert feed_in_pieces(ReplyParser(LIMIT), reply, list(range(len(reply)))) == \
            (200, BODY, True, b"")


def test_parser_is_reusable_for_the_next_reply():
    parser = ReplyParser(LIMIT)
    for reply in (length_reply(), chunked_reply(), length_reply(b"")):
        assert parser.feed(reply)[0] == 200


def test_interim_continue_is_skipped():
    reply = b"HTTP/1.1 100 Continue\r\n\r\n" + length_reply()
    assert ReplyParser(LIMIT).feed(reply)[:2] == (200, BODY)


def test_remembered_heads_give_the_same_answers():
    """The framing of a head is remembered by its bytes; the per-reply state is not."""
    for _ in range(3):
        parser = ReplyParser(LIMIT)
        assert parser.feed(length_reply()) == (200, BODY, True, b"")
        assert ReplyParser(10).feed(length_reply(b"x" * 5)) == (200, b"x" * 5, True, b"")
        with pytest.raises(ReplyError, match="reply larger than 10"):
            ReplyParser(10).feed(length_reply(b"x" * 11))
        with pytest.raises(ReplyError, match="both"):
            ReplyParser(LIMIT).feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                    b"Transfer-Encoding: chunked\r\n\r\n")
    assert ReplyParser(LIMIT).feed(b"HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok") == \
        (99, b"ok", True, b"")


def test_no_body_statuses_and_zero_length():
    parser = ReplyParser(LIMIT)
    assert parser.feed(b"HTTP/1.1 204 No Content\r\n\r\n") == (204, b"", True, b"")
    assert parser.feed(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n") == (500, b"", True, b"")


def test_connection_close_and_http10_are_not_kept():
    assert ReplyParser(LIMIT).feed(length_reply(extra_headers=b"Connection: close\r\n"))[2] is False
    reply10 = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert ReplyParser(LIMIT).feed(reply10) == (200, b"ok", False, b"")
    kept10 = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"
    assert ReplyParser(LIMIT).feed(kept10)[2] is True


def test_body_until_close():
    parser = ReplyParser(LIMIT)
    assert parser.feed(b"HTTP/1.0 200 OK\r\n\r\npart one, ") is None
    assert parser.feed(b"part two") is None
    assert parser.eof() == (200, b"part one, part two", False, b"")


def test_bytes_after_the_reply_are_handed_back():
    status, body, _, extra = ReplyParser(LIMIT).feed(length_reply() + length_reply(b"fake"))
    assert (status, body) == (200, BODY) and extra.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("reply, reason", [
    (b"SSH-2.0-OpenSSH_9.0\r\n\r\n", "not an HTTP/1.x reply"),
    (b"HTTP/2 200\r\n\r\n", "not an HTTP/1.x reply"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1 abc OK\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "malformed Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", "malformed Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "conflicting"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", "both"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "unsupported Transfer-Enc"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", "reply larger than"),
    (b"HTTP/1.1 101 Switching\r\n\r\n", "switched protocols"),
    (b"HTTP/1.1 100 Continue\r\n\r\n" * 20, "too many interim"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n", "malformed chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX", "not followed by CRLF"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 2000, "chunk-size line"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
     "malformed chunk size"),
])
def test_malformed_replies_are_refused_with_a_reason(reply, reason):
    with pytest.raises(ReplyError, match=reason):
        ReplyParser(LIMIT).feed(reply)


def test_oversized_bodies_are_refused_at_the_bound_not_read():
    limit = 1000
    with pytest.raises(ReplyError, match="reply larger than 1000"):
        ReplyParser(limit).feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1001\r\n\r\n")
    parser = ReplyParser(limit)
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    with pytest.raises(ReplyError, match="reply larger than 1000"):
        for _ in range(100):   # an endless chunked body
            parser.feed(b"64\r\n" + b"x" * 100 + b"\r\n")
    parser = ReplyParser(limit)
    parser.feed(b"HTTP/1.0 200 OK\r\n\r\n")
    with pytest.raises(ReplyError, match="reply larger than 1000"):
        for _ in range(100):   # an endless body delimited by a close that never comes
            parser.feed(b"x" * 100)
    assert ReplyParser(limit).feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                                   + b"x" * 1000)[1] == b"x" * 1000


def test_an_endless_head_or_trailer_is_refused():
    parser = ReplyParser(LIMIT)
    with pytest.raises(ReplyError, match="reply head larger"):
        for _ in range(MAX_HEAD_BYTES // 1000 + 2):
            parser.feed(b"X-Junk: " + b"a" * 990 + b"\r\n")
    parser = ReplyParser(LIMIT)
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n")
    with pytest.raises(ReplyError, match="trailers larger"):
        for _ in range(MAX_HEAD_BYTES // 1000 + 2):
            parser.feed(b"X-Junk: " + b"a" * 990 + b"\r\n")


def test_cut_off_replies_at_eof():
    for partial in (b"", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab"):
        parser = ReplyParser(LIMIT)
        if partial:
            assert parser.feed(partial) is None
        with pytest.raises(ReplyError, match="connection closed"):
            parser.eof()


@settings(max_examples=200, deadline=None)
@given(junk=st.binary(max_size=300), cuts=st.lists(st.integers(1, 300), max_size=5))
def test_any_bytes_give_a_reply_or_a_reply_error(junk, cuts):
    parser = ReplyParser(1000)
    try:
        feed_in_pieces(parser, b"HTTP/1.1 200 OK\r\n" + junk, cuts)
        parser.eof()
    except ReplyError:
        pass


def test_request_prefix_and_header_injection():
    pool = Pool("http://127.0.0.1:8545/rpc?x=1", {"Content-Type": "application/json",
                                                   "Content-Length": "999", "Host": "evil"},
                4, 1.0, LIMIT, lambda *a: None)
    assert pool.prefix == (b"POST /rpc?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8545\r\n"
                           b"Content-Type: application/json\r\nContent-Length: ")
    with pytest.raises(ValueError, match="line break"):
        Pool("http://127.0.0.1:1/", {"X-A": "b\r\nX-Injected: 1"}, 4, 1.0, LIMIT, lambda *a: None)
    with pytest.raises(ValueError, match="only http"):
        Pool("ftp://127.0.0.1:1/", {}, 4, 1.0, LIMIT, lambda *a: None)
