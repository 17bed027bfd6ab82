"""The Bitcoin-family adapter: Bitcoin Core style JSON-RPC chains in regtest mode
(Litecoin Core is the reference pack; Bitcoin Core works with `hrp: bcrt`).

Regtest has no miners, so the harness produces the blocks:

  bootstrap  waits until every node is connected to every other (both directions, so
             whitelisted peers relay without trickle delays), mines coinbases to a
             harness key past maturity, and checks every node follows the miner.
  prepare    fans the matured coinbases out into one small P2WPKH UTXO per load
             transaction (two levels of Python-signed fan-out transactions, mined in
             before the load), then signs one 1-in-1-out P2WPKH spend per UTXO. No node
             wallet is involved; the load has no chained dependencies.
  drive      generatetoaddress(1) every `block_interval` seconds while the load runs,
             on node `miner`, or with `miners: k` on nodes miner..miner+k-1 in turn (so
             both sides of a partition mine and fork); reported in the bootstrap facts
             as `block_production`.
  watch      polls getbestblockhash; a block is reported once it is `confirmations`
             deep on that node, with the moment it became that deep; a changed ancestry
             is re-walked from the fork point.

RPC credentials are made per run: a random password, given to the nodes only as a
salted `rpcauth` line (/bctest/rpcauth.conf) and to the senders as an Authorization
header (this adapter's instance-level `submit_headers`).

Pack params:  block_interval (s), confirmations (depth), miner (node index), miners (count).
Pack options: hrp, coinbase_maturity, utxo_value, fee_rate (per vbyte), fanout_outputs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import math
import multiprocessing
import os
import re
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp

from harness import lifetime
from harness.adapters import bitcoin_tx as btx
from harness.adapters import jsonrpc
from harness.adapters.base import AdapterBase, Block, Committed, OnBlock, Prepared
from harness.chainpack import ChainPack
from harness.errors import InfraError, InputError
from harness.model import Node

RPC_USER = "bctest"
COIN = 100_000_000
PARALLEL_SIGNING_ABOVE = 100_000   # below, a process pool (spawned) costs more than it saves
LOAD_TX_VSIZE = 110            # 1 P2WPKH in, 1 P2WPKH out, with the largest low-S signature
MAX_FANOUT_L1_OUTPUTS = 200
TXID = re.compile(r"[0-9a-fA-F]{64}")
SYNC_TIMEOUT = 120.0
KEEP_HEIGHTS = 1024            # block hashes a watcher remembers per node


# -- pure parts (unit tested) ---------------------------------------------------------------

@dataclass(frozen=True)
class Utxo:
    txid: str          # display hex
    vout: int
    value: int         # smallest unit
    key: int           # index of the owning key (workload account)


def sign_load_batch(job: tuple[list[tuple[int, Utxo]], list[bytes], list[bytes], int]) -> list[Prepared]:
    """Sign one 1-in-1-out P2WPKH spend per (index, utxo); module-level for a process pool."""
    rows, key_secrets, recipients, fee = job
    keys = [btx.Key.from_secret(s) for s in key_secrets]
    out = []
    for index, utxo in rows:
        raw, txid = btx.spend_p2wpkh(btx.txid_to_bytes(utxo.txid), utxo.vout, utxo.value,
                                     keys[utxo.key], recipients[index % len(recipients)],
                                     utxo.value - fee)
        body = b'{"jsonrpc":"2.0","id":%d,"method":"sendrawtransaction","params":["%s"]}' % (
            index, raw.hex().encode())
        out.append(Prepared(body=body, tx_id=txid))
    return out


def estimate_vsize(p2wpkh_inputs: int, output_scripts: list[bytes]) -> int:
    """Virtual size of a transaction spending P2WPKH outputs, signatures at their largest."""
    base = (4 + len(btx.varint(p2wpkh_inputs)) + 41 * p2wpkh_inputs
            + len(btx.varint(len(output_scripts)))
            + sum(9 + len(s) for s in output_scripts) + 4)
    witness = 2 + p2wpkh_inputs * (1 + 1 + 72 + 1 + 33)
    return -(-(4 * base + witness) // 4)


@dataclass
class ChainView:
    """One node's active chain as the watcher knows it, and which blocks were reported.

    Blocks are reported once `confirmations` deep; their `seen` is when the block that
    made them that deep was first noticed. After a reorg, heights above the fork point
    are forgotten and re-reported from the new branch."""

    node: int
    confirmations: int
    hashes: dict[int, str] = field(default_factory=dict)
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)   # not yet reported
    seen: dict[int, tuple[float, float]] = field(default_factory=dict)  # height -> (seen, fetched)
    tip: int = -1
    reported: int = -1
    floor: int = 0

    @property
    def tip_hash(self) -> str | None:
        return self.hashes.get(self.tip)

    def start(self, tip_block: dict[str, Any], now: float) -> None:
        """Follow from this tip on; it and its ancestors are not reported."""
        height = int(tip_block["height"])
        self.hashes = {height: tip_block["hash"]}
        self.seen = {height: (now, now)}
        self.pending = {}
        self.tip = self.reported = self.floor = height

    def knows(self, block: dict[str, Any]) -> bool:
        return self.hashes.get(int(block["height"])) == block["hash"]

    def fork_point(self, block: dict[str, Any]) -> int | None:
        """The height this block attaches at, if its parent is on the known chain."""
        height = int(block["height"])
        if self.hashes.get(height - 1) == block.get("previousblockhash"):
            return height - 1
        if height - 1 < self.floor:  # older than anything followed: take it as the base
            return height - 1
        return None

    def rewind(self, height: int) -> None:
        """The tip moved back to a block already known at `height`."""
        for h in [h for h in self.hashes if h > height]:
            self.hashes.pop(h, None)
            self.pending.pop(h, None)
            self.seen.pop(h, None)
        self.tip = height
        self.reported = min(self.reported, height)

    def advance(self, blocks: list[dict[str, Any]], now: float, fetched: float) -> list[Block]:
        """Attach `blocks` (ascending, the first one's parent known) and return the blocks
        that became deep enough, oldest first."""
        if not blocks:
            return []
        self.rewind(int(blocks[0]["height"]) - 1)
        for block in blocks:
            height = int(block["height"])
            self.hashes[height] = block["hash"]
            self.seen[height] = (now, fetched)
            self.pending[height] = block
            self.tip = height
        deep_to = self.tip - self.confirmations + 1
        out = []
        for height in range(self.reported + 1, deep_to + 1):
            block = self.pending.pop(height, None)
            if block is None:
                continue
            seen, got = self.seen[height + self.confirmations - 1]
            out.append(Block(node=self.node, number=height, hash=block["hash"],
                             parent=block.get("previousblockhash", ""), seen=seen,
                             fetched=max(got, seen), tx_ids=tuple(block["tx"][1:]),  # no coinbase
                             timestamp=float(block["time"]) if "time" in block else None))
        self.reported = max(self.reported, deep_to)
        # Bounded memory on long runs: a reorg deeper than KEEP_HEIGHTS is re-walked from
        # the oldest height kept (the floor).
        for height in [h for h in self.hashes if h <= self.tip - KEEP_HEIGHTS]:
            del self.hashes[height]
            self.seen.pop(height, None)
        self.floor = max(self.floor, self.tip - KEEP_HEIGHTS + 1)
        return out


# -- a small blocking JSON-RPC client for bootstrap and fan-out (run in a thread) -----------

class SyncRpc:
    def __init__(self, url: str, headers: dict[str, str], name: str, timeout: float = 120):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.headers, self.name, self.timeout = headers, name, timeout
        self._conn: http.client.HTTPConnection | None = None
        self._ids = 0

    def call(self, method: str, *params: Any) -> Any:
        self._ids += 1
        body = jsonrpc.request_body(method, list(params), self._ids)
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request("POST", "/", body, self.headers)
                response = self._conn.getresponse()
                status, text = response.status, response.read(jsonrpc.MAX_CONTROL_REPLY + 1)
                break
            except (OSError, http.client.HTTPException) as exc:
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise jsonrpc.RpcError(f"{method} on {self.name}: {type(exc).__name__} {exc}") from None
        if len(text) > jsonrpc.MAX_CONTROL_REPLY:   # the rest is unread: this connection is done
            self.close()
            raise jsonrpc.RpcError(f"{method} on {self.name}: reply larger than "
                                   f"{jsonrpc.MAX_CONTROL_REPLY} bytes")
        try:
            reply = json.loads(text)
        except (ValueError, RecursionError):
            raise jsonrpc.RpcError(f"{method} on {self.name}: HTTP {status}: {text[:200]!r}") from None
        if not isinstance(reply, dict):
            raise jsonrpc.RpcError(f"{method} on {self.name}: HTTP {status}: not a JSON-RPC reply")
        if reply.get("error"):
            raise jsonrpc.RpcError(f"{method} on {self.name}: {reply['error']}")
        return reply.get("result")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _amount(value: float | int | str) -> int:
    """A JSON amount in coins → the smallest unit (exact for 8 decimals)."""
    return int(round(float(value) * COIN))


# -- the adapter ----------------------------------------------------------------------------

class BitcoinAdapter(AdapterBase):
    family: ClassVar[str] = "bitcoin"
    workloads: ClassVar[tuple[str, ...]] = ("transfer",)   # 1-in-1-out P2WPKH spends
    submit_path: ClassVar[str] = "/"
    # Class-level default; each instance adds its run's Authorization header (see __init__).
    submit_headers: ClassVar[dict[str, str]] = {"Content-Type": "application/json"}

    def __init__(self, pack: ChainPack, params: dict[str, Any], nodes: int, seed: int,
                 accounts: int):
        super().__init__(pack, params, nodes, seed, max(1, accounts))
        options = pack.options
        self.block_interval = self._number("block_interval", 2, float, minimum=0.05)
        self.confirmations = self._number("confirmations", 1, int, minimum=1)
        self.miner = self._number("miner", 0, int, minimum=0)
        if self.miner >= nodes:
            raise InputError(None, "params.miner", f"expected a node index below {nodes} "
                             f"(the suite runs {nodes} nodes), got {self.miner}")
        self.miners = self._number("miners", 1, int, minimum=1)
        if self.miner + self.miners > nodes:
            raise InputError(None, "params.miners", f"expected at most {nodes - self.miner} "
                             f"(nodes {self.miner}..{nodes - 1} take turns), got {self.miners}")
        self.hrp = str(options.get("hrp", "rltc"))
        self.maturity = int(options.get("coinbase_maturity", 100))
        self.utxo_value = int(options.get("utxo_value", 50_000))
        self.fee_rate = float(options.get("fee_rate", 2))
        self.fanout_outputs = int(options.get("fanout_outputs", 2000))
        self.load_fee = int(math.ceil(LOAD_TX_VSIZE * self.fee_rate))
        if self.utxo_value <= 2 * self.load_fee:
            raise InputError(str(pack.manifest), "options.utxo_value",
                             f"expected more than twice the load fee ({self.load_fee}), "
                             f"got {self.utxo_value}")
        # Per-run RPC credentials: nodes get only the salted HMAC (rpcauth).
        self.rpc_password = secrets.token_hex(24)
        token = base64.b64encode(f"{RPC_USER}:{self.rpc_password}".encode()).decode()
        self.submit_headers = {**type(self).submit_headers, "Authorization": f"Basic {token}"}
        self.funder = btx.derive_key("funder", seed, 0)
        self.funder_address = btx.segwit_address(self.hrp, 0, self.funder.pubkey_hash)
        self.keys = [btx.derive_key("utxo", seed, k) for k in range(self.accounts)]
        self.recipients = [btx.derive_key("recipient", seed, k).p2wpkh for k in range(64)]
        self.utxos: list[Utxo] = []
        self.coinbases: list[tuple[int, str, int]] = []   # (height, txid, value) unspent, ours
        self.facts: dict[str, Any] = {}
        self._nodes: list[Node] = []

    def _number(self, name: str, default: Any, kind: type, minimum: float) -> Any:
        raw = self.params.get(name, default)
        try:
            value = kind(raw)
            if isinstance(raw, bool) or value < minimum or (kind is int and value != float(raw)):
                raise ValueError
        except (TypeError, ValueError):
            raise InputError(None, f"params.{name}", f"expected {'an integer' if kind is int else 'a number'}"
                             f" >= {minimum:g} for chain '{self.pack.name}', got {raw!r}") from None
        return value

    # -- files and control connections ---------------------------------------------------

    def node_files(self) -> dict[int, dict[str, bytes]]:
        salt = secrets.token_hex(16)
        digest = hmac.new(salt.encode(), self.rpc_password.encode(), hashlib.sha256).hexdigest()
        line = f"rpcauth={RPC_USER}:{salt}${digest}\n".encode()
        return {i: {"rpcauth.conf": line} for i in range(self.nodes)}

    async def _call(self, node: Node, method: str, params: list[Any] | None = None,
                    timeout: float = 10.0, session: aiohttp.ClientSession | None = None) -> Any:
        return await jsonrpc.call(session or self.control_session(), node.url(), method, params or [],
                                  timeout=timeout, headers=self.submit_headers)

    def _sync(self, node: Node) -> SyncRpc:
        return SyncRpc(node.url(), self.submit_headers, node.name)

    async def ready(self, node: Node) -> str | None:
        try:
            info = await self._call(node, "getblockchaininfo", timeout=2)
        except jsonrpc.RpcError as exc:
            return str(exc)
        if not isinstance(info, dict) or "blocks" not in info:
            return f"getblockchaininfo answered {str(info)[:100]}"
        return None

    async def height(self, node: Node) -> int:
        return int(await self._call(node, "getblockcount", timeout=5))

    @staticmethod
    def response_error(status: int, body: bytes) -> str | None:
        return BitcoinAdapter.submit_error(status, body)

    @staticmethod
    def rpc_error(status: int, body: bytes) -> str | None:
        """Bitcoin Core answers RPC errors with HTTP 500 and a JSON error object."""
        if status == 401:
            return "http 401 (rpc credentials refused)"
        try:
            reply = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            reply = None
        if not isinstance(reply, dict):
            text = body[:120].decode("utf-8", "replace").strip()
            return f"http {status}: {text}" if text else f"http {status}"
        error = reply.get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else None
            if not isinstance(message, str) or not message:   # never an empty reason
                return f"error: {json.dumps(error)}"[:200]
            return f"{message[:200]} (code {error['code']})" if "code" in error else message[:200]
        if status != 200:
            return f"http {status}"
        if reply.get("result") is None:
            return "reply has no result"
        return None

    @staticmethod
    def submit_error(status: int, body: bytes) -> str | None:
        """A submission is accepted only with a txid as the result (sendrawtransaction)."""
        error = BitcoinAdapter.rpc_error(status, body)
        if error is None and not TXID.fullmatch(str(json.loads(body)["result"])):
            return "reply's result is not a txid"
        return error

    # -- the read workload ------------------------------------------------------------------
    # tx: getrawtransaction <txid> false <blockhash>. The nodes run without -txindex
    # (chains/litecoin/entrypoint.sh), so the block hash the History saw the tx in is given;
    # no wallet is needed (gettransaction would need one).

    query_kinds: ClassVar[tuple[str, ...]] = ("tx",)

    def query_request(self, kind: str, subject: Committed, request_id: int) -> Prepared:
        return Prepared(body=jsonrpc.request_body("getrawtransaction",
                                                  [subject.tx_id, False, subject.block_hash],
                                                  request_id), tx_id=subject.tx_id)

    @staticmethod
    def query_error(status: int, body: bytes) -> str | None:
        """Answered: no RPC error and the raw transaction's hex."""
        error = BitcoinAdapter.rpc_error(status, body)
        if error == "reply has no result":
            return "reply has no transaction"
        if error:
            return error
        result = json.loads(body).get("result")
        return None if isinstance(result, str) and result else "reply has no transaction"

    # -- bootstrap: peers, coinbases ------------------------------------------------------

    async def bootstrap(self, nodes: list[Node], count: int | None = None) -> dict[str, Any]:
        """Connect the peers both ways, mine coinbases past maturity, sync every node; with
        `count` (the planned transactions) also fan out the UTXOs now rather than in prepare."""
        self._nodes = list(nodes)
        started = time.monotonic()
        miners = [n.name for n in nodes[self.miner:self.miner + self.miners]]
        self.facts.update({
            "block_production": (f"harness generatetoaddress every {self.block_interval:g} s "
                                 f"on {' then '.join(miners) if len(miners) > 1 else miners[0]}"),
            "miner": miners[0] if len(miners) == 1 else miners,
            "block_interval_s": self.block_interval,
            "confirmations": self.confirmations,
            "commit_rule": f"block {self.confirmations} deep on the node (depth 1 = in the tip block)",
            "rpc_auth": f"rpcauth user {RPC_USER}, per-run random password",
        })
        await asyncio.to_thread(self._bootstrap_sync, count)
        self.facts["bootstrap_seconds"] = round(time.monotonic() - started, 3)
        return self.facts

    def _bootstrap_sync(self, count: int | None) -> None:
        with self._rpcs("bootstrap") as rpcs:
            self.facts["peers"] = self._connect_peers(rpcs)
            info = rpcs[self.miner].call("getblockchaininfo")
            self.facts["chain"] = info.get("chain")
            self._mine(rpcs, self.maturity + 1)   # more coinbases are mined as the fan-out needs
            self.facts["coinbase_blocks"] = rpcs[self.miner].call("getblockcount")
            if count is not None:
                self._fan_out(rpcs, count)

    @contextlib.contextmanager
    def _rpcs(self, stage: str) -> Iterator[list[SyncRpc]]:
        """Blocking RPC clients for every node; a failed call is an infrastructure failure."""
        rpcs = [self._sync(n) for n in self._nodes]
        try:
            yield rpcs
        except jsonrpc.RpcError as exc:
            raise InfraError(f"{stage} failed: {exc}; see the node logs in logs/") from None
        finally:
            for rpc in rpcs:
                rpc.close()

    def _connect_peers(self, rpcs: list[SyncRpc]) -> dict[str, int]:
        """Every node keeps an outbound connection to every other one, so each pair has a
        connection that is inbound (whitelisted: prompt relay) on either side."""
        names = [n.name for n in self._nodes]
        deadline = time.monotonic() + 60
        while True:
            missing = []
            counts = {}
            for rpc, name in zip(rpcs, names, strict=True):
                peers = rpc.call("getpeerinfo")
                counts[name] = len(peers)
                outbound = {p.get("addr", "").rsplit(":", 1)[0] for p in peers if not p.get("inbound")}
                for other in names:
                    if other != name and other not in outbound:
                        missing.append((rpc, name, other))
            if not missing:
                return counts
            if time.monotonic() > deadline:
                raise InfraError("peers did not connect within 60 s: " + ", ".join(
                    f"{a} → {b}" for _, a, b in missing[:8]) + "; see the node logs in logs/")
            for rpc, _name, other in missing:
                try:
                    rpc.call("addnode", f"{other}:{self.pack.ports.get('p2p', 19444)}", "onetry")
                except jsonrpc.RpcError:
                    pass  # retried on the next round
            time.sleep(1)

    def _mine(self, rpcs: list[SyncRpc], blocks: int) -> list[str]:
        """Mine `blocks` blocks to the funder key on the miner, remember their coinbases,
        and wait until every node has the new tip."""
        miner = rpcs[self.miner]
        hashes: list[str] = []
        while len(hashes) < blocks:
            batch = min(200, blocks - len(hashes))
            hashes += miner.call("generatetoaddress", batch, self.funder_address)
        for block_hash in hashes:
            block = miner.call("getblock", block_hash, 1)
            coinbase = miner.call("getrawtransaction", block["tx"][0], True, block_hash)
            self.coinbases.append((int(block["height"]), coinbase["txid"],
                                   _amount(coinbase["vout"][0]["value"])))
        self._wait_synced(rpcs)
        return hashes

    def _wait_synced(self, rpcs: list[SyncRpc]) -> str:
        target = rpcs[self.miner].call("getbestblockhash")
        deadline = time.monotonic() + SYNC_TIMEOUT
        while True:
            tips = {rpc.name: rpc.call("getbestblockhash") for rpc in rpcs}
            if all(t == target for t in tips.values()):
                return target
            if time.monotonic() > deadline:
                behind = ", ".join(name for name, t in tips.items() if t != target)
                raise InfraError(f"nodes did not follow the miner's tip {target} within "
                                 f"{SYNC_TIMEOUT:g} s: {behind}; see the node logs in logs/")
            time.sleep(0.2)

    # -- fan-out: coinbases → level-1 outputs → one UTXO per load transaction --------------

    def _fan_out(self, rpcs: list[SyncRpc], count: int) -> None:
        """Create UTXOs until there are `count`, each `utxo_value`, owned by the account keys."""
        need = count - len(self.utxos)
        if need <= 0:
            return
        started = time.monotonic()
        miner = rpcs[self.miner]
        k = self.fanout_outputs
        sizes = [min(k, need - i) for i in range(0, need, k)]
        funder_script = self.funder.p2wpkh

        def l2_input(size: int) -> int:
            scripts = [funder_script] * size
            return size * self.utxo_value + math.ceil(estimate_vsize(1, scripts) * self.fee_rate)

        # Level 1: each mature coinbase pays several level-2 inputs (and change).
        l1_txs: list[tuple[btx.Tx, list[int]]] = []   # tx, indexes into `sizes` it funds
        todo = list(range(len(sizes)))
        blocks_mined = 0
        while todo:
            tip = miner.call("getblockcount")
            mature = [c for c in self.coinbases if c[0] <= tip - self.maturity]
            if not mature:
                self._mine(rpcs, 1)
                blocks_mined += 1
                continue
            height, txid, value = mature[0]
            self.coinbases.remove(mature[0])
            funded, outputs, total = [], [], 0
            while todo and len(funded) < MAX_FANOUT_L1_OUTPUTS:
                amount = l2_input(sizes[todo[0]])
                fee = math.ceil(estimate_vsize(1, [funder_script] * (len(outputs) + 2)) * self.fee_rate)
                if total + amount + fee + self.utxo_value > value:
                    break
                funded.append(todo.pop(0))
                outputs.append(btx.TxOut(amount, funder_script))
                total += amount
            if not funded:
                raise InfraError(f"a coinbase of {value} cannot fund a fan-out of {sizes[todo[0]]} "
                                 f"outputs; lower options.utxo_value or options.fanout_outputs")
            fee = math.ceil(estimate_vsize(1, [funder_script] * (len(outputs) + 1)) * self.fee_rate)
            outputs.append(btx.TxOut(value - total - fee, funder_script))   # change
            tx = btx.Tx([btx.TxIn(btx.txid_to_bytes(txid), 0)], outputs)
            btx.sign_p2wpkh(tx, 0, self.funder, value)
            l1_txs.append((tx, funded))
        for tx, _ in l1_txs:
            miner.call("sendrawtransaction", tx.serialize().hex())
        blocks_mined += self._mine_mempool(rpcs)
        # Level 2: one transaction per `fanout_outputs` load UTXOs.
        l2_txs = []
        first = len(self.utxos)
        for l1, funded in l1_txs:
            l1_txid = l1.txid()
            for vout, size_index in enumerate(funded):
                size = sizes[size_index]
                offset = first + sum(sizes[:size_index])
                owners = [(offset + j) % self.accounts for j in range(size)]
                tx = btx.Tx([btx.TxIn(btx.txid_to_bytes(l1_txid), vout)],
                            [btx.TxOut(self.utxo_value, self.keys[o].p2wpkh) for o in owners])
                btx.sign_p2wpkh(tx, 0, self.funder, l1.outputs[vout].value)
                l2_txs.append((size_index, tx, owners))
        l2_txs.sort(key=lambda row: row[0])
        for _, tx, _ in l2_txs:
            miner.call("sendrawtransaction", tx.serialize().hex())
        blocks_mined += self._mine_mempool(rpcs)
        for _, tx, owners in l2_txs:
            txid = tx.txid()
            self.utxos += [Utxo(txid, vout, self.utxo_value, owner) for vout, owner in enumerate(owners)]
        self.facts["utxos"] = len(self.utxos)
        self.facts["utxo_value"] = self.utxo_value
        self.facts["load_tx_fee"] = self.load_fee
        self.facts["fanout_txs"] = self.facts.get("fanout_txs", 0) + len(l1_txs) + len(l2_txs)
        self.facts["fanout_blocks"] = self.facts.get("fanout_blocks", 0) + blocks_mined
        self.facts["fanout_seconds"] = round(self.facts.get("fanout_seconds", 0)
                                             + time.monotonic() - started, 3)

    def _mine_mempool(self, rpcs: list[SyncRpc]) -> int:
        """Mine blocks on the miner until its mempool is empty; every node must follow."""
        miner = rpcs[self.miner]
        mined = 0
        while miner.call("getmempoolinfo")["size"] > 0:
            if mined >= 200:
                raise InfraError("fan-out transactions stayed in the mempool after 200 blocks")
            self._mine(rpcs, 1)
            mined += 1
        self._wait_synced(rpcs)
        return mined

    # -- prepare: the load ----------------------------------------------------------------

    def prepare(self, count: int) -> list[Prepared]:
        if len(self.utxos) < count:
            if not self._nodes:
                raise InfraError("prepare() needs bootstrap() first (it mines the coinbases)")
            with self._rpcs("the UTXO fan-out") as rpcs:
                self._fan_out(rpcs, count)
        rows = list(enumerate(self.utxos[:count]))
        secrets_ = [k.secret for k in self.keys]
        if count <= PARALLEL_SIGNING_ABOVE:
            return sign_load_batch((rows, secrets_, self.recipients, self.load_fee))
        workers = os.cpu_count() or 1
        size = -(-count // (workers * 4))
        jobs = [(rows[i:i + size], secrets_, self.recipients, self.load_fee)
                for i in range(0, count, size)]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=lifetime.die_with_parent,   # die with the harness
                                 initargs=(os.getpid(),)) as pool:
            return [p for batch in pool.map(sign_load_batch, jobs) for p in batch]

    # -- drive: the harness is the miner -------------------------------------------------

    async def drive(self, nodes: list[Node], stop: asyncio.Event) -> None:
        miners = nodes[self.miner:self.miner + self.miners]
        generated, failures, last_error, turn = 0, 0, None, 0
        async with aiohttp.ClientSession() as session:
            next_at = time.monotonic() + self.block_interval
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
                    break
                except TimeoutError:
                    pass
                miner, turn = miners[turn % len(miners)], turn + 1
                try:
                    await self._call(miner, "generatetoaddress", [1, self.funder_address],
                                     timeout=max(30.0, 5 * self.block_interval), session=session)
                    generated += 1
                except jsonrpc.RpcError as exc:
                    failures += 1
                    last_error = str(exc)[:200]
                next_at += self.block_interval
                now = time.monotonic()
                if next_at < now:  # mining took longer than the interval: no catch-up burst
                    next_at = now
                self.facts["blocks_generated"] = generated
                self.facts["generate_failures"] = failures
                if last_error:
                    self.facts["generate_last_error"] = last_error

    async def block_at(self, node: Node, number: int) -> Block:
        block_hash = await self._call(node, "getblockhash", [number], timeout=30)
        raw = await self._call(node, "getblock", [block_hash, 1], timeout=30)
        now = time.monotonic()
        return Block(node=node.index, number=number, hash=raw["hash"],
                     parent=raw.get("previousblockhash", ""), seen=now, fetched=now,
                     tx_ids=tuple(raw["tx"][1:]), timestamp=float(raw.get("time", 0)))

    # -- watch: depth-aware polling -------------------------------------------------------

    async def watch(self, node: Node, on_block: OnBlock, stop: asyncio.Event,
                    subscribe: bool = True, poll_interval: float = 0.1) -> str:
        """Poll the node's best block hash; report blocks when `confirmations` deep."""
        view = ChainView(node=node.index, confirmations=self.confirmations)
        async with aiohttp.ClientSession() as session:
            async def call(method: str, *params: Any) -> Any:
                return await self._call(node, method, list(params), timeout=30, session=session)

            best = await call("getbestblockhash")
            view.start(await call("getblockheader", best), time.monotonic())
            while not stop.is_set():
                try:
                    best = await call("getbestblockhash")
                    if best != view.tip_hash:
                        seen = time.monotonic()
                        new: list[dict[str, Any]] = []
                        block_hash = best
                        while True:
                            block = await call("getblock", block_hash, 1)
                            if view.knows(block):      # the tip moved back onto known ground
                                view.rewind(int(block["height"]))
                                break
                            new.append(block)
                            if view.fork_point(block) is not None:
                                break
                            block_hash = block["previousblockhash"]
                        for deep in view.advance(new[::-1], seen, time.monotonic()):
                            on_block(deep)
                except jsonrpc.RpcError:
                    pass  # a node that is down or busy is retried on the next poll
                try:
                    await asyncio.wait_for(stop.wait(), poll_interval)
                except TimeoutError:
                    pass
        return "polling"

    def audit_expectations(self) -> dict[str, Any]:
        """The run's UTXOs, outpoint -> (value, the owning harness key's P2WPKH script), so the
        audit checks the run's spends are signed by the harness's keys."""
        return {"prevouts": {(u.txid, u.vout): (u.value, self.keys[u.key].p2wpkh) for u in self.utxos}}

    async def raw_blocks(self, node: Node, numbers: list[int]) -> list[dict[str, Any]]:
        """{"height", "hash" (as the node reports it), "raw" (`getblock <hash> 0`: the
        serialized block)} per height, for the authenticity audit (harness/audit/bitcoin.py)."""
        out = []
        for number in numbers:
            block_hash = await self._call(node, "getblockhash", [number], timeout=30)
            raw = await self._call(node, "getblock", [block_hash, 0], timeout=60)
            out.append({"height": number, "hash": block_hash, "raw": raw})
        return out
