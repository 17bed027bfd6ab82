"""Judging a three-tier run from its History (docs/topology.md): commit time over the root
tier only, per-zone figures, the supervision and freshness checkers, the structure metrics
of `checks:`, and the same History re-judged through results.json."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import numpy as np
import pytest

from harness import history as hist
from harness import metrics, results
from harness.adapters.base import Block
from harness.checks import chain, correctness, freshness, supervision, thresholds
from harness.history import BlockRecord, FaultRecord, FinalChain, History, TxRecord
from harness.topology import Link, LinkProfile, Topology, Zone
from harness.tracker import CommitTracker

# node0, node1: province-a (root); node2: national (management); node3: region-1, node4:
# region-2 (application, below province-a)
TOPOLOGY = Topology(zones=(
    Zone("province-a", "root", (0, 1)),
    Zone("national", "management", (2,)),
    Zone("region-1", "application", (3,), parent="province-a"),
    Zone("region-2", "application", (4,), parent="province-a"),
), links=(Link(("application", "root"), LinkProfile(delay_ms=20, jitter_ms=2)),
          Link(("root", "management"), LinkProfile(delay_ms=40))))
ROOT, MANAGER, APPS = (0, 1), 2, (3, 4)


def header(topology: bool = True, share: float = 1.0, settle: tuple[float, float] = (20.0, 25.0),
           links_applied: dict[str, Any] | None = None) -> dict[str, Any]:
    h: dict[str, Any] = {
        "run_id": "topo", "harness": {"version": "test"},
        "suite": {"name": "topology-test", "path": "suites/x.yaml", "sha256": "0" * 64, "description": ""},
        "chain": {"name": "cometbft", "version": "0.38", "family": "cometbft", "consensus": "bft",
                  "chain_id": "c", "manifest_sha256": "0" * 64, "image": {"tag": "t", "id": "i"},
                  "params": {}},
        "host": {"hostname": "test", "cpus": 2}, "started_at": "2026-11-30T00:00:00+00:00", "t0_wall": 1.0e9,
        "nodes": [{"name": f"node{i}", "ready_seconds": 1.0, "log": f"logs/node{i}.log"} for i in range(5)],
        "time_to_ready_seconds": 1.0,
        "load": {"rate": 10.0, "warmup": 0.0, "duration": 20.0, "settle": 5.0, "commit_share": share,
                 "seed": 1, "nodes": list(APPS), "workers": 1, "accounts": 8},
        "checks": [], "faults": [], "checkers": {},
        "fault_model": {"kind": "bft", "nodes": 2, "f": 0}, "standards": [],
        "phases": {"warmup": [0.0, 0.0], "measure": [0.0, 20.0], "settle": list(settle)},
    }
    if topology:
        h["load"]["commit_nodes"] = list(ROOT)
        h["topology"] = {**TOPOLOGY.header(), "links_applied": links_applied}
    return h


def tx(i: int, node: int, submitted: float, commits: list[tuple[int, float, int]]) -> TxRecord:
    return TxRecord(i=i, id=f"0x{i:04x}", phase="measure", node=node, scheduled=submitted,
                    submitted=submitted, acked=submitted + 0.01, error=None, commits=commits)


def everywhere(i: int, node: int, at: float, height: int, manager_lag: float = 0.5,
               app_lag: float = 0.3, root_spread: float = 0.1) -> TxRecord:
    """A tx submitted at `at` to `node`, in block `height`: the root tier holds it 1 s later
    (its second root node `root_spread` after the first), the manager and the regions later."""
    first = at + 1.0
    committed = first + root_spread
    return tx(i, node, at, [(0, first, height), (1, committed, height),
                            (MANAGER, committed + manager_lag, height),
                            *[(a, committed + app_lag, height) for a in APPS]])


def chain_blocks(heights: range, app_lag: float = 0.3, manager_lag: float = 0.5,
                 skip: dict[int, set[int]] | None = None,
                 late: dict[int, dict[int, float]] | None = None) -> list[BlockRecord]:
    """Height h at h + 1.0 on node0, h + 1.1 on node1 (the root tier has it at h + 1.1),
    the manager and the regions after their lag; `skip` drops a node's heights, `late`
    gives a node's sighting of a height explicitly."""
    skip, late = skip or {}, late or {}
    out = []
    for h in heights:
        root = h + 1.1
        seen = {0: h + 1.0, 1: root, MANAGER: root + manager_lag, **{a: root + app_lag for a in APPS}}
        for node, at in seen.items():
            if h in skip.get(node, set()):
                continue
            at = late.get(node, {}).get(h, at)
            out.append(BlockRecord(node=node, number=h, hash=f"h{h}", parent=f"h{h - 1}", seen=at,
                                   fetched=at + 0.01, timestamp=None, txs=1))
    return out


def finals(tip: int, at: float = 26.0, holds: dict[int, list[int]] | None = None) -> list[FinalChain]:
    return [FinalChain(node=n, at=at, chain=[(h, f"h{h}") for h in range(1, tip + 1)],
                       holds=(holds or {}).get(n, []), error=None) for n in range(5)]


def steady(n: int = 20, **kw: Any) -> list[TxRecord]:
    return [everywhere(k, APPS[k % 2], 0.5 + k * 0.5, 1 + k // 2, **kw) for k in range(n)]


def run(module: Any, history: History, **config: Any) -> dict[str, Any]:
    result = correctness.run_checker(correctness.registry()[module.ID], history,
                                     {**module.DEFAULTS, **config})
    json.dumps(result)
    assert result["verdict"] != "pass" or result["why"] is None
    if result["verdict"] != "pass":
        assert result["why"], result
    return result


# ---------------------------------------------------------------- commit time over commit nodes


def test_commit_time_counts_only_the_commit_nodes():
    record = tx(0, 3, 0.0, [(3, 0.4, 1), (2, 0.6, 1), (0, 1.0, 1), (1, 1.5, 1)])
    assert metrics.commit_time(record, 2) == 0.6                 # any two nodes
    assert metrics.commit_time(record, 2, {0, 1}) == 1.5         # the root tier's two
    assert metrics.commit_time(record, 3, {0, 1}) is None
    rule = metrics.commit_rule(header())
    assert (rule.threshold, rule.nodes) == (2, frozenset(ROOT))
    assert rule.time(record) == 1.5


def test_an_old_history_without_commit_nodes_commits_on_every_node():
    old = header(topology=False)
    assert "commit_nodes" not in old["load"]
    rule = metrics.commit_rule(old)
    assert (rule.threshold, rule.nodes) == (5, frozenset(range(5)))
    record = everywhere(0, 3, 0.0, 1)
    assert rule.time(record) == pytest.approx(1.1 + 0.5)          # the manager, last of five
    half = metrics.commit_rule(header(topology=False, share=0.4))
    assert half.threshold == 2 and half.time(record) == pytest.approx(1.1)
    history = History(header=old, txs=[record])
    assert chain.commit_times(history) == {0: pytest.approx(1.6)}


def test_the_judge_commits_on_the_root_tier_however_slow_the_other_tiers_are():
    slow = [everywhere(k, 3, float(k), k + 1, manager_lag=30.0, app_lag=30.0) for k in range(5)]
    history = History(header=header(), txs=slow)
    assert chain.commit_times(history) == {k: pytest.approx(k + 1.1) for k in range(5)}
    figures = metrics.compute(history)
    assert figures["threshold_nodes"] == 2 and figures["commit_nodes"] == [0, 1]
    measure = figures["phases"]["measure"]
    assert measure["committed"] == 5 and measure["latency"]["max"] == pytest.approx(1100, rel=1e-2)
    assert sum(s["committed"] for s in figures["timeseries"]) == 5


def test_the_live_tracker_commits_on_the_commit_nodes_only():
    tracker = CommitTracker(["0xa"], nodes=5, share=1.0, commit_nodes=ROOT)
    assert tracker.threshold == 2

    def block(node: int, seen: float, number: int = 1, hash: str = "x", txs: tuple[str, ...] = ("0xa",)
              ) -> Block:
        return Block(node=node, number=number, hash=f"{hash}{node}", parent="p", seen=seen,
                     fetched=seen, tx_ids=txs)
    for node, seen in ((2, 0.5), (3, 0.6), (4, 0.7), (0, 1.0)):
        tracker.on_block(block(node, seen))
    assert tracker.committed == 0 and tracker.holders[0] == 1
    assert tracker.seen[0, 2] == 0.5           # the manager's sighting is kept for the History
    tracker.on_block(block(1, 1.2))
    assert tracker.committed == 1 and tracker.committed_at[0] == 1.2
    tracker.on_block(block(3, 2.0, hash="y", txs=()))   # a region replaces its block: commits stay
    assert tracker.committed == 1 and tracker.withdrawn == 1 and np.isnan(tracker.seen[0, 3])
    tracker.on_block(block(1, 3.0, hash="y", txs=()))   # a root node does: no longer committed
    assert tracker.committed == 0 and np.isnan(tracker.committed_at[0])
    everyone = CommitTracker(["0xa"], nodes=3, share=1.0)   # no commit nodes given: all
    assert everyone.threshold == 3


# ---------------------------------------------------------------- per-zone figures


def test_zone_figures_by_zone_of_submission():
    txs = steady(20)
    txs.append(tx(99, 3, 19.0, [(2, 20.0, 30)]))                 # never reached the root tier
    failed = tx(98, 4, 5.0, [])
    failed.error = "refused"
    txs.append(failed)
    zones = metrics.compute(History(header=header(), txs=txs))["zones"]
    assert list(zones) == ["province-a", "national", "region-1", "region-2"]
    assert zones["region-1"] | {"latency": None} == {
        "tier": "application", "parent": "province-a", "nodes": ["node3"], "submitted": 11,
        "failed": 0, "committed": 10, "latency": None}
    region2 = zones["region-2"]
    assert (region2["submitted"], region2["failed"], region2["committed"]) == (11, 1, 10)
    assert zones["region-1"]["latency"]["p50"] == pytest.approx(1100, rel=1e-2)
    assert zones["province-a"]["submitted"] == 0 and zones["province-a"]["latency"]["p50"] is None
    assert metrics.compute(History(header=header(topology=False), txs=txs))["zones"] is None


def test_node_figures_carry_zone_role_and_block_lag_behind_the_root_tier():
    history = History(header=header(), blocks=chain_blocks(range(1, 11), app_lag=0.3, manager_lag=0.5))
    nodes = metrics.compute(history)["nodes"]
    assert [(n["zone"], n["role"]) for n in nodes] == [
        ("province-a", "root"), ("province-a", "root"), ("national", "management"),
        ("region-1", "application"), ("region-2", "application")]
    assert nodes[3]["block_lag_ms"] == {"p50": pytest.approx(300), "p99": pytest.approx(300),
                                        "max": pytest.approx(300), "count": 10}
    assert nodes[0]["block_lag_ms"]["max"] == 0      # ahead of the root tier counts as none
    assert "zone" not in metrics.compute(History(header=header(topology=False)))["nodes"][0]


# ---------------------------------------------------------------- supervision


def supervised(**kw: Any) -> History:
    return History(header=header(), txs=steady(20, **kw), blocks=chain_blocks(range(1, 11)),
                   finals=finals(10))


def test_supervision_passes_when_the_manager_holds_every_commit_soon():
    result = run(supervision, supervised(manager_lag=0.5))
    assert result["verdict"] == "pass"
    e = result["evidence"]
    assert (e["committed"], e["held"], e["pairs"], e["completeness"]) == (20, 20, 20, 1.0)
    assert e["lag_ms"]["p99"] == pytest.approx(500) and e["management_nodes"] == ["node2"]
    assert e["missing_count"] == 0 and e["per_node"]["node2"]["held"] == 20


def test_supervision_fails_on_a_committed_transaction_the_manager_never_held():
    history = supervised()
    history.txs[3].commits = [c for c in history.txs[3].commits if c[0] != MANAGER]
    result = run(supervision, history)
    assert result["verdict"] == "fail"
    assert result["evidence"]["missing"] == [{"tx": 3, "id": "0x0003", "node": "node2",
                                              "committed_at": pytest.approx(3.1)}]
    assert result["evidence"]["completeness"] == pytest.approx(19 / 20)
    assert "tx 3" in result["why"] and "node2" in result["why"]
    # ... unless the final read shows the manager holds it after all
    history.finals = finals(10, holds={MANAGER: [3]})
    result = run(supervision, history)
    assert result["verdict"] == "pass" and result["evidence"]["held_in_final_read_only"] == 1


def test_supervision_fails_when_the_manager_lags_beyond_the_bound():
    result = run(supervision, supervised(manager_lag=12.0), bound=10)
    assert result["verdict"] == "fail" and "p99 lag" in result["why"]
    assert result["evidence"]["late"] == 20
    assert run(supervision, supervised(manager_lag=12.0), bound=15)["verdict"] == "pass"


def test_supervision_is_unknown_without_a_management_node_or_too_close_to_the_end():
    no_topology = History(header=header(topology=False), txs=steady(4))
    assert "no topology" in run(supervision, no_topology)["why"]
    h = header()
    h["topology"]["zones"] = [z for z in h["topology"]["zones"] if z["tier"] != "management"]
    assert "no management node" in run(supervision, History(header=h, txs=steady(4)))["why"]
    # the last transaction committed 2 s before the watchers and the final read stopped
    history = supervised()
    history.txs[-1].commits = [c for c in history.txs[-1].commits if c[0] != MANAGER]
    history.finals = finals(10, at=history.txs[-1].commits[1][1] + 2.0)
    history.header["phases"]["settle"] = [20.0, 13.0]
    result = run(supervision, history)
    assert result["verdict"] == "unknown" and result["evidence"]["pending_count"] == 1


def test_supervision_leaves_out_the_lag_while_a_fault_cut_the_manager():
    history = supervised()
    for record in history.txs[2:15]:   # committed 2.6 .. 8.6 s; the manager is cut 3-9 s
        record.commits = [(n, 9.5 if n == MANAGER else t, b) for n, t, b in record.commits]
    history.faults = [FaultRecord(id="national-cut", action="partition", nodes=[MANAGER], start=3.0,
                                  end=9.0, status="healed", method="test", groups=[[0, 1, 3, 4], [2]])]
    result = run(supervision, history, bound=5)
    assert result["verdict"] == "pass", result["why"]
    assert result["evidence"]["excluded_during_faults"] == 13 and result["evidence"]["lag_ms"]["count"] == 7
    history.faults = []   # the same lags without the fault that explains them
    assert run(supervision, history, bound=5)["verdict"] == "fail"


# ---------------------------------------------------------------- freshness


def fresh_history(**kw: Any) -> History:
    return History(header=header(), blocks=chain_blocks(range(1, 20), **kw), finals=finals(19))


def test_freshness_passes_when_every_region_follows_the_root_tier():
    result = run(freshness, fresh_history(app_lag=0.3))
    assert result["verdict"] == "pass"
    e = result["evidence"]
    assert set(e["nodes"]) == {"node3", "node4"} and e["root_tip_at_settle"] == 18
    assert e["nodes"]["node3"]["lag_ms"]["p99"] == pytest.approx(300)
    assert e["nodes"]["node3"]["zone"] == "region-1" and e["nodes"]["node3"]["caught_up"] is True
    assert e["application_lag_p99_ms"] == pytest.approx(300)


def test_freshness_fails_on_a_region_that_lags_beyond_the_bound():
    late = {3: {h: h + 1.1 + 7.0 for h in range(1, 20)}}
    result = run(freshness, fresh_history(late=late), bound=5)
    assert result["verdict"] == "fail" and "node3 lagged" in result["why"]
    assert "node4" not in result["why"]


def test_freshness_excludes_a_partitioned_region_that_catches_up_afterwards():
    # region-1 (node3) is cut 5-10 s: heights 4..9 reach it only at 11 s, then it follows again
    late = {3: {h: 11.0 + 0.01 * h for h in range(4, 10)}}
    history = fresh_history(late=late)
    history.faults = [FaultRecord(id="region-cut", action="partition", nodes=[3], start=5.0, end=10.0,
                                  status="healed", method="test", groups=[[0, 1, 2, 4], [3]])]
    result = run(freshness, history, bound=5)
    assert result["verdict"] == "pass", result["why"]
    node = result["evidence"]["nodes"]["node3"]
    assert node["excluded"] == 5 and node["samples"] == 14 and node["caught_up"] is True
    assert node["recoveries"] == [{"fault": "region-cut", "healed_at": 10.0, "root_height": 8,
                                   "caught_up_after_s": pytest.approx(1.08)}]
    # without the fault record the same lags fail
    history.faults = []
    assert run(freshness, history, bound=5)["verdict"] == "fail"


def test_freshness_fails_on_a_region_that_never_catches_up_after_its_cut():
    history = fresh_history(skip={3: set(range(5, 20))})
    stuck = FinalChain(node=3, at=26.0, chain=[(h, f"h{h}") for h in range(1, 5)], holds=[])
    history.finals = [f if f.node != 3 else stuck for f in history.finals]
    history.faults = [FaultRecord(id="region-cut", action="partition", nodes=[3], start=5.0, end=None,
                                  status="failed", method="test", reason="heal failed")]
    result = run(freshness, history)
    assert result["verdict"] == "fail"
    assert "node3 ended at height 4, below the root tier's 18" in result["why"]


def test_freshness_is_unknown_without_application_nodes():
    assert "no topology" in run(freshness, History(header=header(topology=False)))["why"]
    h = header()
    h["topology"]["zones"] = [z for z in h["topology"]["zones"] if z["tier"] != "application"]
    assert run(freshness, History(header=h))["verdict"] == "unknown"


# ---------------------------------------------------------------- checks and results.json


def test_structure_metrics_in_checks_are_the_whole_runs():
    checks = [{"id": "sup", "metric": "supervision_completeness", "op": ">=", "value": 1.0,
               "phase": "measure"},
              {"id": "fresh", "metric": "application_lag_p99_ms", "op": "<=", "value": 100,
               "phase": "measure"}]
    found = thresholds.evaluate(checks, {"measure": {}}, {"supervision_completeness": 1.0,
                                                          "supervision_lag_p99_ms": 500.0,
                                                          "application_lag_p99_ms": 300.0})
    assert [(c["verdict"], c["measured"]) for c in found] == [("pass", 1.0), ("fail", 300.0)]
    found = thresholds.evaluate(checks, {"measure": {}}, None)
    assert [c["verdict"] for c in found] == ["unknown", "unknown"] and "no topology" in found[0]["why"]


def test_results_of_a_topology_run_validate_and_survive_a_round_trip(tmp_path):
    applied = {"method": "netem", "pairs": [{"from": "region-1", "to": "province-a",
                                              "profile": {"delay_ms": 20, "jitter_ms": 2},
                                              "rtt_ms": {"p50": 41.2, "samples": 5}}]}
    h = header(links_applied=applied)
    h["checkers"] = {"supervision": {}, "freshness": {}}
    h["checks"] = [{"id": "sup", "metric": "supervision_completeness", "op": ">=", "value": 1.0,
                    "phase": "measure"}]
    history = History(header=h, txs=steady(20), blocks=chain_blocks(range(1, 20)), finals=finals(19),
                      footer={"status": "complete"})
    hist.write(tmp_path / "history.jsonl", history)
    doc = results.compute(hist.read(tmp_path / "history.jsonl"))
    results.validate(doc)
    assert doc["commit_nodes"] == ["node0", "node1"] and doc["threshold_nodes"] == 2
    assert doc["topology"]["links_applied"] == applied
    assert doc["topology"]["supervision_completeness"] == 1.0
    assert doc["topology"]["supervision_lag_p99_ms"] == pytest.approx(500)
    assert doc["topology"]["application_lag_p99_ms"] == pytest.approx(300)
    assert doc["zones"]["region-1"]["committed"] == 10
    assert [c["verdict"] for c in doc["checks"]] == ["pass"]
    assert {c["id"]: c["verdict"] for c in doc["checkers"]} == {"supervision": "pass", "freshness": "pass"}
    old = copy.deepcopy(history)
    del old.header["topology"], old.header["load"]["commit_nodes"]
    plain = results.compute(old)
    results.validate(plain)
    assert "topology" not in plain and "zones" not in plain and plain["threshold_nodes"] == 5


# ---------------------------------------------------------------- a stored topology run


LINKS_APPLIED = {"method": "netem", "pairs": [
    {"from": "region-1", "to": "province-a", "profile": {"delay_ms": 20, "jitter_ms": 2},
     "rtt_ms": {"p50": 41.2, "samples": 5}},
    {"from": "province-a", "to": "national", "profile": {"delay_ms": 40},
     "rtt_ms": {"p50": 80.9, "samples": 5}},
    {"from": "region-2", "to": "province-a", "profile": {"delay_ms": 20, "jitter_ms": 2}, "rtt_ms": None}]}


def topology_run(folder: Any) -> History:
    """A stored run of TOPOLOGY (history.jsonl in `folder`): 20 txs sent to the regions, every
    tier following, region-1 cut 5-10 s and catching up, the links as the shaper records them.
    `bctest report folder` judges it (the report tests render it)."""
    h = header(links_applied=copy.deepcopy(LINKS_APPLIED))
    h["checkers"] = {"causality": {}, "supervision": {}, "freshness": {}}
    late = {3: {x: 11.0 + 0.01 * x for x in range(4, 10)}}
    history = History(header=h, txs=steady(20), blocks=chain_blocks(range(1, 20), late=late),
                      finals=finals(19), footer={"status": "complete"},
                      faults=[FaultRecord(id="region-cut", action="partition", nodes=[3], start=5.0,
                                          end=10.0, status="healed", method="iptables DROP in the netns",
                                          groups=[[0, 1, 2, 4], [3]])])
    folder.mkdir(parents=True, exist_ok=True)
    hist.write(folder / "history.jsonl", history)
    return history


def test_the_stored_topology_run_passes_both_structure_checks(tmp_path):
    topology_run(tmp_path)
    doc = results.compute(hist.read(tmp_path / "history.jsonl"))
    verdicts = {c["id"]: (c["verdict"], c["why"]) for c in doc["checkers"]}
    assert verdicts["supervision"] == ("pass", None) and verdicts["freshness"] == ("pass", None)
    assert doc["verdict"] == "pass"


def test_a_suite_with_a_topology_gets_the_structure_checkers_by_default():
    from pathlib import Path

    from harness import suite as suites
    root = Path(__file__).resolve().parents[2]
    loaded = suites.load(root / "suites" / "topology" / "sovereign-3tier.yaml")
    config = loaded.checker_config()
    assert {"supervision", "freshness", "safety", "durability", "convergence"} <= set(config)
    assert loaded.commit_nodes == (0, 1, 2, 3)
    plain = dataclasses.replace(suites.load(root / "suites" / "faults" / "crash-restart.yaml"), checkers={})
    assert plain.faults and plain.topology is None
    # a fault suite without a topology runs every checker by default, but not these
    assert "liveness" in plain.checker_config()
    assert not {"supervision", "freshness"} & set(plain.checker_config())


# ---------------------------------------------------------------- durability across the tiers


def test_durability_tells_a_trailing_region_from_a_lost_transaction():
    from harness.checks import durability
    txs = steady(20)                       # blocks 1..10, every node holds its txs
    every = list(range(20))
    # node4 (a region: not a commit node) was read while still at height 9: the two txs of
    # block 10 lie above its tip. It is behind, not losing data (freshness judges the lag).
    holds = {n: every for n in range(5)}
    holds[4] = every[:18]
    history = History(header=header(), txs=txs, blocks=chain_blocks(range(1, 11)),
                      finals=finals(10, holds=holds))
    history.finals[4] = FinalChain(node=4, at=26.0, chain=[(h, f"h{h}") for h in range(1, 10)],
                                   holds=every[:18], error=None)
    result = run(durability, history)
    assert result["verdict"] == "pass", result
    assert result["evidence"]["behind"] == [{"node": "node4", "txs": 2, "final_tip": 9}]
    # A tx missing at or below the region's own tip is lost, behind or not.
    history.finals[4] = FinalChain(node=4, at=26.0, chain=[(h, f"h{h}") for h in range(1, 10)],
                                   holds=every[:5] + every[6:18], error=None)
    result = run(durability, history)
    assert result["verdict"] == "fail" and "node4" in result["why"]
    # A root node (a commit node) behind its own commits lost them: it had held them.
    holds = {n: every for n in range(5)}
    history = History(header=header(), txs=txs, blocks=chain_blocks(range(1, 11)),
                      finals=finals(10, holds=holds))
    history.finals[1] = FinalChain(node=1, at=26.0, chain=[(h, f"h{h}") for h in range(1, 10)],
                                   holds=every[:18], error=None)
    result = run(durability, history)
    assert result["verdict"] == "fail" and "node1" in result["why"]
