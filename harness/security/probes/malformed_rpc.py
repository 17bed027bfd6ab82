"""Malformed RPC (issue 11, probe 4): garbage at every node's RPC port, bounded in count and time.

Per node, categories of requests (harness/security/probes/_malformed_cases.py draws them from
the seed): invalid JSON, wrong-typed method/params/id/jsonrpc, unknown methods, non-UTF-8
bodies, CometBFT's URI routes with unparseable arguments, an empty batch, a huge batch,
deep nesting, an oversized body, and half-sent requests held open on raw sockets.

Judging one request: an error (HTTP 4xx/5xx or a JSON-RPC error object) or a closed
connection passes; a success result to strict garbage (nothing in it names a method to run)
fails with severity low (not a crash, but a server that runs invalid JSON is wrong); a
result to merely odd input (a wrong-typed id, a valid request followed by junk) is noted,
not failed; no answer within the timeout fails with severity medium (a hung handler). One
Attempt per category and node carries the counts and the first failing request and answer.
Survival (container running, restart count, new blocks) is the security stage's to judge;
this probe only stops early, and says so, when a node refuses connections N times in a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from harness.errors import InputError
from harness.model import Attempt, Node
from harness.security.probe import NotApplicable, ProbeTarget, Reply
from harness.security.probes import _malformed_cases as cases

ID = "malformed_rpc"
ORDER = 40
TITLE = {"en": "Malformed RPC: invalid JSON, wrong types, unknown methods, huge and empty batches, "
               "deep nesting, oversized, non-UTF-8 and half-sent requests",
         "zh": "畸形 RPC 请求：非法 JSON、错误类型、未知方法、超大与空批量、深度嵌套、超大请求体、"
               "非 UTF-8 与半发送请求"}
SEVERITY = "high"
DEFAULTS: dict[str, Any] = {
    "cases": 200,                 # generated requests per node, shared among the generated categories
    "seconds": 60,                # the probe's own bound (the stage's budget may be shorter)
    "seed": 11,                   # same seed, same requests
    "timeout": 10,                # seconds a request may go unanswered before it counts as hung
    "nodes": 0,                   # how many nodes to aim at, from node0 (0: every node)
    "batch_entries": 10000,       # the huge batch (0: not sent)
    "nesting_depth": 100000,      # levels of '[' / '{' in the deep-nesting cases
    "oversized_mib": 16,          # the oversized body (0: not sent)
    "half_sent_connections": 4,   # raw connections left half-sent (0: none)
    "half_sent_hold": 3,          # seconds they are held open
    "stop_after_refused": 5,      # refused connections in a row that end the node's fuzzing
}
# (minimum, maximum, integer?) of each setting
_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "cases": (0, 20000, True), "seconds": (1, 3600, False), "seed": (0, 2**63 - 1, True),
    "timeout": (0.5, 120, False), "nodes": (0, 1000, True), "batch_entries": (0, 1_000_000, True),
    "nesting_depth": (1, 10_000_000, True), "oversized_mib": (0, 64, True),
    "half_sent_connections": (0, 64, True), "half_sent_hold": (0, 60, False),
    "stop_after_refused": (1, 1000, True),
}
SETTINGS = {name: {"type": "integer" if integer else "number", "minimum": low, "maximum": high}
            for name, (low, high, integer) in _BOUNDS.items()}

# One Attempt's outcomes per request.
ERROR, CLOSED, OTHER, LENIENT, RESULT, HUNG, REFUSED, CUT = (
    "error", "closed", "other", "lenient", "result", "hung", "refused", "cut")
_SAID = {ERROR: "answered an error", CLOSED: "closed the connection",
         OTHER: "answered without a result or an error", LENIENT: "answered a result to input a "
         "server may run (noted, not failed)", RESULT: "answered a success result to garbage",
         HUNG: "went unanswered within the timeout", REFUSED: "found the connection refused",
         CUT: "were cut short by the probe's time budget"}
MIN_WAIT = 0.5   # seconds: with less time left a request is not sent (it could not be judged)

TITLES = {
    "invalid_json": "Invalid JSON is answered with an error or a closed connection, never a result, "
                    "never left hanging",
    "wrong_types": "Requests whose method, params, id or jsonrpc has the wrong type are answered with "
                   "an error, never left hanging",
    "unknown_method": "Unknown method names are answered with an error, never a result",
    "non_utf8": "Bodies that are not UTF-8 are answered with an error, never left hanging",
    "uri_args": "URI routes with unparseable arguments answer an error, never a result",
    "empty_batch": "An empty batch [] is answered or refused, not left hanging",
    "deep_nesting": "Deeply nested JSON is refused or answered within the timeout (no stack exhaustion)",
    "huge_batch": "A huge batch is answered or refused within the timeout",
    "oversized_body": "An oversized body is refused or answered within the timeout",
    "half_sent": "Half-sent requests held open do not stop the node from serving other clients",
    "baseline": "A valid call is answered with a result (else malformed requests cannot be judged)",
    "node_stopped": "The node keeps accepting connections while it is fed malformed requests",
}


@dataclass(frozen=True)
class Settings:
    cases: int
    seconds: float
    seed: int
    timeout: float
    nodes: int
    batch_entries: int
    nesting_depth: int
    oversized_mib: int
    half_sent_connections: int
    half_sent_hold: float
    stop_after_refused: int


def settings_from(raw: dict[str, Any]) -> Settings:
    """The probe's settings (DEFAULTS under the suite's), each checked against its bounds."""
    values: dict[str, Any] = {}
    for name, (low, high, integer) in _BOUNDS.items():
        value = raw.get(name, DEFAULTS[name])
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high \
                or (integer and value != int(value)):
            kind = "an integer" if integer else "a number"
            raise InputError(None, f"security.settings.{ID}.{name}",
                             f"expected {kind} from {low:g} to {high:g}, got {value!r}")
        values[name] = int(value) if integer else float(value)
    return Settings(**values)


def classify(reply: Reply, strict: bool) -> str:
    """One answer's outcome (see the module docstring)."""
    if reply.status is None:
        kind = (reply.error or "").split(":", 1)[0]
        if "Timeout" in kind:
            return HUNG
        if kind.startswith(("ClientConnector", "ConnectionRefused")):
            return REFUSED
        return CLOSED
    if reply.status >= 400:
        return ERROR
    doc = reply.json()
    answers = doc if isinstance(doc, list) else [doc]
    if any(isinstance(a, dict) and "result" in a and not a.get("error") for a in answers):
        return RESULT if strict else LENIENT
    if doc is not None and answers and all(isinstance(a, dict) and a.get("error") for a in answers):
        return ERROR
    return OTHER


@dataclass
class Tally:
    """One category's requests on one node: counts and the examples a tester quotes."""

    category: str
    counts: dict[str, int] = field(default_factory=dict)
    first: tuple[cases.Request, Reply] | None = None
    failing: tuple[cases.Request, Reply, str] | None = None   # first hung, else first result
    lenient: tuple[cases.Request, Reply] | None = None
    unsent: int = 0
    unsent_why: str = ""

    def add(self, request: cases.Request, reply: Reply, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if self.first is None:
            self.first = (request, reply)
        if outcome == HUNG and (self.failing is None or self.failing[2] != HUNG):
            self.failing = (request, reply, outcome)
        elif outcome == RESULT and self.failing is None:
            self.failing = (request, reply, outcome)
        elif outcome == LENIENT and self.lenient is None:
            self.lenient = (request, reply)


class NodeFuzz:
    """The probe's run against one node: its requests, the refused streak, its time share."""

    def __init__(self, target: ProbeTarget, node: Node, family: cases.Family, cfg: Settings,
                 end: float):
        self.target, self.node, self.family, self.cfg, self.end = target, node, family, cfg, end
        raw = getattr(target.adapter, "submit_headers", None) or {}
        # Bitcoin needs the run's credentials (else everything is a 401); nothing else is sent.
        self.headers = {str(k): str(v) for k, v in dict(raw).items()
                        if "\r" not in f"{k}{v}" and "\n" not in f"{k}{v}"}
        self.refused = 0
        self.before_refusal: tuple[cases.Request, Reply] | None = None
        self.last: tuple[cases.Request, Reply] | None = None
        self.stopped = False

    def left(self) -> float:
        return self.end - time.monotonic()

    async def send(self, request: cases.Request) -> tuple[Reply, str]:
        wait = min(self.cfg.timeout, self.left())
        if wait < MIN_WAIT:
            return Reply(None, error="not sent: the probe's time budget ended"), CUT
        reply = await self.target.http(self.node.url("rpc") + request.path, request.body,
                                       method=request.method, headers=self.headers, timeout=wait)
        outcome = classify(reply, request.strict)
        if outcome == HUNG and wait < self.cfg.timeout:
            outcome = CUT       # it had less than the full timeout: not judged a hang
        self._count_refusal(request, reply, outcome)
        return reply, outcome

    def _count_refusal(self, request: cases.Request, reply: Reply, outcome: str) -> None:
        if outcome == REFUSED:
            if self.refused == 0:
                self.before_refusal = self.last
            self.refused += 1
            if self.refused >= self.cfg.stop_after_refused:
                self.stopped = True
        elif outcome != CUT:
            self.refused = 0
            self.last = (request, reply)

    async def category(self, name: str, requests: list[cases.Request]) -> Tally:
        tally = Tally(name)
        for i, request in enumerate(requests):
            why = ""
            if self.stopped:
                why = "the node had stopped accepting connections"
            elif tally.counts.get(HUNG):
                # One hang is the finding; each further one would cost the whole timeout.
                why = "a request of it went unanswered"
            else:
                reply, outcome = await self.send(request)
                if outcome != CUT:
                    tally.add(request, reply, outcome)
                    continue
                why = "the probe's time budget ended"
            tally.unsent, tally.unsent_why = len(requests) - i, why
            break
        return tally

    def attempt(self, tally: Tally) -> Attempt:
        counts = tally.counts
        judged = sum(n for outcome, n in counts.items() if outcome not in (REFUSED, CUT))
        parts = [f"{counts[o]} {_SAID[o]}" for o in (ERROR, CLOSED, OTHER, LENIENT, RESULT, HUNG, REFUSED)
                 if counts.get(o)]
        sent = sum(counts.values())
        why = f"{sent} request{'s' if sent != 1 else ''}: " + ("; ".join(parts) or "none answered")
        if tally.unsent:
            why += f"; {tally.unsent} not sent ({tally.unsent_why})"
        severity = "medium"     # what a fail of a category would mean at worst (a hung handler)
        if counts.get(HUNG):
            passed, severity = False, "medium"
        elif counts.get(RESULT):
            passed, severity = False, "low"
        else:
            passed = True if judged else None
        shown, label = tally.first, "first"
        if tally.failing is not None:
            req, reply, outcome = tally.failing
            shown = (req, reply)
            label = "first unanswered" if outcome == HUNG else "first answered with a result"
        elif tally.lenient is not None:
            shown, label = tally.lenient, "noted"
        request: bytes | str = ""
        answer = ""
        if shown is not None:
            req, reply = shown
            request = req.body if req.body is not None else req.text()
            answer = reply.text()
            why += f". Shown: the {label} request ({req.note})"
        if not judged:
            why += ". Nothing could be judged"
        return self.target.attempt(f"{tally.category}", self.node, passed, TITLES[tally.category],
                                   why + ".", request, answer, severity=severity)

    def unsent(self, name: str, count: int, why: str) -> Tally:
        return Tally(name, unsent=count, unsent_why=why)


# -- half-sent requests on raw sockets ---------------------------------------------------------

def _parse_http(data: bytes) -> Reply:
    """A raw HTTP answer (as much as arrived) as a Reply; chunked bodies are de-chunked."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return Reply(None, body=data, error="not an HTTP answer")
    headers = {}
    for line in lines[1:]:
        key, _, val = line.partition(b":")
        headers[key.decode("latin-1").strip().lower()] = val.decode("latin-1").strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out, rest = b"", body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            try:
                size = int(size_line.split(b";")[0], 16)
            except ValueError:
                break
            if size == 0:
                break
            out, rest = out + rest[:size], rest[size + 2:]
        body = out
    return Reply(status, body, headers)


async def _watch(reader: asyncio.StreamReader, seconds: float) -> tuple[bytes, float | None]:
    """What the node sends on a held connection within `seconds`, and when it closed it."""
    start, got = time.monotonic(), b""
    while (left := start + seconds - time.monotonic()) > 0 and len(got) < 65536:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except TimeoutError:
            break
        except OSError:
            return got, time.monotonic() - start
        if not chunk:
            return got, time.monotonic() - start
        got += chunk
    return got, None


def _redacted(raw: bytes) -> str:
    """The raw request as text, without the run's credentials."""
    lines = raw.decode("utf-8", "replace").split("\r\n")
    return "\r\n".join(f"{line.split(':', 1)[0]}: <redacted>" if line.lower().startswith("authorization:")
                       else line for line in lines)


async def half_sent(fuzz: NodeFuzz) -> Attempt:
    cfg, node, title = fuzz.cfg, fuzz.node, TITLES["half_sent"]
    hold = min(cfg.half_sent_hold, max(0.0, fuzz.left() - 1.0))
    if fuzz.left() < MIN_WAIT + 1.0:
        return fuzz.attempt(fuzz.unsent("half_sent", cfg.half_sent_connections,
                                        "the probe's time budget ended"))
    port = node.host_ports["rpc"]
    valid = cases.dumps({"jsonrpc": "2.0", "id": 1, "method": fuzz.family.read, "params": []})
    lines = ["POST / HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in fuzz.headers.items() if k.lower() not in ("content-type", "host")]
    lines.append(f"Content-Length: {len(valid)}")
    sent_part = len(valid) // 2
    partials = [("\r\n".join(lines) + "\r\n\r\n").encode() + valid[:sent_part],   # body cut in half
                ("\r\n".join(lines[:-1]) + "\r\nX-Bctest-Slow: ").encode()]      # headers never end
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    watchers: list[asyncio.Task] = []
    failed_opens: list[str] = []
    try:
        for i in range(cfg.half_sent_connections):
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port),
                                                        min(cfg.timeout, max(MIN_WAIT, fuzz.left())))
            except (OSError, TimeoutError) as exc:
                failed_opens.append(f"{type(exc).__name__}: {exc}".strip(": "))
                continue
            conns.append((reader, writer))
            writer.write(partials[i % 2])
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.drain(), MIN_WAIT * 4)
        watchers = [asyncio.create_task(_watch(reader, hold)) for reader, _ in conns]
        await asyncio.sleep(min(1.0, hold / 2))
        wait = min(cfg.timeout, max(0.0, fuzz.left()))
        started = time.monotonic()
        normal = cases.Request("half_sent", valid, False, "a valid request while the others are held")
        reply = await fuzz.target.http(node.url("rpc"), valid, headers=fuzz.headers, timeout=max(wait, 0.1))
        served_in = time.monotonic() - started
        outcome = classify(reply, strict=False)
        if outcome == HUNG and wait < cfg.timeout:
            outcome = CUT
        seen = await asyncio.gather(*watchers)
    finally:
        for task in watchers:
            task.cancel()
        for _, writer in conns:
            writer.close()
        for _, writer in conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
    fuzz._count_refusal(normal, reply, outcome)

    answered, closed, held, results = [], [], 0, []
    for data, closed_after in seen:
        if data:
            got = _parse_http(data)
            answered.append(str(got.status) if got.status is not None else "garbled")
            if classify(got, strict=True) == RESULT:
                results.append(got)
        elif closed_after is not None:
            closed.append(f"{closed_after:.1f} s")
        else:
            held += 1
    about = [f"{len(conns)} connections held for {hold:g} s (half with the body cut at {sent_part} of "
             f"the announced {len(valid)} bytes, half with unfinished headers)"]
    if failed_opens:
        about.append(f"{len(failed_opens)} could not be opened ({failed_opens[0]})")
    if answered:
        about.append(f"the node answered {len(answered)} (HTTP {', '.join(answered)})")
    if closed:
        about.append(f"closed {len(closed)} (after {', '.join(closed)})")
    if held:
        about.append(f"left {held} open until the probe closed them")
    severity = "medium"
    if outcome in (ERROR, LENIENT, OTHER, RESULT):
        passed = True
        about.append(f"a valid request sent during the hold was answered (HTTP {reply.status}) "
                     f"in {served_in * 1000:.0f} ms")
    elif outcome == CUT:
        passed = None
        about.append("the probe's time budget ended before a valid request sent during the hold was answered")
    elif outcome == REFUSED:   # the node is gone: survival (the stage) judges that, not this case
        passed = None
        about.append(f"a valid request sent during the hold found the connection refused ({reply.error})")
    else:
        passed, severity = False, "medium"
        about.append(f"a valid request sent during the hold {_SAID[outcome]} ({reply.error})")
    if results and passed is not False:
        passed, severity = False, "low"
        about.append("a half-sent request was answered with a success result")
    request = (_redacted(partials[0]) + f"\n\n(then held open {hold:g} s; {cfg.half_sent_connections} "
               "connections alternate this with headers that never end)")
    answer = f"valid request during the hold: {reply.text()}"
    if results:
        answer = f"half-sent request: {results[0].text()}\n\n{answer}"
    return fuzz.target.attempt("half_sent", node, passed, title, "; ".join(about) + ".", request, answer,
                               severity=severity)


# -- the probe ---------------------------------------------------------------------------------

async def fuzz_node(target: ProbeTarget, node: Node, family: cases.Family, cfg: Settings,
                    end: float) -> list[Attempt]:
    fuzz = NodeFuzz(target, node, family, cfg, end)
    # A valid call first: if even that gets no result (credentials refused, node down), every
    # error to garbage would be an error to everything, and the probe could judge nothing.
    control = cases.Request("baseline", cases.dumps({"jsonrpc": "2.0", "id": 1, "method": family.read,
                                                       "params": []}), False, f"a valid {family.read} call")
    reply, outcome = await fuzz.send(control)
    if outcome != LENIENT:
        return [target.attempt("baseline", node, None, TITLES["baseline"],
                               f"a valid {family.read} call {_SAID.get(outcome, outcome)} instead of a "
                               "result, so errors to malformed requests would prove nothing; the node was "
                               "not fuzzed.", control.body or b"", reply.text(), severity="medium")]
    plan: list[tuple[str, list[cases.Request]]] = list(cases.generated(family, cfg.seed, cfg.cases).items())
    plan.append(("empty_batch", [cases.empty_batch()]))
    plan.append(("deep_nesting", list(cases.deep_nesting(family, cfg.nesting_depth))))
    if cfg.batch_entries:
        plan.append(("huge_batch", [cases.huge_batch(family, cfg.batch_entries)]))
    if cfg.oversized_mib:
        plan.append(("oversized_body", [cases.oversized(cfg.oversized_mib)]))
    attempts: list[Attempt] = []
    for name, requests in plan:
        if not requests:
            continue
        if fuzz.stopped:
            break
        attempts.append(fuzz.attempt(await fuzz.category(name, requests)))
    if cfg.half_sent_connections and not fuzz.stopped:
        attempts.append(await half_sent(fuzz))
    if fuzz.stopped:
        skipped = [name for name, _ in plan if name not in {a.case for a in attempts}]
        if cfg.half_sent_connections and "half_sent" not in {a.case for a in attempts}:
            skipped.append("half_sent")
        shown = fuzz.before_refusal
        why = (f"the node refused {fuzz.refused} connections in a row, so the probe stopped fuzzing it"
               + (f" (not tried: {', '.join(skipped)})" if skipped else ""))
        if shown is not None:
            why += f"; the last request it answered before that: {shown[0].category} ({shown[0].note})"
        target.say(f"{ID}: {node.name} stopped accepting connections; the probe stopped fuzzing it")
        attempts.append(target.attempt(
            "node_stopped", node, False, TITLES["node_stopped"], why + ".",
            (shown[0].body if shown[0].body is not None else shown[0].text()) if shown else "",
            shown[1].text() if shown else ""))
    return attempts


async def run(target: ProbeTarget) -> list[Attempt]:
    family = cases.FAMILIES.get(target.family)
    if family is None:
        raise NotApplicable(f"no {ID} cases for the {target.family} family")
    cfg = settings_from(target.settings or {})
    nodes = [n for n in target.nodes if "rpc" in n.host_ports]
    if not nodes:
        raise NotApplicable("no node publishes an 'rpc' port to aim malformed requests at")
    if cfg.nodes:
        nodes = nodes[:cfg.nodes]
    end = min(target.deadline, time.monotonic() + cfg.seconds)
    attempts: list[Attempt] = []
    for i, node in enumerate(nodes):
        share = (end - time.monotonic()) / (len(nodes) - i)   # a hanging node cannot eat the others' time
        attempts += await fuzz_node(target, node, family, cfg, time.monotonic() + share)
    return attempts
