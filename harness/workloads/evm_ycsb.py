"""ycsb: a key-value store contract under the YCSB core mixes (BlockBench's KVStore).

  mix a  update heavy: 50% reads, 50% updates
  mix b  read mostly:  95% reads, 5% updates
  mix c  read only:    100% reads
Updates are the load's transactions (set(key, value)); reads are eth_call of get(key) in
the query phase (query kind `ycsb-read`), so the suite's rates set the mix's proportion:
query rate = load rate for a, 19 × the load rate for b (suites/workloads/evm-ycsb-*.yaml).
For a and b the bootstrap loads `records` records first (YCSB's load phase); for c the
load's transactions are those inserts and the reads ask only for records that committed.
Keys are chosen zipfian (YCSB's request distribution, constant 0.99) over the records.

Read-back: every record's value is the last committed write to it (replayed in chain
order), read from the contract's storage; and the write count.
"""

from __future__ import annotations

import bisect
import itertools
import random
from typing import Any

from harness.model import Node, Prepared
from harness.workloads.evm_kit import (
    Call,
    EvmWorkload,
    Tally,
    call_data,
    digest,
    eth_call_body,
    eth_call_result,
    mapping_slot,
)

ID = "ycsb"
FAMILY = "evm"
TITLE = "YCSB key-value mixes a/b/c (contracts/KVStore.sol; reads via eth_call)"
SETTINGS = {"mix": {"enum": ["a", "b", "c"]},
            "records": {"type": "integer", "minimum": 1, "maximum": 100000}}
DEFAULTS = {"mix": "a", "records": 100}
QUERY_KINDS = ("ycsb-read",)
READ_SHARE = {"a": 0.5, "b": 0.95, "c": 1.0}
ZIPF = 0.99
LOAD_CHUNK = 50        # records a bootstrap transaction loads
GAS = 80_000


def zipf_sampler(n: int, rng: random.Random, theta: float = ZIPF):
    """Indexes 0..n-1 with probability ∝ 1/(rank+1)^theta (YCSB's zipfian, scrambled)."""
    weights = [1 / (r + 1) ** theta for r in range(n)]
    cumulative = list(itertools.accumulate(weights))
    order = list(range(n))
    rng.shuffle(order)    # scrambled: the hot keys are spread over the key space
    return lambda: order[min(bisect.bisect(cumulative, rng.random() * cumulative[-1]), n - 1)]


class Workload(EvmWorkload):
    CONTRACTS = ("KVStore",)
    query_kinds = QUERY_KINDS

    def __init__(self, adapter: Any, settings: dict[str, Any], seed: int, accounts: int):
        super().__init__(adapter, settings, seed, accounts)
        self.mix = settings["mix"]
        self.records = settings["records"]
        self.loaded: dict[bytes, bytes] = {}     # key -> value written by the bootstrap
        self.pick = zipf_sampler(self.records, random.Random(f"bctest/ycsb/{seed}"))

    def key(self, record: int) -> bytes:
        return digest("ycsb-key", self.seed, record)

    async def setup(self, node: Node, count: int) -> dict[str, Any]:
        if self.mix == "c":
            return {"mix": "c", "read_share": 1.0, "records": "inserted by the load"}
        keys = [self.key(r) for r in range(self.records)]
        values = [digest("ycsb-init", self.seed, r) for r in range(self.records)]
        chunks = [(self.address["KVStore"], call_data("setMany(bytes32[],bytes32[])",
                                                      keys[s:s + LOAD_CHUNK], values[s:s + LOAD_CHUNK]),
                   100_000 + 30_000 * len(keys[s:s + LOAD_CHUNK]))
                  for s in range(0, self.records, LOAD_CHUNK)]
        await self.send_and_wait(node, chunks, "loading the YCSB records")
        self.loaded = dict(zip(keys, values, strict=True))
        return {"mix": self.mix, "read_share": READ_SHARE[self.mix], "records": self.records}

    def call(self, i: int, sender: int, k: int) -> Call:
        key = self.key(i) if self.mix == "c" else self.key(self.pick())
        value = digest("ycsb-value", self.seed, i)
        return Call(sender, self.address["KVStore"], call_data("set(bytes32,bytes32)", key, value), GAS,
                    ("set", key, value))

    async def read_back(self, node: Node, committed: list[int]) -> dict[str, Any]:
        expected = dict(self.loaded)
        for i in committed:
            _, key, value = self.calls[i].op
            expected[key] = value
        keys = sorted(expected)
        block = await self.state_block(node)
        found = await self.storage(node, "KVStore", [mapping_slot(k, 0) for k in keys] + [1], block)
        tally = Tally()
        for key, value in zip(keys, found, strict=False):
            tally.see(f"store[0x{key.hex()}]", int.from_bytes(expected[key], "big"), value)
        tally.see("writes", len(self.loaded) + len(committed), found[-1])
        return tally.report(f"eth_getStorageAt at block {int(block, 16)} vs. the last committed "
                            "write of each record", block=int(block, 16), mix=self.mix)

    # the query phase: reads over eth_call ----------------------------------------------------
    def query_subjects(self, kind: str, committed: list[Any]) -> list[Any]:
        if self.mix == "c":   # only the records whose insert committed
            done = [self.calls[self.index[c.tx_id.lower()]].op[1] for c in committed
                    if c.tx_id.lower() in self.index]
            if not done:
                return []
            rng = random.Random(f"bctest/ycsb-read/{self.seed}")
            pick = zipf_sampler(len(done), rng)
            return [done[pick()] for _ in range(4 * len(done))]
        return [self.key(self.pick()) for _ in range(max(1000, 4 * self.records))]

    def query_request(self, kind: str, subject: Any, request_id: int) -> Prepared:
        return Prepared(body=eth_call_body(self.address["KVStore"], call_data("get(bytes32)", subject),
                                           request_id), tx_id="0x" + subject.hex())

    @staticmethod
    def query_error(status: int, body: bytes) -> str | None:
        """Answered: a 32-byte value that is not zero (every record read was written)."""
        data = eth_call_result(status, body)
        if isinstance(data, str):
            return data
        if len(data) != 32:
            return f"get() returned {len(data)} bytes, not 32"
        return "get() returned zero: the record is missing" if not any(data) else None
