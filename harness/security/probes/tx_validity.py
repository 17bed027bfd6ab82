"""Probe 2 of the security suite: the transaction validity matrix.

Each invalid transaction goes to one node (round robin) exactly as the load sends its own:
the adapter's submit path, headers and body format. The node must refuse it at submission,
and no node may ever put it in a block. After the last submission the probe waits for
`blocks` new blocks on every node (at most `wait` seconds), then reads every block each
node made since the first submission (the adapter's `block_at`: the chain's own account of
what it committed) and looks for the bad transactions' ids there.

Two attempts per case: `<case>.submit` on the node it was sent to, and `<case>.block` on
"network" (every node's blocks). Severities: a node that accepts an invalid transaction is a
`high` finding (`medium` for the policy limits: an unprotected or an oversized transaction,
which consensus would still allow); a block holding one is `critical` (a consensus rule was
broken), `high` for an unprotected transaction (replayable on every chain) and `medium` for
an oversized one.

Cases (each built otherwise valid, so only its flaw can be the reason to refuse it):
  evm      bad_signature (a flipped byte of s: recovery gives another, unfunded address),
           signature_zero_r (r = 0: no address can be recovered), high_s (s' = n - s with the
           other recovery id: EIP-2), wrong_chain_id, unprotected (pre-EIP-155, v = 27/28),
           nonce_reused (the nonce of the sender's last committed transaction), nonce_too_low
           (nonce 0), insufficient_funds (a fresh key), gas_below_intrinsic (20,000),
           gas_above_block_limit, oversized_data (`oversize_kib` KiB of calldata; geth's pool
           stops at 128 KiB). Each case that needs a funded sender gets a fresh key, funded
           first by the run's first sender (plain transfers, committed on every node before
           the cases are sent): a wrongly accepted case that never mines (its nonce stuck in a
           pool) cannot hold back the next one, and the run's accounts keep their nonces.
           The nonce cases use the run's first sender itself (an honest node refuses them).
  bitcoin  spent_outpoint (a load UTXO already spent in a block), unknown_outpoint,
           bad_signature (one flipped bit in the signature's s), value_above_inputs.
  cometbft kvstore CheckTx: no_separator, two_separators (`a=b=c`), empty_key (`=v`),
           empty, bad_validator_update (`val=` with a part missing); always sent with
           broadcast_tx_sync so the reply carries CheckTx's verdict. With `halting: true`
           also rewritten_validator_update (`val:...`), which kvstore 0.38 accepts and then
           rewrites in its own PrepareProposal into a block every validator rejects: the
           chain stops for good, so it is off by default (a dedicated run shows it).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from harness.model import Attempt, Node
from harness.security.probe import NotApplicable, ProbeTarget

ID = "tx_validity"
ORDER = 20
TITLE = {"en": "Transaction validity: invalid transactions are refused at submission and never "
               "committed",
         "zh": "交易有效性：无效交易在提交时被拒绝，且从不进入区块"}
SEVERITY = "critical"
DEFAULTS: dict[str, Any] = {"blocks": 3, "wait": 30, "max_blocks": 300, "oversize_kib": 256,
                            "halting": False}
SETTINGS: dict[str, Any] = {
    "blocks": {"type": "integer", "minimum": 1, "maximum": 100,
               "description": "new blocks every node must make after the last submission "
                              "before the blocks are read"},
    "wait": {"type": "number", "minimum": 1, "maximum": 600,
             "description": "seconds to wait at most for those blocks"},
    "max_blocks": {"type": "integer", "minimum": 1, "maximum": 10000,
                   "description": "blocks read per node at most"},
    "oversize_kib": {"type": "integer", "minimum": 129, "maximum": 4096,
                     "description": "calldata of the oversized EVM transaction, KiB"},
    "halting": {"type": "boolean",
                "description": "also send the cases known to halt a reference chain for good "
                               "(CometBFT kvstore: a `val:` transaction); for a dedicated run"},
}

# Policy limits rather than consensus rules: (severity when accepted, when in a block).
POLICY = {"unprotected": ("medium", "high"), "oversized_data": ("medium", "medium")}
# How the adapters' block_at reads a block, as the block attempts' request says it.
READS = {"evm": "eth_getBlockByNumber(<height>, false)", "cometbft": "GET /block?height=<height>",
         "bitcoin": "getblockhash <height>, getblock <hash> 1"}
FEE_CAP = 5 * 10**17   # wei: half of geth's default RPC fee cap (1 ether)
RESERVE = 8.0          # seconds of the budget kept for reading the blocks
POLL = 0.5             # seconds between height reads while waiting for blocks


@dataclass
class Bad:
    """One invalid transaction, ready to send."""

    case: str
    what: str                    # the transaction as a phrase: "a transfer with ..."
    body: bytes                  # the submission body
    tx_id: str                   # the id a block would list it under
    node: Node
    accept_severity: str = "high"
    block_severity: str = "critical"
    ids: set[str] = field(default_factory=set)   # tx_id and any other id the node reported
    accepted: bool | None = None


Item = Bad | Attempt


async def run(target: ProbeTarget) -> list[Attempt]:
    cases = {"evm": _evm_cases, "bitcoin": _bitcoin_cases, "cometbft": _cometbft_cases}.get(target.family)
    if cases is None:
        raise NotApplicable(f"no {ID} cases for the {target.family} family")
    if not target.nodes:
        raise NotApplicable("the run has no nodes")
    attempts: list[Attempt] = []
    start = await _heights(target)
    sent: list[Bad] = []
    async for item in cases(target):
        if isinstance(item, Attempt):
            attempts.append(item)
            continue
        if target.time_left() < RESERVE:
            attempts.append(target.attempt(f"{item.case}.submit", item.node, None,
                                           f"{_cap(item.what)} is refused at submission",
                                           "not sent: the probe's time budget ran out",
                                           severity=item.accept_severity))
            continue
        attempts.append(await _submit(target, item))
        sent.append(item)
    if not sent:
        return attempts
    mark = await _heights(target)
    end = await _wait_blocks(target, mark)
    attempts += await _inclusion(target, sent, start, mark, end)
    return attempts


# -- sending and judging ----------------------------------------------------------------------


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


async def _submit(target: ProbeTarget, bad: Bad) -> Attempt:
    adapter = target.adapter
    url = bad.node.url("rpc") + adapter.submit_path
    bad.ids.add(_norm(bad.tx_id))
    reply = await target.http(url, bad.body, headers=dict(adapter.submit_headers))
    title = f"{_cap(bad.what)} is refused at submission"
    if reply.status is None:
        return target.attempt(f"{bad.case}.submit", bad.node, None, title,
                              f"{bad.node.name} did not answer: {reply.error}", bad.body, reply.text(),
                              severity=bad.accept_severity)
    try:
        reason = adapter.response_error(reply.status, reply.body)
    except Exception as exc:   # a vendor adapter that cannot classify a hostile answer
        return target.attempt(f"{bad.case}.submit", bad.node, None, title,
                              f"the {target.family} adapter could not read {bad.node.name}'s answer: "
                              f"{type(exc).__name__}: {exc}"[:300], bad.body, reply.text(),
                              severity=bad.accept_severity)
    bad.accepted = reason is None
    if reason is not None:
        return target.attempt(f"{bad.case}.submit", bad.node, True, title,
                              f"{bad.node.name} refused it: {reason}", bad.body, reply.text(),
                              severity=bad.accept_severity)
    reported = _reported_id(reply.json())
    if reported:
        bad.ids.add(_norm(reported))
    other = f" under the id {reported}" if reported and _norm(reported) != _norm(bad.tx_id) else ""
    return target.attempt(f"{bad.case}.submit", bad.node, False, title,
                          f"{bad.node.name} accepted it{other} (transaction id {bad.tx_id})",
                          bad.body, reply.text(), severity=bad.accept_severity)


def _reported_id(reply: Any) -> str | None:
    """The id a node answered for an accepted submission (EVM/Bitcoin: the result; CometBFT:
    result.hash), if it is a short string."""
    if not isinstance(reply, dict):
        return None
    result = reply.get("result")
    if isinstance(result, dict):
        result = result.get("hash")
    return result if isinstance(result, str) and 0 < len(result) <= 130 else None


def _norm(tx_id: str) -> str:
    """Ids compared as the families write them: EVM 0x-hex, CometBFT upper-case hex."""
    text = tx_id.lower()
    return text[2:] if text.startswith("0x") else text


async def _heights(target: ProbeTarget) -> dict[str, int | None]:
    async def one(node: Node) -> int | None:
        try:
            return int(await asyncio.wait_for(target.adapter.height(node), 10))
        except Exception:   # a node's answer is hostile: any failure is "could not read"
            return None
    values = await asyncio.gather(*(one(node) for node in target.nodes))
    return {node.name: value for node, value in zip(target.nodes, values, strict=True)}


async def _wait_blocks(target: ProbeTarget, mark: dict[str, int | None]) -> dict[str, int | None]:
    """Every node's height once each has made `blocks` blocks after `mark` (or `wait` s)."""
    blocks = int(target.settings.get("blocks", DEFAULTS["blocks"]))
    wait = float(target.settings.get("wait", DEFAULTS["wait"]))
    deadline = min(time.monotonic() + wait, target.deadline - RESERVE)
    while True:
        heights = await _heights(target)
        done = all(heights[n] is not None and heights[n] >= (mark[n] or 0) + blocks
                   for n in heights if mark[n] is not None)
        if done or time.monotonic() + POLL >= deadline:
            return heights
        await asyncio.sleep(POLL)


async def _inclusion(target: ProbeTarget, sent: list[Bad], start: dict[str, int | None],
                     mark: dict[str, int | None], end: dict[str, int | None]) -> list[Attempt]:
    """Read every block each node made since the first submission; judge each case."""
    limit = int(target.settings.get("max_blocks", DEFAULTS["max_blocks"]))
    found: dict[str, list[str]] = {}        # id -> ["node0 block 12", ...]
    scanned: dict[str, str] = {}            # node -> "blocks 10-14" (what was read)
    unknown: dict[str, str] = {}            # node -> why its blocks could not be judged
    for node in target.nodes:
        low = start[node.name] if start[node.name] is not None else mark[node.name]
        high = end[node.name]
        if low is None or high is None:
            unknown[node.name] = "its height could not be read"
            continue
        if high <= (mark[node.name] if mark[node.name] is not None else low):
            unknown[node.name] = f"it made no block after the submissions (height {high})"
        top = min(high, low + limit)
        for number in range(low + 1, top + 1):
            if target.time_left() < 1:
                unknown[node.name] = f"the time budget ran out reading block {number}"
                top = number - 1
                break
            try:
                block = await asyncio.wait_for(target.adapter.block_at(node, number), 15)
                ids = {_norm(str(t)) for t in block.tx_ids}
            except Exception as exc:   # hostile or missing answer: this node cannot be judged
                unknown[node.name] = f"block {number} could not be read ({type(exc).__name__}: " \
                                     f"{str(exc)[:120]})"
                top = number - 1
                break
            for bad in sent:
                if bad.ids & ids:
                    found.setdefault(bad.tx_id, []).append(f"{node.name} block {number}")
        scanned[node.name] = f"blocks {low + 1}-{top}" if top > low else "no block"
    reads = "; ".join(f"{name}: {what}" for name, what in scanned.items())
    attempts = []
    for bad in sent:
        title = f"{_cap(bad.what)} is in no block on any node"
        request = (f"{READS.get(target.family, 'each block')} for every height each node made since "
                   f"the first submission, looking for {', '.join(sorted(bad.ids))}")
        if bad.tx_id in found:
            holders = ", ".join(found[bad.tx_id])
            verdict: bool | None = False
            why = f"committed: {holders}" + ("" if bad.accepted else " (although its submission was refused)")
        elif unknown:
            verdict = None
            why = "not found in the blocks read, but " + "; ".join(f"{n}: {w}" for n, w in unknown.items())
        else:
            verdict = True
            why = f"in none of the blocks read ({reads})"
        attempts.append(target.attempt(f"{bad.case}.block", "network", verdict, title, why, request,
                                       reads or "(no block read)", severity=bad.block_severity))
    return attempts


# -- EVM --------------------------------------------------------------------------------------


def _evm_body(raw: bytes) -> bytes:
    from harness.adapters import jsonrpc

    return jsonrpc.request_body("eth_sendRawTransaction", ["0x" + raw.hex()], 1)


def _evm_resign(raw: bytes, v: int | None = None, r: int | None = None, s: int | None = None) -> bytes:
    """A signed legacy transaction with its v, r or s replaced."""
    import rlp

    fields = list(rlp.decode(raw))
    for index, value in ((6, v), (7, r), (8, s)):
        if value is not None:
            fields[index] = value
    return rlp.encode(fields)


def evm_fields(raw: bytes) -> tuple[int, int, int]:
    """(v, r, s) of a signed legacy transaction."""
    import rlp

    fields = rlp.decode(raw)
    return tuple(int.from_bytes(f, "big") for f in fields[6:9])   # type: ignore[return-value]


def evm_flip_s(raw: bytes) -> bytes:
    """The signature with the last byte of s inverted: still in range and low, so recovery
    succeeds and yields another address."""
    from harness.adapters.evm_tx import SECP256K1_N

    v, r, s = evm_fields(raw)
    for shift in range(0, 256, 8):
        flipped = s ^ (0xFF << shift)
        if 0 < flipped <= SECP256K1_N // 2:
            return _evm_resign(raw, s=flipped)
    raise ValueError("no byte of s can be flipped")   # unreachable for a real signature


def evm_high_s(raw: bytes, chain_id: int) -> bytes:
    """The same signature made malleable: s' = n - s and the other recovery id (EIP-2 forbids it)."""
    from harness.adapters.evm_tx import SECP256K1_N

    v, r, s = evm_fields(raw)
    recid = v - (chain_id * 2 + 35) if v >= 35 else v - 27
    base = v - recid
    return _evm_resign(raw, v=base + (1 - recid), s=SECP256K1_N - s)


def evm_unprotected(key: bytes, nonce: int, gas_price: int, gas: int, to: bytes, value: int) -> bytes:
    """A pre-EIP-155 legacy transfer: no chain id in the signed digest, v = 27/28."""
    import coincurve
    import rlp
    from eth_hash.auto import keccak

    fields = [nonce, gas_price, gas, to, value, b""]
    signature = coincurve.PrivateKey(key).sign_recoverable(keccak(rlp.encode(fields)), hasher=None)
    return rlp.encode(fields + [27 + signature[64], int.from_bytes(signature[:32], "big"),
                                int.from_bytes(signature[32:64], "big")])


def _quantity(value: Any) -> int | None:
    """A JSON-RPC hex quantity as an int (None if it is not one)."""
    try:
        return int(str(value), 16) if value is not None else None
    except ValueError:
        return None


def _fresh_key() -> bytes:
    from harness.adapters.evm_tx import SECP256K1_N

    while True:
        key = secrets.token_bytes(32)
        if 0 < int.from_bytes(key, "big") < SECP256K1_N:
            return key


async def _evm_read(target: ProbeTarget, node: Node, method: str, params: list[Any]) -> tuple[Any, str]:
    """(result, "") or (None, why not)."""
    _, reply = await target.rpc(node, method, params)
    ok, result = reply.rpc_result()
    if ok:
        return result, ""
    return None, f"{method} on {node.name} answered no result: {reply.rpc_error() or reply.text()[:200]}"


async def _evm_quantity(target: ProbeTarget, node: Node, method: str,
                        params: list[Any]) -> tuple[int | None, str]:
    result, why = await _evm_read(target, node, method, params)
    if result is None:
        return None, why
    try:
        return int(str(result), 16), ""
    except ValueError:
        return None, f"{method} on {node.name} answered {str(result)[:80]!r}, not a quantity"


async def _evm_cases(target: ProbeTarget) -> AsyncIterator[Item]:
    from harness.adapters.evm_tx import account_from_key, derive_account, sign_transfer

    adapter = target.adapter
    sender = adapter.senders(max(1, int(adapter.accounts)))[0]
    to = derive_account("recipient", adapter.seed, 0).address
    chain_id, price = int(adapter.chain_id), int(adapter.gas_price)
    nodes = target.nodes
    transfer = 21_000
    kib = int(target.settings.get("oversize_kib", DEFAULTS["oversize_kib"]))

    def unknown(case: str, node: Node, what: str, why: str) -> Attempt:
        return target.attempt(f"{case}.submit", node, None, f"{_cap(what)} is refused at submission",
                              f"not sent: {why}", severity="high")

    def bad(case: str, node: Node, what: str, raw: bytes) -> Bad:
        from eth_hash.auto import keccak

        accept, block = POLICY.get(case, ("high", "critical"))
        return Bad(case, what, _evm_body(raw), "0x" + keccak(raw).hex(), node, accept, block)

    first = nodes[0]
    latest, why_limit = await _evm_read(target, first, "eth_getBlockByNumber", ["latest", False])
    try:
        limit: int | None = int(str(latest["gasLimit"]), 16)   # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        limit, why_limit = None, why_limit or f"eth_getBlockByNumber on {first.name} answered no gasLimit"

    if limit is not None and not 0 < limit < 2**63:
        limit, why_limit = None, f"eth_getBlockByNumber on {first.name} answered the gas limit {limit}"

    # (case, what, fee, build(key, nonce 0) -> raw): each from its own fresh account, funded
    # by the run's first sender, so a wrongly accepted one that never mines (a nonce stuck in
    # a pool) cannot hold back the next case.
    plans: list[tuple[str, str, int, Any]] = [
        ("bad_signature", "a transfer whose signature has one byte of s inverted", price * transfer,
         lambda key: evm_flip_s(sign_transfer(key, 0, price, transfer, to, 1, chain_id)[0])),
        ("signature_zero_r", "a transfer whose signature has r = 0", price * transfer,
         lambda key: _evm_resign(sign_transfer(key, 0, price, transfer, to, 1, chain_id)[0], r=0)),
        ("high_s", "a transfer with a high-s (malleable) signature", price * transfer,
         lambda key: evm_high_s(sign_transfer(key, 0, price, transfer, to, 1, chain_id)[0], chain_id)),
        ("wrong_chain_id", f"a transfer signed for chain id {chain_id + 1} (this chain is {chain_id})",
         price * transfer, lambda key: sign_transfer(key, 0, price, transfer, to, 1, chain_id + 1)[0]),
        ("unprotected", "an unprotected (pre-EIP-155, v = 27/28) transfer", price * transfer,
         lambda key: evm_unprotected(key, 0, price, transfer, to, 1)),
        ("gas_below_intrinsic", "a transfer with gas 20000, below the intrinsic 21000", price * 20_000,
         lambda key: sign_transfer(key, 0, price, 20_000, to, 1, chain_id)[0]),
        ("oversized_data", f"a transaction with {kib} KiB of calldata", price * (transfer + 16 * kib * 1024),
         lambda key: sign_transfer(key, 0, price, transfer + 16 * kib * 1024, to, 1, chain_id,
                                   bytes(kib * 1024))[0]),
    ]
    if limit is not None:
        # A price that keeps the fee under the 1-ether RPC fee cap most nodes have (geth's
        # --rpc.txfeecap), and above the block's base fee: so only the gas limit is wrong.
        base = _quantity(latest.get("baseFeePerGas") if isinstance(latest, dict) else None) or 0
        cheap = max(min(price, FEE_CAP // (limit + 1)), 2 * base, 1)
        plans.append(("gas_above_block_limit", f"a transfer with gas {limit + 1}, above the block gas "
                      f"limit {limit}", cheap * (limit + 1),
                      lambda key: sign_transfer(key, 0, cheap, limit + 1, to, 1, chain_id)[0]))
    else:
        yield unknown("gas_above_block_limit", first,
                      "a transfer whose gas exceeds the block gas limit", why_limit)

    funded, why_funded = await _evm_fund(target, sender, [2 * fee + 1000 for _, _, fee, _ in plans])
    for k, ((case, what, _, build), key) in enumerate(zip(plans, funded, strict=True)):
        node = nodes[k % len(nodes)]
        if key is None:
            yield unknown(case, node, what, why_funded)
        else:
            yield bad(case, node, what, build(key))

    # Nonces already used by the run sender's committed transactions (the funding ones too).
    node = nodes[len(plans) % len(nodes)]
    committed, why = await _evm_quantity(target, node, "eth_getTransactionCount",
                                         [sender.hex_address, "latest"])
    reused_what = "a transfer reusing the nonce of the sender's last committed transaction"
    low_what = "a transfer with nonce 0, below the sender's committed nonces"
    if committed is None or committed < 1:
        yield unknown("nonce_reused", node, reused_what,
                      why or f"{sender.hex_address} has no committed transaction on {node.name}")
    else:
        other = derive_account("recipient", adapter.seed, 1).address
        yield bad("nonce_reused", node, f"{reused_what} (nonce {committed - 1})",
                  sign_transfer(sender.key, committed - 1, price, transfer, other, 2, chain_id)[0])
    node = nodes[(len(plans) + 1) % len(nodes)]
    if committed is None or committed < 2:
        yield unknown("nonce_too_low", node, low_what,
                      why or f"{sender.hex_address} has fewer than 2 committed transactions on {node.name}")
    else:
        yield bad("nonce_too_low", node, low_what,
                  sign_transfer(sender.key, 0, price, transfer, to, 3, chain_id)[0])

    # A key that never had a coin.
    node = nodes[(len(plans) + 2) % len(nodes)]
    poor = account_from_key(_fresh_key())
    yield bad("insufficient_funds", node, f"a transfer from {poor.hex_address}, an account with no funds",
              sign_transfer(poor.key, 0, price, transfer, to, 1, chain_id)[0])


async def _evm_fund(target: ProbeTarget, sender: Any, amounts: list[int]) -> tuple[list[bytes | None], str]:
    """Fresh keys, each funded with its amount by `sender` (plain transfers, sent to the first
    node like the load's), once every node holds the funding: (keys, None where unfunded;
    why not)."""
    from harness.adapters.evm_tx import account_from_key, sign_transfer

    adapter = target.adapter
    node = target.nodes[0]
    keys = [_fresh_key() for _ in amounts]
    if not amounts:
        return [], ""
    nonce, why = await _evm_quantity(target, node, "eth_getTransactionCount", [sender.hex_address, "pending"])
    if nonce is None:
        return [None] * len(keys), f"the funding transfers could not be signed: {why}"
    sent: list[bytes | None] = []
    refused = ""
    for i, (key, amount) in enumerate(zip(keys, amounts, strict=True)):
        raw, _ = sign_transfer(sender.key, nonce + i, int(adapter.gas_price), 21_000,
                               account_from_key(key).address, amount, int(adapter.chain_id))
        reply = await target.http(node.url("rpc") + adapter.submit_path, _evm_body(raw),
                                  headers=dict(adapter.submit_headers))
        reason = reply.error if reply.status is None else adapter.response_error(reply.status, reply.body)
        if reason is not None:
            refused = f"{node.name} refused the funding transfer from {sender.hex_address}: {reason}"
            break
        sent.append(key)
    # Funded once every node counts the funding transfers among the sender's committed ones.
    want = nonce + len(sent)
    wait = float(target.settings.get("wait", DEFAULTS["wait"]))
    deadline = min(time.monotonic() + wait, target.deadline - 2 * RESERVE)
    while sent:
        counts = [await _evm_quantity(target, n, "eth_getTransactionCount", [sender.hex_address, "latest"])
                  for n in target.nodes]
        if all(c is not None and c >= want for c, _ in counts):
            break
        if time.monotonic() + POLL >= deadline:
            return [None] * len(keys), (f"the funding transfers from {sender.hex_address} did not commit "
                                        f"on every node within {wait:g} s")
        await asyncio.sleep(POLL)
    return sent + [None] * (len(keys) - len(sent)), refused


# -- Bitcoin ----------------------------------------------------------------------------------


def _btc_body(raw: bytes) -> bytes:
    from harness.adapters import jsonrpc

    return jsonrpc.request_body("sendrawtransaction", [raw.hex()], 1)


def btc_spend(txid: str, vout: int, value: int, key: Any, amount: int, script: bytes) -> Any:
    """A signed 1-in-1-out P2WPKH spend (harness.adapters.bitcoin_tx.Tx)."""
    from harness.adapters import bitcoin_tx as btx

    tx = btx.Tx([btx.TxIn(btx.txid_to_bytes(txid), vout)], [btx.TxOut(amount, script)])
    btx.sign_p2wpkh(tx, 0, key, value)
    return tx


def btc_break_signature(tx: Any) -> Any:
    """The first input's signature with one bit of s flipped: still DER, low-S, hash type
    kept; only the verification fails."""
    witness = list(tx.inputs[0].witness)
    signature = bytearray(witness[0])
    signature[-2] ^= 0x01          # the last byte of s (before the hash-type byte)
    witness[0] = bytes(signature)
    tx.inputs[0].witness = witness
    return tx


async def _btc_txout(target: ProbeTarget, node: Node, txid: str, vout: int,
                     mempool: bool) -> tuple[bool, Any]:
    """(answered, gettxout's result: None when the outpoint is spent or unknown)."""
    _, reply = await target.rpc(node, "gettxout", [txid, vout, mempool],
                                headers=dict(target.adapter.submit_headers))
    data = reply.json()
    if reply.status is None or not isinstance(data, dict) or data.get("error"):
        return False, None
    return True, data.get("result")


async def _btc_unspent(target: ProbeTarget, node: Node,
                       want: int) -> tuple[list[tuple[str, int, int, Any]], str]:
    """Up to `want` unspent, spendable outpoints owned by the run's keys: (txid, vout, value,
    key), from the funder's coinbases and the load UTXOs the load did not spend."""
    adapter = target.adapter
    maturity = int(getattr(adapter, "maturity", 100))
    candidates = [(txid, 0, adapter.funder) for _, txid, _ in list(adapter.coinbases)[:8]]
    candidates += [(u.txid, u.vout, adapter.keys[u.key]) for u in list(adapter.utxos)[::-1][:8]]
    found: list[tuple[str, int, int, Any]] = []
    for txid, vout, key in candidates:
        if len(found) >= want or target.time_left() < RESERVE:
            break
        answered, out = await _btc_txout(target, node, txid, vout, True)
        if not answered or not isinstance(out, dict):
            continue
        try:
            script = str((out.get("scriptPubKey") or {}).get("hex", ""))
            value = int(round(float(out["value"]) * 100_000_000))
            confirmations = int(out.get("confirmations") or 0)
        except (KeyError, TypeError, ValueError):
            continue
        if script != key.p2wpkh.hex() or (out.get("coinbase") and confirmations <= maturity):
            continue
        found.append((txid, vout, value, key))
    return found, "" if found else f"no unspent outpoint of the run's keys found on {node.name}"


async def _bitcoin_cases(target: ProbeTarget) -> AsyncIterator[Item]:
    adapter = target.adapter
    nodes = target.nodes
    fee = int(adapter.load_fee)
    to = adapter.funder.p2wpkh

    def node_for(k: int) -> Node:
        return nodes[k % len(nodes)]

    def unknown(case: str, node: Node, what: str, why: str) -> Attempt:
        return target.attempt(f"{case}.submit", node, None, f"{_cap(what)} is refused at submission",
                              f"not sent: {why}", severity="high")

    def bad(case: str, node: Node, what: str, tx: Any) -> Bad:
        return Bad(case, what, _btc_body(tx.serialize()), tx.txid(), node)

    # An outpoint a load transaction already spent in a block: a double spend.
    node = node_for(0)
    what = "a spend of an outpoint already spent in a block"
    spent = None
    for utxo in list(adapter.utxos)[:12]:
        if target.time_left() < RESERVE:
            break
        answered, out = await _btc_txout(target, node, utxo.txid, utxo.vout, False)
        if answered and out is None:
            spent = utxo
            break
    if spent is None:
        yield unknown("spent_outpoint", node, what, f"no load UTXO is spent in a block on {node.name}")
    else:
        yield bad("spent_outpoint", node, f"{what} ({spent.txid}:{spent.vout})",
                  btc_spend(spent.txid, spent.vout, spent.value, adapter.keys[spent.key],
                            spent.value - 2 * fee, to))

    # An outpoint that never existed.
    node = node_for(1)
    ghost = secrets.token_hex(32)
    yield bad("unknown_outpoint", node, f"a spend of an outpoint that never existed ({ghost}:0)",
              btc_spend(ghost, 0, 50_000, adapter.funder, 50_000 - 2 * fee, to))

    # A real unspent outpoint of the run's keys, with a broken signature / more out than in.
    unspent, why = await _btc_unspent(target, node_for(2), 2)
    for k, case, what in ((2, "bad_signature", "a spend whose signature has one flipped bit"),
                          (3, "value_above_inputs", "a spend whose output exceeds its input")):
        node = node_for(k)
        if not unspent:
            yield unknown(case, node, what, why)
            continue
        txid, vout, value, key = unspent[min(k - 2, len(unspent) - 1)]
        if case == "bad_signature":
            tx = btc_break_signature(btc_spend(txid, vout, value, key, value - 2 * fee, to))
        else:
            tx = btc_spend(txid, vout, value, key, value + 1000, to)
        yield bad(case, node, f"{what} ({txid}:{vout}, {value} in)", tx)


# -- CometBFT ---------------------------------------------------------------------------------


async def _cometbft_cases(target: ProbeTarget) -> AsyncIterator[Item]:
    from harness.adapters.cometbft import broadcast_body, tx_hash

    tag = secrets.token_hex(4)   # a run-unique tx: no mempool cache hit from an earlier attempt
    cases = [
        ("no_separator", "a kvstore transaction without '='", f"bctest-malformed-{tag}".encode()),
        ("two_separators", "a kvstore transaction with two '=' (a=b=c)", f"bctest.{tag}=b=c".encode()),
        ("empty_key", "a kvstore transaction with an empty key (=value)", f"=bctest-{tag}".encode()),
        ("empty", "an empty transaction", b""),
        ("bad_validator_update", "a malformed kvstore validator update (val=<key>!<power> missing a part)",
         f"val=bctest-{tag}!x".encode()),
    ]
    if target.settings.get("halting", DEFAULTS["halting"]):
        # kvstore 0.38 accepts `val:...` as a key:value pair, then its own PrepareProposal
        # rewrites ':' to '=' and every ProcessProposal rejects the block it made: the chain
        # stops for good (seen on bctest/cometbft 0.38.26). Off by default: it ends the run.
        cases.append(("rewritten_validator_update", "a `val:...` transaction that the proposer "
                      "rewrites into a malformed validator update", f"val:bctest-{tag}!x".encode()))
    for k, (case, what, tx) in enumerate(cases):
        node = target.nodes[k % len(target.nodes)]
        yield Bad(case, what, broadcast_body(tx, 1, "broadcast_tx_sync"), tx_hash(tx), node)

