"""CometBFT evidence storage (存证): each transaction stores a document's SHA-256 with its
metadata under `ev/<doc>`, write-once; every `overwrite_every`-th document is later sent
again with another hash, which the chain must refuse (the scenarios app: code 2 in CheckTx
and FinalizeBlock). The read-back verifies every committed document by query: its stored
hash and metadata are the ones first written."""

from __future__ import annotations

from typing import Any

from harness.workloads.cometbft_common import KvWorkload, Op, short_hash

ID = "evidence"
FAMILY = "cometbft"
TITLE = "evidence storage (存证): document hashes with metadata, write-once, verified by query"
SETTINGS: dict[str, Any] = {
    "overwrite_every": {"type": "integer", "minimum": 0, "maximum": 100000,
                        "description": "every n-th document is sent again with another hash, "
                                       "which must be refused (0: never)"},
    "gap": {"type": "integer", "minimum": 1, "maximum": 100000,
            "description": "sends between a document and its overwrite attempt"},
}
DEFAULTS: dict[str, Any] = {"overwrite_every": 10, "gap": 20}
QUERY_KINDS = ("key",)


class Workload(KvWorkload):
    ID = ID

    def doc_op(self, index: int, doc: int, version: int = 0) -> Op:
        digest = short_hash("doc", self.seed, doc, version)
        meta = f"{self.tag}.doc{doc}.pdf/size{4096 + doc}"
        return Op(index, f"ev/{self.tag}-{doc}", f"{digest},{meta}",
                  must_refuse=f"overwrite of evidence {self.tag}-{doc}" if version else None)

    def build(self, count: int) -> list[Op]:
        every, gap = int(self.settings["overwrite_every"]), int(self.settings["gap"])
        ops: list[Op] = []
        doc = 0
        while len(ops) < count:
            ops.append(self.doc_op(len(ops), doc))
            target = doc - gap
            if every and target >= 0 and target % every == 0 and len(ops) < count:
                ops.append(self.doc_op(len(ops), target, version=1))
            doc += 1
        return ops

    def expect(self, ops: list[Op]) -> dict[str, str]:
        expected: dict[str, str] = {}
        for op in ops:
            expected.setdefault(op.key, op.value)   # write-once: the first one stays
        return expected

    def facts(self) -> dict[str, Any]:
        return {"overwrite_every": self.settings["overwrite_every"]}
