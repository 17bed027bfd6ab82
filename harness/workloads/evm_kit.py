"""What the EVM workloads share: the committed contract artifacts (contracts/build/), ABI
encoding of the few types they use, calls signed with the adapter's funded accounts,
deploying in the bootstrap, and reading the chain's state back.

Not a workload itself (it declares no ID). Imports nothing heavy at module level: the
registry is read by `bctest validate`; the network parts import the JSON-RPC client lazily.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

from eth_hash.auto import keccak

from harness import paths
from harness.adapters.evm_tx import sign_transfer
from harness.model import Node, Prepared

MISMATCHES = 20            # the read-back keeps the first 20 absent or wrong effects
BATCH = 200                # JSON-RPC calls per batch request when reading state
DEPLOY_TIMEOUT = 60.0      # seconds for a bootstrap transaction to be mined


class WorkloadError(Exception):
    """The chain did not let the workload set up or read back (e.g. a deploy reverted)."""


@dataclass(frozen=True)
class Artifact:
    """One compiled contract (scripts/compile-contracts wrote it beside its source)."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes        # creation code
    runtime: bytes         # the code the chain must hold after the deploy
    compiler: str


@cache
def artifact(name: str) -> Artifact:
    path = paths.home() / "contracts" / "build" / f"{name}.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WorkloadError(f"contract artifact {path} unreadable ({exc}); run scripts/compile-contracts") \
            from None
    return Artifact(name=name, abi=doc["abi"], bytecode=bytes.fromhex(doc["bytecode"][2:]),
                    runtime=bytes.fromhex(doc["deployedBytecode"][2:]), compiler=doc["compiler"])


# --- ABI (the static types and arrays of them the workload contracts take) -----------------

def _word(kind: str, value: Any) -> bytes:
    if kind == "address":
        raw = value if isinstance(value, bytes) else bytes.fromhex(value.removeprefix("0x"))
        return raw.rjust(32, b"\0")
    if kind == "bytes32":
        assert isinstance(value, bytes) and len(value) == 32, value
        return value
    if kind == "int256":
        return (value % (1 << 256)).to_bytes(32, "big")
    if kind in ("uint256", "uint64"):
        return int(value).to_bytes(32, "big")
    raise ValueError(f"ABI type {kind} is not supported here")


def encode(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """ABI-encode arguments: static types, and T[] of a static T."""
    head, tail = [], b""
    size = 32 * len(types)
    for kind, value in zip(types, values, strict=True):
        if kind.endswith("[]"):
            head.append((size + len(tail)).to_bytes(32, "big"))
            tail += len(value).to_bytes(32, "big") + b"".join(_word(kind[:-2], v) for v in value)
        else:
            head.append(_word(kind, value))
    return b"".join(head) + tail


def signature_types(signature: str) -> list[str]:
    inside = signature[signature.index("(") + 1:-1]
    return [t for t in inside.split(",") if t]


def call_data(signature: str, *values: Any) -> bytes:
    """Selector + arguments, e.g. call_data("set(bytes32,bytes32)", k, v)."""
    return keccak(signature.encode())[:4] + encode(signature_types(signature), values)


def mapping_slot(key: Any, base: int, kind: str = "bytes32") -> int:
    """Storage slot of mapping[key] for a mapping declared at slot `base`."""
    return int.from_bytes(keccak(_word(kind, key) + base.to_bytes(32, "big")), "big")


def to_int256(value: int) -> int:
    return value - (1 << 256) if value >= 1 << 255 else value


def digest(*parts: Any) -> bytes:
    """A 32-byte value derived from its parts (keys, document hashes, invoice ids...)."""
    return keccak(":".join(str(p) for p in parts).encode())


def rpc_body(method: str, params: list[Any], request_id: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params},
                      separators=(",", ":")).encode()


def eth_call_body(to: str, data: bytes, request_id: int) -> bytes:
    return rpc_body("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"], request_id)


def eth_call_result(status: int, body: bytes) -> bytes | str:
    """An eth_call reply's return data, or the reason it has none (runs in sender processes)."""
    if status != 200:
        return f"http {status}"
    try:
        reply = json.loads(body)
    except (ValueError, RecursionError):
        return "reply is not JSON"
    if not isinstance(reply, dict) or reply.get("error") or not isinstance(reply.get("result"), str):
        return f"no call result: {str(reply)[:120]}"
    text = reply["result"]
    if not text.startswith("0x") or len(text) % 2:
        return "call result is not hex data"
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        return "call result is not hex data"


# --- comparing the chain's state with the run -----------------------------------------------

@dataclass
class Tally:
    """Effects expected, found, absent or different; the first few mismatches shown."""

    expected: int = 0
    found: int = 0
    missing: int = 0
    wrong: int = 0
    mismatches: list[dict[str, Any]] | None = None

    def see(self, what: str, expected: Any, got: Any, absent: Any = 0) -> bool:
        self.expected += 1
        if got == expected:
            self.found += 1
            return True
        if got == absent or got is None:
            self.missing += 1
        else:
            self.wrong += 1
        if self.mismatches is None:
            self.mismatches = []
        if len(self.mismatches) < MISMATCHES:
            self.mismatches.append({"what": what, "expected": _show(expected), "found": _show(got)})
        return False

    def report(self, method: str, **extra: Any) -> dict[str, Any]:
        return {"effects": {"expected": self.expected, "found": self.found, "missing": self.missing,
                            "wrong": self.wrong},
                "mismatches": self.mismatches or [], "method": method, **extra}


def _show(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_show(v) for v in value]
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and abs(value) >= 1 << 53:
        return str(value)   # JSON numbers lose precision beyond 2^53
    return value


# --- the workload base ------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    """One transaction of the load: sender (account index), target, calldata, gas, and the
    operation it performs (what the read-back replays)."""

    sender: int
    to: str               # hex address
    data: bytes
    gas: int
    op: tuple


class EvmWorkload:
    """Contracts deployed in the bootstrap by account 0; the load's transaction i is sent by
    account i % accounts with that account's next nonce, like the adapter's transfers."""

    query_kinds: ClassVar[tuple[str, ...]] = ()
    CONTRACTS: ClassVar[tuple[str, ...]] = ()   # artifact names deployed in the bootstrap

    def __init__(self, adapter: Any, settings: dict[str, Any], seed: int, accounts: int):
        self.adapter = adapter
        self.settings = settings
        self.seed = seed
        self.accounts = accounts
        self.senders = adapter.senders(accounts)
        self.nonces = [0] * accounts        # the next nonce of each account after the bootstrap
        self.address: dict[str, str] = {}   # contract name -> its deployed address
        self.calls: list[Call] = []
        self.tx_ids: list[str] = []
        self.index: dict[str, int] = {}
        self.sends: dict[int, str | None] = {}   # i -> the send's error (None: accepted)
        self.rng = random.Random(f"bctest/workload/{seed}")

    # bootstrap ---------------------------------------------------------------------------
    async def _rpc(self, node: Node, method: str, params: list[Any], timeout: float = 30) -> Any:
        from harness.adapters import jsonrpc
        return await jsonrpc.call(self.adapter.control_session(), node.url(), method, params,
                                  timeout=timeout)

    def _sign(self, sender: int, to: str | None, data: bytes, gas: int, nonce: int) -> tuple[bytes, str]:
        target = bytes.fromhex(to[2:]) if to else b""
        raw, tx_hash = sign_transfer(self.senders[sender].key, nonce, self.adapter.gas_price, gas,
                                     target, 0, self.adapter.chain_id, data=data)
        return raw, "0x" + tx_hash.hex()

    async def send_and_wait(self, node: Node, txs: list[tuple[str | None, bytes, int]],
                            what: str) -> list[dict[str, Any]]:
        """Bootstrap transactions from account 0 (to, data, gas), sent in nonce order; every
        one must be mined with status 1 within DEPLOY_TIMEOUT."""
        hashes = []
        for to, data, gas in txs:
            raw, tx_hash = self._sign(0, to, data, gas, self.nonces[0])
            self.nonces[0] += 1
            await self._rpc(node, "eth_sendRawTransaction", ["0x" + raw.hex()])
            hashes.append(tx_hash)
        receipts: list[dict[str, Any]] = []
        deadline = asyncio.get_running_loop().time() + DEPLOY_TIMEOUT
        for tx_hash in hashes:
            while True:
                receipt = await self._rpc(node, "eth_getTransactionReceipt", [tx_hash])
                if isinstance(receipt, dict) and receipt.get("blockHash"):
                    break
                if asyncio.get_running_loop().time() > deadline:
                    raise WorkloadError(f"{what}: transaction {tx_hash} not mined within "
                                        f"{DEPLOY_TIMEOUT:g} s")
                await asyncio.sleep(0.25)
            if receipt.get("status") != "0x1":
                raise WorkloadError(f"{what}: transaction {tx_hash} failed (status "
                                    f"{receipt.get('status')!r})")
            receipts.append(receipt)
        return receipts

    async def deploy(self, node: Node, name: str, types: Sequence[str] = (), args: Sequence[Any] = (),
                     gas: int = 3_000_000) -> str:
        """Deploy contract `name`; the chain must then hold exactly its compiled runtime code."""
        built = artifact(name)
        [receipt] = await self.send_and_wait(node, [(None, built.bytecode + encode(types, args), gas)],
                                             f"deploying {name}")
        address = receipt.get("contractAddress")
        if not isinstance(address, str):
            raise WorkloadError(f"deploying {name}: the receipt has no contract address")
        code = await self._rpc(node, "eth_getCode", [address, "latest"])
        if code != "0x" + built.runtime.hex():
            raise WorkloadError(f"deploying {name}: the code at {address} is not the compiled "
                                f"contract ({len(str(code)) // 2 - 1} bytes)")
        self.address[name] = address
        return address

    async def bootstrap(self, nodes: list[Node], count: int) -> dict[str, Any]:
        node = nodes[0]
        for name in self.CONTRACTS:
            await self.deploy(node, name, *self.constructor(name), gas=self.deploy_gas(name))
        facts = await self.setup(node, count)
        return {"contracts": dict(self.address), "compiler": artifact(self.CONTRACTS[0]).compiler
                if self.CONTRACTS else None, **facts}

    def constructor(self, name: str) -> tuple[Sequence[str], Sequence[Any]]:
        return (), ()

    def deploy_gas(self, name: str) -> int:
        return 3_000_000

    async def setup(self, node: Node, count: int) -> dict[str, Any]:
        """After the deploys: load records... (facts for the report)."""
        return {}

    # prepare -----------------------------------------------------------------------------
    def call(self, i: int, sender: int, k: int) -> Call:
        """Transaction i: the k-th of account `sender` in the load."""
        raise NotImplementedError

    def prepare(self, count: int) -> list[Prepared]:
        out = []
        for i in range(count):
            sender, k = i % self.accounts, i // self.accounts
            made = self.call(i, sender, k)
            raw, tx_id = self._sign(sender, made.to, made.data, made.gas, self.nonces[sender] + k)
            self.calls.append(made)
            self.tx_ids.append(tx_id)
            self.index[tx_id] = i
            out.append(Prepared(body=rpc_body("eth_sendRawTransaction", ["0x" + raw.hex()], i),
                                tx_id=tx_id))
        return out

    # read-back ---------------------------------------------------------------------------
    def note_sends(self, sends: dict[int, str | None]) -> None:
        """The load's outcome per sent transaction (phases/readback.py): its error or None."""
        self.sends = sends

    async def state_block(self, node: Node) -> str:
        """The block the read-back reads the state at (the node's head, as a hex number)."""
        return hex(int(await self._rpc(node, "eth_blockNumber", []), 16))

    async def batch(self, node: Node, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """JSON-RPC batch requests of `calls` (BATCH a request); each answer's result, in order."""
        from harness.adapters import jsonrpc
        session = self.adapter.control_session()
        out: list[Any] = []
        for start in range(0, len(calls), BATCH):
            chunk = calls[start:start + BATCH]
            body = json.dumps([{"jsonrpc": "2.0", "id": start + k, "method": m, "params": p}
                               for k, (m, p) in enumerate(chunk)]).encode()
            async with session.post(node.url(), data=body,
                                    headers={"Content-Type": "application/json"}) as resp:
                text = await jsonrpc.read_capped(resp, "read-back batch")
            try:
                replies = json.loads(text)
            except (ValueError, RecursionError):
                raise WorkloadError(f"read-back batch: not JSON: {text[:200]!r}") from None
            if not isinstance(replies, list) or len(replies) != len(chunk):
                raise WorkloadError(f"read-back batch: {len(chunk)} calls, answer {str(replies)[:200]}")
            by_id = {r.get("id"): r for r in replies if isinstance(r, dict)}
            for k, (method, _) in enumerate(chunk):
                reply = by_id.get(start + k)
                if reply is None or "result" not in reply:
                    raise WorkloadError(f"read-back {method}: no result ({str(reply)[:200]})")
                out.append(reply["result"])
        return out

    async def storage(self, node: Node, contract: str, slots: Sequence[int], block: str) -> list[int]:
        """Words of the contract's storage at `block` (eth_getStorageAt)."""
        address = self.address[contract]
        answers = await self.batch(node, [("eth_getStorageAt", [address, hex(slot), block])
                                          for slot in slots])
        try:
            return [int(a, 16) for a in answers]
        except (TypeError, ValueError):
            raise WorkloadError(f"eth_getStorageAt answered a non-number: {str(answers)[:200]}") from None

    async def receipts(self, node: Node, indexes: Sequence[int]) -> dict[int, dict[str, Any] | None]:
        answers = await self.batch(node, [("eth_getTransactionReceipt", [self.tx_ids[i]])
                                          for i in indexes])
        return {i: a if isinstance(a, dict) else None for i, a in zip(indexes, answers, strict=True)}
