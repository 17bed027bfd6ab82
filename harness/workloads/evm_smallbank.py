"""smallbank: the SmallBank benchmark (Cahill et al.; BlockBench) on contracts/SmallBank.sol.

Each transaction is one of the five write transactions, chosen uniformly: amalgamate,
depositChecking, sendPayment, transactSavings, writeCheck, over `customers` customers.
Balances are signed, so no committed operation reverts by design.

Read-back: the committed operations replayed in chain order over the same rules give every
touched customer's checking and savings balance and the operation count; each is read from
the contract's storage and compared.
"""

from __future__ import annotations

import random
from typing import Any

from harness.model import Node
from harness.workloads.evm_kit import Call, EvmWorkload, Tally, call_data, mapping_slot, to_int256

ID = "smallbank"
FAMILY = "evm"
TITLE = "SmallBank (contracts/SmallBank.sol)"
SETTINGS = {"customers": {"type": "integer", "minimum": 2, "maximum": 1000000}}
DEFAULTS = {"customers": 100}
QUERY_KINDS: tuple[str, ...] = ()
GAS = 120_000
SIGNATURES = {
    "amalgamate": "amalgamate(uint256,uint256)",
    "depositChecking": "depositChecking(uint256,int256)",
    "sendPayment": "sendPayment(uint256,uint256,int256)",
    "transactSavings": "transactSavings(uint256,int256)",
    "writeCheck": "writeCheck(uint256,int256)",
}


def apply(op: tuple, checking: dict[int, int], savings: dict[int, int]) -> None:
    """One SmallBank operation, as the contract does it."""
    name, *args = op
    c, s = checking, savings
    if name == "amalgamate":
        a, b = args
        total = c.get(a, 0) + s.get(a, 0)
        c[a], s[a] = 0, 0
        c[b] = c.get(b, 0) + total
    elif name == "depositChecking":
        a, amount = args
        c[a] = c.get(a, 0) + amount
    elif name == "sendPayment":
        a, b, amount = args
        c[a] = c.get(a, 0) - amount
        c[b] = c.get(b, 0) + amount
    elif name == "transactSavings":
        a, amount = args
        s[a] = s.get(a, 0) + amount
    elif name == "writeCheck":
        a, amount = args
        c[a] = c.get(a, 0) - (amount + 1 if c.get(a, 0) + s.get(a, 0) < amount else amount)


class Workload(EvmWorkload):
    CONTRACTS = ("SmallBank",)

    def __init__(self, adapter: Any, settings: dict[str, Any], seed: int, accounts: int):
        super().__init__(adapter, settings, seed, accounts)
        self.ops_rng = random.Random(f"bctest/smallbank/{seed}")

    def call(self, i: int, sender: int, k: int) -> Call:
        rng, n = self.ops_rng, self.settings["customers"]
        name = rng.choice(sorted(SIGNATURES))
        a = rng.randrange(n)
        b = (a + 1 + rng.randrange(n - 1)) % n
        amount = rng.randint(1, 100)
        args = {"amalgamate": (a, b), "sendPayment": (a, b, amount)}.get(name, (a, amount))
        return Call(sender, self.address["SmallBank"], call_data(SIGNATURES[name], *args), GAS,
                    (name, *args))

    async def read_back(self, node: Node, committed: list[int]) -> dict[str, Any]:
        checking: dict[int, int] = {}
        savings: dict[int, int] = {}
        for i in committed:
            apply(self.calls[i].op, checking, savings)
        customers = sorted({c for i in committed for c in self.calls[i].op[1:3]
                            if self.calls[i].op[0] in ("amalgamate", "sendPayment")}
                           | {self.calls[i].op[1] for i in committed})
        block = await self.state_block(node)
        slots = ([mapping_slot(c, 0, "uint256") for c in customers]
                 + [mapping_slot(c, 1, "uint256") for c in customers] + [2])
        found = await self.storage(node, "SmallBank", slots, block)
        n = len(customers)
        tally = Tally()
        for k, customer in enumerate(customers):
            tally.see(f"checking[{customer}]", checking.get(customer, 0), to_int256(found[k]), absent=None)
            tally.see(f"savings[{customer}]", savings.get(customer, 0), to_int256(found[n + k]),
                      absent=None)
        tally.see("ops", len(committed), found[-1])
        return tally.report(f"eth_getStorageAt at block {int(block, 16)} vs. the committed operations "
                            "replayed in chain order", block=int(block, 16))
