"""What a security probe gets to work with: the running nodes, the family's adapter, the
container runtime, its settings and time budget, and small tools that record every request
and answer exactly (clipped, printable) so each Attempt can be quoted and replayed.

A probe module (harness/security/probes/<id>.py) writes
    async def run(target: ProbeTarget) -> list[Attempt]
and builds each Attempt with `target.attempt(...)`. Everything a node answers is hostile:
replies are read bounded (`limit`), and `clip` turns bytes into printable text.
"""

from __future__ import annotations

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
        """The body as JSON, or None if it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None

    def text(self) -> str:
        """The answer as a tester reads it: status line, then the clipped body."""
        if self.status is None:
            return f"(no HTTP answer: {self.error})"
        head = f"HTTP {self.status}"
        allow = self.headers.get("Access-Control-Allow-Origin")
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
                     timeout: float = 10.0) -> tuple[bytes, Reply]:
        """The same call over a websocket (the reply's `status` is 101 when it was answered)."""
        import aiohttp

        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": [] if params is None else params}, separators=(",", ":")).encode()
        try:
            async with self.session.ws_connect(node.url(port, "ws"), timeout=timeout,
                                               max_msg_size=REPLY_LIMIT) as ws:
                await ws.send_str(body.decode())
                message = await ws.receive(timeout=timeout)
                data = message.data if isinstance(message.data, (bytes, str)) else b""
                return body, Reply(101, data.encode() if isinstance(data, str) else data)
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
        pid = self.runtime.pid(node)
        if pid <= 0:
            return []
        found: set[tuple[str, int]] = set()
        for proto in ("tcp", "tcp6", "udp", "udp6"):
            try:
                lines = Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if len(fields) < 4:
                    continue
                local, state = fields[1], fields[3]
                # tcp: 0A is LISTEN; udp: 07 (unconnected) sockets are the bound ones
                if (proto.startswith("tcp") and state == "0A") or (proto.startswith("udp") and state == "07"):
                    found.add((proto, int(local.rsplit(":", 1)[1], 16)))
        return sorted(found)

