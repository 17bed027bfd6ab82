"""A small JSON-RPC 2.0 client over aiohttp, shared by the JSON-RPC chain families."""

from __future__ import annotations

import itertools
import json
from typing import Any

import aiohttp

from harness.httpread import read_bounded

_ids = itertools.count(1)


class RpcError(Exception):
    pass


MAX_CONTROL_REPLY = 64 << 20   # bytes: the largest answer read from a node (a block, a tip)


async def read_capped(resp: aiohttp.ClientResponse, what: str, limit: int = MAX_CONTROL_REPLY) -> str:
    """A node's reply as text, never more than `limit` bytes read into memory."""
    data = await read_bounded(resp.content, limit)
    if len(data) > limit:
        raise RpcError(f"{what}: reply larger than {limit} bytes")
    return data.decode("utf-8", "replace")


def request_body(method: str, params: list[Any], request_id: int | str = 1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                       "params": params}, separators=(",", ":")).encode()


async def call(session: aiohttp.ClientSession, url: str, method: str, params: list[Any] | None = None,
               timeout: float = 10.0, headers: dict[str, str] | None = None) -> Any:
    body = request_body(method, params or [], next(_ids))
    try:
        async with session.post(url, data=body, timeout=aiohttp.ClientTimeout(total=timeout),
                                headers={"Content-Type": "application/json", **(headers or {})}) as resp:
            text = await read_capped(resp, f"{method} at {url}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise RpcError(f"{method} at {url}: {type(exc).__name__} {exc}") from None
    try:
        reply = json.loads(text)
    except (ValueError, RecursionError):
        raise RpcError(f"{method} at {url}: HTTP {resp.status}, not JSON: {text[:200]!r}") from None
    if isinstance(reply, dict) and reply.get("error"):
        raise RpcError(f"{method} at {url}: {reply['error']}")
    if not isinstance(reply, dict) or "result" not in reply:
        raise RpcError(f"{method} at {url}: HTTP {resp.status}, no result: {text[:200]!r}")
    return reply["result"]


def response_error(status: int, body: bytes) -> str | None:
    """Classify a JSON-RPC submission reply: None only for an accepted submission (a JSON
    object with a non-null `result` and no `error`), else a short reason. Total: any shape
    a node answers gets a reason, never an exception."""
    if status != 200:
        return f"http {status}"
    try:
        reply = json.loads(body)
    except (ValueError, RecursionError):   # not JSON, not UTF-8, or nested too deep
        return "reply is not JSON"
    if not isinstance(reply, dict):
        return "reply is not a JSON object"
    error = reply.get("error")
    if error:
        if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
            return error["message"][:200]
        return f"error: {json.dumps(error)}"[:200]
    if reply.get("result") is None:
        return "reply has no result"
    return None


def result_error(status: int, body: bytes) -> str | None:
    """Classify a JSON-RPC read reply: None only if it has no error and a non-null result
    (a null receipt or transaction means the node does not hold what was asked for)."""
    error = response_error(status, body)
    if error == "reply has no result":
        return "not found (null result)"
    if error:
        return error
    if json.loads(body)["result"] == "":
        return "not found (null result)"
    return None
