"""The security stage: the suite's probes, one at a time, after the settle and before the
final read (so the safety, durability and convergence checkers also judge the chain the
probes left behind).

Each probe gets a time budget. After each one the stage itself judges survival: every
node's container still runs, was not restarted, and makes a new block within the suite's
`security.liveness` seconds. A node a probe crashed or stalled is that probe's finding
(critical), never a harness error. A probe that raises is an `error` outcome whose attempts
stay unknown: the harness's failure never passes, and never fails, the chain.
"""

from __future__ import annotations

import asyncio
import time

from harness import security
from harness.model import SEVERITIES, Attempt, Node, ProbeOutcome
from harness.phases.context import RunContext
from harness.security.probe import NodeState, NotApplicable, ProbeTarget


async def _heights(ctx: RunContext) -> dict[str, int | None]:
    async def one(node: Node) -> int | None:
        try:
            return int(await asyncio.wait_for(ctx.adapter.height(node), 5))
        except Exception:   # a node that cannot say is judged by survival, not raised
            return None
    values = await asyncio.gather(*(one(node) for node in ctx.nodes))
    return {node.name: value for node, value in zip(ctx.nodes, values, strict=True)}


def _alive(target: ProbeTarget, node: Node, before: NodeState) -> Attempt:
    after = target.node_state(node)
    title = f"{node.name} is still running, not restarted, after the probe"
    if not after.running:
        why = (f"the container stopped during the {target.probe} probe (exit code {after.exit_code}): "
               "the probe crashed the node")
        return target.attempt("survival.running", node, False, title, why, severity="critical")
    if after.restarts != before.restarts or (before.started_at and after.started_at != before.started_at):
        why = (f"the container was restarted during the probe (restarts {before.restarts} → "
               f"{after.restarts}, started at {after.started_at}): the node crashed and came back")
        return target.attempt("survival.running", node, False, title, why, severity="critical")
    return target.attempt("survival.running", node, True, title, "the container runs, same start time")


async def _blocks(ctx: RunContext, target: ProbeTarget, before: dict[str, int | None],
                  bound: float) -> list[Attempt]:
    """Every node makes a block past the highest height any node had before the probe."""
    floor = max((h for h in before.values() if h is not None), default=-1)
    deadline = time.monotonic() + bound
    now = await _heights(ctx)
    while time.monotonic() < deadline and not all(h is not None and h > floor for h in now.values()):
        await asyncio.sleep(0.5)
        now = await _heights(ctx)
    out = []
    for node in ctx.nodes:
        height = now[node.name]
        title = f"{node.name} makes new blocks after the probe (within {bound:g} s)"
        if height is None:
            why = f"the node did not answer its height within {bound:g} s of the probe's end"
            out.append(target.attempt("survival.blocks", node, False, title, why, severity="critical"))
        else:
            why = f"height {before.get(node.name)} before the probe, {height} after (needed > {floor})"
            out.append(target.attempt("survival.blocks", node, height > floor, title, why,
                                      severity="critical" if height <= floor else None))
    return out


async def _one(ctx: RunContext, probe: security.Probe, session: object) -> ProbeOutcome:
    spec, t0 = ctx.suite.security, ctx.load.t0
    target = ProbeTarget(probe=probe.id, severity=probe.severity, family=ctx.suite.chain.family,
                         pack=ctx.suite.chain, nodes=ctx.nodes, adapter=ctx.adapter,
                         runtime=ctx.runtime, settings=dict(spec.settings.get(probe.id, probe.defaults)),
                         deadline=time.monotonic() + spec.budget, run_dir=ctx.run_dir, say=ctx.say,
                         session=session, suite_rate=ctx.suite.load.rate)
    states = {node.name: await asyncio.to_thread(target.node_state, node) for node in ctx.nodes}
    heights = await _heights(ctx)
    outcome = ProbeOutcome(probe=probe.id, title=probe.title["en"], status="ran",
                           started=time.monotonic() - t0)
    try:
        outcome.attempts = list(await asyncio.wait_for(probe.run(target), spec.budget))
    except NotApplicable as exc:
        outcome.status, outcome.reason = "not-applicable", str(exc)[:500]
    except TimeoutError:
        outcome.status = "error"
        outcome.reason = f"the probe did not finish within its budget of {spec.budget:g} s"
    except Exception as exc:   # the harness's own failure: recorded, judged unknown
        outcome.status, outcome.reason = "error", f"{type(exc).__name__}: {exc}"[:500]
    outcome.ended = time.monotonic() - t0
    if outcome.status != "not-applicable":
        outcome.attempts += [await asyncio.to_thread(_alive, target, node, states[node.name])
                             for node in ctx.nodes]
        outcome.attempts += await _blocks(ctx, target, heights, spec.liveness)
    return outcome


def describe(outcome: ProbeOutcome) -> str:
    """One console line per probe."""
    if outcome.status == "not-applicable":
        return f"{outcome.probe}: not applicable ({outcome.reason})"
    failed = [a for a in outcome.attempts if a.verdict == "fail"]
    line = f"{outcome.probe}: {len(outcome.attempts)} attempts, {len(failed)} failed"
    if outcome.status == "error":
        line += f"; probe error: {outcome.reason}"
    if failed:
        worst = min(failed, key=lambda a: SEVERITIES.index(a.severity))
        line += f" (worst: {worst.severity} {worst.case} on {worst.node})"
    return line


async def probes(ctx: RunContext) -> None:
    """Run the suite's probes; fills ctx.security. The adapter's driver (e.g. a regtest
    chain's block maker) runs beside them, as beside the load, so blocks keep coming."""
    spec = ctx.suite.security
    if spec is None or ctx.stopped():
        return
    import aiohttp

    registry = security.registry()
    stop = asyncio.Event()
    driver = asyncio.create_task(ctx.adapter.drive(ctx.nodes, stop))
    ctx.say(f"security probes: {', '.join(spec.probes)}")
    try:
        async with aiohttp.ClientSession() as session:
            for name in spec.probes:
                if ctx.stopped():
                    ctx.security.append(ProbeOutcome(name, registry[name].title["en"], "error",
                                                     f"not run: {ctx.stopped()}"))
                    continue
                outcome = await _one(ctx, registry[name], session)
                ctx.security.append(outcome)
                ctx.say(f"  {describe(outcome)}")
    finally:
        stop.set()
        try:
            await asyncio.wait_for(driver, 10)
        except Exception:   # the driver's own trouble was the load's to report
            driver.cancel()
