"""A small HTTP/1.1 client for the sender's hot path: one request at a time per keep-alive
connection, a bounded pool of connections per node, replies parsed with a hard size bound.

Why not aiohttp here: a request through aiohttp costs a Task, a session lookup, header
objects and a StreamReader, about 150 µs of CPU, which held one sender process to ~6,000
tx/s. Here a send is one pre-built header prefix plus the body written to an idle
connection, and a reply is parsed straight from the bytes the transport hands over.

The node at the other end is hostile: a reply that is not HTTP, too large, endless, cut
off, unsolicited, or never comes ends as a refusal with a reason (`on_reply(k, submitted,
None, reason)`), never an exception, a hang or an unbounded read. Requests are never
pipelined, so an answer can only be matched to the one request outstanding on its
connection; bytes beyond that answer close the connection.

Imports only the standard library: it runs in the sender processes.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

MAX_HEAD_BYTES = 64 * 1024     # status line + headers (and a chunked reply's trailers)
MAX_CHUNK_LINE = 1024          # one chunk-size line, extensions included
MAX_INTERIM = 8                # 1xx answers skipped before the real one
GROW_AFTER = 0.001             # a send waiting this long for a connection may open another

# parser states
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE = range(7)


class ReplyError(Exception):
    """The reply cannot be taken as an answer; the message is the record's reason."""


class ReplyParser:
    """Incremental parser of one HTTP/1.x response (1xx interim answers skipped).

    feed(data) returns None while the reply is incomplete, else (status, body, keep_alive,
    extra) where extra is whatever arrived after the reply; raises ReplyError for a reply
    that is malformed or larger than `limit` body bytes. eof() is called when the server
    closed: it completes a reply delimited by the close, else raises ReplyError.
    """

    __slots__ = ("limit", "state", "buf", "status", "keep_alive", "remaining", "parts", "size",
                 "interim", "trailer_bytes")

    def __init__(self, limit: int):
        self.limit = limit
        self.reset()

    def reset(self) -> None:
        self.state = _HEAD
        self.buf = b""
        self.status = 0
        self.keep_alive = True
        self.remaining = 0
        self.parts: list[bytes] = []
        self.size = 0
        self.interim = 0
        self.trailer_bytes = 0

    def feed(self, data: bytes) -> tuple[int, bytes, bool, bytes] | None:
        buf = self.buf + data if self.buf else data
        self.buf = b""
        while True:
            state = self.state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > MAX_HEAD_BYTES:
                        raise ReplyError(f"reply head larger than {MAX_HEAD_BYTES} bytes")
                    self.buf = buf
                    return None
                if end > MAX_HEAD_BYTES:
                    raise ReplyError(f"reply head larger than {MAX_HEAD_BYTES} bytes")
                head, buf = buf[:end], buf[end + 4:]
                done = self._head(head)
                if done is None:
                    continue                      # an interim 1xx answer: the real one follows
                if done:                          # no body (Content-Length 0, 204, 304)
                    return self._finish(b"", buf)
            elif state == _LENGTH:
                if len(buf) >= self.remaining:
                    body, buf = buf[:self.remaining], buf[self.remaining:]
                    if self.parts:
                        self.parts.append(body)
                        body = b"".join(self.parts)
                    return self._finish(body, buf)
                self.parts.append(buf)
                self.remaining -= len(buf)
                return None
            elif state == _CHUNK_SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    if len(buf) > MAX_CHUNK_LINE:
                        raise ReplyError("chunk-size line too long")
                    self.buf = buf
                    return None
                line, buf = buf[:end], buf[end + 2:]
                digits = line.split(b";", 1)[0].strip()
                if not digits or len(digits) > 15 or digits.strip(b"0123456789abcdefABCDEF"):
                    raise ReplyError(f"malformed chunk size {line[:40]!r}")
                size = int(digits, 16)
                if size == 0:
                    self.state = _TRAILERS
                    continue
                self.size += size
                if self.size > self.limit:
                    raise ReplyError(f"reply larger than {self.limit} bytes")
                self.remaining = size
                self.state = _CHUNK_DATA
            elif state == _CHUNK_DATA:
                if not buf:
                    return None
                piece = buf[:self.remaining]
                buf = buf[len(piece):]
                self.parts.append(piece)
                self.remaining -= len(piece)
                if self.remaining == 0:
                    self.state = _CHUNK_END
            elif state == _CHUNK_END:
                if len(buf) < 2:
                    self.buf = buf
                    return None
                if buf[:2] != b"\r\n":
                    raise ReplyError("chunk not followed by CRLF")
                buf = buf[2:]
                self.state = _CHUNK_SIZE
            elif state == _TRAILERS:
                end = buf.find(b"\r\n")
                if end < 0:
                    self.trailer_bytes += len(buf)
                    if self.trailer_bytes > MAX_HEAD_BYTES:
                        raise ReplyError(f"reply trailers larger than {MAX_HEAD_BYTES} bytes")
                    self.buf = buf
                    return None
                self.trailer_bytes += end + 2
                if self.trailer_bytes > MAX_HEAD_BYTES:
                    raise ReplyError(f"reply trailers larger than {MAX_HEAD_BYTES} bytes")
                line, buf = buf[:end], buf[end + 2:]
                if not line:
                    return self._finish(b"".join(self.parts), buf)
            else:  # _UNTIL_CLOSE: the body ends when the server closes
                self.size += len(buf)
                if self.size > self.limit:
                    raise ReplyError(f"reply larger than {self.limit} bytes")
                if buf:
                    self.parts.append(buf)
                return None

    def eof(self) -> tuple[int, bytes, bool, bytes]:
        if self.state == _UNTIL_CLOSE:
            return self._finish(b"".join(self.parts), b"")
        if self.state == _HEAD and not self.buf:
            raise ReplyError("connection closed before any reply")
        raise ReplyError("connection closed in the middle of the reply")

    def _finish(self, body: bytes, extra: bytes) -> tuple[int, bytes, bool, bytes]:
        result = (self.status, body, self.keep_alive and self.state != _UNTIL_CLOSE, extra)
        self.reset()
        return result

    def _head(self, head: bytes) -> bool | None:
        """Read the status line and headers; set the body state. True when there is no
        body, False when one follows, None for an interim (1xx) answer."""
        framing = _HEADS.get(head)
        if framing is None:
            framing = _framing(head)            # raises ReplyError for a bad head
            if len(head) <= 1024:
                if len(_HEADS) >= _HEADS_KEPT:
                    _HEADS.clear()
                _HEADS[head] = framing
        status, keep_alive, length, chunked = framing
        if 100 <= status < 200:
            self.interim += 1
            if self.interim > MAX_INTERIM:
                raise ReplyError("too many interim (1xx) replies")
            return None
        self.status, self.keep_alive = status, keep_alive
        if status in (204, 304):
            return True
        if chunked:
            self.state = _CHUNK_SIZE
            return False
        if length is not None:
            if length > self.limit:
                raise ReplyError(f"reply larger than {self.limit} bytes")
            if length == 0:
                return True
            self.remaining = length
            self.state = _LENGTH
            return False
        self.state = _UNTIL_CLOSE
        return False


# A node repeats its reply heads byte for byte (the Date changes once a second, the length
# rarely): what a head says about framing is a pure function of its bytes, so it is read
# once and remembered (256 heads of <= 1 KiB at most). Reading one cost ~10% of a send.
_HEADS: dict[bytes, tuple[int, bool, int | None, bool]] = {}
_HEADS_KEPT = 256


def _framing(head: bytes) -> tuple[int, bool, int | None, bool]:
    """(status, keep_alive, content length or None, chunked) of a reply head; ReplyError
    for a head that is not HTTP/1.x, malformed, or ambiguous about where the body ends."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    version = parts[0]
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(parts) < 2:
        raise ReplyError(f"not an HTTP/1.x reply: {lines[0][:60]!r}")
    code = parts[1]
    if len(code) != 3 or not code.isdigit():
        raise ReplyError(f"malformed status line {lines[0][:60]!r}")
    status = int(code)
    keep_alive = version == b"HTTP/1.1"
    length: int | None = None
    chunked = False
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise ReplyError(f"malformed header line {line[:60]!r}")
        name = name.lower()
        if name == b"content-length":
            value = value.strip()
            if not value.isdigit() or len(value) > 18:
                raise ReplyError(f"malformed Content-Length {value[:30]!r}")
            if length is not None and int(value) != length:
                raise ReplyError("conflicting Content-Length headers")
            length = int(value)
        elif name == b"transfer-encoding":
            if value.strip().lower() != b"chunked":
                raise ReplyError(f"unsupported Transfer-Encoding {value.strip()[:30]!r}")
            chunked = True
        elif name == b"connection":
            tokens = {t.strip() for t in value.lower().split(b",")}
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens:
                keep_alive = True
    if status == 101:
        raise ReplyError("the server switched protocols")
    if not 100 <= status < 200 and chunked and length is not None:
        # both framings: the classic request-smuggling ambiguity; trust neither
        raise ReplyError("reply has both Content-Length and Transfer-Encoding")
    return status, keep_alive, length, chunked


OnReply = Callable[[int, float, int | None, "bytes | str"], None]


class Connection(asyncio.Protocol):
    """One keep-alive connection; carries at most one request at a time."""

    __slots__ = ("pool", "transport", "parser", "k", "submitted", "deadline", "closed")

    def __init__(self, pool: Pool):
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = ReplyParser(pool.limit)
        self.k = -1                # the send outstanding on this connection, -1 when idle
        self.submitted = 0.0
        self.deadline = 0.0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, k: int, submitted: float, request: bytes) -> None:
        self.k, self.submitted = k, submitted
        self.deadline = submitted + self.pool.timeout
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        if self.k < 0:
            self.close()           # unsolicited bytes: nothing on this connection is trusted
            return
        try:
            done = self.parser.feed(data)
        except ReplyError as exc:
            self.fail(str(exc))
            return
        if done is None:
            return
        status, body, keep_alive, extra = done
        k, self.k = self.k, -1
        if extra and extra.strip(b"\r\n"):
            # a second answer behind the first (a pipelining trick): it could be taken for the
            # answer to the next request on this connection, so the connection goes, and this
            # send is refused with the reason
            self.close()
            self.pool.on_reply(k, self.submitted, None,
                               "reply followed by unsolicited bytes (a second answer?)")
            return
        if not keep_alive:
            self.close()
        self.pool.on_reply(k, self.submitted, status, body)
        if keep_alive and not self.closed:
            self.pool.release(self)

    def eof_received(self) -> bool:
        return False               # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        if self.k >= 0:
            k, self.k = self.k, -1
            try:
                status, body, _, _ = self.parser.eof()
            except ReplyError as error:
                reason = str(error) + (f" ({type(exc).__name__}: {exc})" if exc else "")
                self.closed = True
                self.pool.forget(self)
                self.pool.on_reply(k, self.submitted, None, reason[:200])
                return
            self.closed = True
            self.pool.forget(self)
            self.pool.on_reply(k, self.submitted, status, body)
            return
        self.closed = True
        self.pool.forget(self)

    def fail(self, reason: str) -> None:
        """End the outstanding send refused with `reason`; the connection goes."""
        k, self.k = self.k, -1
        self.close()
        if k >= 0:
            self.pool.on_reply(k, self.submitted, None, reason)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.abort()  # drop what a hostile server still has in flight


class Pool:
    """The connections to one node (one URL), at most `size` of them. A send finds an idle
    connection or waits in FIFO order for one; a new connection is opened only while more
    sends wait than connections are being opened, so an overload queues instead of opening
    sockets without bound (thousands once killed docker-proxy)."""

    def __init__(self, url: str, headers: dict[str, str], size: int, timeout: float, limit: int,
                 on_reply: OnReply):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"cannot send to {url!r}: only http:// and https:// URLs")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() \
            if parts.scheme == "https" else None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        lines = [f"POST {target} HTTP/1.1", f"Host: {host_header}"]
        for name, value in headers.items():
            if name.lower() in ("host", "content-length", "transfer-encoding", "connection"):
                continue
            lines.append(f"{name}: {value}")
        if any(not name or ":" in name or any(c in name + value for c in "\r\n\0")
               for name, value in headers.items()):
            raise ValueError("a request header has an empty name, a colon or a line break")
        self.prefix = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self.size = max(1, size)
        self.timeout = timeout
        self.limit = limit
        self.on_reply = on_reply
        self.idle: list[Connection] = []
        self.waiting: deque[tuple[int, float, bytes]] = deque()
        self.connections: set[Connection] = set()
        self.opening = 0
        self.peak = 0              # most connections open at once
        self.tasks: set[asyncio.Task] = set()

    def submit(self, k: int, submitted: float, body: bytes) -> None:
        request = b"%b%d\r\n\r\n%b" % (self.prefix, len(body), body)
        if self.idle:
            self.idle.pop().send(k, submitted, request)
            return
        self.waiting.append((k, submitted, request))
        if not self.connections and not self.opening:
            self.grow()

    def grow(self) -> None:
        """Open one more connection if sends wait that no opening connection will take.
        Called when a send finds no connection at all, when one is lost, and (by the
        sender, at most once a tick) while the oldest waiting send has waited GROW_AFTER:
        a burst drains through the connections there are rather than opening one a send."""
        if len(self.waiting) > self.opening and len(self.connections) + self.opening < self.size:
            self.opening += 1
            task = asyncio.get_running_loop().create_task(self._open())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def warm(self, count: int, within: float) -> None:
        """Open up to `count` connections before the start, so the first sends do not wait
        for handshakes; one that cannot be opened now is simply not there (sends open
        their own later and record what fails then)."""
        loop = asyncio.get_running_loop()

        async def one() -> None:
            try:
                _, conn = await loop.create_connection(lambda: Connection(self), self.host,
                                                       self.port, ssl=self.ssl)
            except Exception:
                return
            if not conn.closed:
                self.connections.add(conn)
                self.idle.append(conn)

        wanted = max(0, min(count, self.size) - len(self.connections))
        if wanted:
            tasks = [loop.create_task(one()) for _ in range(wanted)]
            _, late = await asyncio.wait(tasks, timeout=within)
            for task in late:
                task.cancel()
            self.peak = max(self.peak, len(self.connections))

    async def _open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: Connection(self), self.host, self.port, ssl=self.ssl),
                self.timeout)
        except Exception as exc:  # refused, unreachable, timed out, TLS...: the oldest waiter fails
            self.opening -= 1
            if self.waiting:
                k, submitted, _ = self.waiting.popleft()
                self.on_reply(k, submitted, None, f"cannot connect to {self.host}:{self.port}: "
                              f"{type(exc).__name__}: {exc}"[:200])
            self.grow()
            return
        self.opening -= 1
        self.connections.add(conn)
        self.peak = max(self.peak, len(self.connections))
        self.release(conn)

    def release(self, conn: Connection) -> None:
        """A connection is free: the oldest waiting send takes it, else it idles."""
        if self.waiting:
            k, submitted, request = self.waiting.popleft()
            conn.send(k, submitted, request)
        else:
            self.idle.append(conn)

    def forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if self.waiting:
            self.grow()

    def crowded(self, now: float) -> bool:
        return bool(self.waiting) and self.waiting[0][1] <= now - GROW_AFTER

    def expire(self, now: float, reason: str) -> None:
        """Sends past their deadline end refused: on a connection (which is closed: its
        late answer must not be taken for the next request's) or still waiting for one."""
        for conn in [c for c in self.connections if c.k >= 0 and c.deadline <= now]:
            conn.fail(reason)
        waiting = self.waiting
        while waiting and waiting[0][1] + self.timeout <= now:
            k, submitted, _ = waiting.popleft()
            self.on_reply(k, submitted, None, reason)

    def abandon(self, reason: str) -> None:
        """The end: every send still outstanding ends refused, every connection closes."""
        while self.waiting:
            k, submitted, _ = self.waiting.popleft()
            self.on_reply(k, submitted, None, reason)
        for conn in list(self.connections):
            conn.fail(reason)
        for task in list(self.tasks):
            task.cancel()

    def close(self) -> None:
        for conn in list(self.connections):
            conn.close()
