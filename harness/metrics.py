"""Figures computed from a History alone: per-phase counts, rates, latency percentiles,
a per-second time series, per-node views and the commit detector's own delay.

Definitions (docs/results.md):
  submitted    transactions of the phase actually sent (scheduled in the phase)
  committed    of those, how many reached the commit threshold of nodes by the end
  failed       of those, how many the node rejected or the request errored
  send_rate    submitted / phase length  (compare with target_rate)
  throughput   threshold commits that landed inside the phase window / phase length
  latency      commit time at the threshold share of nodes - submit time, from an
               HDR histogram (microsecond resolution, 3 significant digits)

The query phase (the read workload, after the Hyperledger PSWG's definitions):
  answered     queries whose reply held the thing asked for
  throughput   read throughput: answered / the phase's seconds, which run from the first
               scheduled query to the schedule's end or the last answer, whichever is later
  latency      read latency: answer time - submit time (the schedule lag, submit - due,
               is reported apart as on_time_ratio and send_lag_p99_ms)
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from harness.history import History
from harness.model import DROPPED, QueryRecord, TxRecord, threshold_nodes

MAX_LATENCY_US = 24 * 3600 * 1_000_000
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}


def commit_time(tx: TxRecord, threshold: int, nodes: Collection[int] | None = None) -> float | None:
    """When the threshold-th of `nodes` (None: any node) held the transaction (None if it
    never did). With a topology only the root tier's sightings count: the others are judged
    by the structure checks (harness/checks/supervision.py, freshness.py)."""
    seen = sorted(t for n, t, _ in tx.commits if nodes is None or n in nodes)
    if len(seen) < threshold:
        return None
    return seen[threshold - 1]


def commit_nodes(header: dict[str, Any]) -> tuple[int, ...]:
    """Whose holding a transaction commits it: the header's load.commit_nodes (the root tier
    of a topology), else every node (Histories written before commit nodes existed)."""
    given = (header.get("load") or {}).get("commit_nodes")
    if given:
        return tuple(int(i) for i in given)
    return tuple(range(len(header.get("nodes") or [])))


@dataclass(frozen=True)
class CommitRule:
    """When a transaction counts as committed: held by `threshold` of the commit nodes."""

    threshold: int
    nodes: frozenset[int]

    def time(self, tx: TxRecord) -> float | None:
        return commit_time(tx, self.threshold, self.nodes)


def commit_rule(header: dict[str, Any]) -> CommitRule:
    voters = commit_nodes(header)
    share = (header.get("load") or {}).get("commit_share", 1.0)
    return CommitRule(threshold_nodes(share, max(1, len(voters))), frozenset(voters))


def latency_summary(latencies_s: list[float]) -> dict[str, float | None]:
    keys = [*PERCENTILES, "max", "mean", "stddev", "min"]
    if not latencies_s:
        return {k: None for k in keys} | {"count": 0}
    histogram = HdrHistogram(1, MAX_LATENCY_US, 3)
    for seconds in latencies_s:
        histogram.record_value(min(MAX_LATENCY_US, max(1, int(round(seconds * 1e6)))))
    out: dict[str, Any] = {name: round(histogram.get_value_at_percentile(p) / 1000, 3)
                           for name, p in PERCENTILES.items()}
    out["max"] = round(histogram.get_max_value() / 1000, 3)
    out["min"] = round(histogram.get_min_value() / 1000, 3)
    out["mean"] = round(histogram.get_mean_value() / 1000, 3)
    out["stddev"] = round(histogram.get_stddev() / 1000, 3)
    out["count"] = histogram.get_total_count()
    return out


ON_TIME_S = 0.010  # the sender's own "late" threshold (harness/load/sender.py LATE_AFTER)


def window_names(header: dict[str, Any]) -> list[str]:
    """warmup, measure, then a load shape's named windows (step-1, spike, ...) the run reached."""
    shaped = [name for name in (header["load"].get("windows") or {})
              if name not in ("warmup", "measure", "query") and name in header["phases"]]
    return [name for name in ("warmup", "measure") if name in header["phases"]] + shaped


def phase_figures(history: History, phase: str, rule: CommitRule) -> dict[str, Any]:
    """One window's figures. warmup and measure take the txs marked so; a shape's named
    window takes those *scheduled* in it, whenever they were sent or committed, so a window
    is judged on what it asked of the chain (a spike's txs that commit late count in the
    spike, as late)."""
    start, end = history.header["phases"][phase]
    length = max(end - start, 1e-9)
    if phase in ("warmup", "measure"):
        txs = [tx for tx in history.txs if tx.phase == phase]
    else:
        txs = [tx for tx in history.txs if start <= tx.scheduled < end]
    sent = [tx for tx in txs if tx.submitted is not None and tx.error != DROPPED]
    failed = [tx for tx in sent if tx.error]
    latencies = []
    committed = 0
    for tx in sent:
        if tx.error:
            continue
        at = rule.time(tx)
        if at is not None:
            committed += 1
            latencies.append(at - tx.submitted)
    landed = 0
    for tx in history.txs:
        at = rule.time(tx) if not tx.error else None
        if at is not None and start <= at < end:
            landed += 1
    # the schedule's own target for the window (a shape's is planned / length), else the rate
    planned = (history.header["load"].get("windows") or {}).get(phase) or {}
    target = planned.get("target_rate", history.header["load"]["rate"])
    send_rate = len(sent) / length
    return {
        "window": [round(start, 6), round(end, 6)],
        "seconds": round(length, 3),
        "target_rate": target,
        "scheduled": len(txs),
        "submitted": len(sent),
        "committed": committed,
        "failed": len(failed),
        "dropped": sum(1 for tx in txs if tx.error == DROPPED),
        "unconfirmed": len(sent) - len(failed) - committed,
        "send_rate": round(send_rate, 3),
        "send_rate_ratio": round(send_rate / target, 4) if target else None,
        **schedule_lag(sent, len(txs)),
        "throughput": round(landed / length, 3),
        "success_ratio": round(committed / len(sent), 5) if sent else None,
        "latency": latency_summary(latencies),
        "errors": _top_errors(failed),
    }


def query_figures(history: History) -> dict[str, Any] | None:
    """The query phase's figures from its `query` lines; None when the run had none."""
    window = history.header.get("phases", {}).get("query")
    settings = history.header.get("query")
    if window is None or not settings:
        return None
    # The query warmup's reads were sent, and are in the History, but are not measured.
    start = window[0] + float(settings.get("warmup") or 0)
    end = window[1]
    queries = [q for q in history.queries if q.scheduled >= start - 1e-6]
    sent = [q for q in queries if q.submitted is not None and q.error != DROPPED]
    answered = [q for q in sent if not q.error and q.answered is not None]
    failed = [q for q in sent if q.error or q.answered is None]
    last = max((q.answered for q in answered), default=end)
    seconds = max(end, last) - start
    schedule = max(end - start, 1e-9)
    target = settings["rate"]
    send_rate = len(sent) / schedule
    return {
        "window": [round(start, 6), round(end, 6)],
        "seconds": round(seconds, 3),
        "kind": settings.get("kind", "tx"),
        "target_rate": target,
        "scheduled": len(queries),
        "submitted": len(sent),
        "answered": len(answered),
        "failed": len(failed),
        "dropped": sum(1 for q in queries if q.error == DROPPED),
        "send_rate": round(send_rate, 3),
        "send_rate_ratio": round(send_rate / target, 4) if target else None,
        **schedule_lag(sent, len(queries)),
        "throughput": round(len(answered) / seconds, 3) if seconds > 0 else 0.0,
        "success_ratio": round(len(answered) / len(sent), 5) if sent else None,
        "latency": latency_summary([q.answered - q.submitted for q in answered]),
        "errors": _top_errors(failed),
    }


def ledger_growth(history: History, committed: int) -> dict[str, Any] | None:
    """Bytes each node wrote from before the warmup to after the settle, per transaction the
    run committed (JR/T 0193-2020 §7.5 ledger growth). The network's figure is the median
    node's: one node's compaction or a restart's log should not decide it."""
    sampled = history.header.get("ledger")
    if not sampled:
        return None
    before, after = sampled.get("before") or {}, sampled.get("after") or {}
    added = {name: after[name] - before[name] for name in sorted(after)
             if after.get(name) is not None and before.get(name) is not None}
    per_tx = sorted(v / committed for v in added.values()) if committed else []
    return {"method": sampled.get("method"), "bytes_added": added, "committed": committed,
            "bytes_per_tx": round(per_tx[len(per_tx) // 2], 1) if per_tx else None}


def schedule_lag(sent: list[TxRecord] | list[QueryRecord], scheduled: int) -> dict[str, float | None]:
    """on_time_ratio: the share of the `scheduled` sends that left within 10 ms of their
    schedule (send_rate counts a late send as sent); send_lag_p99_ms: how late the p99 was."""
    on_time = sum(1 for s in sent if s.submitted - s.scheduled <= ON_TIME_S)
    lags = sorted(s.submitted - s.scheduled for s in sent)
    return {"on_time_ratio": round(on_time / scheduled, 4) if scheduled else None,
            "send_lag_p99_ms": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))] * 1000, 3)
            if lags else None}


def _top_errors(failed: list[TxRecord] | list[QueryRecord], limit: int = 5) -> list[dict[str, Any]]:
    counts: dict[str, int] = defaultdict(int)
    for tx in failed:
        counts[tx.error or ""] += 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:limit]
    return [{"error": error, "count": count} for error, count in ranked]


def timeseries(history: History, rule: CommitRule) -> list[dict[str, Any]]:
    """Per-second sent/committed/failed and the latency of what committed in that second."""
    end = max([w[1] for w in history.header["phases"].values()] + [0.0])
    seconds = int(math.ceil(end))
    sent = np.zeros(seconds + 1, dtype=np.int64)
    failed = np.zeros(seconds + 1, dtype=np.int64)
    committed = np.zeros(seconds + 1, dtype=np.int64)
    latencies: dict[int, list[float]] = defaultdict(list)
    for tx in history.txs:
        if tx.submitted is None or tx.error == DROPPED:
            continue
        second = min(seconds, max(0, int(tx.submitted)))
        sent[second] += 1
        if tx.error:
            failed[second] += 1
            continue
        at = rule.time(tx)
        if at is not None:
            bucket = min(seconds, max(0, int(at)))
            committed[bucket] += 1
            latencies[bucket].append((at - tx.submitted) * 1000)
    series = []
    for second in range(seconds + 1):
        values = latencies.get(second)
        series.append({
            "t": second, "sent": int(sent[second]), "committed": int(committed[second]),
            "failed": int(failed[second]),
            "p50_ms": round(float(np.percentile(values, 50)), 3) if values else None,
            "p99_ms": round(float(np.percentile(values, 99)), 3) if values else None,
        })
    return series


def node_figures(history: History, rule: CommitRule | None = None) -> list[dict[str, Any]]:
    by_node: dict[int, list] = defaultdict(list)
    for block in history.blocks:
        by_node[block.node].append(block)
    holds: dict[int, int] = defaultdict(int)
    for tx in history.txs:
        for node, _, _ in tx.commits:
            holds[node] += 1
    sampled = (history.footer.get("resources") or {}).get("nodes") or {}
    window = history.header["phases"].get("measure")
    roles = (history.header.get("topology") or {}).get("roles") or []
    lags = block_lags(history, rule or commit_rule(history.header)) if roles else {}
    out = []
    for index, node in enumerate(history.header["nodes"]):
        blocks = by_node.get(index, [])
        placed = {}
        if roles:   # a topology run: where the node sits, and how far behind the root tier
            placed = {"zone": zone_name(history.header, index),
                      "role": roles[index] if index < len(roles) else None,
                      "block_lag_ms": lag_summary([lag for _, _, lag in lags.get(index, [])])}
        out.append({
            **node,
            **placed,
            "blocks_seen": len(blocks),
            "head": max((b.number for b in blocks), default=None),
            "txs_held": holds.get(index, 0),
            "commit_method": history.footer.get("watch_methods", {}).get(node["name"]),
            "resources": resource_figures(sampled.get(node["name"]) or [], window),
        })
    return out


def zone_name(header: dict[str, Any], index: int) -> str | None:
    for zone in (header.get("topology") or {}).get("zones") or []:
        if index in zone.get("nodes", []):
            return zone["name"]
    return None


def first_sightings(history: History) -> dict[int, dict[int, float]]:
    """node -> height -> when its watcher first reported a block at that height (any hash)."""
    seen: dict[int, dict[int, float]] = defaultdict(dict)
    for b in history.blocks:
        heights = seen[b.node]
        if b.number not in heights or b.seen < heights[b.number]:
            heights[b.number] = b.seen
    return seen


def root_times(history: History, rule: CommitRule,
               sightings: dict[int, dict[int, float]] | None = None) -> dict[int, float]:
    """height -> when the commit nodes (a topology's root tier) had it: the threshold-th
    commit node's first sighting, the same rule a transaction's commit follows."""
    sightings = first_sightings(history) if sightings is None else sightings
    by_height: dict[int, list[float]] = defaultdict(list)
    for node in rule.nodes:
        for height, at in sightings.get(node, {}).items():
            by_height[height].append(at)
    return {h: sorted(times)[rule.threshold - 1] for h, times in by_height.items()
            if len(times) >= rule.threshold}


def block_lags(history: History, rule: CommitRule) -> dict[int, list[tuple[int, float, float]]]:
    """node -> [(height, root time, lag s)]: how long after the root tier each node first saw
    each height the root tier reached (negative: the node saw it before the threshold-th
    root node did)."""
    sightings = first_sightings(history)
    roots = root_times(history, rule, sightings)
    return {node: [(h, roots[h], at - roots[h]) for h, at in sorted(heights.items()) if h in roots]
            for node, heights in sightings.items()}


def zone_figures(history: History, rule: CommitRule) -> dict[str, dict[str, Any]] | None:
    """Per zone of submission (the zone of the node each transaction was sent to), the
    measure window's submitted, committed and latency; None without a topology."""
    topology = history.header.get("topology")
    window = history.header["phases"].get("measure")
    if not topology or window is None:
        return None
    names = [n.get("name", f"node{i}") for i, n in enumerate(history.header["nodes"])]
    names += [f"node{i}" for i in range(len(names), sum(len(z.get("nodes", [])) for z in topology["zones"]))]
    zone_of = {i: zone["name"] for zone in topology.get("zones") or [] for i in zone.get("nodes", [])}
    sent: dict[str, int] = defaultdict(int)
    failed: dict[str, int] = defaultdict(int)
    latencies: dict[str, list[float]] = defaultdict(list)
    for tx in history.txs:
        if tx.phase != "measure" or tx.submitted is None or tx.error == DROPPED:
            continue
        zone = zone_of.get(tx.node)
        if zone is None:
            continue
        sent[zone] += 1
        if tx.error:
            failed[zone] += 1
            continue
        at = rule.time(tx)
        if at is not None:
            latencies[zone].append(at - tx.submitted)
    return {zone["name"]: {"tier": zone.get("tier"), "parent": zone.get("parent"),
                           "nodes": [names[i] for i in zone.get("nodes", [])],
                           "submitted": sent[zone["name"]], "failed": failed[zone["name"]],
                           "committed": len(latencies[zone["name"]]),
                           "latency": latency_summary(latencies[zone["name"]])}
            for zone in topology.get("zones") or []}


def resource_figures(samples: list[list[float]], window: list[float] | None) -> dict[str, Any] | None:
    """CPU (% of one core), peak memory and network bytes of one node over the measure
    window, from [t, cpu_seconds, memory_bytes, rx_bytes, tx_bytes] samples."""
    inside = [s for s in samples if window is None or window[0] <= s[0] <= window[1]]
    if len(inside) < 2:
        return None
    steps = [(b[1] - a[1]) / (b[0] - a[0]) * 100 for a, b in zip(inside, inside[1:], strict=False)
             if b[0] > a[0] and b[1] >= a[1]]  # a restart resets the counters: skip that step
    first, last = inside[0], inside[-1]
    return {
        "cpu_mean_percent": round(float(np.mean(steps)), 1) if steps else None,
        "cpu_max_percent": round(float(np.max(steps)), 1) if steps else None,
        "memory_max_mb": round(max(s[2] for s in inside) / 2**20, 1),
        "rx_mb": round(max(0, last[3] - first[3]) / 2**20, 2),
        "tx_mb": round(max(0, last[4] - first[4]) / 2**20, 2),
        "samples": len(inside),
    }


def cpu_series(history: History) -> dict[str, list[list[float]]]:
    """Per node, [t, CPU % of one core] between consecutive samples (for the report chart)."""
    sampled = (history.footer.get("resources") or {}).get("nodes") or {}
    return {name: [[round(b[0], 3), round((b[1] - a[1]) / (b[0] - a[0]) * 100, 1)]
                   for a, b in zip(rows, rows[1:], strict=False) if b[0] > a[0] and b[1] >= a[1]]
            for name, rows in sampled.items()}


def detection_figures(history: History) -> dict[str, Any]:
    """How long the commit detector itself took: block body fetch after the head notice,
    and the gap between a block's own timestamp and the moment the harness saw it."""
    fetch = [(b.fetched - b.seen) * 1000 for b in history.blocks]
    t0_wall = history.header["t0_wall"]
    lag = [(t0_wall + b.seen - b.timestamp) * 1000 for b in history.blocks
           if b.timestamp is not None]
    return {
        "methods": history.footer.get("watch_methods", {}),
        "fetch_delay_ms": _spread(fetch),
        "seen_after_block_timestamp_ms": _spread(lag),
        "note": "block timestamps have one-second resolution on most chains",
    }


def lag_summary(lags_s: list[float]) -> dict[str, Any]:
    """p50 / p99 / max in ms of lags in seconds, a lag below zero (ahead of the root tier)
    counted as none."""
    if not lags_s:
        return {"p50": None, "p99": None, "max": None, "count": 0}
    values = np.maximum(np.array(lags_s, dtype=float), 0.0) * 1000
    return {"p50": round(float(np.percentile(values, 50)), 3),
            "p99": round(float(np.percentile(values, 99)), 3),
            "max": round(float(np.max(values)), 3), "count": len(lags_s)}


def _spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p99": None, "max": None}
    return {"mean": round(float(np.mean(values)), 3),
            "p99": round(float(np.percentile(values, 99)), 3),
            "max": round(float(np.max(values)), 3)}


def compute(history: History) -> dict[str, Any]:
    header = history.header
    rule = commit_rule(header)
    phases = {name: phase_figures(history, name, rule) for name in window_names(header)}
    query = query_figures(history)
    if query is not None:
        phases["query"] = query
    return {
        "threshold_nodes": rule.threshold,
        "commit_nodes": sorted(rule.nodes),
        "phases": phases,
        "timeseries": timeseries(history, rule),
        "nodes": node_figures(history, rule),
        "zones": zone_figures(history, rule),
        "cpu": cpu_series(history),
        "commit_detection": detection_figures(history),
    }
