"""Byzantine equivocation (the Twins method): a validator's key signs on two nodes at once.

CometBFT: for each validator k chosen (`twins`), a second container (twin<k>) starts on the
run network with node k's genesis and validator key but a p2p key of its own, peers with the
nodes and runs for a bounded time while blocks are made, then is removed on every path
(teardown removes it too if the probe is killed: it carries the run's label). Node k and its
twin both sign: when they vote for different blocks at one height and round (they do once k
proposes: each proposes its own block and prevotes it), the honest validators must catch the
double sign and commit DuplicateVoteEvidence for k's address within `blocks` blocks, read from
the blocks' evidence (/block?height=h). Safety is judged across the window: every node holds
the same block hash at every height.

With < 1/3 of the voting power twinned, BFT promises safety and accountability: every attempt
must pass. With >= 1/3 (e.g. `twins: [0, 1]` of 4) it promises neither: the run is the
documented negative control. The twins then peer with a side of honest nodes that, with
them, holds > 2/3 of the keys, and (`partition`, root on the engine's host) that side is cut
from the rest, which also holds > 2/3: two quorums, two chains. Its attempts record what
the chain did (severity info): safety passes when the loss BFT allows is shown (a fork) and
is unknown when it is not; evidence, liveness and the aftermath are recorded as pass. Then
(`restore`) the twins' side, holding a fork no quorum extends, is recreated from the image
and syncs the majority's chain, so the run's survival check and final read go on.

geth Clique (`clique` option): a twin with one signer's key (its own p2p key) seals beside
the original for `seconds`. Clique has no equivocation evidence and promises nothing here,
so its attempts (severity info) record what the chain did: competing blocks of one height
sealed by the shared key (seen by polling, and the twin's sealed blocks from its log against
the block the nodes kept, the signer recovered from each seal), whether blocks kept coming,
and whether every node holds one chain once the twin left; pass when seen, unknown when it
could not be. Other families: not applicable.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.model import Attempt, Node
from harness.security.probe import NotApplicable, ProbeTarget, Reply, clip

ID = "equivocation"
ORDER = 60
TITLE = {"en": "Byzantine equivocation: one validator key signing on two nodes (Twins)",
         "zh": "拜占庭双签：同一验证者密钥在两个节点上同时签名（Twins 方法）"}
SEVERITY = "critical"
DEFAULTS: dict[str, Any] = {
    "twins": None,        # node indexes whose key gets a twin; None: the last node
    "blocks": 20,         # evidence must be committed within this many blocks of the twins joining
    "seconds": 60,        # the twins run at most this long once they have joined
    "join_timeout": 45,   # seconds for a twin to sync and join consensus
    "min_blocks": 3,      # every honest node makes at least this many blocks while the twins run
    "partition": True,    # >= 1/3 twinned: cut the twins' side from the rest (needs root)
    "aftermath": 5,       # >= 1/3 twinned: seconds watched after the twins left
    "restore": False,     # >= 1/3 twinned and cut: recreate the twins' side afterwards (fresh data)
}
SETTINGS: dict[str, Any] = {
    "twins": {"type": ["array", "null"], "items": {"type": "integer", "minimum": 0},
              "uniqueItems": True, "minItems": 1, "maxItems": 64},
    "blocks": {"type": "integer", "minimum": 1, "maximum": 10000},
    "seconds": {"type": "number", "minimum": 1, "maximum": 3600},
    "join_timeout": {"type": "number", "minimum": 1, "maximum": 600},
    "min_blocks": {"type": "integer", "minimum": 0, "maximum": 10000},
    "partition": {"type": "boolean"},
    "aftermath": {"type": "number", "minimum": 0, "maximum": 600},
    "restore": {"type": "boolean"},
}

EVIDENCE_TYPE = "tendermint/DuplicateVoteEvidence"
RESERVE = 20.0           # seconds kept for removing the twins and the safety reads
POLL = 1.0
CHAIN = "bct-equivocation"   # the partition's iptables chain in the cut nodes' namespaces
MAX_SCAN = 400           # heights read for evidence at most (a bound on hostile heights)


@dataclass
class Twin:
    of: Node                   # the node whose validator key it carries
    address: str               # that validator's address (upper-case hex)
    node: Node | None = None   # its container, once started
    joined: int | None = None  # the honest height when it left block sync and joined consensus
    status: str = ""           # its last /status, as a tester reads it
    evidence: dict[str, Any] | None = None   # the first DuplicateVoteEvidence found for it
    evidence_height: int | None = None


@dataclass
class Window:
    start: dict[str, int] = field(default_factory=dict)   # node -> height before the twins
    end: dict[str, int] = field(default_factory=dict)     # node -> height when they were removed
    scanned: int = 0                                       # last height read for evidence


async def run(target: ProbeTarget) -> list[Attempt]:
    if target.family == "cometbft":
        return await _cometbft(target)
    if target.family == "evm" and isinstance(getattr(target.pack, "options", None), dict) \
            and target.pack.options.get("clique"):
        return await _clique(target)
    raise NotApplicable(f"no {ID} cases for the {target.family} family: the Twins method needs "
                        "a chain whose block producers sign with keys the harness hands out "
                        "(CometBFT validators, Clique signers)")


# -- CometBFT -----------------------------------------------------------------------------------


def _last_voter(target: ProbeTarget, method: str) -> int:
    """The default twin: the last node that votes or seals (with a topology, a root node:
    a twin of a full node's key equivocates nothing)."""
    voters = getattr(target.adapter, method, None)
    return voters()[-1] if callable(voters) else len(target.nodes) - 1


async def _cometbft(target: ProbeTarget) -> list[Attempt]:
    from harness.adapters.cometbft import derive_key, node_key_json

    nodes = target.nodes
    settings = {**DEFAULTS, **(target.settings or {})}
    chosen = settings["twins"] if settings["twins"] is not None else [_last_voter(target, "validating_nodes")]
    _check_twins(chosen, len(nodes))
    if not hasattr(target.adapter, "validator_keys") or not hasattr(target.runtime, "start_twin"):
        raise NotApplicable("the adapter hands out no validator keys or the runtime starts no twins")
    keys = target.adapter.validator_keys()
    twins = [Twin(of=nodes[k], address=keys[k].address) for k in sorted(chosen)]
    attempts: list[Attempt] = []

    request, reply, validators = await _get(target, nodes[0], "/validators", per_page=100)
    power = _powers(validators)
    if not power:
        return [target.attempt("validators", nodes[0], None, "the validator set can be read",
                               "the node did not answer its validator set; nothing to judge",
                               request, reply.text())]
    total = sum(power.values())
    byzantine = sum(power.get(t.address, 0) for t in twins)
    negative = 3 * byzantine >= total
    share = f"{byzantine}/{total} of the voting power"
    missing = [t for t in twins if t.address not in power]
    if missing:
        return [target.attempt("validators", t.of, None, f"{t.of.name}'s key is a validator",
                               f"validator {t.address} is not in the set the node answered", request,
                               reply.text()) for t in missing]
    target.say(f"{ID}: twins of {', '.join(t.of.name for t in twins)} ({share}"
               f"{': the negative control' if negative else ''})")

    # The sides: normally the twins peer with every node. The negative control splits the
    # honest nodes so that each side holds > 2/3 of the keys (the twins count on theirs).
    twinned = {t.of.name for t in twins}
    theirs = _split([n for n in nodes if n.name not in twinned], byzantine, total,
                    lambda n: power.get(keys[n.index].address, 0)) if negative else []
    cut: list[Node] = []
    why_no_cut = ""
    if negative and settings["partition"]:
        if not theirs:
            why_no_cut = "no split of the honest nodes gives both sides > 2/3 of the keys"
        else:
            why_no_cut = _partition_missing()
    peers = theirs if negative and theirs else nodes

    window = Window()
    window.start = await _heights(target, nodes)
    window.scanned = min(window.start.values(), default=0)
    reference = next((n for n in nodes if n.name not in twinned and n not in theirs), None) \
        if negative else next((n for n in nodes if n.name not in twinned), None)
    reference = reference or nodes[0]
    p2p = int(getattr(target.adapter, "p2p_port", 26656))
    node_keys = target.adapter.node_keys()
    joined_at: float | None = None
    try:
        if negative and theirs and settings["partition"] and not why_no_cut:
            cut = theirs
            await asyncio.to_thread(_cut, target, theirs, [n for n in nodes if n not in theirs])
        for twin in twins:
            key = derive_key("twin", target.adapter.identity_seed, twin.of.index)
            files = {"node_key.json": json.dumps(node_key_json(key)).encode(),
                     "node_id": key.node_id.encode(),
                     "persistent_peers": ",".join(f"{node_keys[n.index].node_id}@{n.name}:{p2p}"
                                                  for n in peers).encode()}
            twin.node = await asyncio.to_thread(target.runtime.start_twin, twin.of, files,
                                                f"twin{twin.of.index}")
            target.say(f"{ID}: {twin.node.name} runs with {twin.of.name}'s validator key "
                       f"({twin.address}), peers {', '.join(n.name for n in peers)}")
        joined_at = await _wait_joined(target, twins, reference, settings)
        if joined_at is not None:
            stop = joined_at + settings["seconds"]
            bound = min(t.joined for t in twins if t.joined is not None) + settings["blocks"]
            while time.monotonic() < stop and target.time_left() > RESERVE:
                await _scan(target, reference, window, twins, bound)
                if all(t.evidence is not None for t in twins) and (
                        await _height(target, reference) or 0) >= (
                        max(t.evidence_height or 0 for t in twins) + settings["min_blocks"]):
                    break
                if window.scanned >= bound:
                    break
                await asyncio.sleep(POLL)
        for twin in twins:
            if twin.node is not None:
                twin.status = await _twin_status(target, twin.node)
        window.end = await _heights(target, nodes)
    finally:
        for twin in twins:
            if twin.node is not None:
                await asyncio.to_thread(target.runtime.remove_twin, twin.node)
        if cut:
            await asyncio.to_thread(_heal, target, cut)
    ran = (time.monotonic() - joined_at) if joined_at is not None else 0.0
    target.say(f"{ID}: twins removed after {ran:.0f} s")
    await _scan(target, reference, window, twins, None)   # evidence committed meanwhile

    severity = "info" if negative else None
    control = (f" (negative control: {share} twinned"
               + (f", {', '.join(n.name for n in cut)} cut from the rest" if cut else
                  f", no partition: {why_no_cut}" if negative and settings["partition"] else "") + ")"
               ) if negative else ""
    for twin in twins:
        attempts.append(_evidence_attempt(target, twin, reference, window, settings, negative,
                                          severity, control))
    attempts.append(_liveness_attempt(target, nodes, twinned, window, settings, joined_at,
                                      negative, severity, control))
    attempts.append(await _safety_attempt(target, nodes, window, negative, severity, control))
    if negative and joined_at is not None:
        attempts.append(await _aftermath_attempt(target, nodes, window, settings, control))
    if cut and settings["restore"]:
        attempts.append(await _restore(target, cut))
    return attempts


async def _restore(target: ProbeTarget, side: list[Node]) -> Attempt:
    """Make the network whole again for the rest of the run: the nodes of the twins' side
    hold a fork no quorum will extend, so they start afresh (the wipe fault's recreate) and
    sync the other side's chain. The fork stays in this probe's record."""
    done, failed = [], []
    for node in side:
        try:
            await asyncio.to_thread(target.runtime.recreate, node)
            done.append(node.name)
        except Exception as exc:   # the stage's survival check then sees the node stalled
            failed.append(f"{node.name}: {exc}")
    why = (f"{', '.join(done) or 'no node'} recreated from the image (fresh data) to sync the "
           "majority's chain" + (f"; could not recreate {'; '.join(failed)}" if failed else ""))
    return target.attempt("restore", "network", None if failed else True,
                          "the twins' side is recreated so the run goes on (recorded)", why,
                          f"recreate {', '.join(n.name for n in side)}", why, severity="info")


async def _aftermath_attempt(target: ProbeTarget, nodes: list[Node], window: Window,
                             settings: dict[str, Any], control: str) -> Attempt:
    """The negative control's record of what the nodes do once the twins are gone and the
    sides are joined again (a side whose fork holds < 2/3 of the keys halts)."""
    wait = max(0.0, min(settings["aftermath"], target.time_left() - RESERVE / 2))
    before = await _heights(target, nodes)
    await asyncio.sleep(wait)
    after = await _heights(target, nodes)
    said = ", ".join(f"{n.name} {before.get(n.name, '?')}->{after.get(n.name, '?')}" for n in nodes)
    halted = [n.name for n in nodes if n.name in before and after.get(n.name, -1) <= before[n.name]]
    why = (f"{wait:.0f} s after the twins left: " + (f"{', '.join(halted)} made no block"
           if halted else "every node still makes blocks") + f" ({said}){control}")
    return target.attempt("aftermath", "network", True, "what the nodes do once the twins are "
                          "gone (recorded, not judged)", why,
                          "GET /status (every node, twice)", said, severity="info")


def _check_twins(chosen: Any, count: int) -> None:
    if not isinstance(chosen, list) or not chosen or any(
            isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < count for k in chosen) \
            or len(set(chosen)) != len(chosen):
        raise InputError("suite", f"security.settings.{ID}.twins",
                         f"distinct node indexes 0..{count - 1}, got {chosen!r}")


def _split(free: list[Node], byzantine: int, total: int, weight: Any) -> list[Node]:
    """The shortest suffix of `free` that, with the twins' power, holds > 2/3 while the rest
    (the originals and the other honest nodes) still hold > 2/3; [] when none does."""
    for size in range(len(free) + 1):
        side = free[len(free) - size:]
        theirs = byzantine + sum(weight(n) for n in side)
        if 3 * theirs > 2 * total and 3 * (total - sum(weight(n) for n in side)) > 2 * total:
            return side
    return []


def _partition_missing() -> str:
    """'' when this process can cut nodes apart (root, nsenter, iptables); else why not."""
    import os
    import shutil

    from harness.faults import netns

    missing = [tool for tool in netns.TOOLS[:2] if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} missing on the harness host"
    if os.geteuid() != 0:
        return "the harness does not run as root (nsenter)"
    return ""


def _cut(target: ProbeTarget, side: list[Node], rest: list[Node]) -> None:
    from harness.faults import netns

    for node in side:
        netns.add_drop_chain(target.runtime.namespace(node), CHAIN, [n.ip for n in rest])


def _heal(target: ProbeTarget, side: list[Node]) -> None:
    from harness.faults import netns

    for node in side:
        try:
            netns.remove_chain(target.runtime.namespace(node), CHAIN)
        except Exception as exc:   # a stopped node has no namespace left to heal
            target.say(f"{ID}: could not remove the partition on {node.name}: {exc}")


# -- reading the nodes (every answer hostile) ---------------------------------------------------


async def _get(target: ProbeTarget, node: Node, path: str, **query: Any
               ) -> tuple[str, Reply, dict[str, Any] | None]:
    """GET a CometBFT RPC route: (the request line, the reply, its result object or None)."""
    tail = "&".join(f"{k}={v}" for k, v in query.items())
    url = f"{node.url()}{path}{'?' + tail if tail else ''}"
    reply = await target.http(url, method="GET", timeout=10)
    body = reply.json()
    result = body.get("result") if isinstance(body, dict) and not body.get("error") else None
    return f"GET {path}{'?' + tail if tail else ''} ({node.name})", reply, \
        result if isinstance(result, dict) else None


def _int(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 <= number < 1 << 62 else None


def _powers(result: dict[str, Any] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in (result or {}).get("validators") or []:
        if isinstance(entry, dict) and isinstance(entry.get("address"), str):
            power = _int(entry.get("voting_power"))
            if power:
                out[entry["address"].upper()] = power
    return out


async def _height(target: ProbeTarget, node: Node) -> int | None:
    _request, _reply, status = await _get(target, node, "/status")
    return _int(((status or {}).get("sync_info") or {}).get("latest_block_height"))


async def _heights(target: ProbeTarget, nodes: list[Node]) -> dict[str, int]:
    found = await asyncio.gather(*(_height(target, n) for n in nodes))
    return {n.name: h for n, h in zip(nodes, found, strict=True) if h is not None}


async def _twin_status(target: ProbeTarget, twin: Node) -> str:
    _request, reply, status = await _get(target, twin, "/status")
    if status is None:
        return f"no status ({reply.text()[:200]})"
    sync = status.get("sync_info") or {}
    return clip(f"height {sync.get('latest_block_height')}, catching_up {sync.get('catching_up')}, "
                f"validator {(status.get('validator_info') or {}).get('address')}", 300)


async def _wait_joined(target: ProbeTarget, twins: list[Twin], reference: Node,
                       settings: dict[str, Any]) -> float | None:
    """Wait until every twin left block sync (it then signs in consensus); the moment, or
    None if one never did within join_timeout."""
    until = time.monotonic() + settings["join_timeout"]
    while time.monotonic() < until and target.time_left() > RESERVE + settings["seconds"] / 2:
        for twin in twins:
            if twin.joined is not None or twin.node is None:
                continue
            _request, _reply, status = await _get(target, twin.node, "/status")
            sync = (status or {}).get("sync_info") or {}
            if sync.get("catching_up") is False and (_int(sync.get("latest_block_height")) or 0) > 0:
                twin.joined = await _height(target, reference) or _int(sync["latest_block_height"])
                target.say(f"{ID}: {twin.node.name} joined consensus at height {twin.joined}")
        if all(t.joined is not None for t in twins):
            return time.monotonic()
        await asyncio.sleep(POLL)
    return None


def _duplicate_votes(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The DuplicateVoteEvidence values a /block result carries."""
    listed = (((block.get("block") or {}).get("evidence") or {}).get("evidence")) or []
    return [item.get("value") or {} for item in listed if isinstance(item, dict)
            and item.get("type") == EVIDENCE_TYPE and isinstance(item.get("value"), dict)]


def _accused(evidence: dict[str, Any]) -> str:
    vote = evidence.get("vote_a") if isinstance(evidence.get("vote_a"), dict) else {}
    address = vote.get("validator_address")
    return address.upper() if isinstance(address, str) else ""


async def _scan(target: ProbeTarget, node: Node, window: Window, twins: list[Twin],
                bound: int | None) -> None:
    """Read the evidence of every block after the last scanned, up to the node's tip."""
    tip = await _height(target, node)
    if tip is None:
        return
    last = min(tip, window.scanned + MAX_SCAN)
    for height in range(window.scanned + 1, last + 1):
        _request, _reply, block = await _get(target, node, "/block", height=height)
        if block is None:
            return   # try again next round
        for evidence in _duplicate_votes(block):
            for twin in twins:
                if twin.evidence is None and _accused(evidence) == twin.address:
                    twin.evidence, twin.evidence_height = evidence, height
                    target.say(f"{ID}: DuplicateVoteEvidence for {twin.of.name}'s key at height "
                               f"{height}")
        window.scanned = height


def _evidence_attempt(target: ProbeTarget, twin: Twin, reference: Node, window: Window,
                      settings: dict[str, Any], negative: bool, severity: str | None,
                      control: str) -> Attempt:
    blocks = settings["blocks"]
    case = f"evidence.{twin.of.name}"
    title = (f"DuplicateVoteEvidence for validator {twin.address} ({twin.of.name}'s key, signing "
             f"on {twin.of.name} and a twin) is committed within {blocks} blocks")
    if negative:
        title += " (recorded: BFT promises no accountability with >= 1/3 Byzantine power)"
    if twin.joined is None:
        return target.attempt(case, twin.of, None, title,
                              f"the twin never joined consensus within {settings['join_timeout']} s "
                              f"(its last status: {twin.status or 'none'}; log: logs/twin"
                              f"{twin.of.index}.log){control}",
                              f"twin{twin.of.index}: start with {twin.of.name}'s key", twin.status,
                              severity=severity)
    request = f"GET /block?height={window.start.get(reference.name, 0) + 1}..{window.scanned} " \
              f"({reference.name})"
    if twin.evidence is not None and twin.evidence_height is not None:
        after = twin.evidence_height - twin.joined
        vote_a, vote_b = twin.evidence.get("vote_a") or {}, twin.evidence.get("vote_b") or {}
        why = (f"committed at height {twin.evidence_height}, {after} blocks after the twin joined at "
               f"{twin.joined}: votes of type {vote_a.get('type')} at height {vote_a.get('height')} "
               f"round {vote_a.get('round')} for blocks "
               f"{(vote_a.get('block_id') or {}).get('hash') or 'nil'} and "
               f"{(vote_b.get('block_id') or {}).get('hash') or 'nil'}{control}")
        answer = json.dumps({"type": EVIDENCE_TYPE, "value": twin.evidence}, separators=(",", ":"))
        passed = after <= blocks
        if not passed:
            why = f"too late: {why}"
        return target.attempt(case, twin.of, True if negative else passed, title, why,
                              f"GET /block?height={twin.evidence_height} ({reference.name})",
                              answer, severity=severity)
    why = (f"no DuplicateVoteEvidence for {twin.address} in heights "
           f"{window.start.get(reference.name, 0) + 1}..{window.scanned} of {reference.name} "
           f"(the twin joined at {twin.joined}; its last status: {twin.status}){control}")
    if negative:   # BFT promises no accountability with >= 1/3 Byzantine: recorded
        return target.attempt(case, twin.of, True, title, why, request, "no such evidence",
                              severity=severity)
    enough = window.scanned >= twin.joined + blocks
    return target.attempt(case, twin.of, False if enough else None, title,
                          why if enough else f"the window ended before {blocks} blocks: {why}",
                          request, "no such evidence", severity=severity)


def _liveness_attempt(target: ProbeTarget, nodes: list[Node], twinned: set[str], window: Window,
                      settings: dict[str, Any], joined_at: float | None, negative: bool,
                      severity: str | None, control: str) -> Attempt:
    need = settings["min_blocks"]
    title = f"every node makes at least {need} new blocks while the twins run"
    grown = {n.name: window.end[n.name] - window.start[n.name] for n in nodes
             if n.name in window.start and n.name in window.end}
    said = ", ".join(f"{name} {window.start[name]}->{window.end[name]}" for name in grown)
    request = "GET /status (every node, before the twins started and when they were removed)"
    if joined_at is None or len(grown) < len(nodes):
        return target.attempt("liveness", "network", None, title,
                              f"could not judge: the twins did not join or a node did not answer "
                              f"(heights {said or 'none'}){control}", request, said,
                              severity=severity)
    slow = [name for name, n in grown.items() if n < need]
    if negative:
        return target.attempt("liveness", "network", True, title,
                              (f"halted or slowed: {', '.join(slow)}" if slow else "all advanced")
                              + f" (heights {said}){control}", request, said, severity=severity)
    return target.attempt("liveness", "network", not slow, title,
                          (f"{', '.join(slow)} made fewer than {need} blocks" if slow else
                           "every node kept making blocks") + f" (heights {said})", request, said,
                          severity=severity)


async def _hashes(target: ProbeTarget, node: Node, low: int, high: int) -> dict[int, str]:
    """Block hashes of heights low..high (/blockchain, 20 a call)."""
    out: dict[int, str] = {}
    top = high
    while top >= low:
        bottom = max(low, top - 19)
        _request, _reply, result = await _get(target, node, "/blockchain", minHeight=bottom,
                                              maxHeight=top)
        for meta in (result or {}).get("block_metas") or []:
            if not isinstance(meta, dict):
                continue
            height = _int((meta.get("header") or {}).get("height"))
            block_hash = (meta.get("block_id") or {}).get("hash")
            if height is not None and low <= height <= high and isinstance(block_hash, str):
                out[height] = clip(block_hash, 80)
        top = bottom - 1
    return out


async def _safety_attempt(target: ProbeTarget, nodes: list[Node], window: Window, negative: bool,
                          severity: str | None, control: str) -> Attempt:
    title = "every node holds the same block hash at every height of the window"
    ends = await _heights(target, nodes)
    if not window.start or not ends:
        return target.attempt("safety", "network", None, title,
                              f"the nodes did not answer their heights{control}", "GET /status",
                              "", severity=severity)
    low = max(1, min(window.start.values()) - 2)
    high = max(ends.values())
    high = min(high, low + MAX_SCAN)
    request = f"GET /blockchain?minHeight={low}&maxHeight={high} (every node, 20 heights a call)"
    found = await asyncio.gather(*(_hashes(target, n, low, high) for n in nodes))
    by_node = dict(zip((n.name for n in nodes), found, strict=True))
    forks: list[str] = []
    compared = 0
    for height in range(low, high + 1):
        seen = {name: hashes[height] for name, hashes in by_node.items() if height in hashes}
        if len(seen) >= 2:
            compared += 1
            if len(set(seen.values())) > 1:
                forks.append(f"height {height}: " + ", ".join(f"{name} {h}" for name, h in seen.items()))
    answer = "\n".join(forks[:10]) or f"{compared} heights, one hash each"
    if compared == 0:
        return target.attempt("safety", "network", None, title,
                              f"no height was answered by two nodes{control}", request, answer,
                              severity=severity)
    if negative:   # the control shows its expected loss (pass), or did not (unknown)
        why = (f"the expected safety loss: {len(forks)} of {compared} heights differ, first "
               f"{forks[0]}{control}" if forks else
               f"the expected safety loss was not shown: {compared} heights agree{control}")
        return target.attempt("safety", "network", True if forks else None, title, why, request,
                              answer, severity=severity)
    why = (f"{len(forks)} of {compared} heights differ between nodes, first {forks[0]}" if forks
           else f"all {compared} heights {low}..{high} agree on every node that holds them")
    return target.attempt("safety", "network", not forks, title, why, request, answer,
                          severity=severity)


# -- geth Clique ---------------------------------------------------------------------------------


async def _clique(target: ProbeTarget) -> list[Attempt]:
    """Two geth nodes sealing with one signer key. Clique has no equivocation evidence and
    no slashing, so nothing is promised: the attempts record what the chain did (the
    competing blocks one key sealed, whether blocks kept coming, whether the nodes agreed
    again once the twin left), pass when it was seen, unknown when it could not be."""
    from harness.adapters.evm_tx import derive_account

    nodes = target.nodes
    settings = {**DEFAULTS, **(target.settings or {})}
    chosen = settings["twins"] if settings["twins"] is not None else [_last_voter(target, "signer_nodes")]
    _check_twins(chosen, len(nodes))
    if not hasattr(target.adapter, "signers") or not hasattr(target.runtime, "start_twin"):
        raise NotApplicable("the adapter hands out no Clique signer keys or the runtime starts no twins")
    signers = target.adapter.signers()
    twins = [Twin(of=nodes[k], address=signers[k].hex_address.lower()) for k in sorted(chosen)]
    addresses = {t.address.lower() for t in twins}
    start = await _evm_heights(target, nodes)
    seen: dict[int, dict[str, str]] = {}    # height -> block hash -> signer, every node's view
    holders: dict[tuple[int, str], set[str]] = {}   # (height, hash) -> nodes that showed it
    joined_at: float | None = None
    end: dict[str, int] = {}
    try:
        for twin in twins:
            key = derive_account("p2p-twin", target.adapter.identity_seed, twin.of.index)
            twin.node = await asyncio.to_thread(target.runtime.start_twin, twin.of,
                                                {"nodekey": key.key.hex().encode()},
                                                f"twin{twin.of.index}")
            target.say(f"{ID}: {twin.node.name} seals with {twin.of.name}'s signer key {twin.address}")
        joined_at = time.monotonic()
        stop = joined_at + settings["seconds"]
        while time.monotonic() < stop and target.time_left() > RESERVE:
            for node in [*nodes, *(t.node for t in twins if t.node is not None)]:
                block = await _evm_block(target, node, "latest")
                if block is not None:
                    number, block_hash, signer = block
                    seen.setdefault(number, {})[block_hash] = signer
                    holders.setdefault((number, block_hash), set()).add(node.name)
            await asyncio.sleep(POLL)
        end = await _evm_heights(target, nodes)
    finally:
        for twin in twins:
            if twin.node is not None:
                await asyncio.to_thread(target.runtime.remove_twin, twin.node)
    target.say(f"{ID}: twins removed")
    attempts = []
    doubles = {h: blocks for h, blocks in sorted(seen.items())
               if sum(1 for signer in blocks.values() if signer in addresses) >= 2}
    twin_names = {t.node.name for t in twins if t.node is not None}
    sealed = {h: v for t in twins if t.node is not None
              for h, v in _sealed_by(target.runtime.log_path(t.node)).items()}
    canonical: dict[int, tuple[str, str]] = {}   # height -> (hash, signer) node0 holds
    for number in sorted(sealed)[-20:]:
        block = await _evm_block(target, nodes[0], hex(number))
        if block is not None:
            canonical[number] = (block[1], block[2])
    same = [h for h in canonical if _abbreviates(sealed[h], canonical[h][0])]
    lost = [h for h in canonical if h not in same and canonical[h][1] in addresses]
    other = [h for h in canonical if h not in same and h not in lost]
    by_twin = sorted({h for (h, _hash), names in holders.items() if names & twin_names})
    request = "eth_getBlockByNumber(\"latest\", false) on every node and twin, every second; " \
              "the signer recovered from each header's Clique seal"
    said = "; ".join(f"height {h}: " + ", ".join(f"{block_hash[:18]}… by {signer} on "
                                                 f"{'/'.join(sorted(holders[(h, block_hash)]))}"
                                                 for block_hash, signer in blocks.items())
                     for h, blocks in list(doubles.items())[:5])
    title = "two nodes sealing with one Clique signer key: what the chain does (recorded)"
    parts = []
    if doubles:
        parts.append(f"polling saw {len(doubles)} heights with two blocks sealed by one key, "
                     f"first {said};")
    if sealed:
        parts.append(f"the twin sealed {len(sealed)} blocks (its log: heights "
                     f"{', '.join(map(str, sorted(sealed)[:12]))}); of the last {len(canonical)}:")
        if lost:
            parts.append(f"at {len(lost)} ({', '.join(map(str, lost[:8]))}) node0 holds a different "
                         "block sealed by the same key (recovered from its seal): two blocks of one "
                         "height signed by one key, the twin's lost;")
        if same:
            parts.append(f"at {len(same)} the twin's block is the one node0 holds (geth seals "
                         "deterministically: one parent, time and set of transactions give one "
                         "block, so the twin and the original sealed the same);")
        if other:
            parts.append(f"at {len(other)} node0 holds another signer's block;")
    if parts:
        parts.append("Clique has no equivocation evidence or slashing: nothing marks the signer")
        why = " ".join(parts)
    elif by_twin:
        why = (f"the twin followed the chain (heights {by_twin[0]}..{by_twin[-1]}) but sealed no "
               "block its log shows, and no two blocks of one height by the shared key were seen")
    else:
        why = "the twin never showed a block (it did not sync or answer)"
    attempts.append(target.attempt("clique.double_seal", "network",
                                   True if doubles or sealed else None, title, why, request,
                                   said or "; ".join(f"{h}: twin sealed {sealed[h]}, node0 holds "
                                                     f"{canonical[h][0]} by {canonical[h][1]}"
                                                     for h in sorted(canonical)[-5:])
                                   or "no competing blocks seen", severity="info"))
    grown = {n.name: end[n.name] - start[n.name] for n in nodes if n.name in start and n.name in end}
    heights = ", ".join(f"{name} {start[name]}->{end[name]}" for name in grown)
    slow = [name for name, n in grown.items() if n < settings["min_blocks"]]
    attempts.append(target.attempt(
        "clique.liveness", "network", None if slow or len(grown) < len(nodes) else True,
        "the signers keep making blocks while a key seals twice (recorded)",
        (f"{', '.join(slow) or 'a node'} made fewer than {settings['min_blocks']} blocks"
         if slow or len(grown) < len(nodes) else "every node kept making blocks") + f" ({heights})",
        "eth_blockNumber (every node, before and after)", heights, severity="info"))
    attempts.append(await _clique_convergence(target, nodes, start, settings))
    return attempts


async def _clique_convergence(target: ProbeTarget, nodes: list[Node], start: dict[str, int],
                              settings: dict[str, Any]) -> Attempt:
    """After the twin left: do the nodes hold one chain again (below a few tip blocks)?"""
    await asyncio.sleep(max(0.0, min(settings["aftermath"], target.time_left() - RESERVE / 2)))
    ends = await _evm_heights(target, nodes)
    title = "once the twin left, every node holds the same blocks (recorded)"
    if not start or len(ends) < len(nodes):
        return target.attempt("clique.convergence", "network", None, title,
                              "a node did not answer its height", "eth_blockNumber", "",
                              severity="info")
    low, high = min(start.values()) + 1, min(ends.values()) - 3
    high = min(high, low + 200)
    request = f"eth_getBlockByNumber({low}..{high}) on every node"
    differ: list[str] = []
    for number in range(low, high + 1):
        hashes = {}
        for node in nodes:
            block = await _evm_block(target, node, hex(number))
            if block is not None:
                hashes[node.name] = block[1]
        if len(set(hashes.values())) > 1:
            differ.append(f"{number}: " + ", ".join(f"{n} {h[:18]}…" for n, h in hashes.items()))
    answer = "\n".join(differ[:10]) or f"{max(0, high - low + 1)} heights, one hash each"
    if high < low:
        return target.attempt("clique.convergence", "network", None, title,
                              f"no height below the tips to compare ({low}..{high})", request,
                              answer, severity="info")
    why = (f"{len(differ)} of {high - low + 1} heights still differ: {differ[0]}" if differ else
           f"all {high - low + 1} heights {low}..{high} agree on every node")
    return target.attempt("clique.convergence", "network", None if differ else True, title, why,
                          request, answer, severity="info")


_SEALED = re.compile(rb"Successfully sealed new block\s+number=([0-9,]+)\s.*?\shash=([0-9a-f]+\.\.[0-9a-f]+)")


def _sealed_by(log: Path, limit: int = 4 << 20) -> dict[int, str]:
    """Height -> abbreviated hash ("098eaf..d74dad") of each block a geth twin's log says it
    sealed (the log is the twin's own output: read bounded, from its end)."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, log.stat().st_size - limit))
            data = handle.read(limit)
    except OSError:
        return {}
    found = {}
    for match in _SEALED.finditer(data):
        try:
            found[int(match.group(1).replace(b",", b""))] = match.group(2).decode()
        except ValueError:
            continue
    return found


def _abbreviates(short: str, full: str) -> bool:
    head, _, tail = short.partition("..")
    full = full.lower().removeprefix("0x")
    return bool(head and tail) and full.startswith(head) and full.endswith(tail)


async def _evm_heights(target: ProbeTarget, nodes: list[Node]) -> dict[str, int]:
    async def one(node: Node) -> int | None:
        _body, reply = await target.rpc(node, "eth_blockNumber")
        ok, result = reply.rpc_result()
        try:
            return int(result, 16) if ok and isinstance(result, str) else None
        except ValueError:
            return None
    found = await asyncio.gather(*(one(n) for n in nodes))
    return {n.name: h for n, h in zip(nodes, found, strict=True) if h is not None}


async def _evm_block(target: ProbeTarget, node: Node, tag: str) -> tuple[int, str, str] | None:
    """(number, hash, signer) of a block, the signer recovered from the Clique seal."""
    _body, reply = await target.rpc(node, "eth_getBlockByNumber", [tag, False])
    ok, block = reply.rpc_result()
    if not ok or not isinstance(block, dict):
        return None
    try:
        number = int(block["number"], 16)
        block_hash = str(block["hash"])
    except (KeyError, TypeError, ValueError):
        return None
    return number, clip(block_hash, 80), clique_signer(block) or "unknown"


def clique_signer(block: dict[str, Any]) -> str | None:
    """The address that sealed a Clique block: the last 65 bytes of extraData sign the
    keccak of the RLP header with extraData cut before them (go-ethereum clique.SealHash)."""
    try:
        import coincurve
        import rlp
        from eth_hash.auto import keccak

        from harness.audit.evm import FORK_FIELDS, HEADER_FIELDS, INTEGER_FIELDS, _bytes, _int

        extra = _bytes(block["extraData"])
        if len(extra) < 65:
            return None
        names = HEADER_FIELDS + tuple(f for f in FORK_FIELDS if block.get(f) is not None)
        fields = [extra[:-65] if n == "extraData" else _int(block[n]) if n in INTEGER_FIELDS
                  else _bytes(block[n]) for n in names]
        seal = extra[-65:]
        public = coincurve.PublicKey.from_signature_and_message(seal, keccak(rlp.encode(fields)),
                                                                hasher=None)
        return "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()
    except Exception:   # hostile or unexpected header: the signer is unknown
        return None
