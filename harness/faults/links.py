"""The topology's links: each node's egress shaped towards its peers for the whole run, and
the result measured.

Every node shapes what it sends to a node of another zone by the link profile between the
two zones (Topology.profile(i, j)), matched by the peer's address on the run network, so a
round trip between zones A and B sees delay(A→B) + delay(B→A).

Two ways, chosen as the delay fault chooses (harness/faults/kinds/delay.py):
- netem (the kernel has sch_netem): an htb root qdisc on eth0 with one class per distinct
  profile (its rate, or unlimited), a netem leaf for delay ± jitter and loss, and u32
  filters sending each peer's address to its profile's class. Traffic to anyone else
  (same zone, the harness) matches no filter and leaves by htb's direct queue, unshaped.
- NFQUEUE (no sch_netem, as on this project's CI kernel): the chain `bct-links` in the
  *mangle* table's OUTPUT sends each peer's packets to its profile's queue (1000 + k: the
  delay fault's queues are its step numbers), where the harness's userspace delayer
  (harness.faults.nfqueue) holds them; an iptables statistic DROP before it for loss; an
  htb root with rate classes and u32 filters only when a profile has a rate.
  Why mangle: the faults' own chains live in the filter table, which packets reach after
  mangle, so a delay fault's queue adds to the link's delay and a partition's DROP still
  drops; a verdict in one table never skips the other's rules.

What composes (suite.py refuses the rest at load, naming the fault): loss and partition
faults (their own filter chains), a delay fault with `via: nfqueue` (its own queue, after
the link's), pause, stop, kill, restart, wipe (a node whose container was recreated gets
a new namespace: the shaper notices and shapes it again). A `bandwidth` fault or a netem
`delay` fault replaces the root qdisc, which the links may own: refused on shaped nodes.

The rules and qdiscs die with the containers; the delayer processes are stopped at the
run's teardown (release()) and watch the harness pid besides (harness.faults.nfqueue).
Measured: from inside each shaped zone pair's source node, TCP connects to the other
zone's node's p2p port (`python -m harness.faults.links --probe IP PORT N`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import InfraError, InputError
from harness.faults import netns
from harness.topology import LinkProfile, Topology

if TYPE_CHECKING:
    from harness.faults.schedule import FaultStep
    from harness.phases.context import RunContext

CHAIN = "bct-links"
TABLE = "mangle"                 # before the filter table the faults' chains live in
QUEUE_BASE = 1000                # link queues: 1000 + profile index (the delay fault uses 0..steps)
CLASS_BASE = 10                  # htb class 1:(10 + profile index), netem leaf handle (10 + k):
UNLIMITED = ("rate", "10gbit", "burst", "1m", "cburst", "1m")   # a class that only classifies
DEVICE = "eth0"
SAMPLES = 5                      # TCP connects per measured zone pair
PROBE_TIMEOUT = 5.0              # one connect's limit (seconds): a lost SYN retries after 1 s
WATCH_INTERVAL = 2.0             # how often the shaper looks for recreated namespaces
NETEM = "netem"
NFQUEUE = "nfqueue"
METHODS = {
    NETEM: "tc on each node's eth0 egress: htb root, one class per link profile (its rate) with a "
           "netem leaf (delay ± jitter, loss), u32 filters on the peers' addresses",
    NFQUEUE: "this kernel has no netem: iptables (mangle OUTPUT chain bct-links) sends each node's "
             "packets to its peers of other zones to the NFQUEUE delayer (harness.faults.nfqueue, "
             "delay ± jitter, order kept), iptables statistic DROP for loss, htb rate classes with "
             "u32 filters on the peers' addresses for rate",
}


# -- the plan (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeLinks:
    """One node's egress shaping: its distinct profiles (index k: queue 1000 + k, htb class
    1:(10 + k)) and each shaped peer's address with its profile's index."""

    node: int
    profiles: tuple[LinkProfile, ...]
    peers: tuple[tuple[str, int], ...]

    def queue(self, k: int) -> int:
        return QUEUE_BASE + k

    def classid(self, k: int) -> str:
        return f"1:{CLASS_BASE + k}"


def plan(topology: Topology, ips: list[str]) -> list[NodeLinks]:
    """Every node that shapes something (nodes by index; `ips[i]` is node i's address)."""
    out = []
    for i in range(topology.count):
        profiles: list[LinkProfile] = []
        peers = []
        for j in range(topology.count):
            profile = topology.profile(i, j) if i != j else None
            if profile is None:
                continue
            if profile not in profiles:
                profiles.append(profile)
            peers.append((ips[j], profiles.index(profile)))
        if peers:
            out.append(NodeLinks(node=i, profiles=tuple(profiles), peers=tuple(peers)))
    return out


def shaped_nodes(topology: Topology) -> set[int]:
    """Nodes whose egress the links shape towards at least one peer."""
    return {i for i in range(topology.count) for j in range(topology.count)
            if i != j and topology.profile(i, j) is not None}


def _ms(value: float) -> str:
    return f"{value:g}ms"


def netem_argv(profile: LinkProfile) -> list[str]:
    """The netem leaf's arguments for one profile (empty when it only limits the rate)."""
    args: list[str] = []
    if profile.delay_ms or profile.jitter_ms:
        args += ["delay", _ms(profile.delay_ms)] + ([_ms(profile.jitter_ms)] if profile.jitter_ms else [])
    if profile.loss:
        args += ["loss", f"{profile.loss * 100:g}%"]
    return args


def htb_commands(links: NodeLinks, leaves: bool, device: str = DEVICE) -> list[list[str]]:
    """The htb root, its classes and the u32 filters. `leaves`: a netem leaf per class (the
    netem path); else only the classes of profiles with a rate (the NFQUEUE path)."""
    wanted = [k for k, p in enumerate(links.profiles) if leaves or p.rate]
    if not wanted:
        return []
    # No `default`: traffic no filter matches (same zone, the harness) leaves unshaped.
    argv = [["tc", "qdisc", "replace", "dev", device, "root", "handle", "1:", "htb"]]
    for k in wanted:
        profile = links.profiles[k]
        rate = ("rate", profile.rate) if profile.rate else UNLIMITED
        argv.append(["tc", "class", "add", "dev", device, "parent", "1:", "classid", links.classid(k),
                     "htb", *rate, "quantum", "1514"])
        leaf = netem_argv(profile) if leaves else []
        if leaf:
            argv.append(["tc", "qdisc", "add", "dev", device, "parent", links.classid(k),
                         "handle", f"{CLASS_BASE + k}:", "netem", *leaf])
    for ip, k in links.peers:
        if k in wanted:
            argv.append(["tc", "filter", "add", "dev", device, "parent", "1:", "protocol", "ip",
                         "prio", "1", "u32", "match", "ip", "dst", f"{ip}/32", "flowid", links.classid(k)])
    return argv


def iptables_commands(links: NodeLinks) -> list[list[str]]:
    """The NFQUEUE path's rules: per peer a random DROP for loss, then its profile's queue."""
    base = ["iptables", "-w", "-t", TABLE]
    argv = [[*base, "-N", CHAIN]]
    for ip, k in links.peers:
        profile = links.profiles[k]
        if profile.loss:
            argv.append([*base, "-A", CHAIN, "-d", ip, "-m", "statistic", "--mode", "random",
                         "--probability", f"{profile.loss:.6f}", "-j", "DROP"])
        if profile.delay_ms or profile.jitter_ms:
            argv.append([*base, "-A", CHAIN, "-d", ip, "-j", "NFQUEUE", "--queue-num",
                         str(links.queue(k)), "--queue-bypass"])
    argv.append([*base, "-I", "OUTPUT", "-j", CHAIN])
    return argv


def commands(links: NodeLinks, method: str) -> list[list[str]]:
    """Every command that shapes one node (the delayers aside) by `method`."""
    if method == NETEM:
        return htb_commands(links, leaves=True)
    return iptables_commands(links) + htb_commands(links, leaves=False)


def delayed(links: NodeLinks) -> list[int]:
    """The profile indexes the NFQUEUE path needs a delayer for."""
    return [k for k, p in enumerate(links.profiles) if p.delay_ms or p.jitter_ms]


def check_faults(topology: Topology | None, faults: list[dict[str, Any]], steps: list[FaultStep],
                 file: str) -> None:
    """InputError for a fault that would silently drop the links of a node they shape: a
    `bandwidth` fault (tbf replaces the root qdisc), or a `delay` fault that may use netem
    (also the root qdisc); `delay` with `via: nfqueue` composes (its own queue)."""
    if topology is None or not topology.links:
        return
    shaped = shaped_nodes(topology)
    for n, fault in enumerate(faults):
        action = fault["action"]
        if action not in ("delay", "bandwidth") or (action == "delay" and fault.get("via") == "nfqueue"):
            continue
        fault_id = fault.get("id", f"{action}-{n}")
        hit = sorted({i for step in steps if step.id == fault_id or step.id.startswith(f"{fault_id}#")
                      for i in step.nodes} & shaped)
        if hit:
            names = ", ".join(f"node{i}" for i in hit)
            fix = ("; give it `via: nfqueue`, which composes with the links"
                   if action == "delay" else "; shape the rate with the link's `rate` instead")
            raise InputError(file, f"faults[{n}].action", f"no delay/bandwidth fault on a node whose links "
                             f"the topology shapes ({names}): it replaces the root qdisc the links "
                             f"own{fix}")


# -- applying it -------------------------------------------------------------------------------


@dataclass
class Shaper:
    """The links as applied: the method, per node the namespace shaped and its delayers."""

    method: str
    plans: dict[int, NodeLinks]
    namespaces: dict[int, netns.Target] = field(default_factory=dict)
    delayers: dict[int, list[netns.Delayer]] = field(default_factory=dict)
    reshaped: dict[int, int] = field(default_factory=dict)   # node -> times shaped again
    watcher: asyncio.Task[None] | None = None
    warnings: list[str] = field(default_factory=list)
    # The watcher's thread may still be shaping when teardown stops everything.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    closed: bool = False

    def shape(self, links: NodeLinks, target: netns.Target) -> None:
        """Shape one node's namespace (its delayers first: queued packets never wait for none)."""
        self.namespaces[links.node] = target
        started = self.delayers.setdefault(links.node, [])
        if self.method == NFQUEUE:
            for k in delayed(links):
                profile = links.profiles[k]
                started.append(netns.start_delayer(
                    target, links.queue(k), profile.delay_ms, profile.jitter_ms,
                    zlib.crc32(f"links/{links.node}/{k}".encode())))
        for argv in commands(links, self.method):
            netns.run(target, *argv)

    def stop_delayers(self, node: int) -> None:
        for delayer in self.delayers.pop(node, []):
            delayer.stop()

    def stop(self) -> None:
        """Stop every delayer (packets queued to a queue nobody holds pass: --queue-bypass)."""
        with self.lock:
            self.closed = True
            for node in list(self.delayers):
                self.stop_delayers(node)

    def reshape(self, links: NodeLinks, target: netns.Target) -> bool:
        """Shape a recreated node's new namespace (its old delayers stopped); False once closed."""
        with self.lock:
            if self.closed:
                return False
            self.stop_delayers(links.node)
            clear(target)   # what an earlier attempt in this namespace left
            self.shape(links, target)
            return True

    async def watch(self, runtime: Any, nodes: list[Any]) -> None:
        """A node whose container was recreated (kill, restart, wipe) has a new namespace,
        unshaped: shape it again. Only local pids can be compared; a remote Namespace
        (Swarm) keeps its own."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            for index, links in self.plans.items():
                try:
                    now = await asyncio.to_thread(runtime.namespace, nodes[index])
                except Exception:   # the container is being replaced: look again next time
                    continue
                before = self.namespaces.get(index)
                if not isinstance(now, int) or not isinstance(before, int) or now == before:
                    continue
                try:
                    if await asyncio.to_thread(self.reshape, links, now):
                        self.reshaped[index] = self.reshaped.get(index, 0) + 1
                except Exception as exc:   # gone again meanwhile: the next look retries
                    self.namespaces[index] = before
                    self.warnings.append(f"links: shaping node{index} again failed: {exc}"[:300])


def clear(target: netns.Target) -> None:
    """Remove the links' chain and root qdisc from a namespace (nothing there: no error)."""
    base = ["iptables", "-w", "-t", TABLE]
    for _ in range(8):   # each -D removes one hook; bounded: a remote agent may answer oddly
        if netns.run(target, *base, "-D", "OUTPUT", "-j", CHAIN, check=False).returncode != 0:
            break
    netns.run(target, *base, "-F", CHAIN, check=False)
    netns.run(target, *base, "-X", CHAIN, check=False)
    netns.clear_root_qdisc(target)


def choose_method(target: netns.Target) -> tuple[str, str | None]:
    """netem where the kernel has it, else the NFQUEUE delayer, with tc's answer to netem
    (None when it worked); InfraError when neither can be used."""
    no_netem = netns.netem_missing(target)
    if no_netem is None:
        return NETEM, None
    no_queue = netns.nfqueue_missing(target)
    if no_queue is None:
        return NFQUEUE, no_netem
    raise InfraError(f"the topology's links cannot be applied: this kernel has no netem qdisc "
                     f"(tc said: {no_netem}) and iptables cannot queue packets to userspace "
                     f"(NFQUEUE: {no_queue})")


def probe_port(ports: dict[str, int]) -> int | None:
    """Where a peer listens for other nodes: the pack's p2p port, else any published one."""
    if "p2p" in ports:
        return int(ports["p2p"])
    return int(next(iter(ports.values()))) if ports else None


def probe_argv(target: netns.Target, ip: str, port: int, samples: int) -> list[str]:
    python = sys.executable if target is None or isinstance(target, int) else "python3"
    return [python, "-m", "harness.faults.links", "--probe", ip, str(port), str(samples)]


def summarize(samples: list[float | None]) -> dict[str, Any] | None:
    done = [s for s in samples if s is not None]
    if not done:
        return None
    return {"p50": round(statistics.median(done), 1), "max": round(max(done), 1), "samples": len(done),
            "failed": len(samples) - len(done)}


def zone_pairs(topology: Topology) -> list[tuple[str, str, int, int]]:
    """(from zone, to zone, its first node, the other's first node) for every zone pair a
    link shapes in either direction, in suite order."""
    out = []
    zones = [z for z in topology.zones if z.nodes]
    for a, first in enumerate(zones):
        for second in zones[a + 1:]:
            i, j = first.nodes[0], second.nodes[0]
            if topology.profile(i, j) is not None or topology.profile(j, i) is not None:
                out.append((first.name, second.name, i, j))
    return out


def measure(topology: Topology, runtime: Any, nodes: list[Any], port: int | None,
            samples: int = SAMPLES) -> list[dict[str, Any]]:
    """Each shaped zone pair's TCP connect round trip, from inside the first zone's node."""
    pairs = []
    for source, dest, i, j in zone_pairs(topology):
        there, back = topology.profile(i, j), topology.profile(j, i)
        entry: dict[str, Any] = {
            "from": source, "to": dest, "nodes": [nodes[i].name, nodes[j].name],
            "profile": (there or LinkProfile()).as_dict(),
            "expected_rtt_ms": round((there.delay_ms if there else 0) + (back.delay_ms if back else 0), 3),
            "rtt_ms": None}
        if back != there:
            entry["reverse_profile"] = (back or LinkProfile()).as_dict()
        target = runtime.namespace(nodes[i])
        if port is None:
            entry["why"] = "the chain pack publishes no port to connect to"
        elif target is None:
            entry["why"] = f"{nodes[i].name} is not running"
        else:
            done = netns.run(target, *probe_argv(target, nodes[j].ip, port, samples), check=False)
            try:
                entry["rtt_ms"] = summarize(json.loads(done.stdout))
            except (ValueError, TypeError):
                entry["why"] = f"the probe failed: {(done.stderr or done.stdout).strip()[-300:]}"
            else:
                if entry["rtt_ms"] is None:
                    entry["why"] = f"no connection to {nodes[j].ip}:{port} within {PROBE_TIMEOUT:g} s"
        pairs.append(entry)
    return pairs


def describe_pair(pair: dict[str, Any]) -> str:
    """One console line: 'region-1 → province-a: 20 ms ± 2 set, RTT 41.3 ms measured'."""
    profile = LinkProfile(**pair["profile"])
    rtt = pair["rtt_ms"]
    got = (f"RTT {rtt['p50']:g} ms measured (max {rtt['max']:g})" if rtt
           else f"RTT not measured: {pair['why']}")
    return f"{pair['from']} → {pair['to']}: {profile.describe()} set, {got}"


async def apply(ctx: RunContext) -> dict[str, Any] | None:
    """Shape every node's links (after every node is ready), measure each shaped zone pair,
    and return the History's `topology.links_applied`. The shaper stays on ctx.link_shaper
    until release() at teardown. None: no topology or no links."""
    topology: Topology | None = ctx.suite.topology
    if topology is None or not topology.links:
        return None
    plans = {p.node: p for p in plan(topology, [node.ip for node in ctx.nodes])}
    if not plans:
        return {"method": "none: no two nodes of linked zones", "pairs": []}
    runtime, nodes = ctx.runtime, ctx.nodes
    first = await asyncio.to_thread(runtime.namespace, nodes[next(iter(plans))])
    if first is None or isinstance(first, int):
        netns.preflight()   # root and the host's tc, iptables, nsenter
    method, no_netem = await asyncio.to_thread(choose_method, first)
    shaper = Shaper(method=method, plans=plans)
    ctx.link_shaper = shaper   # before any delayer starts: teardown stops what did start
    for index, links in plans.items():
        target = await asyncio.to_thread(runtime.namespace, nodes[index])
        if target is None:
            raise InfraError(f"{nodes[index].name} stopped before its links could be shaped; "
                             f"its log: {runtime.log_path(nodes[index])}")
        await asyncio.to_thread(shaper.shape, links, target)
    port = probe_port(ctx.suite.chain.ports)
    pairs = await asyncio.to_thread(measure, topology, runtime, nodes, port)
    ctx.say(f"links shaped by {method} on {len(plans)} nodes")
    for pair in pairs:
        ctx.say(f"  {describe_pair(pair)}")
    shaper.watcher = asyncio.create_task(shaper.watch(runtime, nodes))
    return {"method": METHODS[method], "via": method, "netem_missing": no_netem, "port": port, "pairs": pairs,
            "nodes": {nodes[i].name: {"peers": len(p.peers), "profiles": len(p.profiles),
                                      "queues": [p.queue(k) for k in delayed(p)] if method == NFQUEUE else []}
                      for i, p in plans.items()}}


async def release(ctx: RunContext) -> None:
    """Teardown: stop the shaper's watcher and delayers; record how often a node was shaped
    again. The rules and qdiscs go with the containers."""
    shaper: Shaper | None = getattr(ctx, "link_shaper", None)
    if shaper is None:
        return
    ctx.link_shaper = None
    if shaper.watcher is not None:   # first: it must not shape a node again meanwhile
        shaper.watcher.cancel()
        try:
            await shaper.watcher
        except (asyncio.CancelledError, Exception):
            pass
    await asyncio.to_thread(shaper.stop)
    ctx.warnings.extend(shaper.warnings)
    if ctx.links is not None and shaper.reshaped:
        ctx.links["reshaped"] = {ctx.nodes[i].name: n for i, n in shaper.reshaped.items()}


# -- the probe, run inside a node's namespace ----------------------------------------------------


def probe(ip: str, port: int, samples: int, timeout: float = PROBE_TIMEOUT) -> list[float | None]:
    """`samples` TCP connects to ip:port, each one round trip (SYN out, SYN-ACK or RST back),
    in ms; None for a connect that got no answer in time."""
    out: list[float | None] = []
    for _ in range(samples):
        started = time.monotonic()
        try:
            with socket.create_connection((ip, port), timeout):
                pass
        except ConnectionRefusedError:
            pass   # the RST came back: a round trip all the same
        except OSError:
            out.append(None)
            continue
        out.append(round((time.monotonic() - started) * 1000, 2))
        time.sleep(0.05)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.faults.links",
                                     description="TCP connect round trips, from inside a node's namespace")
    parser.add_argument("--probe", nargs=3, metavar=("IP", "PORT", "N"), required=True)
    args = parser.parse_args(argv)
    ip, port, samples = args.probe
    print(json.dumps(probe(ip, int(port), int(samples))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
