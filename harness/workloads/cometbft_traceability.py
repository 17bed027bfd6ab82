"""CometBFT traceability (溯源): `products` products each get an event chain, event s of
product p at `tr/<p>/<s>` (the chain's count at `tr/<p>`), sent round by round so a
product's events are `products` sends apart. Every `forge_every`-th round one earlier
event is sent again with forged content, which the chain must refuse (the scenarios app:
code 3, not the product's next event). The read-back queries every product end to end:
the count and each event in order."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from harness.workloads.cometbft_common import KvWorkload, Op, short_hash

ID = "traceability"
FAMILY = "cometbft"
TITLE = "traceability (溯源): products' event chains appended in order, queried end to end"
SETTINGS: dict[str, Any] = {
    "products": {"type": "integer", "minimum": 1, "maximum": 100000,
                 "description": "products whose event chains the load appends to"},
    "forge_every": {"type": "integer", "minimum": 0, "maximum": 100000,
                    "description": "every n-th round re-sends an earlier event with forged "
                                   "content, which must be refused (0: never)"},
}
DEFAULTS: dict[str, Any] = {"products": 10, "forge_every": 3}
QUERY_KINDS = ("key",)
STAGES = ("made", "inspected", "packed", "shipped", "received", "sold")


class Workload(KvWorkload):
    ID = ID

    def product(self, p: int) -> str:
        return f"{self.tag}-p{p}"

    def event(self, p: int, s: int, forged: bool = False) -> str:
        stage = STAGES[s % len(STAGES)]
        return f"{'forged' if forged else stage}.{s}.{short_hash('event', self.seed, p, s, forged)[:12]}"

    def build(self, count: int) -> list[Op]:
        products, every = int(self.settings["products"]), int(self.settings["forge_every"])
        ops: list[Op] = []
        round_ = 0
        while len(ops) < count:
            for p in range(products):
                if len(ops) == count:
                    break
                ops.append(Op(len(ops), f"tr/{self.product(p)}/{round_}", self.event(p, round_)))
            if every and round_ >= 1 and round_ % every == 0 and len(ops) < count:
                p, s = round_ % products, round_ - 1      # rewrite history: an earlier event
                ops.append(Op(len(ops), f"tr/{self.product(p)}/{s}", self.event(p, s, True),
                              must_refuse=f"forged event {s} of product {self.product(p)}"))
            round_ += 1
        return ops

    def expect(self, ops: list[Op]) -> dict[str, str]:
        expected: dict[str, str] = {}
        counts: dict[str, int] = defaultdict(int)
        for op in ops:
            expected[op.key] = op.value
            product = op.key.rsplit("/", 1)[0]
            counts[product] = max(counts[product], int(op.key.rsplit("/", 1)[1]) + 1)
        for product, count in counts.items():
            expected[product] = str(count)     # the chain's length: no gap, nothing extra
        return expected

    def facts(self) -> dict[str, Any]:
        return {"products": self.settings["products"], "forge_every": self.settings["forge_every"]}
