"""The ground floor: the things every layer talks about, and nothing that talks to anything.

Nodes, blocks, transaction and query records (each with its scheduled time and the node it
was sent to), fault records, final chains, the commit threshold and the run header. The
judge (history, metrics, results, checks, standards, audit verification, signing, report)
imports from here and from itself only, never from the runtime, the adapters' network
code, the load or the phases: re-judging a stored run needs no engine and no chain.
This module imports only the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

# -- the schedule ------------------------------------------------------------------------


def scheduled_offset(i: int, rate: float) -> float:
    """When item i of an open-loop schedule is due, in seconds after the schedule's start.
    The one place `i / rate` is written: senders, the live view and the History agree."""
    return i / rate


def node_for(i: int, nodes: int) -> int:
    """Which of `nodes` load targets item i goes to (round robin)."""
    return i % nodes


# The sender's record for a send it never made because max_in_flight requests were out.
DROPPED = "dropped: harness max_in_flight reached"


# -- nodes and blocks ----------------------------------------------------------------------


@dataclass
class Node:
    """A running node as the harness sees it: its name, its ports on 127.0.0.1 and its
    address on the run network (both fixed for the run, so a restarted node keeps them)."""

    name: str
    index: int
    container_id: str
    host_ports: dict[str, int] = field(default_factory=dict)
    ip: str = ""
    # Where its ports are published: this host's loopback, except for a node the Swarm runtime
    # placed on another of the test center's hosts (that host's swarm address).
    host: str = "127.0.0.1"

    def url(self, port: str = "rpc", scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.host_ports[port]}"


@dataclass(frozen=True)
class Block:
    """A block as one node reported it, with the moment the harness first saw it."""

    node: int
    number: int
    hash: str
    parent: str
    seen: float          # harness clock (time.monotonic) when the block was first noticed
    fetched: float       # when its transaction list arrived (detection delay = fetched - seen)
    tx_ids: tuple[str, ...]
    timestamp: float | None = None  # the block's own timestamp (chain clock, unix seconds)


OnBlock = Callable[[Block], None]


def threshold_nodes(share: float, nodes: int) -> int:
    """How many nodes must hold a transaction for it to count as committed."""
    return max(1, min(nodes, math.ceil(share * nodes - 1e-9)))


# -- what the load sends and what it did ------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """One pre-built request (a signed transaction, a query): the body to POST and the id the
    chain will report (or the thing a query asks for)."""

    body: bytes
    tx_id: str


@dataclass
class SendRecord:
    """One due send (a transaction or a query) as the sender did it. Times are monotonic;
    `scheduled` is the offset from the schedule's start (scheduled_offset)."""

    i: int                    # global index in the schedule
    scheduled: float
    node: int                 # the node index it was sent to
    submitted: float | None
    acked: float | None       # when the reply arrived (None: no reply)
    error: str | None         # None: accepted / answered


# -- the History's records (times on the run clock: seconds after t0) ------------------------


@dataclass
class TxRecord:
    i: int
    id: str
    phase: str
    node: int
    scheduled: float
    submitted: float | None
    acked: float | None
    error: str | None
    commits: list[tuple[int, float, int]]   # (node, seen, block number), of the blocks that stayed
    # Sightings taken back because the node replaced their block (harness/tracker.py): no
    # credit for latency or throughput, but durability judges what was once committed.
    withdrawn: list[tuple[int, float, int]] = field(default_factory=list)


@dataclass
class QueryRecord:
    """One read of the query phase: asked of `node` for `id` (a tx hash, an account)."""

    i: int
    id: str
    node: int
    scheduled: float
    submitted: float | None
    answered: float | None           # when the reply arrived (None: no reply at all)
    error: str | None                # None: answered with the thing asked for


@dataclass
class BlockRecord:
    node: int
    number: int
    hash: str
    parent: str
    seen: float
    fetched: float
    timestamp: float | None
    txs: int


@dataclass
class FaultRecord:
    """One fault as it was applied: which nodes, when it started and when it healed."""

    id: str
    action: str                      # kill | stop | restart | pause | partition | loss | ...
    nodes: list[int]                 # the nodes the fault acted on
    start: float | None              # run clock; None if it was never applied
    end: float | None                # when it was healed; None if it never healed
    status: str                      # healed | skipped | failed
    method: str                      # how it was done, e.g. "iptables DROP in the netns"
    groups: list[list[int]] | None = None   # partitions: who could still talk to whom
    params: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None        # why it was skipped or failed


@dataclass
class FinalChain:
    """A node's canonical chain read after the run (Jepsen's final read)."""

    node: int
    at: float                        # run clock of the read
    chain: list[tuple[int, str]]     # (number, hash) from the first height the run saw to the tip
    holds: list[int]                 # indexes of the run's transactions in that chain
    error: str | None = None         # the node could not be read (then chain/holds are partial)


# -- security probes ---------------------------------------------------------------------------

SEVERITIES = ("critical", "high", "medium", "low", "info")


@dataclass
class Attempt:
    """One thing a security probe tried against a node, and what the node did.

    `request` and `answer` are the exact bytes sent and got back, as printable text clipped
    to a few KiB (harness/security/probe.py: clip), so a tester can quote them and a vendor
    can replay them. The verdict is the probe's: pass when the node did the safe thing."""

    probe: str               # the probe's id, e.g. "exposure"
    case: str                # stable within the probe, e.g. "http.admin_nodeInfo"
    node: str                # node name, or "network" for a case about every node
    verdict: str             # pass | fail | unknown
    severity: str            # one of SEVERITIES: what a fail would mean
    title: str               # the expectation, a sentence: "admin_* is refused over HTTP"
    why: str = ""            # the evidence, a sentence: "the node answered its enode: ..."
    request: str = ""
    answer: str = ""


@dataclass
class ProbeOutcome:
    """One probe's run: every attempt, or why it did not apply or could not be judged."""

    probe: str
    title: str
    status: str              # ran | not-applicable | error
    reason: str | None = None            # not-applicable / error: why
    started: float | None = None         # run clock
    ended: float | None = None
    attempts: list[Attempt] = field(default_factory=list)


# -- the run header ---------------------------------------------------------------------------


@dataclass
class RunHeader:
    """What a run was: the History's first line (history.jsonl) and the head of results.json.

    Built typed by the run; stored and read back as the dict `to_dict()` gives, so stored
    runs of earlier versions (whose headers lack newer keys) are still read as dicts.
    """

    run_id: str
    harness: dict[str, Any]
    suite: dict[str, Any]
    chain: dict[str, Any]
    host: dict[str, Any]
    started_at: str
    t0_wall: float
    nodes: list[dict[str, Any]]
    time_to_ready_seconds: float | None
    load: dict[str, Any]
    checks: list[dict[str, Any]]
    faults: list[dict[str, Any]]
    fault_model: dict[str, Any]
    checkers: dict[str, Any]
    standards: list[dict[str, Any]]
    bootstrap: dict[str, Any] = field(default_factory=dict)
    ledger: dict[str, Any] | None = None
    phases: dict[str, list[float]] = field(default_factory=dict)
    query: dict[str, Any] | None = None
    topology: dict[str, Any] | None = None   # zones, tiers, links (harness/topology.py) and how applied

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["query"] is None:
            del out["query"]     # written only by runs that had a query phase
        if out["topology"] is None:
            del out["topology"]  # written only by runs with a topology
        return out
