"""Suite files: what one `bctest run` does (see docs/suite-format.md)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import chainpack, paths
from harness.chainpack import ChainPack
from harness.checks import correctness
from harness.errors import InputError
from harness.faults import links, schedule
from harness.faults.schedule import FaultStep
from harness.load import shape as shapes
from harness.load.shape import Schedule
from harness.runtime import swarmspec
from harness.runtime.swarmspec import SwarmOptions
from harness.standards import catalogue
from harness.standards.catalogue import Catalogue
from harness.topology import Topology
from harness.validation import load_and_validate

FINALITY = ("bft", "cft", "single")   # consensus kinds that claim finality (checks/safety.py)


@dataclass(frozen=True)
class LocustSpec:
    """`load.locust`: the Locust engine's processes (harness/load/locust_engine.py)."""

    workers: int = 1                # local worker processes (one share of the schedule each)
    remote_workers: int = 0         # workers started elsewhere (docs/locust.md); a share each
    master_bind: str = "127.0.0.1"  # where the master listens for its workers
    master_port: int = 0            # 0: a free port
    ready_timeout: float = 60.0     # seconds for every worker to connect and read its share


@dataclass(frozen=True)
class LoadSpec:
    rate: float                     # the fixed rate; for another shape its mean over the measure window
    duration: float                 # the measure window: the shape's length
    warmup: float = 5.0
    settle: float = 30.0
    workers: int = 1
    max_in_flight: int = 4096
    connections: int = 256          # per node per worker: bounds the sockets an overload opens
    submit_timeout: float = 10.0
    # When each tx is due and the named windows (harness/load/shape.py); None: fixed at rate
    schedule: Schedule | None = field(default=None, compare=False, repr=False)
    engine: str = "builtin"         # builtin: harness/load/sender.py; locust: locust_engine.py
    locust: LocustSpec = field(default_factory=LocustSpec)

    @property
    def total_seconds(self) -> float:
        return self.warmup + self.duration

    def plan(self) -> Schedule:
        """The schedule (built from rate and duration when the spec was made by hand)."""
        if self.schedule is not None:
            return self.schedule
        return shapes.schedule(shapes.from_rate(self.rate, self.duration), self.warmup)


@dataclass(frozen=True)
class QuerySpec:
    """The read workload (JR/T 0193-2020 §7.2): queries sent open loop after the settle."""

    rate: float
    duration: float
    kind: str = "tx"                # tx: the run's committed transactions; balance: its accounts
    warmup: float = 0.0             # seconds of queries sent first and left out of the figures
    nodes: tuple[int, ...] | None = None   # nodes queried; None: the load's nodes
    workers: int = 1
    max_in_flight: int = 4096
    connections: int = 256
    submit_timeout: float = 10.0

    @property
    def count(self) -> int:
        return max(1, int(round(self.rate * (self.warmup + self.duration))))


@dataclass(frozen=True)
class SecuritySpec:
    """The security probes (harness/security/probes/) run after the settle."""

    probes: tuple[str, ...]
    budget: float = 120.0           # seconds each probe may take
    liveness: float = 30.0          # seconds within which each node must make a block after a probe
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)   # per probe, over DEFAULTS


@dataclass(frozen=True)
class Check:
    id: str
    metric: str
    op: str
    value: float
    phase: str = "measure"


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    sha256: str
    chain: ChainPack
    nodes: int
    seed: int
    load: LoadSpec
    accounts: int
    workload: str | None  # None: the adapter's default workload
    params: dict[str, Any]
    commit_share: float
    poll_interval: float
    subscribe: bool
    ready_timeout: float
    checks: list[Check] = field(default_factory=list)
    description: str = ""
    load_nodes: tuple[int, ...] | None = None       # nodes the load goes to; None: all
    faults: list[FaultStep] = field(default_factory=list)
    checkers: dict[str, dict[str, Any]] = field(default_factory=dict)
    standards: list[Catalogue] = field(default_factory=list)
    case: str = ""                 # the catalogue case this suite's runs are evidence for
    audit: bool = False            # run the authenticity audit after the load
    query: QuerySpec | None = None # the read workload after the settle; None: no query phase
    security: SecuritySpec | None = None   # security probes after the settle; None: none
    # A registered workload (harness/workloads/): its settings merged over its DEFAULTS;
    # False/{} for the adapter's own workload, which needs no read-back.
    workload_registered: bool = False
    workload_settings: dict[str, Any] = field(default_factory=dict)
    runtime: str = "docker"        # docker | swarm (harness/runtime/swarm.py, docs/swarm.md)
    swarm: SwarmOptions = field(default_factory=SwarmOptions)
    topology: Topology | None = None   # zones, tiers and links (harness/topology.py); None: all alike

    @property
    def commit_nodes(self) -> tuple[int, ...]:
        """The nodes whose holding a transaction commits it: the root tier of a topology
        (the consensus participants; the others are judged by the structure checks), else all."""
        if self.topology is None:
            return tuple(range(self.nodes))
        return self.topology.tier_nodes("root")


    def checker_config(self) -> dict[str, dict[str, Any]]:
        """The correctness checkers to run: as the suite says, or all of them (with their
        defaults) when it injects faults and names none: a fault run must be judged; and
        safety always, on a chain that claims finality."""
        if self.checkers or not self.faults:
            config = dict(self.checkers)
        else:   # only BFT and CFT fault models say how many faulty nodes must be tolerated
            config = {name: {} for name in correctness.ORDER
                      if (name != "fault_tolerance" or self.chain.consensus in ("bft", "cft"))
                      and name != "readback"   # readback: only with a registered workload
                      and name not in correctness.topology_checkers()}
        if self.chain.consensus in FINALITY and "safety" not in config:
            # A chain that claims finality is always held to it: a node cannot earn credit
            # for blocks that later vanish, whatever the suite forgot to ask.
            config = {"safety": {}, **config}
        if "causality" not in config:   # a commit before its submit fails any run
            config = {"causality": {}, **config}
        if self.topology is not None:   # a topology's tiers are always judged (docs/topology.md)
            config = {**config, **{name: {} for name in
                                   correctness.topology_checkers(self.topology.used_tiers())
                                   if name not in config}}
        if self.workload_registered and "readback" not in config:
            # A workload's effects are always read back: a chain that includes a transaction
            # but drops (or reverts) its effect must not pass on inclusion alone.
            config = {**config, "readback": {}}
        return config

    def converge_bound(self) -> float:
        """How long the run waits after the faults for the nodes to agree on one tip."""
        config = self.checker_config()
        if "convergence" not in config:
            return 30.0
        return float(config["convergence"].get("bound", correctness.DEFAULTS["convergence"]["bound"]))


def _locust(doc: dict[str, Any], file: str) -> LocustSpec:
    if doc.get("workers", 1) + doc.get("remote_workers", 0) < 1:
        raise InputError(file, "load.locust", "at least one worker (workers or remote_workers)")
    return LocustSpec(workers=doc.get("workers", 1), remote_workers=doc.get("remote_workers", 0),
                      master_bind=doc.get("master_bind", "127.0.0.1"),
                      master_port=doc.get("master_port", 0),
                      ready_timeout=float(doc.get("ready_timeout", 60)))


def load(path: Path) -> Suite:
    doc = load_and_validate(path, "suite")
    file = str(path)
    try:
        pack = chainpack.load(chainpack.resolve(doc["chain"], path.parent))
    except InputError as exc:
        if exc.file is None:  # the reference itself is wrong: blame the suite field
            raise InputError(file, "chain", exc.expected) from None
        raise
    topology = _topology(doc, pack, file)
    nodes = topology.count if topology is not None else doc.get("nodes", 1)
    if nodes < pack.min_nodes or (pack.max_nodes is not None and nodes > pack.max_nodes):
        upper = pack.max_nodes if pack.max_nodes is not None else "any"
        raise InputError(file, "nodes", f"chain '{pack.name}' runs with {pack.min_nodes}..{upper} "
                         f"nodes, got {nodes}")
    unknown = sorted(set(doc.get("params", {})) - set(pack.params))
    if unknown:
        raise InputError(file, f"params.{unknown[0]}", f"unknown parameter for chain '{pack.name}' "
                         f"(known: {', '.join(sorted(pack.params)) or 'none'})")
    load_doc = doc["load"]
    commit = doc.get("commit", {})
    warmup = float(load_doc.get("warmup", 5))
    plan = _schedule(load_doc, warmup, path.parent, file)
    checks = [
        Check(id=c.get("id", f"{c['metric']} {c['op']} {c['value']}"), metric=c["metric"],
              op=c["op"], value=float(c["value"]), phase=c.get("phase", "measure"))
        for c in doc.get("checks", [])
    ]
    for n, check in enumerate(checks):
        if check.phase not in plan.windows:
            raise InputError(file, f"checks[{n}].phase", "a window of this suite's load ("
                             f"{', '.join(plan.windows)}), got {check.phase!r}")
    workload = doc.get("workload", {})
    registered, workload_settings = _workload(workload, pack, file)
    load_nodes = _node_list(load_doc, nodes, file, "load.nodes")
    if load_nodes is None and topology is not None:   # clients are served by the application tier
        load_nodes = topology.tier_nodes("application") or None
    query = _query(doc.get("query"), nodes, file, load_nodes)
    if query is not None:
        _check_query_kind(query, pack, file, registered.query_kinds if registered else ())
    runtime, swarm = swarmspec.options(doc, file)   # refuses faults the runtime cannot apply
    voters = len(topology.tier_nodes("root")) if topology is not None else nodes
    faults = schedule.plan(doc.get("faults", []), nodes, pack.fault_tolerance(voters),
                           doc.get("seed", 1), plan.total, file, topology)
    links.check_faults(topology, doc.get("faults", []), faults, file)   # the root qdisc is the links'
    catalogues = [catalogue.load(resolve_standard(ref, path.parent, file, f"standards[{i}]"))
                  for i, ref in enumerate(doc.get("standards", []))]
    return Suite(
        name=doc["name"],
        path=path.resolve(),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        chain=pack,
        nodes=nodes,
        seed=doc.get("seed", 1),
        load=LoadSpec(
            rate=float(load_doc["rate"]) if "shape" not in load_doc else plan.target_rate("measure"),
            duration=plan.total - warmup,
            warmup=warmup,
            settle=float(load_doc.get("settle", 30)),
            workers=load_doc.get("workers", 1),
            max_in_flight=load_doc.get("max_in_flight", 4096),
            connections=load_doc.get("connections", 256),
            submit_timeout=float(load_doc.get("submit_timeout", 10)),
            schedule=plan,
            engine=load_doc.get("engine", "builtin"),
            locust=_locust(load_doc.get("locust", {}), file),
        ),
        accounts=workload.get("accounts", 256),
        workload=workload.get("kind"),
        params={**pack.params, **doc.get("params", {})},
        commit_share=commit.get("share", pack.commit_share),
        poll_interval=commit.get("poll_interval", 0.1),
        subscribe=commit.get("subscribe", True),
        ready_timeout=float(doc.get("ready_timeout", pack.readiness_timeout)),
        checks=checks,
        description=doc.get("description", ""),
        load_nodes=load_nodes,
        faults=faults,
        checkers=doc.get("checkers", {}),
        standards=catalogues,
        case=doc.get("case", doc["name"]),
        audit=doc.get("audit", False),
        query=query,
        security=_security(doc.get("security")),
        workload_registered=registered is not None,
        workload_settings=workload_settings,
        runtime=runtime,
        swarm=swarm,
        topology=topology,
    )


def _topology(doc: dict[str, Any], pack: ChainPack, file: str) -> Topology | None:
    """The suite's `topology:`, checked against `nodes:` and the roles the pack declares."""
    if "topology" not in doc:
        return None
    from harness import topology as tiers
    found = tiers.parse(doc["topology"], file)
    if "nodes" in doc and doc["nodes"] != found.count:
        raise InputError(file, "nodes", f"the topology's node count ({found.count}) or nothing, "
                         f"got {doc['nodes']}")
    missing = [role for role in found.used_tiers() if role not in pack.roles]
    if missing:
        declared = (f"declares only {', '.join(sorted(pack.roles))}" if pack.roles
                    else "declares no node roles (not applicable to this chain)")
        raise InputError(file, "topology", f"roles the chain pack supports; chain '{pack.name}' "
                         f"{declared}, this topology needs {', '.join(missing)} "
                         f"(the pack's `roles:` in {pack.manifest})")
    return found


def _schedule(load_doc: dict[str, Any], warmup: float, folder: Path, file: str) -> Schedule:
    """The load's schedule: `load.shape`, or the short form rate + duration (fixed)."""
    if "shape" not in load_doc:
        return shapes.schedule(shapes.from_rate(float(load_doc["rate"]), float(load_doc["duration"])),
                               warmup, file, "load")
    for key in ("rate", "duration"):
        if key in load_doc:
            raise InputError(file, f"load.{key}", "no rate or duration beside load.shape (the "
                             "shape says both)")
    if "name" in load_doc["shape"]:
        raise InputError(file, "load.shape.name", "a name only on a composite's parts")
    return shapes.schedule(shapes.parse(load_doc["shape"], folder, file), warmup, file)


def _security(doc: dict[str, Any] | None) -> SecuritySpec | None:
    """The suite's `security:` section; each probe's settings merged over its DEFAULTS."""
    if doc is None:
        return None
    from harness import security
    probes = tuple(doc.get("probes") or security.names())
    given = doc.get("settings", {})
    return SecuritySpec(probes=probes, budget=float(doc.get("budget", 120)),
                        liveness=float(doc.get("liveness", 30)),
                        settings={name: {**security.registry()[name].defaults, **given.get(name, {})}
                                  for name in probes})


def _node_list(section: dict[str, Any], nodes: int, file: str, where: str) -> tuple[int, ...] | None:
    if "nodes" not in section:
        return None
    chosen = tuple(sorted(int(n.removeprefix("node")) for n in section["nodes"]))
    if chosen[-1] >= nodes:
        raise InputError(file, where, f"nodes of this {nodes}-node network "
                         f"(node0..node{nodes - 1}), got node{chosen[-1]}")
    return chosen


def _workload(doc: dict[str, Any], pack: ChainPack, file: str) -> tuple[Any, dict[str, Any]]:
    """The suite's `workload.kind` + `workload.settings`: (None, {}) for the adapter's own
    workload, else (the registered WorkloadSpec, its settings over DEFAULTS)."""
    if doc.get("kind") is None and not doc.get("settings"):
        return None, {}      # the adapter's default (its class need not be loaded for that)
    from harness import adapters, workloads
    adapter = adapters.adapter_class(pack.family, str(pack.manifest))
    return workloads.resolve(pack.family, tuple(getattr(adapter, "workloads", ("transfer",))),
                             doc.get("kind"), doc.get("settings"), file)


def _check_query_kind(query: QuerySpec, pack: ChainPack, file: str,
                      workload_kinds: tuple[str, ...] = ()) -> None:
    from harness import adapters  # the adapter (and the workload) say which reads they answer
    offered = (*getattr(adapters.adapter_class(pack.family, str(pack.manifest)), "query_kinds", ()),
               *workload_kinds)
    if query.kind not in offered:
        raise InputError(file, "query.kind", f"the '{pack.family}' adapter builds "
                         f"{', '.join(offered) or 'no'} queries, not {query.kind}")


def _query(doc: dict[str, Any] | None, nodes: int, file: str,
           load_nodes: tuple[int, ...] | None) -> QuerySpec | None:
    """The suite's `query:` section (the schema checked its shape; here what it cannot)."""
    if doc is None:
        return None
    spec = QuerySpec(
        rate=float(doc["rate"]), duration=float(doc["duration"]), kind=doc.get("kind", "tx"),
        warmup=float(doc.get("warmup", 0)),
        nodes=_node_list(doc, nodes, file, "query.nodes") or load_nodes,
        workers=doc.get("workers", 1), max_in_flight=doc.get("max_in_flight", 4096),
        connections=doc.get("connections", 256),
        submit_timeout=float(doc.get("submit_timeout", 10)))
    if spec.rate * spec.duration < 1:
        raise InputError(file, "query.duration", f"at least one query (rate × duration ≥ 1), got "
                         f"{spec.rate:g}/s × {spec.duration:g} s")
    return spec


def resolve_standard(reference: str, folder: Path, file: str, where: str) -> Path:
    """A catalogue path relative to the suite, to the working directory, or under BCTEST_HOME."""
    for candidate in (folder / reference, Path(reference), paths.home() / reference,
                      paths.home() / "standards" / reference):
        if candidate.is_file():
            return candidate
    raise InputError(file, where, f"a requirement catalogue file; '{reference}' not found next to "
                     "the suite, here, or under standards/")
