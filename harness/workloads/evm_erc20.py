"""erc20: ERC-20 token transfers (BlockBench / Caliper's transfer benchmark on a contract).

Bootstrap: account 0 deploys contracts/Token.sol, crediting every sender account. Load:
transaction i moves `amount` tokens from account i % accounts to one of `recipients`
addresses. Read-back: the committed transfers replayed in chain order give every touched
account's balance and the contract's transfer count; each is read from the contract's
storage and compared (a transfer included but reverted leaves two balances and the count
wrong).
"""

from __future__ import annotations

from typing import Any

from harness.model import Node
from harness.workloads.evm_kit import Call, EvmWorkload, Tally, call_data, digest, mapping_slot

ID = "erc20"
FAMILY = "evm"
TITLE = "ERC-20 token transfers (contracts/Token.sol)"
SETTINGS = {"recipients": {"type": "integer", "minimum": 1, "maximum": 100000},
            "amount": {"type": "integer", "minimum": 1, "maximum": 10**18}}
DEFAULTS = {"recipients": 64, "amount": 1}
QUERY_KINDS: tuple[str, ...] = ()
SUPPLY = 10**24          # tokens credited to each sender account
GAS = 100_000


class Workload(EvmWorkload):
    CONTRACTS = ("Token",)

    def __init__(self, adapter: Any, settings: dict[str, Any], seed: int, accounts: int):
        super().__init__(adapter, settings, seed, accounts)
        self.recipients = ["0x" + digest("erc20-recipient", seed, r)[-20:].hex()
                           for r in range(settings["recipients"])]

    def constructor(self, name: str) -> tuple[list[str], list[Any]]:
        return ["address[]", "uint256"], [[a.hex_address for a in self.senders], SUPPLY]

    def deploy_gas(self, name: str) -> int:
        return 1_000_000 + 40_000 * self.accounts     # a balance and an event per holder

    def call(self, i: int, sender: int, k: int) -> Call:
        to = self.recipients[i % len(self.recipients)]
        amount = self.settings["amount"]
        return Call(sender, self.address["Token"], call_data("transfer(address,uint256)", to, amount),
                    GAS, ("transfer", self.senders[sender].hex_address, to, amount))

    async def read_back(self, node: Node, committed: list[int]) -> dict[str, Any]:
        balances = {a.hex_address: SUPPLY for a in self.senders}
        transfers = 0
        for i in committed:
            _, source, to, amount = self.calls[i].op
            if balances.get(source, 0) >= amount:
                balances[source] -= amount
                balances[to] = balances.get(to, 0) + amount
                transfers += 1
        touched = sorted({a for i in committed for a in self.calls[i].op[1:3]})
        block = await self.state_block(node)
        slots = [mapping_slot(a, 0, "address") for a in touched] + [3]
        found = await self.storage(node, "Token", slots, block)
        tally = Tally()
        for address, value in zip(touched, found, strict=False):
            tally.see(f"balanceOf({address})", balances[address], value, absent=None)
        tally.see("transfers (successful count)", transfers, found[-1])
        return tally.report(f"eth_getStorageAt at block {int(block, 16)} vs. the committed "
                            "transfers replayed in chain order", block=int(block, 16))
