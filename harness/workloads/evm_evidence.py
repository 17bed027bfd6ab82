"""evidence (存证): each transaction stores a document's hash once, with the hash of its
metadata (title, type, size, timestamp), its owner and the block; verify(doc) answers it.

Query kind `evidence-verify`: eth_call verify(doc) for the committed documents (answered
only with a non-zero owner). Read-back: every committed document's record is read from the
contract's storage: the metadata hash the harness signed and the owner that signed it, and
the record count.
"""

from __future__ import annotations

import json
from typing import Any

from eth_hash.auto import keccak

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

ID = "evidence"
FAMILY = "evm"
TITLE = "evidence storage (存证): document hash + metadata, verified later (contracts/Evidence.sol)"
SETTINGS: dict[str, Any] = {}
DEFAULTS: dict[str, Any] = {}
QUERY_KINDS = ("evidence-verify",)
GAS = 120_000
KINDS = ("contract", "invoice", "certificate", "judgement", "photo")


def metadata(seed: int, i: int) -> bytes:
    """The document's metadata as the depositor describes it; its hash goes on chain."""
    doc = {"title": f"document {i}", "type": KINDS[i % len(KINDS)], "bytes": 1000 + (i * 7919) % 90000,
           "deposited_by": "bctest", "run_seed": str(seed)}
    return keccak(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


class Workload(EvmWorkload):
    CONTRACTS = ("Evidence",)
    query_kinds = QUERY_KINDS

    def call(self, i: int, sender: int, k: int) -> Call:
        doc = digest("evidence-doc", self.seed, i)
        meta = metadata(self.seed, i)
        return Call(sender, self.address["Evidence"], call_data("store(bytes32,bytes32)", doc, meta), GAS,
                    ("store", doc, meta, self.senders[sender].address))

    async def read_back(self, node: Node, committed: list[int]) -> dict[str, Any]:
        block = await self.state_block(node)
        slots = []
        for i in committed:
            base = mapping_slot(self.calls[i].op[1], 0)
            slots += [base, base + 1]
        found = await self.storage(node, "Evidence", slots + [1], block)
        tally = Tally()
        for k, i in enumerate(committed):
            _, doc, meta, owner = self.calls[i].op
            word = found[2 * k + 1]
            got = (found[2 * k].to_bytes(32, "big"), (word & ((1 << 160) - 1)).to_bytes(20, "big"),
                   (word >> 160) > 0)
            tally.see(f"records[0x{doc.hex()}] (meta, owner, block set)", (meta, owner, True), got,
                      absent=(bytes(32), bytes(20), False))
        tally.see("count", len(committed), found[-1])
        report = tally.report(f"eth_getStorageAt at block {int(block, 16)} vs. the documents the "
                              "harness signed", block=int(block, 16))
        return report

    def query_subjects(self, kind: str, committed: list[Any]) -> list[Any]:
        return [self.calls[self.index[c.tx_id.lower()]].op[1] for c in committed
                if c.tx_id.lower() in self.index]

    def query_request(self, kind: str, subject: Any, request_id: int) -> Prepared:
        return Prepared(body=eth_call_body(self.address["Evidence"], call_data("verify(bytes32)", subject),
                                           request_id), tx_id="0x" + subject.hex())

    @staticmethod
    def query_error(status: int, body: bytes) -> str | None:
        """Answered: (owner, meta, number) with a non-zero owner and metadata."""
        data = eth_call_result(status, body)
        if isinstance(data, str):
            return data
        if len(data) != 96:
            return f"verify() returned {len(data)} bytes, not 96"
        if not any(data[:32]) or not any(data[32:64]):
            return "verify() found no record of the document"
        return None

