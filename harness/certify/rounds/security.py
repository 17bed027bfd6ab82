"""Every security probe that applies to the family (harness/security/probes/)."""

from __future__ import annotations

from typing import Any

from harness.certify.program import Program

ID = "security"
ORDER = 110
PROFILES = ("smoke", "quick", "full")
TITLE = {"en": "Security probes", "zh": "安全探测"}


def applies(program: Program) -> str | None:
    return None   # a probe that cannot apply to the family says so itself (not-applicable)


def suite(program: Program) -> dict[str, Any]:
    return {"description": "security probes: exposure, transaction validity, replay, malformed RPC, "
                           "flood, equivocation",
            "nodes": program.round_nodes, "seed": 1,
            "load": {"rate": 20, "warmup": 2, "duration": 10, "settle": 20},
            "security": {"budget": program.profile.security_budget, "liveness": 20}}
