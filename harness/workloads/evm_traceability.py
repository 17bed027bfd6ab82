"""traceability (溯源): each product gets a chain of events (produced, inspected, shipped,
received, sold...), appended by its owner account; each event is linked to the previous by
a hash chain (head = keccak256(head, event)); history(product) returns it end to end.

Account a's k-th transaction is event k % events of its product k // events (the first
creates the product), so a product's events are ordered by that account's nonces.
Query kind `trace`: eth_call history(product) for the products created. Read-back: every
committed event at its place in the product's chain, each product's length and head hash
(the whole chain end to end), and the total count, from the contract's storage.
"""

from __future__ import annotations

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

ID = "traceability"
FAMILY = "evm"
TITLE = "traceability (溯源): a product's event chain, queried end to end (contracts/Traceability.sol)"
SETTINGS = {"events": {"type": "integer", "minimum": 1, "maximum": 1000}}
DEFAULTS = {"events": 5}
QUERY_KINDS = ("trace",)
STAGES = ("produced", "inspected", "shipped", "received", "sold")
GAS = 150_000


class Workload(EvmWorkload):
    CONTRACTS = ("Traceability",)
    query_kinds = QUERY_KINDS

    def call(self, i: int, sender: int, k: int) -> Call:
        events = self.settings["events"]
        product = digest("product", self.seed, sender, k // events)
        step = k % events
        data = digest("event", self.seed, sender, k // events, step, STAGES[step % len(STAGES)])
        name = "create(bytes32,bytes32)" if step == 0 else "record(bytes32,bytes32)"
        return Call(sender, self.address["Traceability"], call_data(name, product, data), GAS,
                    ("create" if step == 0 else "record", product, data, self.senders[sender].address))

    async def read_back(self, node: Node, committed: list[int]) -> dict[str, Any]:
        chains: dict[bytes, list[bytes]] = {}
        owners: dict[bytes, bytes] = {}
        placed: list[tuple[int, bytes, int]] = []      # (tx, product, position)
        for i in committed:
            name, product, data, owner = self.calls[i].op
            if name == "create" and product not in owners:
                owners[product] = owner
            elif name == "create" or owners.get(product) != owner:
                continue                                   # the contract refuses it: no effect
            placed.append((i, product, len(chains.setdefault(product, []))))
            chains[product].append(data)
        products = sorted(chains)
        block = await self.state_block(node)
        slots = [mapping_slot(pos, mapping_slot(p, 3), "uint256") for _, p, pos in placed]
        slots += [mapping_slot(p, 2) for p in products] + [mapping_slot(p, 1) for p in products] + [4]
        found = await self.storage(node, "Traceability", slots, block)
        tally = Tally()
        for k, (i, product, pos) in enumerate(placed):
            tally.see(f"events[0x{product.hex()[:16]}…][{pos}] (tx {i})",
                      int.from_bytes(self.calls[i].op[2], "big"), found[k])
        base = len(placed)
        for k, product in enumerate(products):
            head = bytes(32)
            for data in chains[product]:
                head = keccak(head + data)
            tally.see(f"product 0x{product.hex()[:16]}…: length and head of its chain",
                      (len(chains[product]), int.from_bytes(head, "big")),
                      (found[base + k], found[base + len(products) + k]), absent=(0, 0))
        tally.see("total", len(placed), found[-1])
        report = tally.report(f"eth_getStorageAt at block {int(block, 16)} vs. the committed events "
                              "replayed in chain order", block=int(block, 16), products=len(products))
        return report

    def query_subjects(self, kind: str, committed: list[Any]) -> list[Any]:
        return sorted({self.calls[self.index[c.tx_id.lower()]].op[1] for c in committed
                       if c.tx_id.lower() in self.index})

    def query_request(self, kind: str, subject: Any, request_id: int) -> Prepared:
        return Prepared(body=eth_call_body(self.address["Traceability"],
                                           call_data("history(bytes32)", subject), request_id),
                        tx_id="0x" + subject.hex())

    @staticmethod
    def query_error(status: int, body: bytes) -> str | None:
        """Answered: a well-formed (bytes32[] events, bytes32 head) with at least one event
        and a non-zero head."""
        data = eth_call_result(status, body)
        if isinstance(data, str):
            return data
        if len(data) < 96:
            return f"history() returned {len(data)} bytes"
        offset, head = int.from_bytes(data[:32], "big"), data[32:64]
        if offset + 32 > len(data):
            return "history() returned a malformed array"
        length = int.from_bytes(data[offset:offset + 32], "big")
        if length == 0 or not any(head):
            return "history() found no events for the product"
        if offset + 32 + 32 * length != len(data):
            return f"history() announced {length} events but returned {(len(data) - offset - 32) // 32}"
        return None

