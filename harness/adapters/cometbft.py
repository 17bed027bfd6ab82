"""The CometBFT adapter: validators of any CometBFT 0.38 chain, reference app kvstore.

The harness generates what `cometbft init` + `cometbft testnet` would: one Ed25519
validator key and one node key per node (derived from the suite seed), a genesis with
every validator at equal power, and each node's persistent peer list over the run
network. The node image turns these into its config (chains/cometbft/entrypoint.sh).
With a three-tier topology (adapter.roles) only the root nodes are in the genesis
validator set; management and application nodes are full nodes: their own keys, a
priv_validator_key that no validator set holds, the same genesis and peers.

Transactions are kvstore `key=value` pairs; a transaction's id is what CometBFT calls
its hash: the upper-case hex SHA-256 of the transaction bytes. Blocks arrive through a
websocket subscription to NewBlock events (which carry the transactions); missed
heights are fetched with /block, and /block polling is the fallback.

Pack params read here (every param also reaches the nodes as BCTEST_PARAM_<NAME>):
  broadcast_mode   sync (broadcast_tx_sync, the default: the reply carries CheckTx's
                   verdict) or async (broadcast_tx_async: accepted unchecked)
  tx_size          pad every transaction to at least this many bytes
Pack options:
  chain_id         the CometBFT chain id string (default "bctest-<chain_id>")
  power            voting power of every validator (default 10)
  consensus_params replaces the genesis consensus_params (default: CometBFT's own)
  p2p_port         the nodes' p2p port on the run network (default 26656)
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
from Crypto.PublicKey import ECC

from harness.adapters import jsonrpc
from harness.adapters.base import AdapterBase, Block, Committed, OnBlock, Prepared
from harness.chainpack import ChainPack
from harness.errors import InputError
from harness.httpread import read_bounded
from harness.load.spool import PreparedSpool, SpoolWriter
from harness.model import Node

NEW_BLOCK_QUERY = "tm.event='NewBlock'"
SUBSCRIPTION_ID = "bctest-new-block"
BROADCAST_METHODS = {"sync": "broadcast_tx_sync", "async": "broadcast_tx_async"}

# CometBFT 0.38's defaults (what `cometbft init` writes), with initial height 1.
DEFAULT_CONSENSUS_PARAMS: dict[str, Any] = {
    "block": {"max_bytes": "22020096", "max_gas": "-1"},
    "evidence": {"max_age_num_blocks": "100000", "max_age_duration": "172800000000000",
                 "max_bytes": "1048576"},
    "validator": {"pub_key_types": ["ed25519"]},
    "version": {"app": "0"},
    "abci": {"vote_extensions_enable_height": "0"},
}


class CometError(Exception):
    """An RPC call to a node failed (unreachable, HTTP error, JSON-RPC error)."""


# ---------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class Ed25519Key:
    seed: bytes        # the 32-byte private seed
    public: bytes      # the 32-byte public key

    @classmethod
    def from_seed(cls, seed: bytes) -> Ed25519Key:
        key = ECC.construct(curve="Ed25519", seed=seed)
        return cls(seed=seed, public=key.public_key().export_key(format="raw"))

    @property
    def address(self) -> str:
        """Validator address: the first 20 bytes of SHA-256(pubkey), upper-case hex."""
        return hashlib.sha256(self.public).digest()[:20].hex().upper()

    @property
    def node_id(self) -> str:
        """P2P node id: the same 20 bytes, lower-case hex."""
        return hashlib.sha256(self.public).digest()[:20].hex()

    def pub_key_json(self) -> dict[str, str]:
        return {"type": "tendermint/PubKeyEd25519", "value": base64.b64encode(self.public).decode()}

    def priv_key_json(self) -> dict[str, str]:
        # CometBFT's Ed25519 private key is seed || public key.
        return {"type": "tendermint/PrivKeyEd25519",
                "value": base64.b64encode(self.seed + self.public).decode()}


def derive_key(purpose: str, seed: int, index: int) -> Ed25519Key:
    """A deterministic Ed25519 key: same suite seed, same keys (and node ids)."""
    material = hashlib.sha256(f"bctest/cometbft/{purpose}/{seed}/{index}".encode()).digest()
    return Ed25519Key.from_seed(material)


def priv_validator_key_json(key: Ed25519Key) -> dict[str, Any]:
    return {"address": key.address, "pub_key": key.pub_key_json(), "priv_key": key.priv_key_json()}


def node_key_json(key: Ed25519Key) -> dict[str, Any]:
    return {"priv_key": key.priv_key_json()}


def rfc3339(unix: float) -> str:
    """Unix seconds as CometBFT writes times: UTC, microseconds, 'Z'."""
    return dt.datetime.fromtimestamp(unix, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)$")


def parse_rfc3339(text: str) -> float:
    """CometBFT's RFC 3339 times (up to nanoseconds, 'Z' or an offset) as unix seconds."""
    match = _RFC3339.match(text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    whole, digits, zone = match.groups()
    offset = "+00:00" if zone in ("Z", "z") else zone
    seconds = dt.datetime.fromisoformat(whole.replace("t", "T").replace(" ", "T") + offset).timestamp()
    return seconds + (int(digits) / 10 ** len(digits) if digits else 0.0)


# ---------------------------------------------------------------------------- txs


def tx_hash(tx: bytes) -> str:
    """CometBFT's transaction hash: upper-case hex SHA-256 of the raw bytes."""
    return hashlib.sha256(tx).hexdigest().upper()


def make_tx(seed: int, index: int, size: int = 0) -> bytes:
    """The index-th kvstore transaction of a run: `bctest.<tag>.<index>=<value>`.

    The key carries the run's tag (from the seed) and the scheduled index, so every
    transaction is unique and can be traced back; one '=', no ':', so kvstore's
    CheckTx accepts it and PrepareProposal leaves its bytes (and hash) unchanged.
    """
    tag = hashlib.sha256(f"bctest/cometbft/tx/{seed}".encode()).hexdigest()[:8]
    value = hashlib.sha256(f"{seed}/{index}".encode()).hexdigest()[:16]
    tx = f"bctest.{tag}.{index:09d}={value}".encode()
    if len(tx) < size:
        tx += b"x" * (size - len(tx))
    return tx


def broadcast_body(tx: bytes, request_id: int, method: str = "broadcast_tx_sync") -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                       "params": {"tx": base64.b64encode(tx).decode()}},
                      separators=(",", ":")).encode()


def block_from_json(node: int, block: dict[str, Any], block_id: dict[str, Any], seen: float,
                    fetched: float) -> Block:
    """A Block from the `block` and `block_id` of /block or a NewBlock event."""
    header = block["header"]
    txs = (block.get("data") or {}).get("txs") or []
    return Block(node=node, number=int(header["height"]), hash=block_id.get("hash", ""),
                 parent=(header.get("last_block_id") or {}).get("hash", ""), seen=seen,
                 fetched=fetched, tx_ids=tuple(tx_hash(base64.b64decode(tx)) for tx in txs),
                 timestamp=parse_rfc3339(header["time"]) if header.get("time") else None)


def response_error(status: int, body: bytes) -> str | None:
    """A broadcast reply: None if accepted, else the JSON-RPC error or CheckTx's code and log."""
    try:
        reply = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"http {status}, reply is not JSON" if status != 200 else "reply is not JSON"
    if not isinstance(reply, dict):
        return "reply is not a JSON object"
    error = reply.get("error")
    if error:
        if isinstance(error, dict):  # CometBFT puts the reason (e.g. "mempool is full") in data
            message = error.get("data") or error.get("message") or str(error)
        else:
            message = str(error)
        return str(message)[:200]
    if status != 200:
        return f"http {status}"
    result = reply.get("result")
    if not isinstance(result, dict):
        return "reply has no result"
    code = result.get("code", 0)
    if code:
        detail = result.get("log") or result.get("codespace") or ""
        return f"code {code}: {detail}"[:200] if detail else f"code {code}"
    return None


def tx_query_body(tx_id: str, request_id: int) -> bytes:
    """JSON-RPC POST of `tx` (read one committed transaction back by hash; needs the node's
    tx indexer, `indexer: kv`). In JSON-RPC bodies CometBFT takes byte params as base64."""
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tx",
                       "params": {"hash": base64.b64encode(bytes.fromhex(tx_id)).decode(),
                                  "prove": False}}, separators=(",", ":")).encode()


def query_error(status: int, body: bytes) -> str | None:
    """A `tx` reply: None only if it carries the transaction (a hash and a height)."""
    error = response_error(status, body)
    if error:
        return error
    result = json.loads(body)["result"]
    if not result.get("hash") or not result.get("height"):
        return "reply has no transaction"
    return None


# ---------------------------------------------------------------------------- adapter


class CometbftAdapter(AdapterBase):
    family: ClassVar[str] = "cometbft"
    workloads: ClassVar[tuple[str, ...]] = ("kv",)
    submit_path: ClassVar[str] = "/"
    submit_headers: ClassVar[dict[str, str]] = {"Content-Type": "application/json"}

    def __init__(self, pack: ChainPack, params: dict[str, Any], nodes: int, seed: int,
                 accounts: int):
        super().__init__(pack, params, nodes, seed, accounts)  # kvstore has no accounts
        self.chain_id = str(self.options.get("chain_id", f"bctest-{pack.chain_id}"))
        self.p2p_port = int(self.options.get("p2p_port", 26656))
        mode = str(params.get("broadcast_mode", "sync")).lower()
        if mode not in BROADCAST_METHODS:
            raise InputError(str(pack.manifest), "params.broadcast_mode",
                             f"expected one of {', '.join(BROADCAST_METHODS)}, got {mode!r}")
        self.broadcast_method = BROADCAST_METHODS[mode]
        size = params.get("tx_size", 0)
        if isinstance(size, bool) or not isinstance(size, int | float) or not 0 <= size <= 1_000_000:
            raise InputError(str(pack.manifest), "params.tx_size",
                             f"expected a number of bytes 0..1000000, got {size!r}")
        self.tx_size = int(size)

    # -- node files

    def validator_keys(self) -> list[Ed25519Key]:
        """Every node's priv_validator key, by node index (a full node's is in no validator set)."""
        return [derive_key("validator", self.identity_seed, i) for i in range(self.nodes)]

    def validating_nodes(self) -> tuple[int, ...]:
        """The nodes in the genesis validator set: the root tier of a topology, else all."""
        if self.roles is None:
            return tuple(range(self.nodes))
        return tuple(i for i, role in enumerate(self.roles) if role == "root")

    def node_keys(self) -> list[Ed25519Key]:
        return [derive_key("node", self.identity_seed, i) for i in range(self.nodes)]

    def genesis(self, genesis_time: float | None = None) -> dict[str, Any]:
        """The shared genesis: every validating node (validating_nodes()) with equal power.

        Genesis time is now (a future time would make the nodes sleep until then; a
        far past one would give block 1 a misleading timestamp)."""
        power = str(int(self.options.get("power", 10)))
        keys = self.validator_keys()
        validators = [{"address": keys[i].address, "pub_key": keys[i].pub_key_json(),
                       "power": power, "name": f"node{i}"} for i in self.validating_nodes()]
        if not validators:   # the topology parser requires a root zone; a chain nobody extends
            raise ValueError("roles without a root node: the genesis would have no validator")
        return {
            "genesis_time": rfc3339(time.time() if genesis_time is None else genesis_time),
            "chain_id": self.chain_id,
            "initial_height": "1",
            "consensus_params": self.options.get("consensus_params", DEFAULT_CONSENSUS_PARAMS),
            "validators": validators,
            "app_hash": "",
        }

    def persistent_peers(self, index: int) -> str:
        return ",".join(f"{key.node_id}@node{j}:{self.p2p_port}"
                        for j, key in enumerate(self.node_keys()) if j != index)

    def node_files(self) -> dict[int, dict[str, bytes]]:
        genesis = json.dumps(self.genesis(), indent=2).encode()
        files = {}
        for i, (validator, node_key) in enumerate(zip(self.validator_keys(), self.node_keys(),
                                                      strict=True)):
            files[i] = {
                "genesis.json": genesis,
                "priv_validator_key.json": json.dumps(priv_validator_key_json(validator),
                                                      indent=2).encode(),
                "node_key.json": json.dumps(node_key_json(node_key)).encode(),
                "persistent_peers": self.persistent_peers(i).encode(),
                "node_id": node_key.node_id.encode(),
            }
        return files

    # -- transactions

    def prepare(self, count: int) -> PreparedSpool:
        # into a body spool file (load/spool.py): a million bodies never sit in memory
        writer = SpoolWriter()
        try:
            for i in range(count):
                tx = make_tx(self.seed, i, self.tx_size)
                writer.add(broadcast_body(tx, i, self.broadcast_method), tx_hash(tx))
        except BaseException:
            writer.abort()
            raise
        return writer.finish()

    @staticmethod
    def response_error(status: int, body: bytes) -> str | None:
        return response_error(status, body)

    # -- the read workload: `tx` reads a committed transaction back through the tx indexer

    query_kinds: ClassVar[tuple[str, ...]] = ("tx",)

    def query_request(self, kind: str, subject: Committed, request_id: int) -> Prepared:
        return Prepared(body=tx_query_body(subject.tx_id, request_id), tx_id=subject.tx_id)

    @staticmethod
    def query_error(status: int, body: bytes) -> str | None:
        return query_error(status, body)

    # -- node queries

    @staticmethod
    async def _get(session: aiohttp.ClientSession, node: Node, path: str, timeout: float = 10.0,
                   **query: Any) -> Any:
        url = node.url() + path
        try:
            async with session.get(url, params={k: str(v) for k, v in query.items()},
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                data = await read_bounded(resp.content, jsonrpc.MAX_CONTROL_REPLY)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CometError(f"{path} at {url}: {type(exc).__name__} {exc}") from None
        if len(data) > jsonrpc.MAX_CONTROL_REPLY:
            raise CometError(f"{path} at {url}: reply larger than {jsonrpc.MAX_CONTROL_REPLY} bytes")
        text = data.decode("utf-8", "replace")
        try:
            reply = json.loads(text)
        except (ValueError, RecursionError):
            raise CometError(f"{path} at {url}: HTTP {resp.status}, not JSON: {text[:200]!r}") from None
        if not isinstance(reply, dict) or reply.get("error") or "result" not in reply:
            detail = reply.get("error") if isinstance(reply, dict) else reply
            raise CometError(f"{path} at {url}: HTTP {resp.status}: {str(detail)[:200]}")
        return reply["result"]

    async def ready(self, node: Node) -> str | None:
        try:
            status = await self._get(self.control_session(), node, "/status", timeout=2)
        except CometError as exc:
            return str(exc)
        network = status.get("node_info", {}).get("network")
        if network != self.chain_id:
            return f"the node's network is {network!r}, the harness made genesis for {self.chain_id!r}"
        sync = status.get("sync_info", {})
        if sync.get("catching_up", True):
            return f"catching up (block sync) at height {sync.get('latest_block_height')}"
        return None

    async def height(self, node: Node) -> int:
        status = await self._get(self.control_session(), node, "/status", timeout=5)
        return int(status["sync_info"]["latest_block_height"])

    async def block_at(self, node: Node, number: int) -> Block:
        return await self._block(self.control_session(), node, number, time.monotonic())

    async def _block(self, session: aiohttp.ClientSession, node: Node, number: int,
                     seen: float) -> Block:
        result = await self._get(session, node, "/block", height=number)
        fetched = time.monotonic()
        if not result.get("block"):
            raise CometError(f"block {number} not found on {node.name}")
        return block_from_json(node.index, result["block"], result.get("block_id") or {}, seen,
                               fetched)

    async def watch(self, node: Node, on_block: OnBlock, stop: asyncio.Event,
                    subscribe: bool = True, poll_interval: float = 0.1) -> str:
        """Follow NewBlock events over /websocket; poll /status + /block if that fails."""
        async with aiohttp.ClientSession() as session:
            follower = _Follower(self, session, node, on_block)
            await follower.start()
            if subscribe:
                try:
                    await follower.websocket(stop)
                    return "websocket"
                except (aiohttp.ClientError, CometError, TimeoutError, ValueError, KeyError,
                        TypeError) as exc:
                    if stop.is_set():
                        return "websocket"
                    method = f"polling (websocket failed: {type(exc).__name__} {exc})"[:200]
            else:
                method = "polling"
            # Polling: the fallback, and the method when subscriptions are turned off.
            while not stop.is_set():
                try:
                    await follower.catch_up(await follower.head(), time.monotonic())
                except CometError:
                    pass
                try:
                    await asyncio.wait_for(stop.wait(), poll_interval)
                except TimeoutError:
                    pass
            return method

    def audit_expectations(self) -> dict[str, Any]:
        """The audit checks the commits are signed, on this run's chain id, by the validator
        keys the harness put in the genesis (with a topology: the root nodes' only)."""
        keys = self.validator_keys()
        return {"chain_id": self.chain_id,
                "validators": {keys[i].public for i in self.validating_nodes()}}

    async def raw_blocks(self, node: Node, numbers: list[int]) -> list[dict[str, Any]]:
        """For the authenticity audit (harness/audit/cometbft.py), per height N: the
        `/block?height=N` result ({"block", "block_id"}) plus "validators", the validator set
        of height N (whose precommits commit block N; fetched once per validators_hash), and,
        when N+1 is not among `numbers` (whose last_commit is N's commit), "commit": the
        commit of /commit?height=N."""
        session = self.control_session()
        blocks: list[dict[str, Any]] = []
        sets: dict[str, list[dict[str, Any]]] = {}
        for number in numbers:
            result = await self._get(session, node, "/block", timeout=30, height=number)
            header = (result.get("block") or {}).get("header") or {}
            key = str(header.get("validators_hash", ""))
            if key not in sets:
                sets[key] = await self.validators(node, number)
            blocks.append({**result, "validators": sets[key]})
        wanted = set(numbers)
        for number, result in zip(numbers, blocks, strict=True):
            if number + 1 not in wanted:
                reply = await self._get(session, node, "/commit", timeout=30, height=number)
                result["commit"] = (reply.get("signed_header") or {}).get("commit")
        return blocks

    async def validators(self, node: Node, height: int) -> list[dict[str, Any]]:
        """The validator set of `height`, in the set's order (/validators, 100 a page)."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            reply = await self._get(self.control_session(), node, "/validators", timeout=30,
                                    height=height, page=page, per_page=100)
            found += reply.get("validators") or []
            if not reply.get("validators") or len(found) >= int(reply.get("total") or 0):
                return found
            page += 1


class _Follower:
    """One node's block stream: reports every height after the one it started at, once."""

    def __init__(self, adapter: CometbftAdapter, session: aiohttp.ClientSession, node: Node,
                 on_block: OnBlock):
        self.adapter = adapter
        self.session = session
        self.node = node
        self.on_block = on_block
        self.last = 0

    async def start(self) -> None:
        self.last = await self.head()

    async def head(self) -> int:
        status = await self.adapter._get(self.session, self.node, "/status")
        return int(status["sync_info"]["latest_block_height"])

    def report(self, block: Block) -> None:
        self.on_block(block)
        self.last = block.number

    async def catch_up(self, head: int, seen: float) -> None:
        """Fetch and report the heights after the last one reported, up to `head`."""
        for number in range(self.last + 1, head + 1):
            self.report(await self.adapter._block(self.session, self.node, number, seen))

    async def websocket(self, stop: asyncio.Event) -> None:
        # NewBlock events carry every transaction (and its result): no message size cap.
        async with self.session.ws_connect(self.node.url("rpc", "ws") + "/websocket",
                                           heartbeat=20, max_msg_size=0) as ws:
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": SUBSCRIPTION_ID,
                                          "method": "subscribe",
                                          "params": {"query": NEW_BLOCK_QUERY}}))
            reply = await asyncio.wait_for(ws.receive_json(), 5)
            if reply.get("error") or "result" not in reply:
                raise CometError(f"subscribe refused: {str(reply)[:200]}")
            # Blocks made between the first height read and the subscription.
            await self.catch_up(await self.head(), time.monotonic())
            while not stop.is_set():
                receive = asyncio.ensure_future(ws.receive())
                stopped = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({receive, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if receive not in done:
                    receive.cancel()
                    return
                stopped.cancel()
                message = receive.result()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise CometError(f"websocket closed ({message.type.name})")
                seen = time.monotonic()
                block = self.parse_event(json.loads(message.data), seen)
                if block is not None:
                    await self.catch_up(block.number - 1, seen)  # heights the stream skipped
                    self.report(block)

    def parse_event(self, event: dict[str, Any], seen: float) -> Block | None:
        """The new block one websocket message carries, or None (an old height, no block)."""
        if event.get("error"):  # e.g. the subscription was cancelled as a slow client
            raise CometError(f"subscription ended: {str(event['error'])[:200]}")
        value = ((event.get("result") or {}).get("data") or {}).get("value") or {}
        block = value.get("block")
        if not block or int(block["header"]["height"]) <= self.last:
            return None
        # The event carries the transactions: fetched when seen.
        return block_from_json(self.node.index, block, value.get("block_id") or {}, seen, seen)
