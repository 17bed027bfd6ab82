"""einvoice (电子发票): an invoice is issued, transferred to a new holder and redeemed
exactly once; every `double_every`-th invoice is redeemed a second time by a transaction
signed into the load, which the chain must refuse (revert it, or reject it at submission).

Account a's transactions run its invoices' lifecycles in nonce order (issue, transfer,
redeem[, redeem again]), so each step follows the one before whatever the block order of
other accounts. Read-back: the committed operations replayed in chain order over the
contract's rules give each invoice's issuer, state, transfer and redemption counts, holder
and amount, and the issued/redeemed totals; each is read from the contract's storage. Each
double redemption is judged: refused when it was rejected, never included, or included
with status 0 — and the invoice's redemption count on chain is exactly 1.
"""

from __future__ import annotations

from typing import Any

from harness.model import Node
from harness.workloads.evm_kit import Call, EvmWorkload, Tally, call_data, digest, mapping_slot

ID = "einvoice"
FAMILY = "evm"
TITLE = "e-invoice (电子发票): issue, transfer, redeem exactly once (contracts/EInvoice.sol)"
SETTINGS = {"double_every": {"type": "integer", "minimum": 1, "maximum": 1000000,
                             "description": "every n-th invoice of an account is redeemed twice"}}
DEFAULTS = {"double_every": 3}
QUERY_KINDS: tuple[str, ...] = ()
GAS = 150_000
MASK160 = (1 << 160) - 1


def lifecycle(k: int, double_every: int) -> tuple[int, str]:
    """An account's k-th transaction: (its invoice number, the step)."""
    n = 0
    while True:
        steps = ["issue", "transfer", "redeem"] + (["redeem-again"] if n % double_every == 0 else [])
        if k < len(steps):
            return n, steps[k]
        k -= len(steps)
        n += 1


class Invoice:
    def __init__(self, issuer: bytes, holder: bytes, amount: int):
        self.issuer, self.holder, self.amount = issuer, holder, amount
        self.state, self.transfers, self.redemptions = 1, 0, 0

    def word(self) -> int:
        return (int.from_bytes(self.issuer, "big") | self.state << 160 | self.transfers << 168
                | self.redemptions << 200)


def replay(ops: list[tuple], invoices: dict[bytes, Invoice]) -> list[bool]:
    """Apply operations as the contract does; whether each took effect."""
    out = []
    for name, inv_id, a, b, issuer in ops:
        inv = invoices.get(inv_id)
        ok = False
        if name == "issue" and inv is None:
            invoices[inv_id] = Invoice(issuer, a, b)
            ok = True
        elif name == "transfer" and inv and inv.state == 1 and inv.issuer == issuer and inv.holder == a:
            inv.holder, inv.transfers, ok = b, inv.transfers + 1, True
        elif name in ("redeem", "redeem-again") and inv and inv.state == 1 and inv.issuer == issuer \
                and inv.holder == a:
            inv.state, inv.redemptions, ok = 2, inv.redemptions + 1, True
        out.append(ok)
    return out


class Workload(EvmWorkload):
    CONTRACTS = ("EInvoice",)

    def call(self, i: int, sender: int, k: int) -> Call:
        n, step = lifecycle(k, self.settings["double_every"])
        inv = digest("invoice", self.seed, sender, n)
        buyer, payee = digest("buyer", self.seed, sender, n), digest("payee", self.seed, sender, n)
        issuer = self.senders[sender].address
        if step == "issue":
            amount = 100 + n
            data, op = call_data("issue(bytes32,bytes32,uint256)", inv, buyer, amount), \
                ("issue", inv, buyer, amount, issuer)
        elif step == "transfer":
            data, op = call_data("transfer(bytes32,bytes32,bytes32)", inv, buyer, payee), \
                ("transfer", inv, buyer, payee, issuer)
        else:
            data, op = call_data("redeem(bytes32,bytes32)", inv, payee), (step, inv, payee, None, issuer)
        return Call(sender, self.address["EInvoice"], data, GAS, op)

    async def read_back(self, node: Node, committed: list[int]) -> dict[str, Any]:
        invoices: dict[bytes, Invoice] = {}
        took = dict(zip(committed, replay([self.calls[i].op for i in committed], invoices), strict=True))
        ids = sorted(invoices)
        block = await self.state_block(node)
        slots = []
        for inv_id in ids:
            base = mapping_slot(inv_id, 0)
            slots += [base, base + 1, base + 2]
        found = await self.storage(node, "EInvoice", slots + [1, 2], block)
        tally = Tally()
        on_chain: dict[bytes, int] = {}
        for k, inv_id in enumerate(ids):
            inv, word = invoices[inv_id], found[3 * k]
            on_chain[inv_id] = (word >> 200) & 0xFFFFFFFF
            tally.see(f"invoice 0x{inv_id.hex()[:16]}… (issuer|state|transfers|redemptions, holder, amount)",
                      (inv.word(), int.from_bytes(inv.holder, "big"), inv.amount),
                      (word, found[3 * k + 1], found[3 * k + 2]), absent=(0, 0, 0))
        tally.see("issued", len(invoices), found[-2])
        tally.see("redeemed", sum(inv.state == 2 for inv in invoices.values()), found[-1])
        must = await self._refusals(node, set(committed), took, on_chain)
        return tally.report(f"eth_getStorageAt at block {int(block, 16)} vs. the committed operations "
                            "replayed in chain order", block=int(block, 16), must_refuse=must,
                            invoices=len(invoices))

    async def _refusals(self, node: Node, committed: set[int], took: dict[int, bool],
                        on_chain: dict[bytes, int]) -> list[dict[str, Any]]:
        doubles = [i for i, c in enumerate(self.calls) if c.op[0] == "redeem-again"]
        included = [i for i in doubles if i in committed]
        receipts = await self.receipts(node, included) if included else {}
        out = []
        for i in doubles:
            inv_id = self.calls[i].op[1]
            what = f"second redemption of invoice 0x{inv_id.hex()[:16]}… (tx {i}, {self.tx_ids[i]})"
            redemptions = on_chain.get(inv_id)
            if i in committed:
                if took[i]:   # the first redemption never committed: this one was the first
                    out.append({"i": i, "what": what, "outcome": "the first redemption did not commit, "
                                "so this was not a double redemption", "refused": None})
                    continue
                receipt = receipts.get(i) or {}
                status = receipt.get("status")
                refused = status == "0x0" and redemptions == 1
                outcome = f"included with status {status}; redemptions on chain: {redemptions}"
            elif i in self.sends:
                error = self.sends[i]
                outcome = (f"rejected at submission: {error}" if error
                           else "accepted but never included") + f"; redemptions on chain: {redemptions}"
                refused = redemptions in (None, 0, 1)
            else:
                out.append({"i": i, "what": what, "outcome": "never sent", "refused": None})
                continue
            out.append({"i": i, "what": what, "outcome": outcome, "refused": refused})
        return out
