"""One `bctest run`: named stages in order over one run context, always torn down.

setup → prepare → load (warmup + measure, companions beside it) → settle → ledger → query →
security probes → final read → audit → teardown → record (history.jsonl, results.json, reports). Each stage is
a function in harness/phases/ over harness.phases.context.RunContext. Ctrl-C or SIGTERM at
any point stops the load, writes results marked incomplete with what was measured, and
removes everything the run started.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from harness import __version__, lifetime, signing, standards, verdicts
from harness.errors import (
    EXIT_INFRA_FAILED,
    EXIT_INTERRUPTED,
    InfraError,
    InputError,
)
from harness.faults.nemesis import describe
from harness.model import RunHeader
from harness.phases import final, load, query, readback, record, security, settle, setup
from harness.phases.context import RunContext
from harness.progress import Progress
from harness.report.console import summarize
from harness.runtime.docker import connect, remove_run
from harness.suite import Suite


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


def prepare_run_dir(out: Path | None, suite: Suite, run_id: str) -> Path:
    if out is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{suite.name}-{stamp}-{run_id}"
    if (out / "results.json").exists() or (out / "history.jsonl").exists():
        raise InputError(str(out), None, "already holds a run; choose another --out or remove it")
    (out / "logs").mkdir(parents=True, exist_ok=True)
    return out


def run_header(ctx: RunContext) -> RunHeader:
    """What this run was, for the History's first line."""
    suite, nodes, t0 = ctx.suite, ctx.node_info, ctx.load.t0
    wall_now, mono_now = time.time(), time.monotonic()
    spec = suite.load
    return RunHeader(
        run_id=ctx.run_id,
        harness={"version": __version__},
        suite={"name": suite.name, "path": str(suite.path), "sha256": suite.sha256,
               "description": suite.description, "case": suite.case},
        chain={"name": suite.chain.name, "version": suite.chain.version,
               "family": suite.chain.family, "consensus": suite.chain.consensus,
               "chain_id": suite.chain.chain_id, "manifest_sha256": suite.chain.manifest_hash(),
               "image": ctx.image, "params": suite.params},
        host=ctx.host,
        started_at=dt.datetime.fromtimestamp(wall_now - (mono_now - t0), dt.UTC)
        .isoformat(timespec="milliseconds"),
        t0_wall=wall_now - (mono_now - t0),
        nodes=nodes,
        time_to_ready_seconds=max((n["ready_seconds"] for n in nodes), default=None),
        load={"rate": spec.rate, "warmup": spec.warmup, "duration": spec.duration,
              "settle": spec.settle, "workers": spec.workers, "accounts": suite.accounts,
              "workload": ctx.workload, "max_in_flight": spec.max_in_flight,
              "connections": spec.connections,
              "commit_share": suite.commit_share, "seed": suite.seed,
              # whose holding a tx commits it: the root tier of a topology, else every node
              "commit_nodes": list(suite.commit_nodes),
              # revealed only now, after the run: with the seed it rebuilds every key and tx
              "key_secret": ctx.key_secret,
              "nodes": list(suite.load_nodes) if suite.load_nodes is not None
              else list(range(len(nodes)))},
        checks=[{"id": c.id, "metric": c.metric, "op": c.op, "value": c.value,
                 "phase": c.phase} for c in suite.checks],
        faults=describe(suite.faults),
        # the consensus participants: with a topology, its root tier
        fault_model={"kind": suite.chain.consensus, "nodes": len(suite.commit_nodes),
                     "f": suite.chain.fault_tolerance(len(suite.commit_nodes))},
        checkers=suite.checker_config(),
        standards=[standards.entry(c) for c in suite.standards],
        bootstrap=ctx.bootstrap,
        ledger=ctx.ledger,
        topology=({**suite.topology.header(), "links_applied": ctx.links}
                  if suite.topology is not None else None),
    )


class _Stop:
    """Records the first SIGINT/SIGTERM; the phases poll it. A second one aborts hard."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def __call__(self) -> str | None:
        return self.reason

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._signalled, sig, loop)

    def _signalled(self, sig: signal.Signals, loop: asyncio.AbstractEventLoop) -> None:
        if self.reason is None:
            self.reason = f"interrupted by {sig.name}"
            return
        for s in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(s)
        raise KeyboardInterrupt


async def _stages(ctx: RunContext) -> bool:
    """The stages up to the teardown; False when the run stopped before any load."""
    await setup.setup(ctx)
    await setup.prepare(ctx)
    if ctx.stopped():
        return False
    with Progress(ctx.console) as view:
        live = await load.load(ctx, view)
        await settle.settle(ctx, live.show)
    await ctx.hooks.close()   # watchers, nemesis (healed), sampler: their part is done
    state = ctx.load
    state.watch_methods = ctx.watchers.methods
    state.warnings = ctx.warnings + ctx.watchers.warnings + ctx.hooks.warnings
    state.resources = ctx.sampler.history()
    state.faults = ctx.nemesis.history() if ctx.nemesis else []
    await setup.measure_ledger(ctx)
    await readback.readback(ctx)   # a registered workload's effects, before any query reads
    await query.query(ctx)
    await security.probes(ctx)
    await final.final_read(ctx)
    await final.authenticity_audit(ctx)
    return True


async def _run(ctx: RunContext, stop: _Stop) -> dict[str, Any] | None:
    stop.install(asyncio.get_running_loop())
    try:
        measured = await _stages(ctx)
    finally:
        await setup.teardown(ctx)
    if not measured:
        return None
    return record.record(ctx, run_header(ctx))


def execute(suite: Suite, out: Path | None, console: Console, rebuild: bool = False) -> int:
    """Run a suite; return the exit code (0 pass, 1 a verdict failed, 3 infrastructure,
    4 inconclusive: nothing failed but a verdict is unknown, 130 interrupted)."""
    run_id = new_run_id()
    lifetime.mark_run(run_id)   # every process the run starts carries it (bctest clean)
    run_dir = prepare_run_dir(out, suite, run_id)
    console.print(f"run {run_id}: {suite.name} → {run_dir}", highlight=False)
    stop = _Stop()
    try:
        ctx = RunContext(suite=suite, run_id=run_id, run_dir=run_dir, console=console,
                         stopped=stop, rebuild=rebuild,
                         say=lambda line: console.print(line, highlight=False, markup=False))
        results = asyncio.run(_run(ctx, stop))
    except KeyboardInterrupt:
        results = None
        console.print(Text("aborted by a second interrupt", style="red"))
    finally:
        _last_resort_cleanup(run_id)
    if results is None:
        console.print(f"run stopped before any load ({stop() or 'aborted'}); nothing measured; "
                      f"node logs in {run_dir / 'logs'}", highlight=False)
        return EXIT_INFRA_FAILED
    summarize(console, results, run_dir)
    signed = signing.sign_if_configured(run_dir)
    if signed:
        console.print(f"signed with key {signed['key_id']}: {run_dir / signing.SIGNATURE}", highlight=False)
    if results["status"] != "complete":
        return EXIT_INTERRUPTED
    refused = refused_everything(results)
    if refused:
        console.print(Text.assemble(("the system under test took no load", "red"), f": {refused}; node "
                                    f"logs in {run_dir / 'logs'}"), highlight=False)
        return EXIT_INFRA_FAILED
    return verdicts.exit_code(results)


def refused_everything(results: dict[str, Any]) -> str | None:
    """Every transaction sent in the measure phase failed: nothing was measured, the chain
    (or its RPC) is broken, not slow. Exit 3, not a failed verdict; the results stay written."""
    measure = results["phases"]["measure"]
    if not measure["submitted"] or measure["failed"] < measure["submitted"]:
        return None
    top = measure.get("errors") or [{"error": "unknown", "count": measure["failed"]}]
    return (f"all {measure['submitted']} transactions sent in the measure phase failed, most often: "
            f"{top[0]['error'][:200]} ({top[0]['count']}×)")


def _last_resort_cleanup(run_id: str) -> None:
    """Teardown already ran in the happy path; this catches a hard abort mid-teardown."""
    try:
        remove_run(connect(), run_id)
    except (InfraError, Exception):  # cleanup must never mask the run's own outcome
        pass
