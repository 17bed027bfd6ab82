"""The vendor's claims (claims.yaml): what it says its chain does, each judged by a round.

A claim only ever sets what is tested (the pressure round runs at the claimed rate) and
what is compared; it never moves a catalogue threshold. A vendor who claims nothing is
still certified against the catalogues; its capacity is measured either way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.validation import load_and_validate


@dataclass(frozen=True)
class Claims:
    throughput: dict[int, float]          # node count -> tx/s
    latency_p99_ms: float | None
    fault_tolerance: int | None           # f at 4 nodes
    sha256: str

    def rate(self, nodes: int) -> float | None:
        return self.throughput.get(nodes)

    def entry(self) -> dict[str, Any]:
        """As results.json's certify.claims records it."""
        return {"throughput": {str(n): r for n, r in sorted(self.throughput.items())},
                "latency_p99_ms": self.latency_p99_ms,
                "fault_tolerance": {"4": self.fault_tolerance} if self.fault_tolerance is not None else {},
                "sha256": self.sha256}


def load(path: Path) -> Claims:
    doc = load_and_validate(path, "claims")
    throughput = {4: float(doc["throughput"])} if "throughput" in doc else {}
    if "throughput_16" in doc:
        throughput[16] = float(doc["throughput_16"])
    return Claims(throughput=throughput,
                  latency_p99_ms=float(doc["latency_p99_ms"]) if "latency_p99_ms" in doc else None,
                  fault_tolerance=doc.get("fault_tolerance"),
                  sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def from_entry(entry: dict[str, Any] | None) -> Claims | None:
    """The claims as certify.json stored them (the judge never reads claims.yaml again)."""
    if not entry:
        return None
    tolerance = (entry.get("fault_tolerance") or {}).get("4")
    return Claims(throughput={int(n): float(r) for n, r in (entry.get("throughput") or {}).items()},
                  latency_p99_ms=entry.get("latency_p99_ms"), fault_tolerance=tolerance,
                  sha256=entry.get("sha256", ""))
