"""CAICT spike round at 4 nodes: a calm baseline, about twice the pressure rate briefly, then
the baseline again (load shape `spike`). The catalogue judges the spike window itself
(`spike_success_ratio`), so a calm before and after cannot dilute a spike the chain dropped."""

from __future__ import annotations

from typing import Any

from harness.certify.program import Program
from harness.certify.rounds import _common

ID = "spike-4"
ORDER = 30
PROFILES = ("full",)
TITLE = {"en": "Spike round, 4 nodes, twice the pressure rate", "zh": "4 节点峰值轮（两倍压力速率）"}

BASELINE_SHARE = 0.5     # of the pressure rate, before and after the spike
SPIKE_SHARE = 2.0        # CAICT: about twice the pressure rate
CALM, SPIKE = 10, 20     # seconds of baseline before (and after) the spike; of the spike


def applies(program: Program) -> str | None:
    return _common.needs_nodes(program, 4)


def suite(program: Program) -> dict[str, Any]:
    baseline = round(BASELINE_SHARE * program.pressure_rate, 2)
    rate = round(SPIKE_SHARE * program.pressure_rate, 2)
    shape = {"kind": "spike", "baseline": baseline, "rate": rate, "start": CALM, "length": SPIKE,
             "duration": 2 * CALM + SPIKE}
    kept = {**_common.HARNESS_KEPT_RATE, "id": "harness kept the spike's rate", "phase": "spike"}
    return {"description": f"spike round, 4 nodes, {baseline:g} tx/s with {rate:g} tx/s for {SPIKE} s",
            "nodes": 4, "seed": 12, "load": {"shape": shape, "warmup": 3, "settle": 30},
            "checks": [kept]}
