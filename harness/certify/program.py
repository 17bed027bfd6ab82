"""What a certification program is built from: the pack, the vendor's claims, the profile
and (once the search has run) the measured capacity. The rounds read only this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.certify.claims import Claims
from harness.chainpack import ChainPack

FORMAT = "bctest-certify/1"
ROUND_NODES = 4           # the CAICT rounds' node count; the capacity search runs here too


@dataclass(frozen=True)
class Profile:
    """How long and how thoroughly: quick is a vendor's self-check (minutes), full the
    certificate, smoke the shortest real program (quick's rounds, fewer and shorter runs;
    the tests of the paths around certify use it). Only full runs every round; rounds a
    quick or smoke run leaves out stay inconclusive (never not-applicable), so neither can
    ever show a clean grade."""

    name: str
    step_warmup: float        # capacity steps: seconds of load not measured
    step_duration: float      # … measured
    step_settle: float        # … waited for commits afterwards
    ramp_steps: int           # at most this many steps while raising the rate …
    ramp_factor: float        # … each this many times the last
    bisect_steps: int         # then this many halvings of the interval between pass and fail
    confirm_duration: float   # the full-length run at the capacity found …
    confirm_attempts: int     # … tried this many times, each lower than the last
    start_rate: float         # the first step when the vendor claims no rate
    max_rate: float           # the search never offers more (then limited_by "profile")
    round_duration: float     # pressure / spike rounds' measured seconds
    stability_duration: float
    security_budget: float    # seconds per probe


PROFILES = {
    "quick": Profile("quick", step_warmup=2, step_duration=8, step_settle=10, ramp_steps=4, ramp_factor=4,
                     bisect_steps=1, confirm_duration=15, confirm_attempts=2, start_rate=25, max_rate=2000,
                     round_duration=15, stability_duration=0, security_budget=45),
    "full": Profile("full", step_warmup=3, step_duration=20, step_settle=20, ramp_steps=8, ramp_factor=2,
                    bisect_steps=3, confirm_duration=60, confirm_attempts=3, start_rate=50, max_rate=20000,
                    round_duration=60, stability_duration=300, security_budget=120),
    # Still a search (two ramp steps, then a confirmation), the pressure round and the
    # probes, judged and signed: only shorter, for the tests of the queue and worker.
    "smoke": Profile("smoke", step_warmup=1, step_duration=4, step_settle=10, ramp_steps=2, ramp_factor=4,
                     bisect_steps=0, confirm_duration=6, confirm_attempts=1, start_rate=25, max_rate=400,
                     round_duration=6, stability_duration=0, security_budget=45),
}


@dataclass(frozen=True)
class Program:
    pack: ChainPack
    claims: Claims | None
    profile: Profile
    capacity: float | None = None     # measured by the search (tx/s), when it found one

    def fits(self, nodes: int) -> bool:
        """Whether the pack runs at this size."""
        return self.pack.min_nodes <= nodes and (self.pack.max_nodes is None or nodes <= self.pack.max_nodes)

    @property
    def round_nodes(self) -> int:
        """The rounds' network size: 4, or the pack's largest when it cannot run 4 (a
        single-node chain; certify refuses a multi-node consensus that cannot)."""
        if self.fits(ROUND_NODES):
            return ROUND_NODES
        return self.pack.max_nodes if self.pack.max_nodes is not None else self.pack.min_nodes

    @property
    def pressure_rate(self) -> float:
        """The pressure round's rate: the claimed one, else the measured capacity, else the
        profile's start rate (the round then says so)."""
        claimed = self.claims.rate(ROUND_NODES) if self.claims else None
        return claimed or self.capacity or self.profile.start_rate

    def rate_source(self) -> str:
        if self.claims and self.claims.rate(ROUND_NODES):
            return "the vendor's claimed rate"
        if self.capacity:
            return "the measured capacity"
        return "the profile's start rate (no claim, no capacity)"

    def params(self, **wanted: Any) -> dict[str, Any]:
        """Those parameters the pack declares (a vendor's pack may not know a reference
        chain's knobs); the rest are left to the pack's defaults."""
        return {k: v for k, v in wanted.items() if k in self.pack.params}

    @property
    def keeps_data(self) -> bool:
        return self.pack.data_dir is not None
