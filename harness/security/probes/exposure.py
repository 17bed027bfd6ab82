"""Interface exposure (issue 11, probe 1): what a stranger who reaches the node's published
ports can do. It lists what the node serves (EVM `rpc_modules`, CometBFT's route list,
bitcoind `help`), calls the privileged methods over HTTP and websocket, checks that no
unlocked account signs for the caller, that browsers of other origins are not let in (CORS)
and that a foreign Host header is refused (DNS rebinding), and compares every socket
listening in the node's network namespace with the ports its pack declares.

Every call is harmless by construction: read-only methods where the namespace has one, or
an argument no node can decode (the method is reached, it answers "invalid params", and
nothing runs). A node that refuses a method answers "method not found / not available" or
an HTTP 4xx; an answer with a result, or an argument error, shows the method is reachable.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from harness.model import Attempt, Node
from harness.security.probe import Listener, NotApplicable, ProbeTarget, Reply, clip

ID = "exposure"
ORDER = 10
TITLE = {"en": "Interface exposure: privileged RPC methods and routes, unlocked accounts, CORS and "
               "Host headers, undeclared listening sockets",
         "zh": "接口暴露：特权 RPC 方法与路由、已解锁账户、CORS 与 Host 头、未声明的监听端口"}
SEVERITY = "high"
DEFAULTS: dict[str, Any] = {"timeout": 10.0}
SETTINGS: dict[str, Any] = {"timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 120,
                                        "description": "seconds to wait for each answer"}}

# Docker's embedded DNS server listens on this address, on random ports, inside the
# namespace of every container on a user-defined network (the run network is one).
DOCKER_DNS = "127.0.0.11"
EVIL_ORIGIN = "https://evil.example"
EVIL_HOST = "evil.example"
ZERO_ADDRESS = "0x" + "00" * 20
# An argument of the wrong type: a node decodes arguments before it runs a method, so a
# reachable method answers "invalid params" and does nothing (and a lenient node that read
# it as 0 would still do nothing harmful with it).
UNDECODABLE = "bctest-probe-not-a-number"

# One representative per privileged EVM namespace. Never anything that changes the chain
# under test (anvil_setBalance, evm_mine, evm_revert, evm_snapshot, miner_stop ...): the
# safety, durability and final-read checks judge the chain after this probe.
EVM_PRIVILEGED: list[tuple[str, list[Any]]] = [
    ("admin_nodeInfo", []),                  # read-only: the node's enode and ports
    ("personal_listAccounts", []),           # read-only: the keystore's accounts
    # a traced simulation of an empty call: nothing is written
    ("debug_traceCall", [{"to": ZERO_ADDRESS, "data": "0x"}, "latest"]),
    # miner_* has no read-only method (setGasPrice, setExtra, start, stop): an undecodable
    # argument reaches the method and runs nothing
    ("miner_setGasPrice", [UNDECODABLE]),
    ("txpool_status", []),                   # read-only: pending and queued counts
    ("anvil_nodeInfo", []),                  # read-only: the dev node's settings
    # evm_* has no read-only method either (snapshot keeps state, revert/mine change it)
    ("evm_increaseTime", [UNDECODABLE]),
    ("hardhat_metadata", []),                # read-only: the dev node's metadata
]

# CometBFT serves these only with rpc.unsafe = true. The arguments are chosen so a node that
# serves them still does nothing: an address without a node ID fails to parse before anything
# is dialed (CometBFT answers "does not contain ID"), and an extra positional argument to
# unsafe_flush_mempool is refused before the mempool is touched ("expected 0 parameters";
# named parameters would be ignored and the mempool flushed).
COMET_NOT_AN_ADDRESS = "bctest-probe-not-an-address"
COMET_UNSAFE: list[tuple[str, Any]] = [
    ("dial_seeds", {"seeds": [COMET_NOT_AN_ADDRESS]}),
    ("dial_peers", {"peers": [COMET_NOT_AN_ADDRESS], "persistent": False, "unconditional": False,
                    "private": False}),
    ("unsafe_flush_mempool", ["bctest-probe"]),
]

# The control call: a method no node serves, with the same arguments.
CONTROL_METHOD = "bctest_noSuchMethod"
_REFUSAL = re.compile(r"method\b.*\b(not found|does not exist|not available|not supported|unsupported|"
                      r"disabled|not allowed|not enabled)|unknown method|no such method|unauthori[sz]ed|"
                      r"forbidden|permission denied|access denied|not permitted", re.IGNORECASE)
_ARGUMENT = re.compile(r"invalid (argument|param)|expected \d+ param|missing (argument|param)|"
                       r"wrong number of|cannot unmarshal|did not match|invalid type", re.IGNORECASE)
_TRANSIENT = re.compile(r"rate.?limit|limit exceeded|too many|busy|timeout|timed out|try again",
                        re.IGNORECASE)
_ROUTE = re.compile(r'href="//[^/"]*/([A-Za-z0-9_]{1,64})\?')


# -- reading answers ----------------------------------------------------------------------


def header(reply: Reply, name: str) -> str | None:
    """A reply header, whatever case the node wrote its name in."""
    for key, value in reply.headers.items():
        if str(key).lower() == name.lower():
            return str(value)
    return None


def answer_text(reply: Reply, show: tuple[str, ...] = ()) -> str:
    """The answer as a tester reads it: status line, the headers that matter here, body."""
    if reply.status is None:
        return f"(no HTTP answer: {reply.error})"
    lines = [f"HTTP {reply.status}" if reply.status != 101 else "websocket message"]
    for name in show:
        value = header(reply, name)
        if value is not None:
            lines.append(f"{name}: {clip(value, 200)}")
    return "\n".join(lines) + "\n\n" + clip(reply.body)


def request_text(method: str, url: str, headers: dict[str, str], body: bytes | None) -> str:
    """The request as sent, in HTTP/1.1 form (the Authorization value is not repeated)."""
    lines = [f"{method} {url}"]
    sent = {"Content-Type": "application/json", **headers} if body is not None else headers
    for name, value in sent.items():
        lines.append(f"{name}: {'<the run credentials>' if name == 'Authorization' else value}")
    return "\n".join(lines) + "\n\n" + (body.decode("utf-8", "replace") if body else "")


def rpc_body(method: str, params: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                      separators=(",", ":")).encode()


def _rpc_error(reply: Reply) -> tuple[Any, str] | None:
    """(code, text) of a JSON-RPC error answer; None when the answer is no JSON-RPC error."""
    answer = reply.json()
    error = answer.get("error") if isinstance(answer, dict) else None
    if not error:
        return None
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message", "") if isinstance(error, dict) else error
    data = error.get("data", "") if isinstance(error, dict) else ""
    text = f"{message} {data if isinstance(data, str) else json.dumps(data)}".strip()
    return code, clip(text, 300)


def _same_error(reply: Reply, method: str, control: Reply) -> bool:
    """Whether two calls got the same error, the method names aside ("the method X does not
    exist" is the same refusal for every X)."""
    ours, theirs = _rpc_error(reply), _rpc_error(control)
    return ours is not None and theirs is not None and ours[0] == theirs[0] and \
        ours[1].replace(method, "<method>") == theirs[1].replace(CONTROL_METHOD, "<method>")


def judge_call(reply: Reply, method: str, control: Reply | None = None, *,
               undecodable: bool = False) -> tuple[bool | None, str]:
    """Whether a node refused a privileged call: (True, why) refused, (False, why) it was
    served or reached, (None, why) the answer does not tell.

    `control` is the node's answer to the same call to a method that exists nowhere
    (CONTROL_METHOD): an answer identical to it is the node's way of saying "unknown method"
    (anvil's websocket answers every unknown method with an argument error).
    `undecodable`: the arguments were chosen to fail, so only a refusal passes."""
    if reply.status is None:
        return None, f"no answer: {reply.error}"
    if reply.status == 101 and not reply.body:
        return None, "the websocket closed without an answer"
    if 400 <= reply.status < 500:
        return True, f"the node refused it with HTTP {reply.status}"
    if reply.status >= 500:
        return None, f"the node answered HTTP {reply.status}, which neither serves nor refuses the method"
    answer = reply.json()
    if not isinstance(answer, dict):
        return None, f"the answer is not a JSON-RPC object: {clip(reply.body, 200)!r}"
    error = _rpc_error(reply)
    if error is None:
        if "result" in answer:
            return False, f"the node served it: result {clip(json.dumps(answer['result']), 300)}"
        return None, "the answer has neither result nor error"
    code, text = error
    if code == -32601 or _REFUSAL.search(text):
        return True, f"the node refused it: error {code} {text}"
    if _TRANSIENT.search(text):
        return None, f"the node put the call off (error {code} {text}): it may or may not serve it"
    if control is not None and _same_error(reply, method, control):
        if undecodable:
            return None, (f"the node answers {CONTROL_METHOD}, which exists nowhere, with the same error "
                          f"({code} {text}), so an argument error does not tell whether it serves the method")
        return True, (f"the node answers exactly as for {CONTROL_METHOD}, which exists nowhere: error "
                      f"{code} {text}")
    if code == -32602 or _ARGUMENT.search(text):
        return False, f"the method is reachable: the node checked the arguments (error {code} {text})"
    return False, f"the node ran it and answered an error of its own, not a refusal (error {code} {text})"


def _websocket_refused(reply: Reply) -> bool:
    # aiohttp raises WSServerHandshakeError when the server answers HTTP without upgrading
    return reply.status is None and (reply.error or "").startswith("WSServerHandshakeError")


def _origin_allowed(reply: Reply) -> str | None:
    """The Access-Control-Allow-Origin value if it lets evil.example in."""
    value = header(reply, "Access-Control-Allow-Origin")
    if value is not None and value.strip().lower() in ("*", EVIL_ORIGIN):
        return value.strip()
    return None


# -- the cases ----------------------------------------------------------------------------


class _Cases:
    """The attempts on one node, with the probe's timeout and time budget."""

    def __init__(self, target: ProbeTarget, node: Node) -> None:
        self.target, self.node = target, node
        self.attempts: list[Attempt] = []
        self.timeout = float(target.settings.get("timeout", DEFAULTS["timeout"]))

    def wait(self) -> float:
        return max(1.0, min(self.timeout, self.target.time_left()))

    def add(self, case: str, passed: bool | None, title: str, why: str, request: str = "",
            answer: str = "", severity: str | None = None) -> None:
        self.attempts.append(self.target.attempt(case, self.node, passed, title, clip(why, 1500),
                                                 request, answer, severity))

    def out_of_time(self, case: str, title: str) -> bool:
        if self.target.time_left() > 0:
            return False
        self.add(case, None, title, "the probe's time budget ran out before this case")
        return True

    async def post(self, port: str, body: bytes, headers: dict[str, str] | None = None,
                   path: str = "") -> tuple[str, Reply]:
        url = self.node.url(port) + (path or "/")
        reply = await self.target.http(url, body, headers=headers, timeout=self.wait())
        return request_text("POST", url, headers or {}, body), reply

    async def call(self, case: str, title: str, port: str, method: str, params: Any, *,
                   undecodable: bool = False) -> None:
        """A privileged call over HTTP: pass when refused."""
        if self.out_of_time(case, title):
            return
        request, reply = await self.post(port, rpc_body(method, params))
        control = (await self.post(port, rpc_body(CONTROL_METHOD, params)))[1]
        passed, why = judge_call(reply, method, control, undecodable=undecodable)
        self.add(case, passed, title, why, request, answer_text(reply))

    async def ws_call(self, case: str, title: str, port: str, method: str, params: Any,
                      path: str = "", *, undecodable: bool = False) -> None:
        """The same call over a websocket: pass when refused, or when no websocket is served."""
        if self.out_of_time(case, title):
            return
        body, reply = await self.target.ws_rpc(self.node, method, params, port=port,
                                               timeout=self.wait(), path=path)
        request = f"websocket {self.node.url(port, 'ws')}{path or '/'}\n\n{body.decode()}"
        if _websocket_refused(reply):
            self.add(case, True, title, f"the node serves no websocket there (upgrade refused: "
                     f"{clip(reply.error, 200)})", request, answer_text(reply))
            return
        _, control = await self.target.ws_rpc(self.node, CONTROL_METHOD, params, port=port,
                                              timeout=self.wait(), path=path)
        passed, why = judge_call(reply, method, control, undecodable=undecodable)
        self.add(case, passed, title, why, request, answer_text(reply))

    async def cors(self, port: str, body: bytes, headers: dict[str, str] | None = None,
                   path: str = "") -> None:
        """A cross-origin POST and its preflight must not be let in for evil.example."""
        show = ("Access-Control-Allow-Origin", "Access-Control-Allow-Credentials")
        title = f"a page from {EVIL_ORIGIN} is not allowed to read the node's answers (CORS)"
        if not self.out_of_time("cors.post", title):
            request, reply = await self.post(port, body, {**(headers or {}), "Origin": EVIL_ORIGIN}, path)
            self._judge_cors("cors.post", title, request, reply, show)
        title = f"a preflight from {EVIL_ORIGIN} is not granted (CORS)"
        if not self.out_of_time("cors.preflight", title):
            url = self.node.url(port) + (path or "/")
            sent = {"Origin": EVIL_ORIGIN, "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type"}
            reply = await self.target.http(url, None, method="OPTIONS", headers=sent, timeout=self.wait())
            self._judge_cors("cors.preflight", title, request_text("OPTIONS", url, sent, None), reply, show)

    async def ws_origin(self, port: str, method: str, path: str = "") -> None:
        """A websocket opened by a page on evil.example is refused (browsers send the page's
        Origin with the upgrade and leave the check to the server: CORS does not apply)."""
        case, title = "cors.websocket", f"a websocket opened by a page on {EVIL_ORIGIN} is refused"
        if self.out_of_time(case, title):
            return
        body, reply = await self.target.ws_rpc(self.node, method, [], port=port, timeout=self.wait(),
                                               path=path, headers={"Origin": EVIL_ORIGIN})
        request = (f"websocket {self.node.url(port, 'ws')}{path or '/'}\nOrigin: {EVIL_ORIGIN}\n\n"
                   f"{body.decode()}")
        if _websocket_refused(reply):
            passed, why = True, f"the node refused the upgrade: {clip(reply.error, 200)}"
        elif reply.status == 101 and reply.body:
            passed, why = False, (f"the node accepted the websocket from {EVIL_ORIGIN} and answered "
                                  f"{method}: any web page the operator visits can use it")
        else:
            passed, why = None, judge_call(reply, method)[1]
        self.add(case, passed, title, why, request, answer_text(reply), "medium")

    def _judge_cors(self, case: str, title: str, request: str, reply: Reply, show: tuple[str, ...]) -> None:
        allowed = _origin_allowed(reply)
        if reply.status is None:
            passed, why = None, f"no answer: {reply.error}"
        elif allowed is not None:
            passed, why = False, (f"the node answered Access-Control-Allow-Origin: {clip(allowed, 100)}, so "
                                  f"any web page the operator visits can call it")
        else:
            passed, why = True, (f"HTTP {reply.status} without an Access-Control-Allow-Origin for "
                                 f"{EVIL_ORIGIN}")
        self.add(case, passed, title, why, request, answer_text(reply, show), "medium")

    async def host_header(self, port: str, body: bytes) -> None:
        """A foreign Host header is refused (DNS rebinding: evil.example resolving to 127.0.0.1)."""
        case = "host.foreign"
        title = f"a request with Host: {EVIL_HOST} is refused (DNS-rebinding protection)"
        if self.out_of_time(case, title):
            return
        request, reply = await self.post(port, body, {"Host": EVIL_HOST})
        if reply.status is None:
            passed, why = None, f"no answer: {reply.error}"
        elif 400 <= reply.status < 500:
            passed, why = True, f"the node refused the foreign host with HTTP {reply.status}"
        elif reply.status == 200 and reply.rpc_result()[0]:
            passed, why = False, (f"the node answered a request for Host: {EVIL_HOST}: a page on that "
                                  f"domain, rebound to the node's address, can call it")
        else:
            passed, why = None, f"HTTP {reply.status} that neither serves nor refuses the request"
        self.add(case, passed, title, why, request, answer_text(reply), "medium")

    async def listening(self) -> None:
        """Every listening socket must be on a port the pack declares."""
        declared = set()
        for value in dict(getattr(self.target.pack, "ports", None) or {}).values():
            if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
                declared.add(int(value))
        if self.out_of_time("listen", "every listening socket is on a port the pack declares"):
            return
        listeners = await asyncio.to_thread(self.target.listeners, self.node)
        request = f"read /proc/<pid>/net/{{tcp,tcp6,udp,udp6}} of {self.node.name}'s main process"
        if listeners is None:
            self.add("listen", None, "every listening socket is on a port the pack declares",
                     "the node's network namespace could not be read (/proc/<pid>/net: is the "
                     "harness in a container without the host's PID namespace?)", request, "", "medium")
            return
        grouped: dict[tuple[str, int], list[str]] = {}
        for found in listeners:
            grouped.setdefault((found.proto, found.port), []).append(found.address)
        for (proto, port), addresses in sorted(grouped.items()):
            local_only = all(_loopback(address) for address in addresses)
            answer = "\n".join(f"{proto} {address}:{port} {'LISTEN' if proto.startswith('tcp') else 'bound'}"
                               for address in addresses)
            title = f"{proto} port {port} is declared by the pack"
            if set(addresses) == {DOCKER_DNS}:
                why = (f"{proto} {DOCKER_DNS}:{port} is Docker's embedded DNS resolver for the run network "
                       f"(the engine's socket in the node's namespace, not the node's)")
                self.add(f"listen.docker-dns.{proto}", True, f"{proto} port {port} is the engine's DNS "
                         "resolver", why, request, answer, "info")
            elif port in declared:
                why = f"{proto} port {port} is declared in the pack's ports ({_ports(self.target.pack)})"
                self.add(f"listen.{proto}.{port}", True, title, why, request, answer, "medium")
            elif local_only:
                why = (f"{proto} port {port} listens on loopback only ({', '.join(addresses)}), which the "
                       f"pack does not declare ({_ports(self.target.pack)}): reachable from inside the "
                       f"container only")
                self.add(f"listen.{proto}.{port}", False, title, why, request, answer, "low")
            else:
                why = (f"{proto} port {port} listens on {', '.join(addresses)}, which the pack does not "
                       f"declare ({_ports(self.target.pack)}): a service the tester was not told of")
                self.add(f"listen.{proto}.{port}", False, title, why, request, answer, "medium")


def _loopback(address: str) -> bool:
    try:
        return Listener("tcp", address, 0).loopback
    except ValueError:
        return False


def _ports(pack: Any) -> str:
    ports = dict(getattr(pack, "ports", None) or {})
    return ", ".join(f"{clip(str(name), 40)} {clip(str(port), 10)}" for name, port in ports.items()) or "none"


# -- the families -------------------------------------------------------------------------


def _ws_port(target: ProbeTarget, node: Node) -> str:
    """The pack's websocket port if it declares one, else the RPC port (anvil serves both)."""
    ports = dict(getattr(target.pack, "ports", None) or {})
    return "ws" if "ws" in ports and "ws" in node.host_ports else "rpc"


async def _evm(target: ProbeTarget, node: Node) -> list[Attempt]:
    cases = _Cases(target, node)
    # What the node says it serves (geth answers rpc_modules; anvil does not): information.
    title = "the node's RPC namespaces are listed (information)"
    if not cases.out_of_time("rpc_modules", title):
        request, reply = await cases.post("rpc", rpc_body("rpc_modules", []))
        served, result = reply.rpc_result()
        if served:
            why = f"the node serves: {clip(json.dumps(result), 500)}"
            cases.add("rpc_modules", True, title, why, request, answer_text(reply), "info")
        else:
            refused, why = judge_call(reply, "rpc_modules")
            cases.add("rpc_modules", True if refused else None, title,
                      f"the node does not list its namespaces ({why})", request, answer_text(reply), "info")
    ws_port = _ws_port(target, node)
    for method, params in EVM_PRIVILEGED:
        namespace = method.split("_", 1)[0]
        undecodable = UNDECODABLE in params
        await cases.call(f"http.{method}", f"{namespace}_* is refused over HTTP ({method})", "rpc",
                         method, params, undecodable=undecodable)
        await cases.ws_call(f"ws.{method}", f"{namespace}_* is refused over websocket ({method})", ws_port,
                            method, params, undecodable=undecodable)
    # No account is unlocked for whoever calls: eth_accounts empty, eth_sendTransaction refused.
    accounts: list[str] = []
    title = "eth_accounts is empty (the node holds no keys for its callers)"
    if not cases.out_of_time("eth_accounts", title):
        request, reply = await cases.post("rpc", rpc_body("eth_accounts", []))
        served, result = reply.rpc_result()
        if served and isinstance(result, list):
            accounts = [item for item in result if isinstance(item, str)]
            passed = not result
            why = "the node lists no account" if passed else \
                f"the node lists {len(result)} account(s) it signs for: {clip(json.dumps(result[:5]), 400)}"
        else:
            refused, why = judge_call(reply, "eth_accounts")
            passed = True if refused else None
            why = f"eth_accounts is not served ({why})" if refused else why
        cases.add("eth_accounts", passed, title, why, request, answer_text(reply))
    title = "eth_sendTransaction is refused (no unlocked key signs for a stranger)"
    if not cases.out_of_time("eth_sendTransaction", title):
        # A value-0 transfer to itself: if a key is unlocked, this is all it costs.
        sender = accounts[0] if accounts and re.fullmatch(r"0x[0-9a-fA-F]{40}", accounts[0]) else ZERO_ADDRESS
        body = rpc_body("eth_sendTransaction", [{"from": sender, "to": sender, "value": "0x0"}])
        request, reply = await cases.post("rpc", body)
        served, result = reply.rpc_result()
        if served:
            cases.add("eth_sendTransaction", False, title,
                      f"the node signed and accepted a transaction from {sender} for an anonymous caller: "
                      f"{clip(json.dumps(result), 100)}", request, answer_text(reply), "critical")
        else:
            refused = reply.status is not None and (400 <= reply.status < 500
                                                    or reply.rpc_error() is not None)
            why = f"the node refused it: {reply.rpc_error() or f'HTTP {reply.status}'}" if refused else \
                judge_call(reply, "eth_sendTransaction")[1]
            cases.add("eth_sendTransaction", True if refused else None, title, why, request,
                      answer_text(reply), "critical")
    probe_call = rpc_body("eth_chainId", [])
    await cases.cors("rpc", probe_call)
    await cases.ws_origin(ws_port, "eth_chainId")
    await cases.host_header("rpc", probe_call)
    await cases.listening()
    return cases.attempts


async def _cometbft(target: ProbeTarget, node: Node) -> list[Attempt]:
    cases = _Cases(target, node)
    title = "the node's RPC routes are listed (information)"
    if not cases.out_of_time("routes", title):
        url = node.url("rpc") + "/"
        reply = await target.http(url, None, method="GET", timeout=cases.wait())
        page = reply.body.decode("utf-8", "replace") if reply.status == 200 else ""
        routes = sorted(set(_ROUTE.findall(page)))
        request = request_text("GET", url, {}, None)
        if routes:
            cases.add("routes", True, title, f"the node serves {len(routes)} routes: {', '.join(routes)}",
                      request, answer_text(reply), "info")
        else:
            cases.add("routes", None, title, "the node listed no routes at /", request, answer_text(reply),
                      "info")
    for method, params in COMET_UNSAFE:
        await cases.call(f"http.{method}", f"{method} is refused over HTTP (an unsafe route)", "rpc",
                         method, params, undecodable=True)
        await cases.ws_call(f"ws.{method}", f"{method} is refused over the websocket (an unsafe route)",
                            "rpc", method, params, path="/websocket", undecodable=True)
    await cases.cors("rpc", rpc_body("health", []))
    await cases.ws_origin("rpc", "health", "/websocket")
    await cases.listening()
    return cases.attempts


async def _bitcoin(target: ProbeTarget, node: Node) -> list[Attempt]:
    cases = _Cases(target, node)
    body = rpc_body("getnetworkinfo", [])
    for case, headers, title in (
            ("auth.none", {}, "RPC without credentials is refused with HTTP 401"),
            ("auth.wrong", {"Authorization": "Basic YmN0ZXN0LXByb2JlOndyb25nLXBhc3N3b3Jk"},
             "RPC with wrong credentials is refused with HTTP 401")):
        if cases.out_of_time(case, title):
            continue
        request, reply = await cases.post("rpc", body, headers)
        if case == "auth.wrong":   # shown as sent: they are not the run's credentials
            request = request.replace("<the run credentials>", headers["Authorization"])
        if reply.status is None:
            passed, why = None, f"no answer: {reply.error}"
        elif reply.status in (401, 403):
            passed, why = True, f"the node refused it with HTTP {reply.status}"
        elif reply.status == 200:
            passed, why = False, ("the node answered without the run's credentials: any caller can run "
                                  "node-control (and wallet) commands")
        else:
            passed, why = None, f"HTTP {reply.status}: neither served nor refused for want of credentials"
        cases.add(case, passed, title, why, request, answer_text(reply, ("WWW-Authenticate",)), "critical")
    credentials = dict(getattr(target.adapter, "submit_headers", None) or {})
    credentials.pop("Content-Type", None)
    title = "the node's RPC commands are listed with the run's credentials (information)"
    if not cases.out_of_time("help", title):
        request, reply = await cases.post("rpc", rpc_body("help", []), credentials)
        served, result = reply.rpc_result()
        if served and isinstance(result, str):
            commands = sorted({line.split()[0] for line in result.splitlines()
                               if line.strip() and not line.startswith("==")})
            cases.add("help", True, title, f"the node serves {len(commands)} commands: {', '.join(commands)}",
                      request, answer_text(reply), "info")
        else:
            why = f"help did not answer a command list ({judge_call(reply, 'help')[1]})"
            cases.add("help", None, title, why, request, answer_text(reply), "info")
    await cases.cors("rpc", rpc_body("getblockcount", []), credentials)
    await cases.listening()
    return cases.attempts


FAMILIES: dict[str, Callable[[ProbeTarget, Node], Awaitable[list[Attempt]]]] = {
    "evm": _evm, "cometbft": _cometbft, "bitcoin": _bitcoin}


async def run(target: ProbeTarget) -> list[Attempt]:
    family = FAMILIES.get(target.family)
    if family is None:
        raise NotApplicable(f"no {ID} cases for the {target.family} family")
    per_node = await asyncio.gather(*(family(target, node) for node in target.nodes))
    return [attempt for attempts in per_node for attempt in attempts]
