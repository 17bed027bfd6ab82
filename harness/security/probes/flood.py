"""Flood (issue 11, probe 5): a burst of valid-but-useless transactions beside an honest
open-loop load. The honest load's success and commit p99 must stay within bounds during and
after the burst, against what the same load got just before it.

The probe runs after the suite's load, so it brings its own honest stream: `rate` tx/s
(default: the suite's load rate, capped at `max_rate`), signed before the first send and
sent open loop (transaction i is due at start + i/rate whatever the node answers), over
three windows of `window` seconds: before, during and after the burst. The burst is
`factor` × that rate of junk for one window:
  EVM       from fresh keys funded by one of the run's accounts (the honest accounts'
            nonces stay untouched): transfers with nonces far ahead (they wait in the
            pool's queue for ever) and replacements of a queued "anchor" transaction at a
            lower gas price (the pool must refuse them: underpriced);
  CometBFT  transactions kvstore's CheckTx refuses (no '=') and duplicates of honest
            transactions already sent (the mempool cache refuses them);
  Bitcoin   double spends of the junk's own pending txs (no replace-by-fee signalled). The
            load spent the UTXOs made for it, so the adapter first fans out fresh ones
            (owned by the run's keys, mined in before anything is measured).
Commits are seen by the adapter's own block watch on the first node; a transaction's
latency is the moment its block was seen minus the moment it was due.

Junk left queued in an EVM pool never commits (its nonces are unreachable); it holds no
key of the run and is forgotten when the node restarts or the pool evicts it.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from harness.model import Attempt, Block, Node
from harness.security.probe import NotApplicable, ProbeTarget, Reply, clip

ID = "flood"
ORDER = 50
TITLE = {"en": "Flood: honest transactions keep committing, in time, during and after a burst of "
               "valid-but-useless ones (nonce gaps, underpriced replacements, duplicates)",
         "zh": "洪泛：在大量有效但无用的交易（nonce 空洞、低价替换、重复交易）冲击期间及之后，"
               "正常交易仍按时上链"}
SEVERITY = "high"

# Bounds for a shared 2-core test machine, where the harness signs and sends the burst on
# the same cores the nodes run on: a healthy chain's p99 doubles from CPU contention alone,
# so the bound is the larger of 3 × the p99 before the burst and that p99 + 2 s; one honest
# tx in 20 lost still passes (a pool may drop a tx under load and say so).
DEFAULTS: dict[str, Any] = {
    "rate": None,          # honest tx/s; None: the suite's load rate, capped at max_rate
    "max_rate": 20.0,
    "factor": 10.0,        # burst rate = factor × honest rate
    "window": 5.0,         # seconds of each window: before, during, after the burst
    "drain": 10.0,         # seconds to wait for the last honest commits after the windows
    "min_success": 0.95,   # committed / sent, per window
    "p99_factor": 3.0,
    "p99_slack_ms": 2000.0,
    "accounts": 16,        # EVM: the run's accounts the honest stream spends from
    "junk_accounts": 16,   # EVM: fresh keys the burst is signed with
    "setup_timeout": 20.0,  # seconds to fund the junk keys / see the first block
}
SETTINGS: dict[str, Any] = {
    "rate": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1000,
             "description": "honest transactions per second (null: the suite's rate, capped)"},
    "max_rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000},
    "factor": {"type": "number", "minimum": 1, "maximum": 100},
    "window": {"type": "number", "minimum": 0.5, "maximum": 60},
    "drain": {"type": "number", "minimum": 0, "maximum": 120},
    "min_success": {"type": "number", "minimum": 0, "maximum": 1},
    "p99_factor": {"type": "number", "minimum": 1, "maximum": 100},
    "p99_slack_ms": {"type": "number", "minimum": 0, "maximum": 600000},
    "accounts": {"type": "integer", "minimum": 1, "maximum": 1024},
    "junk_accounts": {"type": "integer", "minimum": 1, "maximum": 256},
    "setup_timeout": {"type": "number", "minimum": 1, "maximum": 300},
}

WINDOWS = ("before", "during", "after")
MAX_IN_FLIGHT = 2048        # requests out at once; more are not sent (recorded as such)
SEND_TIMEOUT = 10.0
EVM_GAP = 1_000             # junk nonces this far past the account's next nonce
EVM_ANCHOR = 500            # the queued anchor the underpriced replacements aim at


@dataclass
class Tx:
    """One transaction the probe sends: when it is due, where, and what came of it."""

    kind: str                # before | during | after (honest) or a junk kind
    node: Node
    body: bytes
    tx_id: str               # lower-case, as the watch reports it (lowered)
    offset: float = 0.0      # due at stream start + offset
    due: float = 0.0
    error: str | None = "not sent"
    reply: Reply | None = None


@dataclass
class Seen:
    """Every transaction id the watched node put in a block, when first seen, how often."""

    first: dict[str, float] = field(default_factory=dict)
    count: Counter = field(default_factory=Counter)
    blocks: int = 0
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def on_block(self, block: Block) -> None:
        self.blocks += 1
        for tx_id in block.tx_ids:
            key = str(tx_id).lower()
            self.first.setdefault(key, block.seen)
            self.count[key] += 1
        self.event.set()

    async def wait_for(self, ids: set[str], deadline: float) -> bool:
        """Until every id in `ids` was seen, or the deadline (monotonic)."""
        while not ids <= self.first.keys():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), min(left, 0.5))
            except TimeoutError:
                pass
        return True


@dataclass
class Figures:
    """One honest window's outcome."""

    sent: int
    committed: int
    refused: Counter
    latencies_ms: list[float]

    @property
    def success(self) -> float:
        return self.committed / self.sent if self.sent else 0.0

    @property
    def p99(self) -> float | None:
        return percentile(self.latencies_ms, 99)


class Setup(Exception):
    """The probe could not lay out its streams (the chain is not judged: unknown)."""


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def p99_bound(before_ms: float, factor: float, slack_ms: float) -> float:
    return max(factor * before_ms, before_ms + slack_ms)


def figures(txs: list[Tx], seen: Seen) -> Figures:
    committed, refused, latencies = 0, Counter(), []
    for tx in txs:
        if tx.error is not None:
            refused[tx.error] += 1
        elif tx.tx_id in seen.first:
            committed += 1
            latencies.append(max(0.0, (seen.first[tx.tx_id] - tx.due) * 1000))
    return Figures(len(txs), committed, refused, latencies)


def _reasons(counter: Counter, limit: int = 3) -> str:
    return "; ".join(f"{n} × {clip(reason, 120)!r}" for reason, n in counter.most_common(limit))


def _ms(value: float | None) -> str:
    return "none" if value is None else f"{value:.0f} ms"


# -- judging ---------------------------------------------------------------------------------


def judge(target: ProbeTarget, windows: dict[str, list[Tx]], junk: list[Tx], seen: Seen,
          settings: dict[str, Any], rate: float, junk_rate: float, node: Node) -> list[Attempt]:
    """The attempts: one per honest window, one recording what became of the junk."""
    min_success = float(settings["min_success"])
    figs = {name: figures(windows[name], seen) for name in WINDOWS}
    before = figs["before"]
    healthy = before.success >= min_success and before.p99 is not None
    bound = p99_bound(before.p99, float(settings["p99_factor"]),
                      float(settings["p99_slack_ms"])) if before.p99 is not None else None
    out = []

    def sample(name: str) -> tuple[bytes, str]:
        """One honest request of the window and its answer, to quote."""
        tx = next((tx for tx in windows[name] if tx.reply is not None), None)
        return (tx.body, tx.reply.text()) if tx and tx.reply else (b"", "")

    def lost(fig: Figures) -> str:
        parts = []
        if fig.refused:
            parts.append(f"{sum(fig.refused.values())} refused or unanswered ({_reasons(fig.refused)})")
        missing = fig.sent - fig.committed - sum(fig.refused.values())
        if missing:
            parts.append(f"{missing} accepted but not in a block within the drain")
        return f" ({', '.join(parts)})" if parts else ""

    why = (f"before the burst {before.committed} of {before.sent} honest txs ({rate:g}/s) committed"
           f"{lost(before)}, p99 {_ms(before.p99)}")
    if healthy:
        out.append(target.attempt("honest.before", node, True,
                                  f"the honest load commits before the burst (success ≥ {min_success:g})",
                                  why + ": the baseline the burst is judged against", *sample("before")))
    else:
        out.append(target.attempt("honest.before", node, None,
                                  f"the honest load commits before the burst (success ≥ {min_success:g})",
                                  why + ": the chain did not carry the honest load even without a burst,"
                                  " so the burst cannot be judged", *sample("before")))
    for name, phrase in (("during", f"during the burst ({junk_rate:g} junk tx/s beside {rate:g} "
                                     "honest tx/s)"),
                         ("after", f"after the burst (of {junk_rate:g} junk tx/s)")):
        fig = figs[name]
        title = (f"{phrase.split(' (')[0]}, honest txs still commit (success ≥ {min_success:g}) and "
                 f"their commit p99 stays within max({settings['p99_factor']:g} × p99 before, p99 "
                 f"before + {settings['p99_slack_ms']:g} ms)")
        why = (f"{phrase} {fig.committed} of {fig.sent} honest txs committed{lost(fig)}, p99 "
               f"{_ms(fig.p99)} against {_ms(before.p99)} before")
        if not healthy or bound is None:
            out.append(target.attempt(f"honest.{name}", node, None, title,
                                      why + "; not judged: the baseline before the burst failed"))
            continue
        bad = []
        if fig.success < min_success:
            bad.append(f"success {fig.success:.2f} is below {min_success:g}")
        if fig.p99 is None or fig.p99 > bound:
            bad.append(f"p99 {_ms(fig.p99)} is above the bound {bound:.0f} ms")
        why += f" (bound {bound:.0f} ms)" + (": " + " and ".join(bad) if bad else "")
        out.append(target.attempt(f"honest.{name}", node, not bad, title, why, *sample(name)))
    out.append(junk_attempt(target, junk, seen, node))
    return out


def junk_attempt(target: ProbeTarget, junk: list[Tx], seen: Seen, node: Node) -> Attempt:
    """What the node did with the junk: answers by kind (info), and none of it in a block
    (a nonce-gap tx, an underpriced replacement or a refused tx that commits is a fail)."""
    by_kind: dict[str, Counter] = {}
    samples: dict[str, Tx] = {}
    for tx in junk:
        by_kind.setdefault(tx.kind, Counter())["accepted" if tx.error is None else tx.error] += 1
        if tx.reply is not None:
            samples.setdefault(tx.kind, tx)
    parts = []
    for kind, answers in by_kind.items():
        refused = Counter({k: v for k, v in answers.items() if k != "accepted"})
        parts.append(f"{kind}: {answers.get('accepted', 0)} of {sum(answers.values())} accepted"
                     + (f", refused {_reasons(refused)}" if refused else ""))
    # A duplicate of an honest tx is junk only in its second copy: count blocks holding it twice.
    # An anchor (Bitcoin) is the valid tx its double spends aim at: it commits, rightly.
    committed = [tx for tx in junk if tx.kind != "anchor" and (
        seen.count[tx.tx_id] > 1 if tx.kind == "duplicate" else tx.tx_id in seen.first)]
    request = "\n".join(clip(tx.body, 600) for tx in samples.values())
    answer = "\n".join(f"{kind}: {tx.reply.text() if tx.reply else ''}" for kind, tx in samples.items())
    why = f"{len(junk)} junk txs sent: " + "; ".join(parts)
    if committed:
        why += (f"; {len(committed)} of them reached a block on {node.name} (e.g. {committed[0].kind} "
                f"{committed[0].tx_id}): junk the node should have refused or kept out was committed")
        return target.attempt("junk.answers", node, False,
                              "the node refuses or parks the junk, and none of it commits", why,
                              request, answer, severity="high")
    return target.attempt("junk.answers", node, True,
                          "the node refuses or parks the junk, and none of it commits",
                          why + "; none of it reached a block", request, answer, severity="info")


# -- sending ---------------------------------------------------------------------------------


async def send_one(target: ProbeTarget, tx: Tx, gate: asyncio.Semaphore) -> None:
    adapter = target.adapter
    if gate.locked():
        tx.error = "not sent: the probe's in-flight bound was reached"
        return
    async with gate:
        url = tx.node.url("rpc") + getattr(adapter, "submit_path", "/")
        tx.reply = await target.http(url, tx.body, headers=dict(getattr(adapter, "submit_headers", {})),
                                     timeout=SEND_TIMEOUT)
    if tx.reply.status is None:
        tx.error = f"no answer: {tx.reply.error}"[:200]
    else:
        try:
            tx.error = adapter.response_error(tx.reply.status, tx.reply.body)
        except Exception as exc:   # a hostile reply the classifier choked on
            tx.error = f"unreadable reply: {type(exc).__name__}"


async def open_loop(target: ProbeTarget, txs: list[Tx], start: float, gate: asyncio.Semaphore) -> None:
    """Send each tx at start + its offset, never waiting for an answer before the next."""
    tasks = []
    for tx in txs:
        tx.due = start + tx.offset
        delay = tx.due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send_one(target, tx, gate)))
    if tasks:
        await asyncio.gather(*tasks)


def schedule(txs: list[Tx], rate: float, first: float = 0.0) -> list[Tx]:
    for i, tx in enumerate(txs):
        tx.offset = first + i / rate
    return txs


# -- EVM -------------------------------------------------------------------------------------


async def _evm_call(target: ProbeTarget, node: Node, method: str, params: list[Any]) -> Any:
    _, reply = await target.rpc(node, method, params)
    ok, result = reply.rpc_result()
    if not ok:
        raise Setup(f"{method} on {node.name} answered {clip(reply.text(), 300)!r}")
    return result


async def _evm_nonce(target: ProbeTarget, node: Node, address: str) -> int:
    result = await _evm_call(target, node, "eth_getTransactionCount", [address, "pending"])
    try:
        value = int(str(result), 16)
    except ValueError:
        raise Setup(f"eth_getTransactionCount on {node.name} answered {clip(str(result), 100)!r}") from None
    if not 0 <= value < 2**63:
        raise Setup(f"eth_getTransactionCount on {node.name} answered {value}")
    return value


def _evm_tx(kind: str, node: Node, key: bytes, nonce: int, gas_price: int, to: bytes,
            chain_id: int, request_id: int, value: int = 1) -> Tx:
    from harness.adapters import jsonrpc
    from harness.adapters.evm_tx import sign_transfer

    raw, tx_hash = sign_transfer(key, nonce, gas_price, 21_000, to, value, chain_id)
    body = jsonrpc.request_body("eth_sendRawTransaction", ["0x" + raw.hex()], request_id)
    return Tx(kind=kind, node=node, body=body, tx_id="0x" + tx_hash.hex())


async def evm_streams(target: ProbeTarget, seen: Seen, gate: asyncio.Semaphore, rate: float,
                      junk_rate: float) -> tuple[dict[str, list[Tx]], list[Tx]]:
    """Fund the junk keys (from the run's last account), park one anchor per junk key, read
    the honest accounts' pending nonces, then sign both streams."""
    from harness.adapters.evm_tx import derive_account

    settings, adapter, nodes = target.settings, target.adapter, target.nodes
    senders = adapter.senders(adapter.accounts)
    if not senders:
        raise Setup("the run has no sender accounts")
    gas_price, chain_id, seed = int(adapter.gas_price), int(adapter.chain_id), adapter.seed
    window = float(settings["window"])
    per_window = max(1, round(rate * window))
    junk_count = max(1, round(junk_rate * window))
    junk_keys = [derive_account("flood-junk", seed, i) for i in range(int(settings["junk_accounts"]))]
    recipient = derive_account("flood-recipient", seed, 0).address
    anchor_price = 2 * gas_price
    per_key = -(-junk_count // len(junk_keys)) + 2
    # A pool may require the balance to cover every tx it holds of an account (geth: overdraft).
    funding = per_key * (anchor_price * 21_000 + 1) * 2

    # Funding, committed before anything is measured.
    funder = senders[-1]
    start_nonce = await _evm_nonce(target, nodes[0], funder.hex_address)
    fund = [_evm_tx("funding", nodes[0], funder.key, start_nonce + i, gas_price, k.address, chain_id, i,
                    value=funding) for i, k in enumerate(junk_keys)]
    await asyncio.gather(*(send_one(target, tx, gate) for tx in fund))
    refused = [tx for tx in fund if tx.error]
    if refused:
        raise Setup(f"{len(refused)} of {len(fund)} funding transfers to the junk keys were refused: "
                    f"{clip(refused[0].error, 200)!r}")
    deadline = time.monotonic() + float(settings["setup_timeout"])
    if not await seen.wait_for({tx.tx_id for tx in fund}, deadline):
        raise Setup(f"the {len(fund)} funding transfers to the junk keys did not commit within "
                    f"{settings['setup_timeout']:g} s")

    # Anchors: one queued tx per junk key, the target of the underpriced replacements.
    junk_nonces = [await _evm_nonce(target, nodes[i % len(nodes)], k.hex_address)
                   for i, k in enumerate(junk_keys)]
    anchors = [_evm_tx("anchor", nodes[i % len(nodes)], k.key, junk_nonces[i] + EVM_ANCHOR, anchor_price,
                       recipient, chain_id, i) for i, k in enumerate(junk_keys)]
    await asyncio.gather(*(send_one(target, tx, gate) for tx in anchors))

    # Honest: the run's accounts at their pending nonces; each account's txs go to one node.
    honest_accounts = senders[:min(int(settings["accounts"]), len(senders))]
    bases = [await _evm_nonce(target, nodes[a % len(nodes)], acct.hex_address)
             for a, acct in enumerate(honest_accounts)]
    honest = []
    for i in range(3 * per_window):
        a = i % len(honest_accounts)
        honest.append(_evm_tx(WINDOWS[min(2, i // per_window)], nodes[a % len(nodes)],
                              honest_accounts[a].key, bases[a] + i // len(honest_accounts), gas_price,
                              recipient, chain_id, i))
    junk = []
    for j in range(junk_count):
        k, round_ = j % len(junk_keys), j // len(junk_keys)
        node = nodes[k % len(nodes)]
        if round_ % 2 == 0:
            junk.append(_evm_tx("nonce-gap", node, junk_keys[k].key, junk_nonces[k] + EVM_GAP + round_,
                                gas_price, recipient, chain_id, j))
        else:   # below the anchor's price (and far below the 10 % bump a pool wants)
            junk.append(_evm_tx("underpriced-replacement", node, junk_keys[k].key,
                                junk_nonces[k] + EVM_ANCHOR, gas_price + j, recipient, chain_id, j))
    return _split(honest), junk


# -- CometBFT --------------------------------------------------------------------------------


async def cometbft_streams(target: ProbeTarget, seen: Seen, rate: float,
                           junk_rate: float) -> tuple[dict[str, list[Tx]], list[Tx]]:
    """Honest: unique kvstore key=value txs; junk: txs CheckTx refuses (no '=') and
    duplicates of honest txs of the window before (the mempool cache refuses them)."""
    from harness.adapters.cometbft import broadcast_body, tx_hash

    adapter, nodes, window = target.adapter, target.nodes, float(target.settings["window"])
    method = getattr(adapter, "broadcast_method", "broadcast_tx_sync")
    await first_block(target, seen)
    per_window = max(1, round(rate * window))
    tag = hashlib.sha256(f"bctest/flood/{adapter.seed}/{time.time_ns()}".encode()).hexdigest()[:10]
    honest = []
    for i in range(3 * per_window):
        tx = f"bctest.flood.{tag}.{i:06d}={i}".encode()
        honest.append(Tx(WINDOWS[min(2, i // per_window)], nodes[i % len(nodes)],
                         broadcast_body(tx, i, method), tx_hash(tx).lower()))
    junk = []
    for j in range(max(1, round(junk_rate * window))):
        node = nodes[j % len(nodes)]
        if j % 2 == 0:
            tx = f"bctest-flood-junk-{tag}-{j:06d}".encode()   # no '=': CheckTx refuses it
            junk.append(Tx("malformed", node, broadcast_body(tx, j, method), tx_hash(tx).lower()))
        else:   # an honest tx of the window before the burst: sent already
            copy = honest[(j // 2) % per_window]
            junk.append(Tx("duplicate", node, copy.body, copy.tx_id))
    return _split(honest), junk


async def first_block(target: ProbeTarget, seen: Seen) -> None:
    """Until the watch reported a block: it follows the chain before anything is sent."""
    deadline = time.monotonic() + float(target.settings["setup_timeout"])
    while seen.blocks == 0:
        if time.monotonic() > deadline:
            raise Setup(f"{target.nodes[0].name} made no block within "
                        f"{target.settings['setup_timeout']:g} s")
        seen.event.clear()
        try:
            await asyncio.wait_for(seen.event.wait(), 0.5)
        except TimeoutError:
            pass


# -- Bitcoin ---------------------------------------------------------------------------------


async def bitcoin_streams(target: ProbeTarget, seen: Seen, rate: float,
                          junk_rate: float) -> tuple[dict[str, list[Tx]], list[Tx]]:
    """The load spent the UTXOs made for it: the adapter fans out fresh ones (mined in,
    owned by the run's keys). Honest: one 1-in-1-out spend per fresh UTXO; junk: one
    anchor spend per junk UTXO, then conflicting spends of the same outpoints (double
    spends without replace-by-fee signalling: the mempool refuses them)."""
    from harness.adapters import bitcoin_tx as btx
    from harness.adapters import jsonrpc
    from harness.errors import InfraError

    adapter, nodes, window = target.adapter, target.nodes, float(target.settings["window"])
    per_window = max(1, round(rate * window))
    junk_keys = int(target.settings["junk_accounts"])
    # Blocks come every few seconds and mine the anchors: fresh anchors every second of the
    # burst keep most double spends aimed at a pending tx, not a spent output.
    rounds = max(1, math.ceil(window))
    first = len(adapter.utxos)
    try:   # the adapter's own fan-out: level-1 and level-2 txs from its matured coinbases
        await asyncio.to_thread(_bitcoin_fan_out, adapter, first + 3 * per_window + rounds * junk_keys)
    except InfraError as exc:
        raise Setup(f"the fresh UTXOs could not be made: {exc}") from None
    await first_block(target, seen)
    fresh = adapter.utxos[first:]
    fee, recipients = int(adapter.load_fee), adapter.recipients

    def spend(kind: str, index: int, utxo: Any, node: Node, extra_fee: int = 0) -> Tx:
        raw, txid = btx.spend_p2wpkh(btx.txid_to_bytes(utxo.txid), utxo.vout, utxo.value,
                                     adapter.keys[utxo.key], recipients[index % len(recipients)],
                                     utxo.value - fee - extra_fee)
        body = jsonrpc.request_body("sendrawtransaction", [raw.hex()], index)
        return Tx(kind=kind, node=node, body=body, tx_id=txid.lower())

    honest = [spend(WINDOWS[min(2, i // per_window)], i, utxo, nodes[i % len(nodes)])
              for i, utxo in enumerate(fresh[:3 * per_window])]
    pool = fresh[3 * per_window:]
    junk_count = max(1, round(junk_rate * window))
    per_round = max(1, -(-junk_count // rounds))
    junk = []
    for j in range(junk_count):
        r, i = divmod(j, per_round)   # each round: its anchors first, then their double spends
        k = i % junk_keys
        utxo, node = pool[r * junk_keys + k], nodes[k % len(nodes)]
        junk.append(spend("anchor", j, utxo, node) if i < junk_keys else
                    spend("double-spend", j, utxo, node, extra_fee=i // junk_keys))
    return _split(honest), junk


def _bitcoin_fan_out(adapter: Any, count: int) -> None:
    with adapter._rpcs("the flood probe's UTXO fan-out") as rpcs:
        adapter._fan_out(rpcs, count)


def _split(honest: list[Tx]) -> dict[str, list[Tx]]:
    return {name: [tx for tx in honest if tx.kind == name] for name in WINDOWS}


# -- the probe -------------------------------------------------------------------------------


def honest_rate(target: ProbeTarget) -> float:
    settings = target.settings
    if settings.get("rate"):
        return float(settings["rate"])
    suite = getattr(target, "suite_rate", None) or settings["max_rate"]
    return max(1.0, min(float(suite), float(settings["max_rate"])))


async def run(target: ProbeTarget) -> list[Attempt]:
    if target.family not in ("evm", "cometbft", "bitcoin"):
        raise NotApplicable(f"no {ID} cases for the {target.family} family")
    settings = target.settings
    rate = honest_rate(target)
    junk_rate = rate * float(settings["factor"])
    window = float(settings["window"])
    node = target.nodes[0]
    needed = 3 * window + float(settings["setup_timeout"]) + 5
    if target.time_left() < needed:
        return [target.attempt("setup", node, None, "the probe has time for its three windows",
                               f"{target.time_left():.0f} s of budget left, the probe needs about "
                               f"{needed:.0f} s (3 windows of {window:g} s plus setup)")]
    seen, stop = Seen(), asyncio.Event()
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    watch = asyncio.create_task(target.adapter.watch(node, seen.on_block, stop, True, 0.2))
    try:
        try:
            if target.family == "evm":
                windows, junk = await evm_streams(target, seen, gate, rate, junk_rate)
            elif target.family == "bitcoin":
                windows, junk = await bitcoin_streams(target, seen, rate, junk_rate)
            else:
                windows, junk = await cometbft_streams(target, seen, rate, junk_rate)
        except Setup as exc:
            why = str(exc)
            if _died(watch):
                why += f" (the block watch on {node.name} failed: {_died(watch)})"
            return [target.attempt("setup", node, None, "the probe can lay out its honest and junk "
                                   "streams", why + ": the flood was not sent, nothing is judged")]
        honest = schedule([tx for name in WINDOWS for tx in windows[name]], rate)
        schedule(junk, junk_rate, first=len(windows["before"]) / rate)
        start = time.monotonic() + 0.2
        await asyncio.gather(open_loop(target, honest, start, gate), open_loop(target, junk, start, gate))
        accepted = {tx.tx_id for tx in honest if tx.error is None}
        drain_end = min(time.monotonic() + float(settings["drain"]), target.deadline - 2)
        await seen.wait_for(accepted, drain_end)
        died = _died(watch)   # ended before it was told to: later commits went unseen
    finally:
        stop.set()
        try:
            await asyncio.wait_for(watch, 10)
        except Exception:   # the watch's own failure is judged below through what it saw
            watch.cancel()
    attempts = judge(target, windows, junk, seen, settings, rate, junk_rate, node)
    if seen.blocks == 0 or died:
        cause = f": {died}" if died else ""
        attempts = [target.attempt(a.case, node, None, a.title, a.why + f"; not judged: {node.name}'s "
                                   f"blocks could not be followed to the end{cause}", a.request, a.answer)
                    for a in attempts]
    return attempts


def _died(watch: asyncio.Task) -> str | None:
    """Why the block watch ended on its own (None while it runs)."""
    if not watch.done() or watch.cancelled():
        return None
    error = watch.exception()
    return clip(f"{type(error).__name__}: {error}", 200) if error else "it returned early"
