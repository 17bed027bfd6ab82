"""The metrics a requirement's threshold can name, and where each is read in results.json.

A metric this harness does not measure yet is still listed (so a catalogue may cite the
requirement) with the reason; a requirement on it is judged inconclusive, never passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from harness import security
from harness.checks import correctness
from harness.model import SEVERITIES

Value = float | str | None


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    description: str
    read: Callable[[dict[str, Any]], Value] | None   # None: not measured by this harness
    missing: str = ""                                # why, when `read` is None


def _phase(field: str, window: str = "measure") -> Callable[[dict[str, Any]], Value]:
    """A figure of one window of the load: `measure`, or a load shape's named window."""
    def read(results: dict[str, Any]) -> Value:
        return ((results.get("phases") or {}).get(window) or {}).get(field)
    return read


def _latency(stat: str) -> Callable[[dict[str, Any]], Value]:
    def read(results: dict[str, Any]) -> Value:
        return (((results.get("phases") or {}).get("measure") or {}).get("latency") or {}).get(stat)
    return read


def _query(field: str) -> Callable[[dict[str, Any]], Value]:
    """A figure of the query phase (the read workload); None when the run had none."""
    def read(results: dict[str, Any]) -> Value:
        return ((results.get("phases") or {}).get("query") or {}).get(field)
    return read


def _query_latency(stat: str) -> Callable[[dict[str, Any]], Value]:
    def read(results: dict[str, Any]) -> Value:
        return ((((results.get("phases") or {}).get("query") or {}).get("latency")) or {}).get(stat)
    return read


def _topology(field: str) -> Callable[[dict[str, Any]], Value]:
    def read(results: dict[str, Any]) -> Value:
        return (results.get("topology") or {}).get(field)
    return read


def _checker(checker_id: str) -> Callable[[dict[str, Any]], Value]:
    def read(results: dict[str, Any]) -> Value:
        found = next((c for c in results.get("checkers") or [] if c["id"] == checker_id), None)
        return None if found is None else found["verdict"]
    return read


def _commit_send_ratio(results: dict[str, Any]) -> Value:
    measure = (results.get("phases") or {}).get("measure") or {}
    sent, throughput = measure.get("send_rate"), measure.get("throughput")
    if not sent or throughput is None:
        return None
    return round(throughput / sent, 4)


def _convergence_seconds(results: dict[str, Any]) -> Value:
    found = next((c for c in results.get("checkers") or [] if c["id"] == "convergence"), None)
    return None if found is None else found["evidence"].get("time_to_converge")


def _recovery_ratio(results: dict[str, Any]) -> Value:
    """The worst post-heal / pre-fault commit-rate ratio over the run's faults."""
    found = next((c for c in results.get("checkers") or [] if c["id"] == "liveness"), None)
    ratios = [f["ratio"] for f in (found or {}).get("evidence", {}).get("faults", [])
              if f.get("ratio") is not None]
    return min(ratios) if ratios else None


def _audit(check: str) -> Callable[[dict[str, Any]], Value]:
    def read(results: dict[str, Any]) -> Value:
        return ((results.get("audit") or {}).get(check) or {}).get("verdict")
    return read


_FIXED: list[Metric] = [
    Metric("throughput", "tx/s", "transactions committed (threshold share of nodes) per second "
           "of the measure window", _phase("throughput")),
    Metric("send_rate", "tx/s", "transactions submitted per second of the measure window",
           _phase("send_rate")),
    Metric("send_rate_ratio", "ratio", "send rate ÷ target rate (the harness kept its schedule)",
           _phase("send_rate_ratio")),
    Metric("on_time_ratio", "ratio", "share of the window's transactions sent within 10 ms of their "
           "schedule (the offered load was the target rate)", _phase("on_time_ratio")),
    Metric("commit_send_ratio", "ratio", "throughput ÷ send rate (≈ 1: the chain keeps up)",
           _commit_send_ratio),
    Metric("success_ratio", "ratio", "committed ÷ submitted", _phase("success_ratio")),
    Metric("committed", "tx", "transactions committed", _phase("committed")),
    # The spike round judges its `spike` window (a spike load shape), not the calm around it.
    Metric("spike_success_ratio", "ratio", "committed ÷ submitted of the transactions scheduled in "
           "the load shape's spike window", _phase("success_ratio", "spike")),
    Metric("spike_send_rate_ratio", "ratio", "send rate ÷ target rate in the spike window (the "
           "harness kept the spike's schedule)", _phase("send_rate_ratio", "spike")),
    Metric("failed", "tx", "transactions rejected or errored", _phase("failed")),
    *[Metric(f"latency_{s}", "ms", f"commit latency {s} (submit → threshold commit)", _latency(s))
      for s in ("p50", "p90", "p95", "p99", "max", "mean")],
    Metric("time_to_ready", "s", "from container start until every node is ready",
           lambda r: r.get("time_to_ready_seconds")),
    Metric("node_count", "nodes", "nodes in the network", lambda r: r.get("node_count")),
    Metric("convergence_seconds", "s", "from the last heal until every node shares a new block",
           _convergence_seconds),
    Metric("recovery_ratio", "ratio", "worst post-fault ÷ pre-fault commit rate", _recovery_ratio),
    *[Metric(f"audit_{c}", "verdict", f"authenticity audit: {c.replace('_', ' ')}", _audit(c))
      for c in ("hash_links", "signatures", "replication")],
    Metric("query_throughput", "queries/s", "read throughput: queries answered (with the thing "
           "asked for) per second of the query phase", _query("throughput")),
    Metric("query_success_ratio", "ratio", "queries answered ÷ queries sent", _query("success_ratio")),
    Metric("query_send_rate_ratio", "ratio", "query send rate ÷ target rate",
           _query("send_rate_ratio")),
    *[Metric(f"query_latency_{s}", "ms", f"read latency {s} (submit → answer)", _query_latency(s))
      for s in ("p50", "p99")],
    Metric("ledger_growth_bytes_per_tx", "bytes", "ledger bytes added per transaction (median node)",
           lambda r: (r.get("ledger") or {}).get("bytes_per_tx")),
    # A three-tier run's structure (docs/topology.md): whole-run figures, absent without a topology
    Metric("supervision_completeness", "ratio", "share of (committed tx, management node) pairs the "
           "management nodes held by the end of the run", _topology("supervision_completeness")),
    Metric("supervision_lag_p99_ms", "ms", "p99 of management sighting − commit time, outside faults "
           "on that node", _topology("supervision_lag_p99_ms")),
    Metric("application_lag_p99_ms", "ms", "the worst application node's p99 block lag behind the "
           "root tier, outside faults on it", _topology("application_lag_p99_ms")),
]


def _probe(probe_id: str) -> Callable[[dict[str, Any]], Value]:
    def read(results: dict[str, Any]) -> Value:
        found = next((p for p in (results.get("security") or {}).get("probes", [])
                      if p["probe"] == probe_id), None)
        return None if found is None else found["verdict"]
    return read


def _findings(severity: str) -> Callable[[dict[str, Any]], Value]:
    def read(results: dict[str, Any]) -> Value:
        security = results.get("security")
        return None if security is None else security["findings"][severity]
    return read


def _security_metrics() -> list[Metric]:
    """security_<probe>: one per probe (harness/security/probes/), plus findings by severity."""
    return [*[Metric(f"security_{p}", "verdict", f"the {p} security probe's verdict (pass / fail / "
                     "unknown / not-applicable)", _probe(p)) for p in security.probe_ids()],
            *[Metric(f"security_findings_{s}", "findings", f"failed probe attempts of {s} severity",
                     _findings(s)) for s in SEVERITIES]]


def _checker_metrics() -> list[Metric]:
    """checker_<id>: one per registered checker (harness/checks/correctness.py)."""
    return [Metric(f"checker_{c}", "verdict", f"the {c} checker's verdict (pass / fail / unknown)",
                   _checker(c)) for c in correctness.registry()]


class _Metrics(Mapping[str, Metric]):
    """Every metric by name; the checker metrics follow the registry when it changes."""

    def _all(self) -> dict[str, Metric]:
        return {m.name: m for m in [*_FIXED[:_CHECKERS_AT], *_checker_metrics(), *_FIXED[_CHECKERS_AT:],
                                    *_security_metrics()]}

    def __getitem__(self, name: str) -> Metric:
        return self._all()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


_CHECKERS_AT = next(i for i, m in enumerate(_FIXED) if m.name == "convergence_seconds")
METRICS: Mapping[str, Metric] = _Metrics()


def read(name: str, results: dict[str, Any]) -> tuple[Value, str | None]:
    """(value, why missing): value None with a reason when it cannot be had from this run."""
    metric = METRICS[name]
    if metric.read is None:
        return None, f"{name}: {metric.missing}"
    value = metric.read(results)
    if value is None:
        if name.startswith("security_") and not results.get("security"):
            return None, (f"{name} was not measured in this run (no security probes: the suite "
                          "has no `security:` section)")
        if name.startswith("query_") and not (results.get("phases") or {}).get("query"):
            return None, (f"{name} was not measured in this run (no query phase: the suite has "
                          "no `query:` section)")
        return None, f"{name} was not measured in this run"
    return value, None
