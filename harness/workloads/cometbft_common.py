"""What the CometBFT workloads share: kvstore `key=value` transactions, reading keys back
over abci_query, and judging the transactions that had to be refused.

Not a workload itself (it declares no ID): cometbft_ycsb, cometbft_evidence,
cometbft_traceability and cometbft_einvoice build on it. Their encodings are the ones
the scenarios' ABCI app enforces (chains/cometbft/app/rules.go, pack param
`proxy_app: scenarios`): one '=' and no ':', so the built-in kvstore accepts them too
and a run against it shows what a chain without the rules lets through.

Inclusion is not execution on CometBFT: a transaction the app refuses in FinalizeBlock is
still in the block (with a non-zero result code). So a transaction that had to be refused
is judged by where it ended up: in a block with a non-zero code (refused by FinalizeBlock),
in a block with code 0 (it took effect: fail), or in no block while CheckTx refuses it
now (refused when it was sent); in no block while CheckTx would accept it now means it was
never tested (dropped, never sent), which the checker reads as unknown.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp

from harness.adapters.base import Committed, Prepared
from harness.adapters.cometbft import CometError, broadcast_body, response_error, tx_hash
from harness.adapters.jsonrpc import RpcError, read_capped
from harness.model import Node

QUERY_PATH = "/key"          # the scenarios app answers any path by key, as kvstore does
CONCURRENT_READS = 16
MAX_MISMATCHES = 20
SCENARIOS_APP = "bctest-scenarios"   # the ABCI app's Info version prefix (app/app.go)


def run_tag(workload: str, seed: int) -> str:
    """Eight hex digits that make one run's keys its own."""
    return hashlib.sha256(f"bctest/cometbft/{workload}/{seed}".encode()).hexdigest()[:8]


def short_hash(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


@dataclass(frozen=True)
class Op:
    """One transaction of the load: the global index, the raw `key=value` bytes, and, for
    one that the chain must refuse, what it tries (for the report)."""

    index: int
    key: str
    value: str
    must_refuse: str | None = None

    @property
    def tx(self) -> bytes:
        return f"{self.key}={self.value}".encode()


def abci_query_body(key: str, request_id: int) -> bytes:
    """JSON-RPC POST of abci_query by key (`data` is hex in JSON-RPC bodies)."""
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "abci_query",
                       "params": {"path": QUERY_PATH, "data": key.encode().hex(), "height": "0",
                                  "prove": False}}, separators=(",", ":")).encode()


def query_reply_error(status: int, body: bytes) -> str | None:
    """An abci_query reply answers only with code 0 and a value; a broadcast reply (YCSB
    updates in the query phase) only with CheckTx's code 0. Runs in sender processes."""
    error = response_error(status, body)
    if error:
        return error
    result = json.loads(body)["result"]
    if "response" not in result:
        return None                     # a broadcast, accepted
    response = result.get("response")
    if not isinstance(response, dict):
        return "reply has no response"
    if response.get("code"):
        return f"query code {response.get('code')}: {str(response.get('log'))[:120]}"
    if not response.get("value"):
        return "key not found"
    return None


async def rpc(adapter: Any, node: Node, method: str, params: dict[str, Any],
              timeout: float = 10.0) -> Any:
    """One JSON-RPC call with named params (POST; in bodies []byte params are base64 and
    HexBytes params hex); CometError with the node's reason (its `data`) on an error."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    try:
        async with adapter.control_session().post(
                node.url(), data=body, headers={"Content-Type": "application/json"},
                timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            text = await read_capped(resp, f"{method} at {node.name}")
    except (aiohttp.ClientError, TimeoutError, RpcError) as exc:
        raise CometError(f"{method} at {node.name}: {type(exc).__name__} {exc}") from None
    try:
        reply = json.loads(text)
    except (ValueError, RecursionError):
        raise CometError(f"{method} at {node.name}: not JSON: {text[:200]!r}") from None
    if not isinstance(reply, dict):
        raise CometError(f"{method} at {node.name}: not a JSON object")
    error = reply.get("error")
    if error:
        detail = error.get("data") or error.get("message") if isinstance(error, dict) else error
        raise CometError(f"{method} at {node.name}: {str(detail)[:200]}")
    if not isinstance(reply.get("result"), dict):
        raise CometError(f"{method} at {node.name}: no result: {text[:200]!r}")
    return reply["result"]


async def _bounded(calls: list[Any]) -> list[Any]:
    semaphore = asyncio.Semaphore(CONCURRENT_READS)

    async def one(call: Any) -> Any:
        async with semaphore:
            return await call

    return await asyncio.gather(*(one(c) for c in calls))


async def read_keys(adapter: Any, node: Node, keys: list[str]) -> dict[str, str | None]:
    """Each key's committed value over abci_query (None: not stored)."""
    async def one(key: str) -> str | None:
        result = await rpc(adapter, node, "abci_query", {"path": QUERY_PATH, "data": key.encode().hex(),
                                                        "height": "0", "prove": False})
        response = result.get("response") or {}
        if response.get("code"):
            raise CometError(f"abci_query {key!r} answered code {response.get('code')}: "
                             f"{str(response.get('log'))[:120]}")
        value = response.get("value")
        return base64.b64decode(value).decode("utf-8", "replace") if value else None

    values = await _bounded([one(k) for k in keys])
    return dict(zip(keys, values, strict=True))


async def app_version(adapter: Any, node: Node) -> str:
    """The ABCI app's Info version (bctest-scenarios/1, or kvstore's)."""
    info = await rpc(adapter, node, "abci_info", {}, timeout=5)
    return str((info.get("response") or {}).get("version", ""))[:80]


async def _tx_result(adapter: Any, node: Node, tx: bytes) -> tuple[int, int, str] | None:
    """(height, result code, log) of a transaction in a block, or None if in none."""
    try:
        result = await rpc(adapter, node, "tx", {"hash": base64.b64encode(
            bytes.fromhex(tx_hash(tx))).decode(), "prove": False})
    except CometError as exc:
        if "not found" in str(exc):
            return None
        raise
    outcome = result.get("tx_result") or {}
    return int(result.get("height", 0)), int(outcome.get("code") or 0), str(outcome.get("log", ""))


async def _check_now(adapter: Any, node: Node, tx: bytes) -> tuple[int, str]:
    """CheckTx's verdict on `tx` now (the check_tx RPC: not added to the mempool)."""
    result = await rpc(adapter, node, "check_tx", {"tx": base64.b64encode(tx).decode()})
    return int(result.get("code") or 0), str(result.get("log", ""))


async def judge_refusals(adapter: Any, node: Node, ops: list[Op], committed: set[int],
                         sends: dict[int, str | None] | None = None) -> list[dict[str, Any]]:
    """Where each must-be-refused op ended up: refused true/false, or None if untested.
    `sends` (index -> the node's refusal at submission, None if accepted; absent if never
    sent) comes from the read-back stage when it has the send records."""
    async def one(op: Op) -> dict[str, Any]:
        row: dict[str, Any] = {"i": op.index, "what": op.must_refuse}
        placed = await _tx_result(adapter, node, op.tx)
        if placed is not None:
            height, code, log = placed
            row["refused"] = code != 0
            row["outcome"] = (f"in block {height} with FinalizeBlock code {code}: {log[:120]}"
                              if code else f"in block {height} with code 0: it took effect")
        elif op.index in committed:
            row["refused"] = None
            row["outcome"] = "reported committed, but the node's tx index does not know it"
        elif sends is not None and op.index not in sends:
            row["refused"] = None
            row["outcome"] = "never sent"
        elif sends is not None and sends[op.index]:
            # the node's answer at submission: CheckTx's code and log (or another refusal)
            row["refused"] = True
            row["outcome"] = f"in no block; refused when sent: {str(sends[op.index])[:160]}"
        else:
            code, log = await _check_now(adapter, node, op.tx)
            row["refused"] = True if code else None
            accepted = "accepted when sent, " if sends is not None else ""
            row["outcome"] = (f"in no block; {accepted}CheckTx refuses it now (code {code}: "
                              f"{log[:120]})" if code else
                              f"in no block, {accepted}and CheckTx would accept it now: never tested")
        return row

    return list(await _bounded([one(op) for op in ops if op.must_refuse]))


def compare(expected: dict[str, str], found: dict[str, str | None],
            labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Effects counted and the first mismatches: every expected key must hold its value."""
    missing = wrong = 0
    mismatches: list[dict[str, Any]] = []
    for key, want in expected.items():
        got = found.get(key)
        if got == want:
            continue
        if got is None:
            missing += 1
        else:
            wrong += 1
        if len(mismatches) < MAX_MISMATCHES:
            mismatches.append({"what": (labels or {}).get(key, key), "key": key,
                               "expected": want[:200], "found": None if got is None else got[:200]})
    return {"effects": {"expected": len(expected), "found": len(expected) - missing - wrong,
                        "missing": missing, "wrong": wrong},
            "mismatches": mismatches}


class KvWorkload:
    """The CometBFT workloads' shared skeleton: `ops` built by `build(count)`, signed into
    broadcast bodies; the read-back replays the committed ops (`expect`) and reads every key
    back; the query phase reads the committed ops' keys (kind `key`)."""

    ID: ClassVar[str] = "kv"
    query_kinds: ClassVar[tuple[str, ...]] = ("key",)

    def __init__(self, adapter: Any, settings: dict[str, Any], seed: int, accounts: int):
        self.adapter = adapter
        self.settings = settings
        self.seed = seed
        self.tag = run_tag(self.ID, seed)
        self.ops: list[Op] = []
        self._key_of: dict[str, str] = {}      # tx id -> key, for the query phase
        self.found: dict[str, str | None] = {}  # what the last read-back read
        self.sends: dict[int, str | None] | None = None   # the load's outcomes, if given

    def note_sends(self, outcomes: dict[int, str | None]) -> None:
        """The read-back stage's send outcomes: index -> the refusal at submission or None."""
        self.sends = outcomes

    # -- to override

    def build(self, count: int) -> list[Op]:
        raise NotImplementedError

    def expect(self, ops: list[Op]) -> dict[str, str]:
        """The state the committed ops (chain order, none that had to be refused) leave."""
        raise NotImplementedError

    def facts(self) -> dict[str, Any]:
        return {}

    # -- the registry's interface

    async def bootstrap(self, nodes: list[Node], count: int) -> dict[str, Any]:
        version = await app_version(self.adapter, nodes[0])
        return {"abci_app": version or "unknown",
                "rules_enforced": version.startswith(SCENARIOS_APP), **self.facts()}

    def prepare(self, count: int) -> list[Prepared]:
        self.ops = self.build(count)
        if len(self.ops) != count or any(op.index != i for i, op in enumerate(self.ops)):
            raise AssertionError(f"{self.ID}: built {len(self.ops)} ops for {count} sends")
        out = []
        for op in self.ops:
            tx = op.tx
            tx_id = tx_hash(tx)
            self._key_of[tx_id] = op.key
            out.append(Prepared(body=broadcast_body(tx, op.index, self.adapter.broadcast_method),
                                tx_id=tx_id))
        return out

    async def read_back(self, node: Node, committed: list[int]) -> dict[str, Any]:
        effective = [self.ops[i] for i in committed if not self.ops[i].must_refuse]
        expected = self.expect(effective)
        found = await read_keys(self.adapter, node, sorted(expected))
        self.found = found
        observed = compare(expected, found)
        observed["must_refuse"] = await judge_refusals(self.adapter, node, self.ops, set(committed),
                                                       self.sends)
        observed["method"] = f"abci_query {QUERY_PATH} of every key the committed txs wrote"
        return observed

    def query_subjects(self, kind: str, committed: list[Committed]) -> list[Any]:
        if kind != "key":
            raise ValueError(f"the {self.ID} workload has no '{kind}' queries")
        return sorted({self._key_of[c.tx_id] for c in committed if c.tx_id in self._key_of})

    def query_request(self, kind: str, subject: Any, request_id: int) -> Prepared:
        return Prepared(body=abci_query_body(subject, request_id), tx_id=subject)

    @staticmethod
    def query_error(status: int, body: bytes) -> str | None:
        return query_reply_error(status, body)
