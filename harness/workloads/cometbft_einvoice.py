"""CometBFT e-invoice (电子发票): invoices are issued, transferred once and redeemed;
every `double_every`-th invoice is redeemed a second time, which the chain must refuse
(the scenarios app: code 5 in CheckTx and in FinalizeBlock). Half of those second
redemptions follow the first within `gap` sends (the first may still wait in the mempool:
CheckTx's own state must refuse it), the others come at the end of the load (refused by
the committed state). The read-back checks every invoice's state: holder, amount, and
that each redeemed invoice was redeemed exactly once."""

from __future__ import annotations

from typing import Any

from harness.workloads.cometbft_common import KvWorkload, Op

ID = "einvoice"
FAMILY = "cometbft"
TITLE = "e-invoice (电子发票): issue, transfer, redeem exactly once; double redemptions refused"
SETTINGS: dict[str, Any] = {
    "double_every": {"type": "integer", "minimum": 0, "maximum": 100000,
                     "description": "every n-th invoice is redeemed twice; the second must be "
                                    "refused (0: never)"},
    "gap": {"type": "integer", "minimum": 1, "maximum": 100000,
            "description": "sends between a redemption and its early second attempt"},
}
DEFAULTS: dict[str, Any] = {"double_every": 4, "gap": 10}
QUERY_KINDS = ("key",)


class Workload(KvWorkload):
    ID = ID

    def invoice(self, j: int) -> str:
        return f"inv/{self.tag}-{j}"

    def parties(self, j: int) -> tuple[str, str, str]:
        return f"issuer{j % 7}", f"buyer{j % 11}", str(100 + 37 * j)

    def plan(self, count: int) -> tuple[int, list[int]]:
        """How many invoices fit in `count` sends, and which are redeemed twice."""
        every = int(self.settings["double_every"])

        def sends(invoices: int) -> int:
            return 3 * invoices + (-(-invoices // every) if every else 0)

        low, high = 0, count              # the most invoices whose sends fit
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if sends(middle) <= count else (low, middle - 1)
        return low, [j for j in range(low) if every and j % every == 0]

    def build(self, count: int) -> list[Op]:
        invoices, doubles = self.plan(count)
        gap = int(self.settings["gap"])
        rows: list[tuple[str, str, str | None]] = []    # (key, value, must_refuse)
        for j in range(invoices):
            issuer, _, amount = self.parties(j)
            rows.append((self.invoice(j), f"issue,{issuer},{amount},{self.tag}i", None))
        for j in range(invoices):
            issuer, buyer, _ = self.parties(j)
            rows.append((self.invoice(j), f"transfer,{issuer},{buyer},{self.tag}t", None))
        # Second redemptions: half `gap` redemptions after the first (which may still wait
        # in the mempool), half at the end of the load (after it committed).
        early: dict[int, list[tuple[str, str, str | None]]] = {}
        late: list[tuple[str, str, str | None]] = []
        for n, j in enumerate(doubles):
            second = (self.invoice(j), f"redeem,{self.parties(j)[1]},{self.tag}r2",
                      f"second redemption of invoice {self.tag}-{j}")
            if n % 2 == 0:
                early.setdefault(min(j + gap, invoices - 1), []).append(second)
            else:
                late.append(second)
        for j in range(invoices):
            rows.append((self.invoice(j), f"redeem,{self.parties(j)[1]},{self.tag}r", None))
            rows += early.get(j, [])
        rows += late
        while len(rows) < count:     # the few sends no invoice fits in: plain kv writes
            rows.append((f"einv.{self.tag}.pad{len(rows)}", "x", None))
        return [Op(i, key, value, must_refuse) for i, (key, value, must_refuse) in enumerate(rows)]

    def expect(self, ops: list[Op]) -> dict[str, str]:
        state: dict[str, list[str]] = {}    # status, owner, amount, transfers, redemptions
        for op in ops:
            if not op.key.startswith("inv/"):
                state[op.key] = [op.value]
                continue
            action, *fields = op.value.split(",")
            if action == "issue":
                state[op.key] = ["issued", fields[0], fields[1], "0", "0"]
            elif action == "transfer" and op.key in state:
                current = state[op.key]
                current[1], current[3] = fields[1], str(int(current[3]) + 1)
            elif action == "redeem" and op.key in state:
                current = state[op.key]
                current[0], current[4] = "redeemed", str(int(current[4]) + 1)
        return {key: ",".join(value) for key, value in state.items()}

    async def read_back(self, node: Any, committed: list[int]) -> dict[str, Any]:
        observed = await super().read_back(node, committed)
        redeemed = [op.key for i in committed if not (op := self.ops[i]).must_refuse
                    and op.value.startswith("redeem,")]
        once = sum(1 for key in set(redeemed)
                   if (value := self.found.get(key)) and value.startswith("redeemed,")
                   and value.endswith(",1"))
        observed["redeemed_exactly_once"] = {"redeemed": len(set(redeemed)), "once": once}
        return observed

    def facts(self) -> dict[str, Any]:
        return {"double_every": self.settings["double_every"]}
