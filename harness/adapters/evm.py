"""The EVM adapter: one adapter for any JSON-RPC EVM chain (anvil, geth, ...).

Per-chain differences live in the chain pack (`options`), not in forks of this code:
  gas_price_gwei   gas price of the legacy transfers (default 10)
  funding_wei      balance of every sender account in the genesis alloc
  genesis          extra keys merged into the generated genesis.json
  genesis_config   extra keys merged into genesis.json's "config"
  clique           true: proof-of-authority with every node a signer (with a three-tier
                   topology, adapter.roles: the root nodes only; the others sync and do
                   not seal). The adapter then also writes per node /bctest/nodekey and
                   /bctest/enodes, and per signer /bctest/signer.key, puts the signers in
                   the genesis extradata and takes the block period from the pack
                   parameter `period`.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import time
from array import array
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Any, ClassVar

import aiohttp

from harness import lifetime
from harness.adapters import jsonrpc
from harness.adapters.base import AdapterBase, Block, Committed, OnBlock, Prepared
from harness.adapters.evm_tx import derive_account, public_key_hex, sign_transfer
from harness.adapters.follow import BlockMissing, ChainFollower
from harness.chainpack import ChainPack
from harness.load.spool import PreparedSpool, SpoolWriter
from harness.model import Node

TRANSFER_GAS = 21_000
TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
HEX_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}")
PARALLEL_SIGNING_ABOVE = 20_000


# Per signing process: the run's keys and recipients, set once by _init_signer (a job then
# is just a range of indexes, so nothing per transaction crosses the process boundary).
_SIGNER: dict[str, Any] = {}
SIGNING_CHUNK = 8192


def _init_signer(parent: int, keys: list[bytes], recipients: list[bytes], gas_price: int,
                 chain_id: int) -> None:
    if parent:
        lifetime.die_with_parent(parent)   # an orphan would block for ever on its result
    _SIGNER.update(keys=keys, recipients=recipients, gas_price=gas_price, chain_id=chain_id)


def _sign_range(span: tuple[int, int]) -> tuple[bytes, array, bytes, array]:
    """Sign transactions start..stop-1: tx i is from key i % accounts with nonce
    i // accounts, to recipient i % recipients. Returns the eth_sendRawTransaction bodies
    and the tx ids, each concatenated with their lengths (cheap to pickle, see load/spool.py)."""
    keys, recipients = _SIGNER["keys"], _SIGNER["recipients"]
    gas_price, chain_id = _SIGNER["gas_price"], _SIGNER["chain_id"]
    accounts, spread = len(keys), len(recipients)
    bodies, ids = [], []
    for i in range(*span):
        raw, tx_hash = sign_transfer(keys[i % accounts], i // accounts, gas_price, TRANSFER_GAS,
                                     recipients[i % spread], 1, chain_id)
        # byte for byte jsonrpc.request_body("eth_sendRawTransaction", ["0x" + raw.hex()], i)
        bodies.append(b'{"jsonrpc":"2.0","id":%d,"method":"eth_sendRawTransaction",'
                      b'"params":["0x%s"]}' % (i, raw.hex().encode()))
        ids.append(b"0x" + tx_hash.hex().encode())
    return (b"".join(bodies), array("q", map(len, bodies)), b"".join(ids),
            array("q", map(len, ids)))


class BlockNotFound(jsonrpc.RpcError, BlockMissing):
    """eth_getBlockByNumber answered null for a height the node had announced."""


class EvmAdapter(AdapterBase):
    family: ClassVar[str] = "evm"
    workloads: ClassVar[tuple[str, ...]] = ("transfer",)
    submit_path: ClassVar[str] = "/"
    submit_headers: ClassVar[dict[str, str]] = {"Content-Type": "application/json"}
    # tx: eth_getTransactionReceipt of the run's committed txs; balance: eth_getBalance of
    # the run's sender accounts at "latest".
    query_kinds: ClassVar[tuple[str, ...]] = ("tx", "balance")

    def __init__(self, pack: ChainPack, params: dict[str, Any], nodes: int, seed: int,
                 accounts: int):
        super().__init__(pack, params, nodes, seed, accounts)
        self.chain_id = pack.chain_id
        self.gas_price = int(float(self.options.get("gas_price_gwei", 10)) * 10**9)
        self._senders: list = []

    def senders(self, accounts: int) -> list:
        while len(self._senders) < accounts:
            self._senders.append(derive_account("sender", self.seed, len(self._senders)))
        return self._senders[:accounts]

    def genesis(self, accounts: int) -> dict[str, Any]:
        funding = hex(int(self.options.get("funding_wei", 10**24)))
        config = {
            "chainId": self.chain_id, "homesteadBlock": 0, "eip150Block": 0, "eip155Block": 0,
            "eip158Block": 0, "byzantiumBlock": 0, "constantinopleBlock": 0,
            "petersburgBlock": 0, "istanbulBlock": 0, "berlinBlock": 0, "londonBlock": 0,
            **self.options.get("genesis_config", {}),
        }
        gas_limit = int(self.params.get("gas_limit", 30_000_000))
        genesis = {
            "config": config,
            "nonce": "0x0",
            "timestamp": hex(int(time.time())),
            "gasLimit": hex(gas_limit),
            "difficulty": "0x1",
            "alloc": {a.hex_address[2:]: {"balance": funding} for a in self.senders(accounts)},
            **self.options.get("genesis", {}),
        }
        if self.options.get("clique"):
            config["clique"] = {"period": int(self.params.get("period", 1)), "epoch": 30000}
            keys = self.signers()
            signers = b"".join(keys[i].address for i in self.signer_nodes())
            genesis["extraData"] = "0x" + (bytes(32) + signers + bytes(65)).hex()
        return genesis

    def signers(self) -> list:
        """Every node's Clique signer account, by node index (a non-signer's is never used)."""
        return [derive_account("signer", self.identity_seed, i) for i in range(self.nodes)]

    def signer_nodes(self) -> tuple[int, ...]:
        """The nodes that seal: the root tier of a topology, else every node."""
        if self.roles is None:
            return tuple(range(self.nodes))
        chosen = tuple(i for i, role in enumerate(self.roles) if role == "root")
        if not chosen:   # the topology parser requires a root zone; a chain nobody extends
            raise ValueError("roles without a root node: Clique would have no signer")
        return chosen

    def node_files(self) -> dict[int, dict[str, bytes]]:
        genesis = json.dumps(self.genesis(self.accounts), indent=1).encode()
        files = {i: {"genesis.json": genesis} for i in range(self.nodes)}
        if self.options.get("clique"):
            p2p = [derive_account("p2p", self.identity_seed, i) for i in range(self.nodes)]
            enodes = "".join(f"node{i} {public_key_hex(a.key)}\n" for i, a in enumerate(p2p)).encode()
            sealing = set(self.signer_nodes())
            for i, signer in enumerate(self.signers()):
                files[i].update({"nodekey": p2p[i].key.hex().encode(), "enodes": enodes})
                if i in sealing:   # no signer.key: the vendor contract's "sync, do not seal"
                    files[i]["signer.key"] = signer.key.hex().encode()
        return files

    async def ready(self, node: Node) -> str | None:
        session = self.control_session()
        try:
            chain_id = int(await jsonrpc.call(session, node.url(), "eth_chainId", timeout=2), 16)
            await jsonrpc.call(session, node.url(), "eth_blockNumber", timeout=2)
        except jsonrpc.RpcError as exc:
            return str(exc)
        if chain_id != self.chain_id:
            return f"eth_chainId is {chain_id}, the chain pack says {self.chain_id}"
        return None

    async def height(self, node: Node) -> int:
        return int(await jsonrpc.call(self.control_session(), node.url(), "eth_blockNumber",
                                      timeout=5), 16)

    def prepare(self, count: int) -> PreparedSpool:
        """Sign `count` transfers into a spool file (load/spool.py), in parallel processes
        above PARALLEL_SIGNING_ABOVE; chunks are written in order as they come back, at most
        two per process in flight, so memory stays flat however many are signed."""
        setup = ([a.key for a in self.senders(self.accounts)],
                 [derive_account("recipient", self.seed, i).address for i in range(64)],
                 self.gas_price, self.chain_id)
        spans = [(i, min(count, i + SIGNING_CHUNK)) for i in range(0, count, SIGNING_CHUNK)]
        writer = SpoolWriter()
        try:
            if count <= PARALLEL_SIGNING_ABOVE:
                _init_signer(0, *setup)
                for span in spans:
                    writer.add_batch(*_sign_range(span))
                return writer.finish()
            workers = os.cpu_count() or 1
            # Spawned, never forked from a process holding Docker SDK threads; workers die with
            # the harness (harness.lifetime).
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_init_signer,
                                     initargs=(os.getpid(), *setup)) as pool:
                pending: deque = deque()
                for span in spans:
                    pending.append(pool.submit(_sign_range, span))
                    if len(pending) >= 2 * workers:
                        writer.add_batch(*pending.popleft().result())
                while pending:
                    writer.add_batch(*pending.popleft().result())
            return writer.finish()
        except BaseException:
            writer.abort()
            raise

    @staticmethod
    def response_error(status: int, body: bytes) -> str | None:
        """Accepted only with the transaction's hash as the result (eth_sendRawTransaction)."""
        error = jsonrpc.response_error(status, body)
        if error is None and not TX_HASH.fullmatch(str(json.loads(body)["result"])):
            return "reply's result is not a transaction hash"
        return error

    def query_subjects(self, kind: str, committed: list[Committed]) -> list[Any]:
        if kind == "balance":
            return [a.hex_address for a in self.senders(self.accounts)]
        return super().query_subjects(kind, committed)

    def query_request(self, kind: str, subject: Any, request_id: int) -> Prepared:
        if kind == "balance":
            return Prepared(body=jsonrpc.request_body("eth_getBalance", [subject, "latest"], request_id),
                            tx_id=subject)
        return Prepared(body=jsonrpc.request_body("eth_getTransactionReceipt", [subject.tx_id],
                                                  request_id), tx_id=subject.tx_id)

    @staticmethod
    def query_error(status: int, body: bytes) -> str | None:
        """Answered: no JSON-RPC error and a result that is what was asked for: a receipt of
        a mined transaction (with its block), or a balance (a hex quantity)."""
        error = jsonrpc.result_error(status, body)
        if error is not None:
            return error
        result = json.loads(body)["result"]
        if isinstance(result, dict):
            return None if isinstance(result.get("blockHash"), str) else "reply is not a mined receipt"
        return None if isinstance(result, str) and HEX_QUANTITY.fullmatch(result) else \
            "reply is neither a receipt nor a balance"

    async def block_at(self, node: Node, number: int) -> Block:
        return await self._block(self.control_session(), node, number, time.monotonic())

    async def _block(self, session: aiohttp.ClientSession, node: Node, number: int,
                     seen: float) -> Block:
        raw = await jsonrpc.call(session, node.url(), "eth_getBlockByNumber", [hex(number), False])
        fetched = time.monotonic()
        if raw is None:
            raise BlockNotFound(f"block {number} not found on {node.name}")
        return Block(node=node.index, number=number, hash=raw["hash"], parent=raw["parentHash"],
                     seen=seen, fetched=fetched, tx_ids=tuple(raw.get("transactions", [])),
                     timestamp=float(int(raw["timestamp"], 16)))

    async def watch(self, node: Node, on_block: OnBlock, stop: asyncio.Event,
                    subscribe: bool = True, poll_interval: float = 0.1) -> str:
        """Follow new heads over websocket (eth_subscribe); poll eth_blockNumber if that fails."""
        async with aiohttp.ClientSession() as session:
            async def fetch(number: int, seen: float) -> Block:
                return await self._block(session, node, number, seen)

            start = int(await jsonrpc.call(session, node.url(), "eth_blockNumber"), 16)
            follower = ChainFollower(fetch, on_block, start)

            if subscribe:
                ws_port = "ws" if "ws" in node.host_ports else "rpc"
                try:
                    async with session.ws_connect(node.url(ws_port, "ws"), heartbeat=20) as ws:
                        await ws.send_str(jsonrpc.request_body("eth_subscribe", ["newHeads"]).decode())
                        reply = await asyncio.wait_for(ws.receive_json(), 5)
                        if "result" not in reply:
                            raise jsonrpc.RpcError(f"eth_subscribe refused: {reply}")
                        await follower.advance(
                            int(await jsonrpc.call(session, node.url(), "eth_blockNumber"), 16),
                            time.monotonic())
                        while not stop.is_set():
                            receive = asyncio.ensure_future(ws.receive())
                            stopped = asyncio.ensure_future(stop.wait())
                            done, _ = await asyncio.wait({receive, stopped},
                                                         return_when=asyncio.FIRST_COMPLETED)
                            if receive not in done:
                                receive.cancel()
                                break
                            stopped.cancel()
                            message = receive.result()
                            if message.type != aiohttp.WSMsgType.TEXT:
                                raise jsonrpc.RpcError(f"websocket closed ({message.type.name})")
                            seen = time.monotonic()
                            head = json.loads(message.data).get("params", {}).get("result", {})
                            if "number" in head:
                                await follower.advance(int(head["number"], 16), seen, head.get("hash"))
                        return "websocket"
                except (aiohttp.ClientError, jsonrpc.RpcError, TimeoutError, ValueError) as exc:
                    if stop.is_set():
                        return "websocket"
                    method = f"polling (websocket failed: {type(exc).__name__} {exc})"[:200]
            else:
                method = "polling"
            # Polling: the fallback, and the method when subscriptions are turned off.
            while not stop.is_set():
                try:
                    seen = time.monotonic()
                    head = await jsonrpc.call(session, node.url(), "eth_getBlockByNumber",
                                              ["latest", False])
                    await follower.advance(int(head["number"], 16), seen, head["hash"])
                except jsonrpc.RpcError:
                    pass
                try:
                    await asyncio.wait_for(stop.wait(), poll_interval)
                except TimeoutError:
                    pass
            return method

    def audit_expectations(self) -> dict[str, Any]:
        """The audit checks the run's transactions were signed by the harness's accounts."""
        return {"signers": {a.hex_address for a in self.senders(self.accounts)}}

    async def raw_blocks(self, node: Node, numbers: list[int]) -> list[dict[str, Any]]:
        """Blocks with their full transaction objects (`eth_getBlockByNumber <n> true`), for
        the authenticity audit (harness/audit/evm.py)."""
        out = []
        for number in numbers:
            block = await jsonrpc.call(self.control_session(), node.url(), "eth_getBlockByNumber",
                                       [hex(number), True], timeout=60)
            if block is None:
                raise jsonrpc.RpcError(f"block {number} not found on {node.name}")
            out.append(block)
        return out
