"""Bitcoin-family multi-input / multi-output payments: each load transaction spends
`inputs` P2WPKH UTXOs of the run's accounts and pays `outputs` recipients (the change-less
batch payment of an exchange or a payroll), signed in Python like the adapter's transfers.
The UTXOs come from the adapter's own fan-out (bootstrap), `inputs` per payment.

The read-back asks the node's UTXO set (gettxout, mempool included): every output of a
committed payment is unspent with its value and script, and every input it spent is gone.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from harness.adapters import bitcoin_tx as btx
from harness.adapters.base import Prepared
from harness.adapters.bitcoin import COIN, Utxo, estimate_vsize
from harness.errors import InfraError, InputError
from harness.model import Node

ID = "payments"
FAMILY = "bitcoin"
TITLE = "multi-input / multi-output P2WPKH payments, read back from the UTXO set"
SETTINGS: dict[str, Any] = {
    "inputs": {"type": "integer", "minimum": 1, "maximum": 50,
               "description": "UTXOs each payment spends"},
    "outputs": {"type": "integer", "minimum": 1, "maximum": 50,
                "description": "recipients each payment pays"},
}
DEFAULTS: dict[str, Any] = {"inputs": 2, "outputs": 3}
QUERY_KINDS: tuple[str, ...] = ()
CONCURRENT_READS = 8
MAX_MISMATCHES = 20


def sign_payment(index: int, utxos: list[Utxo], keys: list[btx.Key], scripts: list[bytes],
                 fee_rate: float) -> tuple[Prepared, btx.Tx]:
    """One payment spending `utxos` to `scripts`, the inputs' value less the fee split
    evenly (the remainder to the first output)."""
    fee = math.ceil(estimate_vsize(len(utxos), scripts) * fee_rate)
    total = sum(u.value for u in utxos) - fee
    share = total // len(scripts)
    amounts = [share + (total - share * len(scripts) if n == 0 else 0) for n in range(len(scripts))]
    tx = btx.Tx([btx.TxIn(btx.txid_to_bytes(u.txid), u.vout) for u in utxos],
                [btx.TxOut(amount, script) for amount, script in zip(amounts, scripts, strict=True)])
    cache: dict = {}
    for n, utxo in enumerate(utxos):
        btx.sign_p2wpkh(tx, n, keys[utxo.key], utxo.value, cache)
    body = b'{"jsonrpc":"2.0","id":%d,"method":"sendrawtransaction","params":["%s"]}' % (
        index, tx.serialize().hex().encode())
    return Prepared(body=body, tx_id=tx.txid()), tx


class Workload:
    query_kinds = QUERY_KINDS

    def __init__(self, adapter: Any, settings: dict[str, Any], seed: int, accounts: int):
        self.adapter = adapter
        self.inputs = int(settings["inputs"])
        self.outputs = int(settings["outputs"])
        self.seed = seed
        self.payees = [btx.derive_key("payee", seed, k).p2wpkh for k in range(64)]
        self.spent: list[list[Utxo]] = []
        self.paid: list[list[tuple[int, bytes]]] = []     # (value, script) per output
        self.txids: list[str] = []
        min_value = 2 * math.ceil(estimate_vsize(self.inputs, [self.payees[0]] * self.outputs)
                                  * adapter.fee_rate)
        if self.inputs * adapter.utxo_value <= min_value + 546 * self.outputs:
            raise InputError(None, "workload.settings", f"{self.inputs} inputs of "
                             f"{adapter.utxo_value} cannot pay {self.outputs} outputs and the fee")

    async def bootstrap(self, nodes: list[Node], count: int) -> dict[str, Any]:
        """The adapter fanned out one UTXO per transaction; a payment needs `inputs`."""
        need = count * self.inputs

        def fan_out() -> None:
            with self.adapter._rpcs("the payments' UTXO fan-out") as rpcs:
                self.adapter._fan_out(rpcs, need)

        await asyncio.to_thread(fan_out)
        return {"inputs": self.inputs, "outputs": self.outputs, "utxos": len(self.adapter.utxos),
                "utxo_value": self.adapter.utxo_value}

    def prepare(self, count: int) -> list[Prepared]:
        utxos = self.adapter.utxos
        if len(utxos) < count * self.inputs:
            raise InfraError(f"payments need {count * self.inputs} UTXOs, the fan-out made "
                             f"{len(utxos)}")
        out = []
        for i in range(count):
            spend = utxos[i * self.inputs:(i + 1) * self.inputs]
            scripts = [self.payees[(i * self.outputs + n) % len(self.payees)]
                       for n in range(self.outputs)]
            prepared, tx = sign_payment(i, spend, self.adapter.keys, scripts, self.adapter.fee_rate)
            out.append(prepared)
            self.spent.append(spend)
            self.paid.append([(o.value, o.script_pubkey) for o in tx.outputs])
            self.txids.append(prepared.tx_id)
        return out

    async def read_back(self, node: Node, committed: list[int]) -> dict[str, Any]:
        checks: list[tuple[str, str, int, tuple[int, bytes] | None]] = []
        for i in committed:
            for vout, paid in enumerate(self.paid[i]):
                checks.append((f"output {vout} of payment {i}", self.txids[i], vout, paid))
            for utxo in self.spent[i]:
                checks.append((f"input {utxo.txid[:16]}…:{utxo.vout} of payment {i} spent",
                               utxo.txid, utxo.vout, None))
        semaphore = asyncio.Semaphore(CONCURRENT_READS)

        async def one(txid: str, vout: int) -> Any:
            async with semaphore:
                return await self.adapter._call(node, "gettxout", [txid, vout, True], timeout=10)

        replies = await asyncio.gather(*(one(txid, vout) for _, txid, vout, _ in checks))
        missing = wrong = 0
        mismatches: list[dict[str, Any]] = []
        for (what, _txid, _vout, paid), reply in zip(checks, replies, strict=True):
            if paid is None:
                problem = None if reply is None else ("unspent", "spent")
            elif not isinstance(reply, dict):
                problem = ("absent", f"{paid[0]} sat")
            else:
                value = round(float(reply.get("value", -1)) * COIN)
                script = str((reply.get("scriptPubKey") or {}).get("hex", ""))
                problem = None if (value, script) == (paid[0], paid[1].hex()) else \
                    (f"{value} sat to {script[:20]}", f"{paid[0]} sat to {paid[1].hex()[:20]}")
            if problem is None:
                continue
            if paid is not None and not isinstance(reply, dict):
                missing += 1
            else:
                wrong += 1
            if len(mismatches) < MAX_MISMATCHES:
                mismatches.append({"what": what, "found": problem[0], "expected": problem[1]})
        return {"effects": {"expected": len(checks), "found": len(checks) - missing - wrong,
                            "missing": missing, "wrong": wrong},
                "mismatches": mismatches, "must_refuse": [],
                "method": "gettxout (mempool included) of every output and input of the "
                          "committed payments"}
