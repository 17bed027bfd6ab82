"""The capacity search (CAICT's maximum TPS, CometBFT QA's saturation sweep): the highest
offered rate at which the chain still keeps up.

A step is one short run at one offered rate. It passes when the chain met every criterion:
success ≥ the catalogue's pressure share, commits kept pace with sends, p99 within the
bound. A step where the HARNESS fell behind its schedule (send rate short of the target)
is no evidence about the chain: the search stops there and says the figure is a lower
bound set by the harness, never the chain's limit.

Ramp: raise the rate (×2 in the full profile, ×4 in the quick one) from the start (half
the claim, or the profile's start) until a step fails; halve from the start while nothing
passed. Bisect: halve the interval between the best pass and the lowest failure.
Confirm: a full-length run at the best pass.

Each step is its own run on a fresh network, not a rate change on one running network:
a saturated step leaves a mempool backlog (and, on nonce or UTXO chains, gaps) that
would be charged to the next step; a fresh network makes every point of the curve
independent and re-judgeable from its own history.

Everything here is pure: the search's choices are a function of the steps' results, so a
stored folder re-judges to the same capacity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.certify.program import ROUND_NODES, Profile, Program
from harness.standards import metrics

HARNESS_SHARE = 0.95        # send rate ÷ target below this: the harness, not the chain, fell behind
COMMIT_SHARE = 0.95         # throughput ÷ send rate: commits keep pace with sends
CLOSE_ENOUGH = 1.05         # bisect no further once fail ÷ pass is this close
RETRY_SHARE = 0.8           # a failed confirmation with no lower step retries at this share


@dataclass(frozen=True)
class Criteria:
    success_ratio: float
    commit_send_ratio: float
    latency_p99_ms: float
    send_rate_ratio: float

    def entry(self) -> dict[str, float]:
        return {"success_ratio": self.success_ratio, "commit_send_ratio": self.commit_send_ratio,
                "latency_p99_ms": self.latency_p99_ms, "send_rate_ratio": self.send_rate_ratio}


def criteria(catalogues: list[dict[str, Any]], claimed_p99_ms: float | None) -> Criteria:
    """The pressure round's bars, read from the catalogues (the test center's), the p99 bound
    the vendor's claim if it is stricter than the catalogue's."""
    success, p99 = 0.95, 10000.0
    for catalogue in catalogues:
        for requirement in catalogue["document"]["requirements"]:
            for threshold in _thresholds(requirement):
                if requirement["id"] == "PERF-TX-PRESSURE-4" and threshold["metric"] == "success_ratio":
                    success = float(threshold["value"])
                if requirement["id"] == "PERF-TX-LATENCY-4" and threshold["metric"] == "latency_p99":
                    p99 = float(threshold["value"])
    if claimed_p99_ms is not None:
        p99 = min(p99, claimed_p99_ms)
    return Criteria(success, COMMIT_SHARE, p99, HARNESS_SHARE)


def _thresholds(requirement: dict[str, Any]) -> list[dict[str, Any]]:
    found = requirement.get("threshold") or []
    return found if isinstance(found, list) else [found]


def step_suite(program: Program, rate: float, stage: str) -> dict[str, Any]:
    profile = program.profile
    duration = profile.confirm_duration if stage == "confirm" else profile.step_duration
    return {"description": f"capacity search, {stage} step: {program.round_nodes} node(s) at {rate:g} tx/s "
                           f"for {duration:g} s",
            "nodes": program.round_nodes, "seed": 21,
            "load": {"rate": round(rate, 2), "warmup": profile.step_warmup, "duration": duration,
                     "settle": profile.step_settle}}


def judge_step(case: str, stage: str, offered: float, results: dict[str, Any] | None,
               bars: Criteria) -> dict[str, Any]:
    """One step of the curve from its run's results: its figures, passed, why not."""
    step: dict[str, Any] = {"case": case, "stage": stage, "offered": offered, "send_rate": None,
                            "throughput": None, "success_ratio": None, "commit_send_ratio": None,
                            "latency_p50": None, "latency_p99": None, "passed": False,
                            "harness_limited": False, "why": None}
    if results is None or results.get("status") != "complete":
        step["why"] = f"the step's run did not complete ({(results or {}).get('status_reason') or 'not run'})"
        return step
    read = {name: metrics.read(name, results)[0] for name in
            ("send_rate", "throughput", "success_ratio", "commit_send_ratio", "latency_p50",
             "latency_p99", "send_rate_ratio")}
    step.update({k: read[k] for k in ("send_rate", "throughput", "success_ratio", "commit_send_ratio",
                                      "latency_p50", "latency_p99")})
    failures = []
    for name, op, bar in (("success_ratio", ">=", bars.success_ratio),
                          ("commit_send_ratio", ">=", bars.commit_send_ratio),
                          ("latency_p99", "<=", bars.latency_p99_ms)):
        value = read[name]
        if not isinstance(value, (int, float)):
            failures.append(f"{name} was not measured")
        elif (value < bar) if op == ">=" else (value > bar):
            failures.append(f"{name} = {_fmt(value)}, needs {op} {bar:g}")
    ratio = read["send_rate_ratio"]
    behind = not isinstance(ratio, (int, float)) or ratio < bars.send_rate_ratio
    if behind and not failures:
        # The chain kept up with all the harness could send: no evidence about the offered rate.
        step["harness_limited"] = True
        step["why"] = (f"the harness sent {_fmt(read['send_rate'])} tx/s of the {offered:g} tx/s offered "
                       f"(below {bars.send_rate_ratio:.0%}): it could not keep its schedule, so this "
                       "step says nothing about the chain")
        return step
    step["passed"] = not failures
    step["why"] = "; ".join(failures) or None
    if behind:   # the chain failed even at the lower rate the harness did send: that is the chain's
        step["why"] += (f" (at the {_fmt(read['send_rate'])} tx/s the harness did send of the {offered:g} "
                        "offered)")
    return step


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else "—"


def start_rate(program: Program) -> float:
    claimed = program.claims.rate(ROUND_NODES) if program.claims else None   # as the pressure round
    return max(1.0, claimed / 2) if claimed else program.profile.start_rate


def next_step(program: Program, steps: list[dict[str, Any]]) -> tuple[float, str] | None:
    """The next (rate, stage) the search runs after these steps, or None when it is done."""
    profile = program.profile
    if not steps:
        return start_rate(program), "ramp"
    searched = [s for s in steps if s["stage"] != "confirm"]
    passed = [s["offered"] for s in searched if s["passed"]]
    failed = [s["offered"] for s in searched if not s["passed"]]
    best = max(passed, default=None)
    confirms = [s for s in steps if s["stage"] == "confirm"]
    if confirms:                 # a short step's pass may not hold for the full length: step down
        last = confirms[-1]
        if last["passed"] or last["harness_limited"] or len(confirms) >= profile.confirm_attempts:
            return None
        lower = max((p for p in passed if p < last["offered"]), default=None)
        rate = lower if lower is not None else round(RETRY_SHARE * last["offered"], 2)
        return (rate, "confirm") if rate >= 1 else None
    if any(s["harness_limited"] for s in steps):   # no evidence above: confirm what was found
        return (best, "confirm") if best is not None else None
    lowest_fail = min((f for f in failed if best is None or f > best), default=None)
    ramp = [s for s in searched if s["stage"] == "ramp"]
    if lowest_fail is None:      # nothing failed yet: keep raising within the profile
        rate = profile.ramp_factor * steps[-1]["offered"]
        if len(ramp) < profile.ramp_steps and rate <= profile.max_rate:
            return rate, "ramp"
        return (best, "confirm") if best is not None else None
    if best is None:             # nothing passed: halve down from the first step
        rate = lowest_fail / 2
        if len(ramp) < profile.ramp_steps and rate >= 1:
            return rate, "ramp"
        return None
    bisect = [s for s in searched if s["stage"] == "bisect"]
    if len(bisect) < profile.bisect_steps and lowest_fail / best > CLOSE_ENOUGH:
        return round((best + lowest_fail) / 2, 2), "bisect"
    return best, "confirm"


def confirm_case(steps: list[dict[str, Any]]) -> str:
    """capacity-confirm, then capacity-confirm-2 … for the retries."""
    done = sum(1 for s in steps if s["stage"] == "confirm")
    return "capacity-confirm" if done == 0 else f"capacity-confirm-{done + 1}"


def judge(profile: Profile, nodes: int, steps: list[dict[str, Any]], bars: Criteria) -> dict[str, Any]:
    """results.json's certify.capacity from the judged steps."""
    searched = [s for s in steps if s["stage"] != "confirm"]
    confirms = [s for s in steps if s["stage"] == "confirm"]
    held = next((s for s in confirms if s["passed"]), None)
    passing = [s for s in searched if s["passed"]]
    best = max(passing, key=lambda s: s["offered"], default=None)
    capacity = held["offered"] if held else None
    # The knee: the step at the confirmed rate (a retry below every step is its own point).
    knee = (next((s for s in passing if s["offered"] == capacity), held) if held else best)
    limited = next((s for s in steps if s["harness_limited"]), None)
    failed_above = [s for s in searched if not s["passed"] and not s["harness_limited"]
                    and (best is None or s["offered"] > best["offered"])]
    limited_by = "harness" if limited else ("chain" if failed_above else "profile")
    unheld = [s for s in confirms if not s["passed"]]
    if best is None:
        why = ("no step passed: the chain kept none of the offered rates "
               f"({', '.join(format(s['offered'], 'g') for s in searched)} tx/s) within the criteria")
        if limited:
            why = f"no step passed before the harness itself fell behind: {limited['why']}"
    elif held is None:
        tried = ", ".join(f"{s['offered']:g} tx/s ({s['why'] or 'not run'})" for s in unheld) or "none ran"
        why = (f"the best step, {best['offered']:g} tx/s at {nodes} node(s), did not hold for a full-length "
               f"run — confirmation runs at {tried}: no capacity is certified")
    else:
        why = (f"measured capacity {capacity:g} tx/s at {nodes} node(s): the highest offered rate at which "
               f"success ≥ {bars.success_ratio:.0%}, commits kept pace with sends "
               f"(≥ {bars.commit_send_ratio:.0%}) "
               f"and p99 ≤ {bars.latency_p99_ms:g} ms, confirmed by a {profile.confirm_duration:g} s run")
        if unheld:
            why += ("; " + ", ".join(f"{s['offered']:g} tx/s" for s in unheld)
                    + f" passed a short step but not the full-length run ({unheld[0]['why']})")
        if limited_by == "harness":
            why += (f"; the search stopped because the harness could not send faster ({limited['why']}): "
                    f"the chain's capacity is at least {capacity:g} tx/s, not at most")
        elif limited_by == "profile":
            ramped = sum(1 for s in searched if s["stage"] == "ramp")
            limit = (f"its {ramped} ramp steps" if ramped >= profile.ramp_steps
                     else f"its highest rate ({profile.max_rate:g} tx/s)")
            why += (f"; nothing failed within the {profile.name} profile's search ({limit}): the capacity "
                    f"is at least {capacity:g} tx/s")
        else:
            why += f"; {min(s['offered'] for s in failed_above):g} tx/s failed"
    return {"nodes": nodes, "criteria": bars.entry(), "steps": steps,
            "capacity": capacity, "confirmed": held is not None, "limited_by": limited_by,
            "knee": knee["case"] if knee else None, "why": why}
