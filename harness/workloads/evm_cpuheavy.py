"""cpuheavy: a hashing loop (keccak256 chained `rounds` times per transaction), the
CPU-heavy contract of the BlockBench set.

Read-back: each committed transaction stored its last digest under its id; the harness
computes the same chain and compares it with the contract's storage (a chain that skipped
or faked the computation cannot match), and the run count.
"""

from __future__ import annotations

from typing import Any

from eth_hash.auto import keccak

from harness.model import Node
from harness.workloads.evm_kit import Call, EvmWorkload, Tally, call_data, mapping_slot

ID = "cpuheavy"
FAMILY = "evm"
TITLE = "CPU-heavy contract: a keccak256 loop (contracts/CpuHeavy.sol)"
SETTINGS = {"rounds": {"type": "integer", "minimum": 1, "maximum": 100000}}
DEFAULTS = {"rounds": 500}
QUERY_KINDS: tuple[str, ...] = ()


def hash_chain(start: int, rounds: int) -> bytes:
    value = start.to_bytes(32, "big")
    for _ in range(rounds):
        value = keccak(value)
    return value


class Workload(EvmWorkload):
    CONTRACTS = ("CpuHeavy",)

    def call(self, i: int, sender: int, k: int) -> Call:
        rounds = self.settings["rounds"]
        work_id = i + 1
        return Call(sender, self.address["CpuHeavy"], call_data("work(uint256,uint256)", work_id, rounds),
                    60_000 + 400 * rounds, ("work", work_id, rounds))

    async def read_back(self, node: Node, committed: list[int]) -> dict[str, Any]:
        block = await self.state_block(node)
        ids = [self.calls[i].op[1] for i in committed]
        found = await self.storage(node, "CpuHeavy", [mapping_slot(w, 0, "uint256") for w in ids] + [1],
                                   block)
        tally = Tally()
        for i, work_id, value in zip(committed, ids, found, strict=False):
            expected = int.from_bytes(hash_chain(work_id, self.calls[i].op[2]), "big")
            tally.see(f"results[{work_id}] (tx {i})", expected, value)
        tally.see("runs", len(committed), found[-1])
        return tally.report(f"eth_getStorageAt at block {int(block, 16)} vs. the digests computed "
                            "by the harness", block=int(block, 16))
