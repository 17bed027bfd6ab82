"""donothing: BlockBench's DoNothing, a contract call that executes nothing: what
consensus and a call cost, without execution.

Read-back: the call's one effect is that it succeeded; every committed transaction's
receipt must say status 1 (a reverted call is a missing effect).
"""

from __future__ import annotations

from typing import Any

from harness.model import Node
from harness.workloads.evm_kit import Call, EvmWorkload, Tally, call_data

ID = "donothing"
FAMILY = "evm"
TITLE = "DoNothing contract calls (contracts/DoNothing.sol)"
SETTINGS: dict[str, Any] = {}
DEFAULTS: dict[str, Any] = {}
QUERY_KINDS: tuple[str, ...] = ()
GAS = 30_000


class Workload(EvmWorkload):
    CONTRACTS = ("DoNothing",)

    def call(self, i: int, sender: int, k: int) -> Call:
        return Call(sender, self.address["DoNothing"], call_data("nothing()"), GAS, ("nothing",))

    async def read_back(self, node: Node, committed: list[int]) -> dict[str, Any]:
        receipts = await self.receipts(node, committed)
        tally = Tally()
        for i in committed:
            receipt = receipts[i]
            status = receipt.get("status") if receipt else None
            tally.see(f"tx {i} ({self.tx_ids[i]}) succeeded", "0x1", status, absent=None)
        return tally.report("eth_getTransactionReceipt status of every committed call")
