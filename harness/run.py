"""One `bctest run`: the phases in order, on one clock, always torn down.

setup (image, network, readiness) → prepare (sign) → warmup + measure → settle →
results (history, results.json, reports) → teardown. Ctrl-C or SIGTERM at any point
stops the load, writes results marked incomplete with what was measured, and removes
everything the run started.
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

from harness import __version__, adapters, audit, hostinfo, lifetime, signing, standards
from harness.errors import (
    EXIT_INFRA_FAILED,
    EXIT_INTERRUPTED,
    EXIT_PASS,
    EXIT_VERDICT_FAILED,
    InfraError,
    InputError,
)
from harness.faults import netns
from harness.faults.nemesis import NETWORK_ACTIONS, Nemesis, describe
from harness.phases.final import read_final_chains
from harness.phases.load import run_load
from harness.phases.query import QueryOutcome, run_query
from harness.phases.setup import start_network, wait_progress
from harness.progress import Progress
from harness.report import write_reports
from harness.results import build_history, write_history_and_results
from harness.runtime import images
from harness.runtime.docker import DockerRuntime, connect, leftover_runs, remove_run
from harness.runtime.resources import ResourceSampler
from harness.suite import Suite
from harness.tracker import CommitTracker


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


def run_header(suite: Suite, run_id: str, image: dict[str, Any], host: dict[str, Any],
               nodes: list[dict[str, Any]], t0: float, workload: str) -> dict[str, Any]:
    wall_now, mono_now = time.time(), time.monotonic()
    spec = suite.load
    return {
        "run_id": run_id,
        "harness": {"version": __version__},
        "suite": {"name": suite.name, "path": str(suite.path), "sha256": suite.sha256,
                  "description": suite.description, "case": suite.case},
        "chain": {"name": suite.chain.name, "version": suite.chain.version,
                  "family": suite.chain.family, "consensus": suite.chain.consensus,
                  "chain_id": suite.chain.chain_id, "manifest_sha256": suite.chain.manifest_hash(),
                  "image": image, "params": suite.params},
        "host": host,
        "started_at": dt.datetime.fromtimestamp(wall_now - (mono_now - t0), dt.UTC)
        .isoformat(timespec="milliseconds"),
        "t0_wall": wall_now - (mono_now - t0),
        "nodes": nodes,
        "time_to_ready_seconds": max((n["ready_seconds"] for n in nodes), default=None),
        "load": {"rate": spec.rate, "warmup": spec.warmup, "duration": spec.duration,
                 "settle": spec.settle, "workers": spec.workers, "accounts": suite.accounts,
                 "workload": workload, "max_in_flight": spec.max_in_flight,
                 "connections": spec.connections,
                 "commit_share": suite.commit_share, "seed": suite.seed,
                 "nodes": list(suite.load_nodes) if suite.load_nodes is not None
                 else list(range(len(nodes)))},
        "checks": [{"id": c.id, "metric": c.metric, "op": c.op, "value": c.value,
                    "phase": c.phase} for c in suite.checks],
        "faults": describe(suite.faults),
        "fault_model": {"kind": suite.chain.consensus, "nodes": len(nodes),
                        "f": suite.chain.fault_tolerance(len(nodes))},
        "checkers": suite.checker_config(),
        "standards": [standards.entry(c) for c in suite.standards],
    }


async def authenticity_audit(adapter: adapters.Adapter, nodes: list, finals: list,
                             tracker: CommitTracker) -> dict[str, Any]:
    """Recompute one node's chain (hash links, tx roots, signatures) from its raw blocks."""
    source = next((f for f in finals if f.chain and not f.error), None)
    if source is None:
        return {"verdict": "unknown", "node": None, "error": "no node's chain could be read back"}
    node = next(n for n in nodes if n.index == source.node)
    try:
        result = await audit.audit(adapter, node, [number for number, _ in source.chain],
                                   tx_ids=list(tracker.index))
    except Exception as exc:  # evidence (unknown), not a crash of the run
        return {"verdict": "unknown", "node": node.name, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {**result.to_dict(), "node": node.name, "error": None,
            "heights": [source.chain[0][0], source.chain[-1][0]]}


def audit_summary(audited: dict[str, Any]) -> str:
    """One console line: the verdict, and per check its verdict and figures."""
    line = f"authenticity audit of {audited.get('node')}: {audited['verdict']}"
    if audited.get("error"):
        return f"{line} ({audited['error']})"
    checks = []
    for name, check in (audited.get("checks") or {}).items():
        figures = [f"{check['checked']} checked", *(f"{v} {k}" for k, v in check.get("counts", {}).items())]
        if check.get("failed"):
            figures.append(f"{check['failed']} failed")
        checks.append(f"{name} {check['verdict']} ({', '.join(figures)})")
    return f"{line}; {audited.get('blocks')} blocks: " + "; ".join(checks)


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


async def _run(suite: Suite, run_dir: Path, run_id: str, console: Console, rebuild: bool,
               stop: _Stop) -> dict[str, Any] | None:
    stop.install(asyncio.get_running_loop())
    client = await asyncio.to_thread(connect)
    stale = await asyncio.to_thread(leftover_runs, client)
    for dead in stale:
        removed = await asyncio.to_thread(remove_run, client, dead)
        console.print(f"removed {removed} objects left by dead run {dead}")
    if any(step.action in NETWORK_ACTIONS for step in suite.faults):
        netns.preflight()
    adapter_cls = adapters.adapter_class(suite.chain.family, str(suite.chain.manifest))
    workload = adapters.workload_for(adapter_cls, suite.workload, str(suite.path))
    adapter = adapter_cls(suite.chain, suite.params, suite.nodes, suite.seed, suite.accounts)
    image_id = await asyncio.to_thread(images.ensure, client, suite.chain, rebuild,
                                       lambda m: console.print(f"  {m}", highlight=False))
    runtime = DockerRuntime(client, run_id, run_dir / "logs")
    host = await asyncio.to_thread(hostinfo.host_facts, client)
    try:
        console.print(f"starting {suite.nodes} × {suite.chain.name} {suite.chain.version} "
                      f"({image_id[:19]})", highlight=False)
        nodes, node_info = await start_network(runtime, suite, adapter, suite.chain.image_tag,
                                               stop)
        console.print(f"ready in {max(n['ready_seconds'] for n in node_info):.1f} s", highlight=False)
        if suite.chain.progress_blocks:
            heights = await wait_progress(adapter, nodes, suite.chain.progress_blocks,
                                          suite.ready_timeout, stop)
            console.print(f"consensus running: heights {heights}", highlight=False)
        count = int(round(suite.load.rate * suite.load.total_seconds))
        bootstrap = await adapter.bootstrap(nodes, count)
        prepared = await asyncio.to_thread(adapter.prepare, count)
        console.print(f"{count} transactions signed", highlight=False)
        if stop():
            return None
        image = {"tag": suite.chain.image_tag, **runtime.image_digest(suite.chain.image_tag)}
        nemesis = None
        ledger_before = await asyncio.to_thread(runtime.data_bytes)
        with Progress(console) as progress:
            if suite.faults:
                nemesis = Nemesis(runtime, nodes, suite.faults,
                                  lambda message: console.print(message, highlight=False))
            outcome = await run_load(suite, adapter, nodes, prepared, progress, stop, nemesis,
                                     suite.converge_bound(), ResourceSampler(runtime, nodes))
        ledger = {"method": "container writable layer (SizeRw) + data filesystem used, before "
                            "the warmup and after the settle", "before": ledger_before,
                  "after": await asyncio.to_thread(runtime.data_bytes)}
        query: QueryOutcome | None = None
        if suite.query is not None and not outcome.interrupted:
            # After the settle (and any convergence): the chain holds the run's txs. A fresh
            # progress view, so its live rates do not start from the load's totals.
            with Progress(console) as progress:
                query = await run_query(suite.query, adapter, nodes, outcome.tracker,
                                        [p.tx_id for p in prepared], suite.seed, progress, stop)
                if query.skipped:
                    console.print(f"[yellow]query phase skipped:[/yellow] {query.skipped}",
                                  highlight=False)
        if query is not None and query.interrupted and not outcome.interrupted:
            outcome.interrupted = query.interrupted
        finals, audited = [], None
        if (suite.checker_config() or suite.audit) and not outcome.interrupted:
            console.print("reading every node's chain back (final read)", highlight=False)
            finals = await read_final_chains(adapter, nodes, outcome.tracker, outcome.t0)
        if suite.audit and not outcome.interrupted:
            audited = await authenticity_audit(adapter, nodes, finals, outcome.tracker)
            console.print(audit_summary(audited), highlight=False)
        header = run_header(suite, run_id, image, host, node_info, outcome.t0, workload)
        header["bootstrap"] = bootstrap
        header["ledger"] = ledger
        status = "incomplete" if outcome.interrupted else "complete"
        history = build_history(header, outcome, status, outcome.interrupted,
                                nemesis.history() if nemesis else [], finals, query)
        history.audit = audited
    finally:
        await adapter.close()
        await asyncio.to_thread(runtime.teardown)
    results = write_history_and_results(run_dir, history)
    write_reports(run_dir, results)
    return results


def execute(suite: Suite, out: Path | None, console: Console, rebuild: bool = False) -> int:
    """Run a suite; return the exit code (0 pass, 1 a verdict failed, 3 infrastructure)."""
    run_id = new_run_id()
    lifetime.mark_run(run_id)   # every process the run starts carries it (bctest clean)
    run_dir = prepare_run_dir(out, suite, run_id)
    console.print(f"run {run_id}: {suite.name} → {run_dir}", highlight=False)
    stop = _Stop()
    try:
        results = asyncio.run(_run(suite, run_dir, run_id, console, rebuild, stop))
    except KeyboardInterrupt:
        results = None
        console.print("[red]aborted by a second interrupt[/red]")
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
        console.print(f"[red]the system under test took no load[/red]: {refused}; node logs in "
                      f"{run_dir / 'logs'}", highlight=False)
        return EXIT_INFRA_FAILED
    return EXIT_PASS if results["verdict"] == "pass" else EXIT_VERDICT_FAILED


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


def summarize(console: Console, results: dict[str, Any], run_dir: Path) -> None:
    measure = results["phases"]["measure"]
    latency = measure["latency"]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} ms"

    console.print(
        f"measure: target {measure['target_rate']:g} tx/s, sent {measure['send_rate']:.1f} tx/s, "
        f"throughput {measure['throughput']:.1f} tx/s; submitted {measure['submitted']}, "
        f"committed {measure['committed']}, failed {measure['failed']}; latency p50 "
        f"{ms(latency['p50'])} p99 {ms(latency['p99'])} max {ms(latency['max'])}", highlight=False)
    query = results["phases"].get("query")
    if query:
        console.print(
            f"query ({query['kind']}): target {query['target_rate']:g} q/s, "
            f"sent {query['send_rate']:.1f} q/s, "
            f"throughput {query['throughput']:.1f} q/s; submitted {query['submitted']}, answered "
            f"{query['answered']}, failed {query['failed']}; latency p50 {ms(query['latency']['p50'])} "
            f"p99 {ms(query['latency']['p99'])} max {ms(query['latency']['max'])}", highlight=False)
    for warning in results["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    for check in results["checks"]:
        colour = {"pass": "green", "fail": "red"}.get(check["verdict"], "yellow")
        console.print(f"[{colour}]{check['verdict']:>7}[/{colour}] {check['id']} "
                      f"(measured {check['measured']})", highlight=False)
    for fault in results.get("faults", []):
        when = "-" if fault["start"] is None else f"{fault['start']:.1f}–" + (
            "?" if fault["end"] is None else f"{fault['end']:.1f} s")
        console.print(f"  fault {fault['id']}: {fault['action']} {','.join(fault['nodes'])} {when} "
                      f"{fault['status']}" + (f" ({fault['reason']})" if fault["reason"] else ""),
                      highlight=False)
    for checker in results.get("checkers", []):
        colour = {"pass": "green", "fail": "red"}.get(checker["verdict"], "yellow")
        console.print(f"[{colour}]{checker['verdict']:>7}[/{colour}] {checker['id']}"
                      + (f": {checker['why']}" if checker["why"] else ""), highlight=False)
    console.print(f"verdict: {results['verdict']} ({results['status']}); report: "
                  f"{run_dir / 'report.html'}", highlight=False)
