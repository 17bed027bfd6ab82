"""CometBFT YCSB (workloads A, B, C) on the kv store: the load inserts `records` records
(YCSB's load phase, `ycsb.<tag>.user<k>`, values of `field_length` bytes) and then
updates records drawn from the request distribution; the query phase (kind `ycsb`) runs
the mix over the committed records: reads over abci_query and, for A (50/50) and B
(95/5), updates as broadcast_tx_sync; C is read-only. The read-back checks every record
holds the last value the committed load wrote to it (before the query phase runs)."""

from __future__ import annotations

import bisect
import itertools
import random
from typing import Any

from harness.adapters.base import Committed, Prepared
from harness.adapters.cometbft import broadcast_body
from harness.workloads.cometbft_common import KvWorkload, Op, abci_query_body, short_hash

ID = "ycsb"
FAMILY = "cometbft"
TITLE = "YCSB A/B/C on the kv store: inserts and updates, reads over abci_query"
MIXES = {"a": 0.5, "b": 0.95, "c": 1.0}     # the read share of the query phase
SETTINGS: dict[str, Any] = {
    "mix": {"enum": sorted(MIXES), "description": "YCSB workload: a (50% reads / 50% updates), "
                                                  "b (95/5), c (read only)"},
    "records": {"type": "integer", "minimum": 1, "maximum": 10_000_000,
                "description": "records the load inserts before it updates"},
    "distribution": {"enum": ["zipfian", "uniform"],
                     "description": "which records updates and reads pick"},
    "field_length": {"type": "integer", "minimum": 1, "maximum": 4000,
                     "description": "bytes of each value"},
}
DEFAULTS: dict[str, Any] = {"mix": "a", "records": 100, "distribution": "zipfian",
                            "field_length": 32}
QUERY_KINDS = ("ycsb",)
ZIPF_THETA = 0.99                           # YCSB's default constant


class Chooser:
    """Picks record numbers 0..n-1: YCSB's zipfian (popular records scattered) or uniform."""

    def __init__(self, n: int, distribution: str, seed: str):
        self.n = n
        self.rng = random.Random(seed)
        self.cumulative: list[float] | None = None
        if distribution == "zipfian" and n > 1:
            weights = [1.0 / (rank + 1) ** ZIPF_THETA for rank in range(n)]
            self.cumulative = list(itertools.accumulate(weights))
            self.scatter = list(range(n))
            random.Random(seed + "/scatter").shuffle(self.scatter)

    def next(self) -> int:
        if self.cumulative is None:
            return self.rng.randrange(self.n)
        rank = bisect.bisect_left(self.cumulative, self.rng.random() * self.cumulative[-1])
        return self.scatter[min(rank, self.n - 1)]


class Workload(KvWorkload):
    ID = ID
    query_kinds = QUERY_KINDS

    def key(self, record: int) -> str:
        return f"ycsb.{self.tag}.user{record}"

    def value(self, *parts: object) -> str:
        length = int(self.settings["field_length"])
        text = ""
        while len(text) < length:
            text += short_hash("ycsb", self.seed, *parts, len(text))
        return text[:length]

    def build(self, count: int) -> list[Op]:
        records = int(self.settings["records"])
        chooser = Chooser(records, str(self.settings["distribution"]), f"ycsb/{self.seed}/load")
        ops = []
        for i in range(count):
            record = i if i < records else chooser.next()
            ops.append(Op(i, self.key(record), self.value("load", i)))
        return ops

    def expect(self, ops: list[Op]) -> dict[str, str]:
        return {op.key: op.value for op in ops}      # chain order: the last write stays

    def facts(self) -> dict[str, Any]:
        return {"mix": self.settings["mix"], "read_share": MIXES[str(self.settings["mix"])],
                "records": self.settings["records"],
                "distribution": self.settings["distribution"]}

    # -- the query phase: the mix over the committed records

    def query_subjects(self, kind: str, committed: list[Committed]) -> list[Any]:
        if kind != "ycsb":
            raise ValueError(f"the ycsb workload has no '{kind}' queries")
        keys = sorted({self._key_of[c.tx_id] for c in committed if c.tx_id in self._key_of})
        if not keys:
            return []
        # The phase asks the subjects in shuffled passes: draw them from the distribution so
        # popular records come up as often as YCSB would pick them.
        chooser = Chooser(len(keys), str(self.settings["distribution"]), f"ycsb/{self.seed}/query")
        return [keys[chooser.next()] for _ in range(max(4 * len(keys), 1000))]

    def query_request(self, kind: str, subject: Any, request_id: int) -> Prepared:
        read_share = MIXES[str(self.settings["mix"])]
        draw = int(short_hash("ycsb/op", self.seed, request_id)[:8], 16) / 0xFFFFFFFF
        if draw < read_share:
            return Prepared(body=abci_query_body(subject, request_id), tx_id=subject)
        tx = f"{subject}={self.value('update', request_id)}".encode()
        return Prepared(body=broadcast_body(tx, request_id, self.adapter.broadcast_method),
                        tx_id=subject)
