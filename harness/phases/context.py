"""The run context: what one run's stages hand each other.

Each stage (harness/phases/*.py, run in order by harness/run.py) is a plain async function
over this object: it reads what earlier stages left and fills in its own part, so a stage
can be run and tested alone against a context built by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.model import FaultRecord, FinalChain, Node, ProbeOutcome, SendRecord
from harness.phases.companions import Hooks


@dataclass
class LoadState:
    """What the load stage (warmup + measure) and the settle stage measured."""

    t0: float                                   # monotonic time of the first scheduled send
    prepared: list[Any]                         # the pre-signed transactions (adapters' Prepared)
    tracker: Any                                # the CommitTracker fed by the block watchers
    rate: float = 1.0                           # the schedule's (mean) rate (tx/s)
    offsets: list[float] = field(default_factory=list)  # tx i due at offsets[i] (load/shape.py)
    shape: dict[str, Any] = field(default_factory=dict)  # the shape's History header part
    targets: list[int] = field(default_factory=list)   # the load's node indexes, round robin
    records: list[SendRecord | None] = field(default_factory=list)
    sends: Any = None                           # the senders' SendProgress
    phases: dict[str, list[float]] = field(default_factory=dict)   # name -> [start, end], run clock
    windows: dict[str, list[float]] = field(default_factory=dict)  # the shape's named windows
    interrupted: str | None = None              # why the load stopped early, if it did
    settle_end: str = "timeout"                 # all-committed | timeout | interrupted
    converged: bool | None = None               # after faults: did the tips agree in time
    watch_methods: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    resources: dict | None = None               # per-node samples (runtime/resources.py)
    faults: list[FaultRecord] = field(default_factory=list)


@dataclass
class RunContext:
    suite: Any                                  # harness.suite.Suite
    run_id: str
    run_dir: Path
    console: Console
    stopped: Callable[[], str | None]           # why the run was asked to stop, or None
    rebuild: bool = False
    say: Callable[[str], None] = print          # one console line, never markup
    key_secret: str | None = None               # mixed into the workload's seed (phases/setup.py)
    warnings: list[str] = field(default_factory=list)   # the run's own, for results.json
    # setup
    client: Any = None                          # the Docker client
    runtime: Any = None                         # harness.runtime.docker.DockerRuntime
    adapter: Any = None
    workload: str = ""
    workload_impl: Any = None                   # a registered workload's object (harness/workloads/)
    image: dict[str, Any] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    node_info: list[dict[str, Any]] = field(default_factory=list)
    links: dict[str, Any] | None = None         # the topology's link profiles as applied and measured
    link_shaper: Any = None                     # harness.faults.links.Shaper: stopped at teardown
    # prepare
    bootstrap: dict[str, Any] = field(default_factory=dict)
    prepared: list[Any] = field(default_factory=list)
    ledger_before: dict[str, Any] | None = None
    ledger: dict[str, Any] | None = None
    # load, settle, query, security, final read, audit
    hooks: Hooks = field(default_factory=Hooks)
    watchers: Any = None                        # companions.Watchers (block watchers + driver)
    nemesis: Any = None                         # harness.faults.nemesis.Nemesis, if faults
    sampler: Any = None                         # harness.runtime.resources.ResourceSampler
    load: LoadState | None = None
    query: Any = None                           # harness.phases.query.QueryOutcome
    finals: list[FinalChain] = field(default_factory=list)
    audited: dict[str, Any] | None = None
    readback: dict[str, Any] | None = None      # the workload's read-back (phases/readback.py)
    security: list[ProbeOutcome] = field(default_factory=list)   # the security stage's probes
    # record
    results: dict[str, Any] | None = None

    @property
    def interrupted(self) -> str | None:
        """Why the load or the query phase stopped early (the run is then incomplete)."""
        if self.load is not None and self.load.interrupted:
            return self.load.interrupted
        return getattr(self.query, "interrupted", None)
