"""ioheavy: many storage writes per transaction (`writes` slots each), the IO-heavy
contract of the BlockBench set.

Read-back: every slot each committed transaction wrote is read from the contract's storage
and compared with keccak256(seed, slot); a transaction's effect is found only when all of
its slots are right. And the write count.
"""

from __future__ import annotations

from typing import Any

from eth_hash.auto import keccak

from harness.model import Node
from harness.workloads.evm_kit import Call, EvmWorkload, Tally, call_data, digest, mapping_slot

ID = "ioheavy"
FAMILY = "evm"
TITLE = "IO-heavy contract: many storage writes per transaction (contracts/IoHeavy.sol)"
SETTINGS = {"writes": {"type": "integer", "minimum": 1, "maximum": 1000}}
DEFAULTS = {"writes": 16}
QUERY_KINDS: tuple[str, ...] = ()


def slot_value(seed: bytes, slot: int) -> int:
    return int.from_bytes(keccak(seed + slot.to_bytes(32, "big")), "big")


class Workload(EvmWorkload):
    CONTRACTS = ("IoHeavy",)

    def call(self, i: int, sender: int, k: int) -> Call:
        writes = self.settings["writes"]
        seed = digest("ioheavy", self.seed, i)
        return Call(sender, self.address["IoHeavy"],
                    call_data("write(uint256,uint256,bytes32)", i * writes, writes, seed),
                    60_000 + 25_000 * writes, ("write", i * writes, writes, seed))

    async def read_back(self, node: Node, committed: list[int]) -> dict[str, Any]:
        block = await self.state_block(node)
        wanted = [(i, s) for i in committed
                  for s in range(self.calls[i].op[1], self.calls[i].op[1] + self.calls[i].op[2])]
        found = await self.storage(node, "IoHeavy", [mapping_slot(s, 0, "uint256") for _, s in wanted] + [1],
                                   block)
        got = {s: v for (_, s), v in zip(wanted, found, strict=False)}
        tally = Tally()
        writes = 0
        for i in committed:
            _, start, count, seed = self.calls[i].op
            bad = [s for s in range(start, start + count) if got[s] != slot_value(seed, s)]
            writes += count
            first = bad[0] if bad else start
            tally.see(f"tx {i}: data[{start}..{start + count - 1}] ({len(bad)} wrong; first data[{first}])",
                      slot_value(seed, first), got[first])
        tally.see("writes", writes, found[-1])
        return tally.report(f"eth_getStorageAt of {len(wanted)} slots at block {int(block, 16)}",
                            block=int(block, 16))
