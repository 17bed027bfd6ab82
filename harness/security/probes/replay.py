"""Replay and double spend (issue 11, probe 3): a chain must hold a transaction once, let
only one of two conflicting transactions commit, and refuse a transaction signed for
another chain.

Cases (each judged from every node's blocks, read back after the probe's transactions had
time to commit; never from what a node says it did):
  resubmit  a fresh transfer is sent and commits; then its exact bytes are sent again to
            every node. A node may refuse them or accept them as a no-op; its chain must
            hold the transaction in exactly one block (EVM: the account's nonce advanced by
            one; Bitcoin: the txid in one block; CometBFT kvstore: the tx bytes in one block,
            which relies on the mempool cache since kvstore itself has no replay guard).
  conflict  two transactions that cannot both be valid (EVM: one account, one nonce, two
            recipients; Bitcoin: one outpoint spent to two outputs) sent at once to two
            different nodes (to the one node of a 1-node network): exactly one commits, the
            same one on every node, and the other appears in no block of any node.
            CometBFT kvstore: not applicable (two writes of one key are both valid).
  chain_id  EVM only: a transfer validly signed for chain id (pack chain id + 1), i.e. for a
            sister network of the same pack, sent to every node: refused, and in no block.
            The issue's two-network variant (the same tx replayed on a second run network
            with another chain id) needs the stage to start a second network; left for later.

Blocks come from the family adapter's `block_at` (the same read the final read uses);
transactions are built with the project's own signing code (evm_tx, bitcoin_tx) and the
run's funded keys. Bitcoin regtest has no miner outside the load, so the probe mines the
blocks it needs (generatetoaddress to the run's funder key, on the run's miner node).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from harness.model import Attempt, Node
from harness.security.probe import NotApplicable, ProbeTarget, Reply

ID = "replay"
ORDER = 30
TITLE = {"en": "Replay and double spend: a resubmitted tx commits once, one of two conflicting "
               "txs commits, a tx signed for another chain id is refused",
         "zh": "重放与双花：重复提交的交易只上链一次，两笔冲突交易只有一笔上链，其他链 ID 签名的交易被拒绝"}
SEVERITY = "critical"
DEFAULTS: dict[str, Any] = {
    "commit_timeout": 30,    # s: a fresh transaction must commit within this
    "settle_blocks": 3,      # blocks made after the last send before the chains are read
    "settle_timeout": 30,    # s: bound on waiting for those blocks and for every node to follow
    "scan_blocks": 2000,     # most blocks read back per node
    "mine_blocks": 120,      # Bitcoin: most blocks mined to mature a coinbase the probe spends
}
SETTINGS: dict[str, Any] = {
    "commit_timeout": {"type": "number", "minimum": 1, "maximum": 600},
    "settle_blocks": {"type": "integer", "minimum": 1, "maximum": 100},
    "settle_timeout": {"type": "number", "minimum": 1, "maximum": 600},
    "scan_blocks": {"type": "integer", "minimum": 10, "maximum": 100000},
    "mine_blocks": {"type": "integer", "minimum": 0, "maximum": 1000},
}

RESERVE = 10.0       # s of the budget kept for reading the chains back
POLL = 0.25          # s between reads while waiting


class Unusable(Exception):
    """The probe could not set itself up (no spendable coins, a node did not answer)."""


@dataclass
class Tx:
    """A transaction the probe sends: the exact request body and its id as blocks list it."""

    label: str
    body: bytes
    tx_id: str


@dataclass
class Sent:
    node: Node
    tx: Tx
    reply: Reply
    accepted: bool
    detail: str          # the node's error, or what it answered

    def evidence(self) -> str:
        return f"{self.node.name} {'accepted' if self.accepted else 'refused'} it ({self.detail})"


def _number(target: ProbeTarget, name: str) -> float:
    value = target.settings.get(name, DEFAULTS[name])
    if isinstance(value, bool) or not isinstance(value, int | float):
        value = DEFAULTS[name]
    return value


# -- the families: build, send, and make blocks ----------------------------------------------


class Family:
    """What the shared cases need from a chain family."""

    conflict_reason: str | None = None     # why conflicting txs do not apply, if they do not
    chain_id_reason: str | None = None
    poll = POLL                            # s between reads while waiting for a commit

    def __init__(self, target: ProbeTarget):
        self.target = target
        self.adapter = target.adapter
        self.headers: dict[str, str] = {}

    async def setup(self) -> None:
        """Find what the probe's transactions spend; raise Unusable if there is nothing."""

    def resubmit_tx(self) -> Tx:
        raise NotImplementedError

    def conflict_txs(self) -> tuple[Tx, Tx]:
        raise NotImplementedError

    def chain_id_tx(self) -> Tx:
        raise NotImplementedError

    def judge_reply(self, tx: Tx, reply: Reply) -> tuple[bool, str]:
        """(accepted, the node's answer in a few words)."""
        ok, result = reply.rpc_result()
        if ok:
            return True, f"answered {str(result)[:100]!r}"
        if reply.status is None:
            return False, reply.error or "no answer"
        return False, reply.rpc_error() or f"HTTP {reply.status}"

    async def send(self, node: Node, tx: Tx) -> Sent:
        reply = await self.target.http(node.url("rpc"), tx.body, headers=self.headers)
        accepted, detail = self.judge_reply(tx, reply)
        return Sent(node, tx, reply, accepted, detail)

    async def make_blocks(self, count: int) -> None:
        """Have the chain make `count` more blocks (a chain that makes its own: nothing)."""

    async def call(self, node: Node, method: str, params: Any, timeout: float = 10.0) -> Any:
        """A JSON-RPC read the probe needs (raises Unusable when it is not answered)."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                          separators=(",", ":")).encode()
        reply = await self.target.http(node.url("rpc"), body, headers=self.headers, timeout=timeout)
        ok, result = reply.rpc_result()
        if not ok:
            raise Unusable(f"{method} on {node.name}: {reply.rpc_error() or reply.error or reply.status}")
        return result

    async def extra_checks(self, nodes: list[Node]) -> dict[str, dict[str, str | None]]:
        """Per case, per node: a reason the node fails beyond its blocks (None: fine)."""
        return {}


class Evm(Family):
    """EIP-155 legacy transfers from the run's funded sender accounts (harness/adapters/evm_tx)."""

    async def setup(self) -> None:
        from harness.adapters.evm_tx import derive_account

        node = self.target.nodes[0]
        senders = self.adapter.senders(self.adapter.accounts)
        # Accounts without pending transactions of the load: their next nonce is certain.
        self.accounts: list[tuple[Any, int]] = []
        for account in reversed(senders[-32:]):
            latest = await self.call(node, "eth_getTransactionCount", [account.hex_address, "latest"])
            pending = await self.call(node, "eth_getTransactionCount", [account.hex_address, "pending"])
            if _quantity(latest) is not None and _quantity(latest) == _quantity(pending):
                self.accounts.append((account, _quantity(latest)))
            if len(self.accounts) == 3:
                break
        if len(self.accounts) < 3:
            raise Unusable(f"fewer than 3 of the run's sender accounts on {node.name} have no pending "
                           "transactions (their next nonce is uncertain)")
        # Priced above the node's own suggestion so the probe's txs are not left pending.
        suggested = _quantity(await self.call(node, "eth_gasPrice", []))
        self.gas_price = min(max(self.adapter.gas_price, 2 * (suggested or 0)), 10**13)
        self.recipients = [derive_account("replay-recipient", secrets.randbits(32), i).address
                           for i in range(3)]
        self.chain_id = int(self.adapter.chain_id)

    def _tx(self, label: str, which: int, chain_id: int, recipient: bytes) -> Tx:
        from harness.adapters.evm_tx import sign_transfer

        account, nonce = self.accounts[which]
        raw, tx_hash = sign_transfer(account.key, nonce, self.gas_price, 21_000, recipient, 1, chain_id)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                           "params": ["0x" + raw.hex()]}, separators=(",", ":")).encode()
        return Tx(label, body, "0x" + tx_hash.hex())

    def resubmit_tx(self) -> Tx:
        return self._tx("resubmitted", 0, self.chain_id, self.recipients[0])

    def conflict_txs(self) -> tuple[Tx, Tx]:
        return (self._tx("conflict A", 1, self.chain_id, self.recipients[1]),
                self._tx("conflict B", 1, self.chain_id, self.recipients[2]))

    def chain_id_tx(self) -> Tx:
        return self._tx(f"signed for chain id {self.chain_id + 1}", 2, self.chain_id + 1,
                        self.recipients[0])

    async def extra_checks(self, nodes: list[Node]) -> dict[str, dict[str, str | None]]:
        """The nonces: the resubmitted tx's account advanced by exactly one, the conflicting
        pair's account by exactly one, the wrong-chain-id tx's account not at all."""
        out: dict[str, dict[str, str | None]] = {"resubmit": {}, "conflict": {}, "chain_id": {}}
        for case, which, advance in (("resubmit", 0, 1), ("conflict", 1, 1), ("chain_id", 2, 0)):
            account, nonce = self.accounts[which]
            for node in nodes:
                try:
                    now = _quantity(await self.call(node, "eth_getTransactionCount",
                                                    [account.hex_address, "latest"]))
                except Unusable as exc:
                    out[case][node.name] = f"its nonce could not be read ({exc})"
                    continue
                if now != nonce + advance:
                    out[case][node.name] = (f"the account {account.hex_address}'s nonce is {now}, "
                                            f"expected {nonce + advance} (it was {nonce} before)")
                else:
                    out[case][node.name] = None
        return out


class Bitcoin(Family):
    """1-in-1-out P2WPKH spends of the run's coinbases (harness/adapters/bitcoin_tx)."""

    poll = 0.5

    chain_id_reason = "Bitcoin transactions carry no chain id (regtest is told apart by its coins)"

    def __init__(self, target: ProbeTarget):
        super().__init__(target)
        self.headers = dict(self.adapter.submit_headers)

    async def setup(self) -> None:
        from harness.adapters import bitcoin_tx as btx

        self.miner = self.target.nodes[min(int(self.adapter.miner), len(self.target.nodes) - 1)]
        maturity = int(self.adapter.maturity)
        budget = int(_number(self.target, "mine_blocks"))
        for matured in (False, True):
            coins, gaps = await self._coins(maturity)
            if len(coins) >= 2:
                break
            if matured:
                raise Unusable("the run has fewer than 2 spendable coinbases for the probe")
            need = 2 - len(coins)
            # Too few of the run's coinbases left: mine fresh ones to the funder and mature them.
            fresh = 0 if len(gaps) >= need else need - len(gaps)
            more = sorted(gaps)[need - 1] if not fresh else maturity + 1
            if fresh + more > budget:
                raise Unusable(f"too few mature coinbases of the run: {fresh + more} more blocks would "
                               f"be needed, settings.mine_blocks allows {budget}")
            if fresh:
                await self._fresh_coinbases(fresh)
            await self.mine(more)
        self.coins = [(txid, value) for _height, txid, value in coins[:2]]
        for entry in coins[:2]:
            self.adapter.coinbases.remove(entry)   # spent by this probe: no one else's now
        self.fee = int(self.adapter.load_fee)
        tag = secrets.randbits(32)
        self.recipients = [btx.derive_key("replay-recipient", tag, i).p2wpkh for i in range(3)]

    async def _coins(self, maturity: int) -> tuple[list[tuple[int, str, int]], list[int]]:
        """The run's unspent coinbases (the adapter's list, funder-owned, output 0): the
        spendable ones, and how many blocks each immature one still needs."""
        node = self.target.nodes[0]
        coins, gaps = [], []
        for entry in list(self.adapter.coinbases)[:40]:
            out = await self.call(node, "gettxout", [entry[1], 0, True])
            if not isinstance(out, dict):          # spent since: of no use to anyone
                self.adapter.coinbases.remove(entry)
                continue
            confirmations = out.get("confirmations")
            confirmations = confirmations if isinstance(confirmations, int) else 0
            if confirmations > maturity:
                coins.append(entry)
                if len(coins) == 2:
                    break
            else:
                gaps.append(maturity + 1 - confirmations)
        return coins, gaps

    async def _fresh_coinbases(self, count: int) -> None:
        node = self.target.nodes[0]
        for block_hash in await self.mine(count):
            block = await self.call(node, "getblock", [block_hash, 2], timeout=30)
            coinbase = (block.get("tx") or [{}])[0] if isinstance(block, dict) else {}
            vout = (coinbase.get("vout") or [{}])[0] if isinstance(coinbase, dict) else {}
            try:
                entry = (int(block["height"]), str(coinbase["txid"]), round(float(vout["value"]) * 10**8))
            except (KeyError, TypeError, ValueError):
                raise Unusable(f"getblock {block_hash} on {node.name} has no readable coinbase") from None
            self.adapter.coinbases.insert(0, entry)

    def _spend(self, label: str, coin: int, recipient: int) -> Tx:
        from harness.adapters import bitcoin_tx as btx

        txid, value = self.coins[coin]
        raw, spend_id = btx.spend_p2wpkh(btx.txid_to_bytes(txid), 0, value, self.adapter.funder,
                                         self.recipients[recipient], value - self.fee)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "sendrawtransaction",
                           "params": [raw.hex()]}, separators=(",", ":")).encode()
        return Tx(label, body, spend_id)

    def resubmit_tx(self) -> Tx:
        return self._spend("resubmitted", 0, 0)

    def conflict_txs(self) -> tuple[Tx, Tx]:
        return self._spend("conflict A", 1, 1), self._spend("conflict B", 1, 2)

    async def mine(self, count: int) -> list[str]:
        """Blocks mined on the run's miner to the run's funder key (regtest has no miner)."""
        hashes: list[str] = []
        while len(hashes) < count:
            if self.target.time_left() < RESERVE:
                raise Unusable(f"the probe's time ran out while mining ({len(hashes)} of {count} blocks)")
            batch = min(50, count - len(hashes))
            got = await self.call(self.miner, "generatetoaddress", [batch, self.adapter.funder_address],
                                  timeout=120)
            if not isinstance(got, list) or not got:
                raise Unusable(f"generatetoaddress on {self.miner.name} answered {str(got)[:100]}")
            hashes += [str(h) for h in got]
        return hashes

    async def make_blocks(self, count: int) -> None:
        try:
            await self.mine(count)
        except Unusable as exc:
            self.target.say(f"replay: mining failed: {exc}")


class Comet(Family):
    """kvstore `key=value` transactions (harness/adapters/cometbft), unique to this probe."""

    conflict_reason = ("kvstore has no conflicting transactions: two txs writing one key with "
                       "different values are both valid (the last write wins)")
    chain_id_reason = "kvstore transactions are unsigned and carry no chain id"

    def resubmit_tx(self) -> Tx:
        from harness.adapters.cometbft import tx_hash

        tx = f"bctest.replay.{secrets.token_hex(8)}=once".encode()
        method = getattr(self.adapter, "broadcast_method", "broadcast_tx_sync")
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": {"tx": base64.b64encode(tx).decode()}},
                          separators=(",", ":")).encode()
        return Tx("resubmitted", body, tx_hash(tx))

    def judge_reply(self, tx: Tx, reply: Reply) -> tuple[bool, str]:
        from harness.adapters.cometbft import response_error

        if reply.status is None:
            return False, reply.error or "no answer"
        error = response_error(reply.status, reply.body)
        return (False, error) if error else (True, "CheckTx code 0")


FAMILIES: dict[str, type[Family]] = {"evm": Evm, "bitcoin": Bitcoin, "cometbft": Comet}


def _quantity(value: Any) -> int | None:
    """An EVM hex quantity, or None for anything else a node may answer."""
    if isinstance(value, str) and value.startswith("0x") and 2 < len(value) <= 66:
        try:
            return int(value, 16)
        except ValueError:
            return None
    return None


# -- reading the chains back -------------------------------------------------------------------


@dataclass
class Chain:
    """One node's blocks from the probe's start on: where each of the probe's txs is."""

    node: Node
    start: int                                   # first height read
    blocks: dict[int, Any] = field(default_factory=dict)   # height -> harness.model.Block
    ids: dict[int, frozenset[str]] = field(default_factory=dict)   # height -> its tx ids, lower case
    error: str | None = None          # its blocks could not be read: nothing can be judged
    short: str | None = None          # it did not reach the settle height: absence proves nothing

    def heights_of(self, tx_id: str) -> list[int]:
        wanted = tx_id.lower()
        return sorted(h for h, ids in self.ids.items() if wanted in ids)

    def tip(self) -> int:
        return max(self.blocks, default=self.start - 1)


async def read_chain(target: ProbeTarget, chain: Chain) -> None:
    """Read the node's blocks from `chain.start` to its tip, re-reading from the start when
    the blocks read do not link (a reorganisation while reading), at most twice."""
    adapter = target.adapter
    limit = int(_number(target, "scan_blocks"))
    for _ in range(3):
        try:
            tip = int(await adapter.height(chain.node))
            if tip - chain.start + 1 > limit:
                chain.error = (f"{tip - chain.start + 1} blocks since the probe started, more than "
                               f"settings.scan_blocks ({limit})")
                return
            for height in range(chain.tip() + 1, tip + 1):
                if target.time_left() <= 0:
                    chain.error = "the probe's time ran out while reading its blocks"
                    return
                block = await adapter.block_at(chain.node, height)
                chain.blocks[height] = block
                chain.ids[height] = frozenset(str(t).lower() for t in block.tx_ids)
        except Exception as exc:   # a node's answer of any shape: this node cannot be judged
            chain.error = f"reading its blocks failed: {type(exc).__name__}: {str(exc)[:200]}"
            return
        broken = [h for h in chain.blocks if h - 1 in chain.blocks
                  and chain.blocks[h].parent != chain.blocks[h - 1].hash]
        if not broken:
            chain.error = None
            return
        chain.blocks.clear()
        chain.ids.clear()
    chain.error = "its chain kept changing while it was read (reorganisations)"


async def wait_commit(target: ProbeTarget, family: Family, chain: Chain, tx_ids: list[str],
                      timeout: float) -> str | None:
    """Wait until one of `tx_ids` is in a block of `chain`'s node; the one found, or None."""
    deadline = time.monotonic() + min(timeout, max(0.0, target.time_left() - RESERVE))
    while True:
        await read_chain(target, chain)
        for tx_id in tx_ids:
            if chain.heights_of(tx_id):
                return tx_id
        if time.monotonic() >= deadline:
            return None
        await family.make_blocks(1)
        await asyncio.sleep(family.poll)


async def settle(target: ProbeTarget, family: Family, chains: list[Chain]) -> int | None:
    """Let `settle_blocks` more blocks be made and wait (bounded) for every node to reach that
    height: the height, or None if the first node could not say."""
    blocks = int(_number(target, "settle_blocks"))
    deadline = time.monotonic() + min(_number(target, "settle_timeout"),
                                      max(0.0, target.time_left() - RESERVE))
    try:
        goal = int(await target.adapter.height(chains[0].node)) + blocks
    except Exception:
        return None
    await family.make_blocks(blocks)
    while time.monotonic() < deadline:
        heights = []
        for chain in chains:
            try:
                heights.append(int(await target.adapter.height(chain.node)))
            except Exception:
                heights.append(-1)
        if min(heights) >= goal:
            break
        await asyncio.sleep(POLL)
    return goal


# -- the probe -------------------------------------------------------------------------------


async def run(target: ProbeTarget) -> list[Attempt]:
    make = FAMILIES.get(target.family)
    if make is None:
        raise NotApplicable(f"no {ID} cases for the {target.family} family")
    family = make(target)
    nodes = list(target.nodes)
    if not nodes:
        raise NotApplicable("the run has no nodes")
    try:
        await family.setup()
    except Unusable as exc:
        return [target.attempt("setup", "network", None, "The probe finds funded coins it can spend",
                               str(exc))]
    chains = []
    for node in nodes:      # the probe's txs exist from now on: no block below can hold them
        try:
            height = int(await target.adapter.height(node))
        except Exception as exc:
            return [target.attempt("setup", node, None, "The probe reads every node's height",
                                   f"{node.name} did not answer: {type(exc).__name__}: {str(exc)[:200]}")]
        # A few heights back: a reorganisation could place a new tx just below the start.
        chains.append(Chain(node, max(1, height - 5)))
    attempts: list[Attempt] = []
    first = chains[0]

    # 1. Resubmission after commit.
    original = family.resubmit_tx()
    sent = await family.send(nodes[0], original)
    resubmits: list[Sent] = []
    committed = None
    if sent.accepted:
        committed = await wait_commit(target, family, first, [original.tx_id],
                                      _number(target, "commit_timeout"))
    if committed is None:
        attempts.append(target.attempt(
            "resubmit", nodes[0], None, "A resubmitted transaction commits exactly once",
            f"the original transfer {original.tx_id} did not commit, so there was nothing to replay: "
            + sent.evidence(), original.body, sent.reply.text()))
    else:
        resubmits = list(await asyncio.gather(*(family.send(node, original) for node in nodes)))

    # 2. Conflicting transactions, sent at once to two nodes.
    pair: tuple[Tx, Tx] | None = None
    pair_sent: list[Sent] = []
    winner = None
    if family.conflict_reason:
        target.say(f"replay: conflicting transactions do not apply: {family.conflict_reason}")
    else:
        pair = family.conflict_txs()
        to = [nodes[0], nodes[1 % len(nodes)]]
        pair_sent = list(await asyncio.gather(family.send(to[0], pair[0]), family.send(to[1], pair[1])))
        winner = await wait_commit(target, family, first, [pair[0].tx_id, pair[1].tx_id],
                                   _number(target, "commit_timeout"))

    # 3. A transaction signed for another chain id.
    wrong: Tx | None = None
    wrong_sent: list[Sent] = []
    if family.chain_id_reason:
        target.say(f"replay: the chain id case does not apply: {family.chain_id_reason}")
    else:
        wrong = family.chain_id_tx()
        wrong_sent = list(await asyncio.gather(*(family.send(node, wrong) for node in nodes)))

    # Read every chain back once the last sends had time to commit.
    goal = await settle(target, family, chains)
    for chain in chains:
        await read_chain(target, chain)
        if goal is None:
            chain.short = f"the settle height could not be read from {nodes[0].name}"
        elif chain.tip() < goal:
            chain.short = (f"{chain.node.name} reached only height {chain.tip()} of {goal} within "
                           "settings.settle_timeout")
    extra = await family.extra_checks(nodes)

    if committed is not None:
        for chain, resent in zip(chains, resubmits, strict=True):
            attempts.append(_judge_resubmit(target, chain, original, resent,
                                            extra.get("resubmit", {}).get(chain.node.name)))
    if pair is not None:
        attempts += _judge_conflict(target, chains, pair, pair_sent, winner, extra.get("conflict", {}))
    if wrong is not None:
        for chain, one in zip(chains, wrong_sent, strict=True):
            attempts.append(_judge_chain_id(target, chain, wrong, one,
                                            extra.get("chain_id", {}).get(chain.node.name)))
    return attempts


def _judge_resubmit(target: ProbeTarget, chain: Chain, tx: Tx, resent: Sent, extra: str | None
                    ) -> Attempt:
    title = "A transaction resubmitted after its commit is refused or a no-op: it is in exactly one block"
    heights = chain.heights_of(tx.tx_id)
    said = f"resubmitted after its commit, {resent.evidence()}"
    if chain.error:
        return target.attempt("resubmit", chain.node, None, title,
                              f"{said}; {chain.node.name}'s chain could not be read: {chain.error}",
                              tx.body, resent.reply.text())
    where = (f"{tx.tx_id} is in blocks {heights} of {chain.node.name}" if heights
             else f"{tx.tx_id} is in no block of {chain.node.name} (read {chain.start}..{chain.tip()})")
    passed: bool | None = len(heights) == 1 and extra is None
    if not heights and chain.short:          # a node behind may not hold it yet
        passed, where = None, f"{where}, but {chain.short}"
    elif extra is not None and extra.startswith("its nonce could not"):
        passed = None if len(heights) == 1 else False
    why = f"{said}; {where}" + (f"; {extra}" if extra else "")
    return target.attempt("resubmit", chain.node, passed, title, why, tx.body, resent.reply.text())


def _judge_conflict(target: ProbeTarget, chains: list[Chain], pair: tuple[Tx, Tx], sent: list[Sent],
                    winner: str | None, extra: dict[str, str | None]) -> list[Attempt]:
    title = ("Of two conflicting transactions sent at once, exactly one commits, the same on every "
             "node, and the other is in no block")
    one_node = len(chains) == 1
    how = ("both sent to the network's only node" if one_node
           else f"sent at once to {sent[0].node.name} and {sent[1].node.name}")
    said = f"{pair[0].label} {pair[0].tx_id} and {pair[1].label} {pair[1].tx_id} {how}: " + \
        "; ".join(s.evidence() for s in sent)
    request = "\n".join(f"to {s.node.name}: {s.tx.body.decode()}" for s in sent)
    answer = "\n\n".join(f"{s.node.name}: {s.reply.text()}" for s in sent)
    found: dict[str, list[str]] = {}
    for chain in chains:
        if chain.error:
            continue
        found[chain.node.name] = [tx.label for tx in pair if chain.heights_of(tx.tx_id)]
    winners = {labels[0] for labels in found.values() if len(labels) == 1}
    out = []
    for chain in chains:
        node = chain.node.name
        if chain.error:
            out.append(target.attempt("conflict", chain.node, None, title,
                                      f"{said}; {node}'s chain could not be read: {chain.error}",
                                      request, answer))
            continue
        where = "; ".join(f"{tx.label} in blocks {chain.heights_of(tx.tx_id) or 'none'}" for tx in pair)
        labels = found[node]
        if not labels:
            passed: bool | None = None if winner is None or chain.short else False
            verdict = ("neither committed within the probe's wait" if winner is None
                       else f"neither is in {node}'s blocks, but {chain.short}" if chain.short
                       else f"neither is in {node}'s blocks although one committed elsewhere")
        elif len(labels) == 2:
            passed, verdict = False, f"both committed on {node}: a double spend"
        elif any(len(chain.heights_of(tx.tx_id)) > 1 for tx in pair):
            passed, verdict = False, f"{labels[0]} is in more than one block of {node}"
        elif len(winners) > 1:
            passed = False
            verdict = "the nodes committed different ones: " + ", ".join(
                f"{name}: {'/'.join(lab) or 'none'}" for name, lab in found.items())
        else:
            passed, verdict = True, f"only {labels[0]} committed on {node}"
        reason = extra.get(node)
        if reason and passed:
            passed = None if reason.startswith("its nonce could not") else False
        out.append(target.attempt("conflict", chain.node, passed, title,
                                  f"{said}; {verdict} ({where})" + (f"; {reason}" if reason else ""),
                                  request, answer))
    return out


def _judge_chain_id(target: ProbeTarget, chain: Chain, tx: Tx, sent: Sent, extra: str | None
                    ) -> Attempt:
    title = f"A transaction signed for another chain id ({tx.label}) is refused and in no block"
    said = sent.evidence()
    if chain.error:
        return target.attempt("chain_id", chain.node, None, title,
                              f"{said}; {chain.node.name}'s chain could not be read: {chain.error}",
                              tx.body, sent.reply.text())
    heights = chain.heights_of(tx.tx_id)
    if heights:
        passed: bool | None = False
        verdict = f"it is in blocks {heights} of {chain.node.name}: replayable across chains"
    elif sent.accepted:
        passed = False
        verdict = (f"it is in no block of {chain.node.name} (read {chain.start}..{chain.tip()}), "
                   "but the node answered it as accepted: a tx signed for another chain id must be "
                   "refused")
    elif chain.short:
        passed = None
        verdict = f"it is in no block of {chain.node.name} so far, but {chain.short}"
    else:
        passed = True
        verdict = f"it is in no block of {chain.node.name} (read {chain.start}..{chain.tip()})"
    if extra and passed:
        passed = None if extra.startswith("its nonce could not") else False
    # Taken but never mined: a false acknowledgement, not a replay (anvil 1.7.1 drops such a tx
    # after answering its hash); mined: replayable across chains, critical.
    severity = "medium" if passed is False and not heights else None
    return target.attempt("chain_id", chain.node, passed, title,
                          f"{said}; {verdict}" + (f"; {extra}" if extra else ""), tx.body,
                          sent.reply.text(), severity=severity)

