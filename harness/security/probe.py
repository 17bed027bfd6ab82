"""What a security probe gets to work with: the running nodes, the family's adapter, the
container runtime, its settings and time budget, and small tools that record every request
and answer exactly (clipped, printable) so each Attempt can be quoted and replayed.

A probe module (harness/security/probes/<id>.py) writes
    async def run(target: ProbeTarget) -> list[Attempt]
and builds each Attempt with `target.attempt(...)`. Everything a node answers is hostile:
replies are read bounded (`limit`), and `clip` turns bytes into printable text.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.httpread import read_bounded
from harness.model import Attempt, Node

CLIP = 2048            # characters of a request or answer kept in an Attempt
REPLY_LIMIT = 1 << 20  # bytes of a node's reply read into memory


MAX_DEPTH = 256       # JSON nesting a probe parses; deeper answers are "not JSON"


def nesting_depth(data: bytes | str) -> int:
    """How deep brackets nest in a JSON text (strings skipped), without parsing it."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:            # backslash
                escaped = True
            elif byte == 0x22:            # closing quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):        # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):        # ] }
            depth -= 1
    return deepest


class NotApplicable(Exception):
    """Raised by a probe whose attack does not apply to this chain; the text says why."""


def clip(data: bytes | str | None, limit: int = CLIP) -> str:
    """Printable text of a request or answer: UTF-8 (invalid bytes replaced), control
    characters other than newline and tab shown as \\xNN, cut at `limit` characters with the
    full size said."""
    if data is None:
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    size = len(data)
    shown = "".join(ch if ch in "\n\t" or (ch.isprintable() and ch != "\x7f") else f"\\x{ord(ch):02x}"
                    if ord(ch) < 256 else "\ufffd" for ch in text[:limit])
    if len(text) > limit:
        shown += f" … ({size} {'bytes' if isinstance(data, bytes) else 'characters'} in all)"
    return shown


@dataclass
class Reply:
    """A node's answer to one request (or why there was none)."""

    status: int | None                  # HTTP status; None: no HTTP answer (see error)
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None            # connection refused, reset, timeout ...
    truncated: bool = False             # the body was longer than the read limit

    def json(self) -> Any:
        """The body as JSON, or None if it is not JSON (or nested deeper than MAX_DEPTH:
        the C decoder recurses on the C stack, and a process whose recursion limit was
        raised, e.g. under hypothesis, can overflow it on `[[[[...` instead of raising)."""
        if nesting_depth(self.body) > MAX_DEPTH:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None

    def header(self, name: str) -> str | None:
        """A reply header, by name in any case."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def text(self) -> str:
        """The answer as a tester reads it: status line, then the clipped body."""
        if self.status is None:
            return f"(no HTTP answer: {self.error})"
        head = f"HTTP {self.status}"
        allow = self.header("Access-Control-Allow-Origin")
        if allow is not None:
            head += f"\nAccess-Control-Allow-Origin: {clip(allow, 200)}"
        return f"{head}\n\n{clip(self.body)}"

    def rpc_error(self) -> str | None:
        """A JSON-RPC answer's error message (None if it has none)."""
        reply = self.json()
        if isinstance(reply, dict) and reply.get("error"):
            error = reply["error"]
            return clip(error.get("message") if isinstance(error, dict) else json.dumps(error), 300)
        return None

    def rpc_result(self) -> tuple[bool, Any]:
        """(True, result) when the JSON-RPC answer carries a result and no error."""
        reply = self.json()
        if isinstance(reply, dict) and "result" in reply and not reply.get("error"):
            return True, reply["result"]
        return False, None


@dataclass(frozen=True)
class NodeState:
    running: bool
    restarts: int
    exit_code: int | None
    started_at: str = ""


@dataclass(frozen=True)
class Listener:
    """A socket listening in a node's network namespace."""

    proto: str      # tcp | tcp6 | udp | udp6
    address: str    # the local address it is bound to ("0.0.0.0", "127.0.0.1", "::" ...)
    port: int

    @property
    def loopback(self) -> bool:
        """Reachable only from inside the namespace (127.0.0.0/8, ::1, ::ffff:127.x)."""
        address = ipaddress.ip_address(self.address)
        mapped = getattr(address, "ipv4_mapped", None)
        return (mapped or address).is_loopback


def proc_net_listeners(proto: str, text: str) -> list[Listener]:
    """The listening sockets of one /proc/<pid>/net/<proto> table. Addresses there are hex
    in host (little-endian) byte order per 32-bit word."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        local, state = fields[1], fields[3]
        # tcp: 0A is LISTEN; udp: 07 (unconnected) sockets are the bound ones
        if not ((proto.startswith("tcp") and state == "0A") or (proto.startswith("udp") and state == "07")):
            continue
        try:
            hex_address, hex_port = local.rsplit(":", 1)
            raw = bytes.fromhex(hex_address)
            if len(raw) not in (4, 16):
                continue
            address = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.append(Listener(proto, str(ipaddress.ip_address(address)), int(hex_port, 16)))
        except ValueError:
            continue
    return found


@dataclass
class ProbeTarget:
    """One probe's view of the run. `runtime` is the DockerRuntime, `adapter` the family's
    adapter instance (with the run's keys), `settings` the probe's DEFAULTS with the
    suite's overrides, `deadline` the monotonic time the probe must finish by."""

    probe: str
    severity: str
    family: str
    pack: Any                            # harness.chainpack.ChainPack
    nodes: list[Node]
    adapter: Any
    runtime: Any
    settings: dict[str, Any]
    deadline: float
    run_dir: Path
    say: Callable[[str], None] = print
    session: Any = None                  # aiohttp.ClientSession, opened by the stage
    suite_rate: float | None = None      # the suite's load rate (tx/s), for probes that send load

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def attempt(self, case: str, node: Node | str, passed: bool | None, title: str, why: str = "",
                request: bytes | str = "", answer: bytes | str = "", severity: str | None = None
                ) -> Attempt:
        """An Attempt of this probe; `passed` None means unknown (could not be judged)."""
        verdict = "unknown" if passed is None else "pass" if passed else "fail"
        return Attempt(probe=self.probe, case=case, node=node if isinstance(node, str) else node.name,
                       verdict=verdict, severity=severity or self.severity, title=title, why=why,
                       request=clip(request), answer=clip(answer))

    # -- talking to a node -------------------------------------------------------------------

    async def http(self, url: str, body: bytes | None = None, *, method: str = "POST",
                   headers: dict[str, str] | None = None, timeout: float = 10.0,
                   limit: int = REPLY_LIMIT) -> Reply:
        """One HTTP request to a node's published port (127.0.0.1 only), answered or not."""
        import aiohttp

        if not url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:")):
            raise ValueError(f"probes talk to nodes on 127.0.0.1 only, not {url}")
        sent_headers = {"Content-Type": "application/json", **(headers or {})} if body is not None \
            else dict(headers or {})
        try:
            async with self.session.request(method, url, data=body, headers=sent_headers,
                                            timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                data = await read_bounded(resp.content, limit)
                return Reply(resp.status, data[:limit], dict(resp.headers), truncated=len(data) > limit)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Reply(None, error=f"{type(exc).__name__}: {exc}".strip(": "))

    async def rpc(self, node: Node, method: str, params: Any = None, *, port: str = "rpc",
                  headers: dict[str, str] | None = None, path: str = "") -> tuple[bytes, Reply]:
        """A JSON-RPC 2.0 call over HTTP: (the exact body sent, the reply)."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": [] if params is None else params}, separators=(",", ":")).encode()
        return body, await self.http(node.url(port) + path, body, headers=headers)

    async def ws_rpc(self, node: Node, method: str, params: Any = None, *, port: str = "ws",
                     timeout: float = 10.0, path: str = "", headers: dict[str, str] | None = None
                     ) -> tuple[bytes, Reply]:
        """The same call over a websocket (the reply's `status` is 101 when it was answered)."""
        import aiohttp

        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": [] if params is None else params}, separators=(",", ":")).encode()
        async def exchange() -> Reply:
            async with self.session.ws_connect(node.url(port, "ws") + path,
                                               timeout=aiohttp.ClientWSTimeout(ws_close=timeout),
                                               max_msg_size=REPLY_LIMIT, headers=headers) as ws:
                await ws.send_str(body.decode())
                message = await ws.receive(timeout=timeout)
                data = message.data if isinstance(message.data, (bytes, str)) else b""
                return Reply(101, data.encode() if isinstance(data, str) else data)

        try:   # bounded as a whole: a node may accept the connection and never upgrade it
            return body, await asyncio.wait_for(exchange(), 2 * timeout)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return body, Reply(None, error=f"{type(exc).__name__}: {exc}".strip(": "))

    # -- the containers ------------------------------------------------------------------------

    def node_state(self, node: Node) -> NodeState:
        """Whether the node's container runs, and how often the engine restarted it."""
        try:
            attrs = self.runtime.container(node).attrs
        except Exception:   # removed or unreadable: it is not running
            return NodeState(False, 0, -1)
        state = attrs.get("State") or {}
        return NodeState(bool(state.get("Running")), int(attrs.get("RestartCount") or 0),
                         None if state.get("Running") else state.get("ExitCode"),
                         str(state.get("StartedAt") or ""))

    def listening(self, node: Node) -> list[tuple[str, int]]:
        """Every socket listening in the node's network namespace: (tcp|tcp6|udp|udp6, port),
        read from /proc/<pid>/net of the node's main process (no tool inside the image)."""
        return sorted({(found.proto, found.port) for found in self.listeners(node) or []})

    def listeners(self, node: Node) -> list[Listener] | None:
        """The same sockets with the address each is bound to (a loopback-only listener is
        unreachable from outside the container); None when /proc/<pid>/net could not be read
        (the node does not run, or the harness cannot see its processes)."""
        try:
            pid = self.runtime.pid(node)
        except Exception:   # the container is gone or the engine did not answer
            return None
        if pid <= 0:
            return None
        found: set[Listener] = set()
        read = False
        for proto in ("tcp", "tcp6", "udp", "udp6"):
            try:
                text = Path(f"/proc/{pid}/net/{proto}").read_text()
            except OSError:
                continue
            read = True
            found.update(proc_net_listeners(proto, text))
        return sorted(found, key=lambda item: (item.proto, item.port, item.address)) if read else None
