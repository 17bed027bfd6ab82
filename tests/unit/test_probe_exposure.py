"""The exposure probe against stub nodes (aiohttp servers on 127.0.0.1): a node that serves
its privileged methods, signs for strangers, lets any origin in and listens on undeclared
ports must fail; a node that refuses all of it must pass."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from harness.model import Attempt, Node
from harness.security import registry
from harness.security.probe import Listener, NotApplicable, ProbeTarget, Reply, proc_net_listeners
from harness.security.probes import exposure
from harness.security.probes.exposure import CONTROL_METHOD, UNDECODABLE, judge_call

PRIVILEGED = {method for method, _ in exposure.EVM_PRIVILEGED}
SIGNER = "0x" + "ab" * 20
CREDENTIALS = "Basic dXNlcjpyaWdodA=="


class _Runtime:
    """The container runtime, as far as the probe uses it: no process to read."""

    def pid(self, node: Node) -> int:
        return 0

    def container(self, node: Node) -> Any:
        raise LookupError(node.name)


class _Target(ProbeTarget):
    """A ProbeTarget whose listening sockets are given, not read from /proc."""

    sockets: list[Listener] | None = None

    def listeners(self, node: Node) -> list[Listener] | None:
        return self.sockets


def _rpc(request_id: Any, result: Any = None, error: dict | None = None) -> dict:
    answer: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
    answer.update({"error": error} if error else {"result": result})
    return answer


def evm_answer(call: dict, open_node: bool) -> dict:
    """A stub EVM node's JSON-RPC answer: an open node (anvil-like) or a locked-down one."""
    method, params, rid = call.get("method"), call.get("params") or [], call.get("id")
    not_served = {"code": -32601, "message": f"the method {method} does not exist/is not available"}
    if method in PRIVILEGED:
        if not open_node:
            return _rpc(rid, error=not_served)
        if UNDECODABLE in params:
            return _rpc(rid, error={"code": -32602, "message": "invalid argument 0: hex without 0x prefix"})
        return _rpc(rid, {"served": method})
    if method == "rpc_modules":
        return _rpc(rid, {"eth": "1.0", **({"admin": "1.0", "debug": "1.0"} if open_node else {})})
    if method == "eth_accounts":
        return _rpc(rid, [SIGNER] if open_node else [])
    if method == "eth_sendTransaction":
        if open_node and params and params[0].get("from") == SIGNER:
            return _rpc(rid, "0x" + "12" * 32)
        return _rpc(rid, error={"code": -32000, "message": "unknown account"})
    if method == "eth_chainId":
        return _rpc(rid, "0x7a69")
    return _rpc(rid, error=not_served)


def comet_answer(call: dict, open_node: bool) -> dict:
    method, rid = call.get("method"), call.get("id")
    if method == "health":
        return _rpc(rid, {})
    if open_node and method in ("dial_seeds", "dial_peers"):
        return _rpc(rid, error={"code": -32603, "message": "Internal error",
                                "data": f"address ({exposure.COMET_NOT_AN_ADDRESS}) does not contain ID"})
    if open_node and method == "unsafe_flush_mempool":
        return _rpc(rid, error={"code": -32602, "message": "Invalid params",
                                "data": "expected 0 parameters ([]), got 1"})
    return _rpc(rid, error={"code": -32601, "message": "Method not found"})


ROUTES_PAGE = ('<html><body>Available endpoints:<br><a href="//127.0.0.1:1/health?">x</a>'
               '<a href="//127.0.0.1:1/status?">x</a>{unsafe}</body></html>')


def stub_app(family: str, open_node: bool) -> web.Application:
    """One stub node. EVM and CometBFT serve JSON-RPC on POST / and a websocket (/ and
    /websocket); the open node answers every origin with '*' and any Host."""

    def answer(call: Any) -> dict:
        if not isinstance(call, dict):
            return _rpc(None, error={"code": -32600, "message": "invalid request"})
        return evm_answer(call, open_node) if family == "evm" else comet_answer(call, open_node)

    def cors(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        if open_node and request.headers.get("Origin"):
            # anvil answers '*'; the others echo the origin
            echo = "*" if family == "evm" else request.headers["Origin"]
            response.headers["Access-Control-Allow-Origin"] = echo
        return response

    async def post(request: web.Request) -> web.StreamResponse:
        if family == "bitcoin":
            if not open_node and request.headers.get("Authorization") != CREDENTIALS:
                return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'})
            call = await request.json()
            if call.get("method") == "help":
                listing = "== Blockchain ==\ngetblockcount\ngetbestblockhash\n\n== Control ==\nstop\n"
                return web.json_response(_rpc(call["id"], listing))
            return cors(request, web.json_response(_rpc(call.get("id"), 1)))
        if not open_node and request.host.split(":")[0] != "127.0.0.1":
            return web.Response(status=403, text="invalid host specified\n")
        try:
            call = json.loads(await request.read())
        except ValueError:
            return web.json_response(_rpc(None, error={"code": -32700, "message": "parse error"}))
        return cors(request, web.json_response(answer(call)))

    async def get(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if not open_node and request.headers.get("Origin"):
                return web.Response(status=403, text="origin not allowed")
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await ws.send_str(json.dumps(answer(json.loads(message.data))))
            return ws
        unsafe = '<a href="//127.0.0.1:1/dial_seeds?seeds=_">x</a>' if open_node else ""
        return web.Response(text=ROUTES_PAGE.format(unsafe=unsafe), content_type="text/html")

    async def options(request: web.Request) -> web.StreamResponse:
        return cors(request, web.Response(status=200 if open_node else 403))

    app = web.Application()
    for path in ("/", "/websocket"):
        app.router.add_post(path, post)
        app.router.add_get(path, get)
        app.router.add_route("OPTIONS", path, options)
    return app


Scenario = Callable[[ProbeTarget], Awaitable[Any]]


def probe(family: str, open_node: bool, sockets: list[Listener] | None = None, *,
          ports: dict[str, int] | None = None, budget: float = 60.0,
          scenario: Scenario | None = None) -> Any:
    """Starts a stub node, builds the probe's target by hand and runs the probe (or
    `scenario`) against it."""

    async def main() -> Any:
        runner = web.AppRunner(stub_app(family, open_node))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as session:
                target = _Target(probe=exposure.ID, severity=exposure.SEVERITY, family=family,
                                 pack=SimpleNamespace(ports=ports or {"rpc": 8545}),
                                 nodes=[Node("node0", 0, "cid0", {"rpc": port})],
                                 adapter=SimpleNamespace(submit_headers={"Content-Type": "application/json",
                                                                         "Authorization": CREDENTIALS}),
                                 runtime=_Runtime(), settings=dict(exposure.DEFAULTS),
                                 deadline=time.monotonic() + budget, run_dir=Path("."), say=lambda _: None,
                                 session=session)
                target.sockets = sockets
                return await (scenario or exposure.run)(target)
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def by_case(attempts: list[Attempt]) -> dict[str, Attempt]:
    return {attempt.case: attempt for attempt in attempts}


DECLARED = [Listener("tcp", "0.0.0.0", 8545)]


# -- the registry -------------------------------------------------------------------------


def test_the_probe_is_registered():
    found = registry()["exposure"]
    assert found.order == 10 and found.severity == "high" and found.defaults == {"timeout": 10.0}


# -- EVM ----------------------------------------------------------------------------------


def test_an_open_evm_node_fails_every_exposure_case():
    sockets = DECLARED + [Listener("tcp", "0.0.0.0", 6060), Listener("tcp", "127.0.0.1", 8551),
                          Listener("udp", "127.0.0.11", 48015)]
    cases = by_case(probe("evm", True, sockets))
    for method in PRIVILEGED:
        for transport in ("http", "ws"):
            attempt = cases[f"{transport}.{method}"]
            assert attempt.verdict == "fail", attempt
            assert attempt.severity == "high"
            assert method in attempt.request and attempt.answer.startswith(("HTTP 200", "websocket message"))
    assert "reachable" in cases["http.miner_setGasPrice"].why            # the argument error betrays it
    assert "served" in cases["http.admin_nodeInfo"].why
    assert cases["eth_accounts"].verdict == "fail" and SIGNER in cases["eth_accounts"].why
    send = cases["eth_sendTransaction"]
    assert send.verdict == "fail" and send.severity == "critical"
    assert json.loads(send.request.split("\n\n", 1)[1])["params"][0] == {"from": SIGNER, "to": SIGNER,
                                                                          "value": "0x0"}
    for case in ("cors.post", "cors.preflight", "cors.websocket", "host.foreign"):
        assert cases[case].verdict == "fail" and cases[case].severity == "medium", cases[case]
    assert "Origin: https://evil.example" in cases["cors.post"].request
    assert "Access-Control-Allow-Origin: *" in cases["cors.post"].answer
    assert "Host: evil.example" in cases["host.foreign"].request
    assert cases["listen.tcp.8545"].verdict == "pass"
    assert (cases["listen.tcp.6060"].verdict, cases["listen.tcp.6060"].severity) == ("fail", "medium")
    assert (cases["listen.tcp.8551"].verdict, cases["listen.tcp.8551"].severity) == ("fail", "low")
    assert "loopback only" in cases["listen.tcp.8551"].why
    assert cases["listen.docker-dns.udp"].verdict == "pass"           # the engine's, not the node's
    assert cases["rpc_modules"].verdict == "pass" and "admin" in cases["rpc_modules"].why
    assert {attempt.node for attempt in cases.values()} == {"node0"}


def test_a_locked_down_evm_node_passes_every_case():
    attempts = probe("evm", False, DECLARED)
    failed = [attempt for attempt in attempts if attempt.verdict != "pass"]
    assert not failed, failed
    cases = by_case(attempts)
    assert "the method admin_nodeInfo does not exist" in cases["http.admin_nodeInfo"].why
    assert cases["eth_sendTransaction"].why.endswith("unknown account")
    assert '"from":"0x0000000000000000000000000000000000000000"' in cases["eth_sendTransaction"].request
    assert "403" in cases["host.foreign"].why
    assert "403" in cases["cors.websocket"].why


def test_the_websocket_port_is_the_packs_ws_port_when_declared():
    """geth serves websocket on its own port: the pack declares it as `ws`."""

    async def scenario(target: ProbeTarget) -> list[Attempt]:
        node = target.nodes[0]
        node.host_ports["ws"] = node.host_ports["rpc"]
        return await exposure.run(target)

    cases = by_case(probe("evm", True, DECLARED, ports={"rpc": 8545, "ws": 8546}, scenario=scenario))
    assert cases["ws.txpool_status"].verdict == "fail"
    assert exposure._ws_port(SimpleNamespace(pack=SimpleNamespace(ports={"rpc": 1})),
                             Node("n", 0, "c", {"rpc": 1})) == "rpc"


def test_unreadable_sockets_and_an_exhausted_budget_are_unknown_never_pass():
    cases = by_case(probe("evm", True, None))
    assert cases["listen"].verdict == "unknown"
    late = probe("evm", False, DECLARED, budget=-1)
    assert late and all(attempt.verdict == "unknown" for attempt in late), late
    assert "time budget" in late[0].why


# -- CometBFT -----------------------------------------------------------------------------


def test_a_cometbft_node_serving_unsafe_routes_fails():
    sockets = [Listener("tcp6", "::", 26657), Listener("tcp6", "::", 26656)]
    cases = by_case(probe("cometbft", True, sockets, ports={"rpc": 26657}))
    for method, _ in exposure.COMET_UNSAFE:
        for transport in ("http", "ws"):
            assert cases[f"{transport}.{method}"].verdict == "fail", cases[f"{transport}.{method}"]
    assert "dial_seeds" in cases["routes"].why
    assert cases["ws.dial_seeds"].request.startswith("websocket ws://127.0.0.1:")
    assert "/websocket" in cases["ws.dial_seeds"].request
    assert cases["cors.post"].verdict == "fail"          # the origin echoed
    assert cases["cors.websocket"].verdict == "fail" and "Origin: https://evil.example" in \
        cases["cors.websocket"].request
    assert cases["listen.tcp6.26656"].verdict == "fail" and cases["listen.tcp6.26657"].verdict == "pass"


def test_a_cometbft_node_refusing_unsafe_routes_passes():
    attempts = probe("cometbft", False, [Listener("tcp6", "::", 26657)], ports={"rpc": 26657})
    assert attempts and all(attempt.verdict == "pass" for attempt in attempts), attempts
    assert "Method not found" in by_case(attempts)["http.unsafe_flush_mempool"].why


# -- Bitcoin ------------------------------------------------------------------------------


def test_a_bitcoin_node_answering_without_credentials_fails():
    cases = by_case(probe("bitcoin", True, [Listener("tcp", "0.0.0.0", 19443)], ports={"rpc": 19443}))
    for case in ("auth.none", "auth.wrong"):
        assert (cases[case].verdict, cases[case].severity) == ("fail", "critical"), cases[case]
    assert "Authorization: Basic YmN0ZXN0" in cases["auth.wrong"].request


def test_a_bitcoin_node_asking_for_credentials_passes_and_lists_its_commands():
    cases = by_case(probe("bitcoin", False, [Listener("tcp", "0.0.0.0", 19443)], ports={"rpc": 19443}))
    assert all(attempt.verdict == "pass" for attempt in cases.values()), cases
    assert "401" in cases["auth.none"].answer and "WWW-Authenticate" in cases["auth.none"].answer
    assert "getblockcount" in cases["help"].why and "stop" in cases["help"].why
    assert CREDENTIALS not in cases["help"].request       # the run's password is not recorded


def test_an_unknown_family_is_not_applicable():
    with pytest.raises(NotApplicable, match="no exposure cases for the hyperledger family"):
        probe("hyperledger", True, DECLARED)


# -- judging answers ----------------------------------------------------------------------


def reply(answer: Any, status: int = 200) -> Reply:
    return Reply(status, answer if isinstance(answer, bytes) else json.dumps(answer).encode())


@pytest.mark.parametrize("answer, status, verdict", [
    ({"jsonrpc": "2.0", "id": 1, "result": None}, 200, False),            # served, even with null
    ({"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "Method not found"}}, 200, True),
    ({"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "method not allowed"}}, 200, True),
    ({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "invalid argument 0"}}, 200, False),
    ({"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "rate limit exceeded"}}, 200, None),
    ({"jsonrpc": "2.0", "id": 1, "error": "denied: forbidden"}, 200, True),
    ({"jsonrpc": "2.0", "id": 1, "error": ["weird"]}, 200, False),
    ({"jsonrpc": "2.0", "id": 1}, 200, None),
    (b"\xff\x00 not json", 200, None),
    (b"[1, 2]", 200, None),
    (b"", 403, True),
    (b"", 502, None),
])
def test_judging_hostile_answers(answer, status, verdict):
    passed, why = judge_call(reply(answer, status), "admin_nodeInfo")
    assert passed is verdict, why
    assert why


def test_an_answer_identical_to_the_control_is_a_refusal_unless_the_arguments_were_bad():
    """anvil's websocket answers every unknown method with the same argument error."""
    same = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "did not match EthRpcCall"}}
    assert judge_call(reply(same), "admin_nodeInfo", reply(same))[0] is True
    assert judge_call(reply(same), "evm_increaseTime", reply(same), undecodable=True)[0] is None
    other = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "did not match NumericSeq"}}
    assert judge_call(reply(other), "evm_increaseTime", reply(same), undecodable=True)[0] is False
    # the method's own name in the error does not make two refusals differ
    named = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "call admin_x failed"}}
    control = {"jsonrpc": "2.0", "id": 1,
               "error": {"code": -32000, "message": f"call {CONTROL_METHOD} failed"}}
    assert judge_call(reply(named), "admin_x", reply(control))[0] is True
    assert judge_call(Reply(None, error="ClientConnectorError: refused"), "admin_x")[0] is None


def test_proc_net_tables_give_the_bound_address():
    tcp = ("  sl  local_address rem_address   st tx_queue rx_queue\n"
           "   0: 00000000:2161 00000000:0000 0A 00000000:00000000\n"
           "   1: 0100007F:2157 00000000:0000 0A 00000000:00000000\n"
           "   2: 0100007F:2157 0100007F:9C40 01 00000000:00000000\n"   # an established socket
           "   3: garbage\n")
    assert proc_net_listeners("tcp", tcp) == [Listener("tcp", "0.0.0.0", 8545),
                                              Listener("tcp", "127.0.0.1", 8535)]
    tcp6 = ("  sl  local_address rem_address st\n"
            "   0: 00000000000000000000000000000000:6691 00000000000000000000000000000000:0000 0A\n"
            "   1: 00000000000000000000000001000000:2199 00000000000000000000000000000000:0000 0A\n"
            "   2: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A\n")
    found = proc_net_listeners("tcp6", tcp6)
    assert [(item.address, item.port, item.loopback) for item in found] == [
        ("::", 26257, False), ("::1", 8601, True), ("::ffff:7f00:1", 8080, True)]
    udp = "  sl  local_address\n   0: 00000000:7A7A 00000000:0000 07 0\n"
    assert proc_net_listeners("udp", udp) == [Listener("udp", "0.0.0.0", 31354)]
