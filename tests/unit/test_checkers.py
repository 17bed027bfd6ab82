"""Correctness checkers on small synthetic Histories: pass, fail and unknown for each rule."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from harness.checks import (
    chain,
    convergence,
    correctness,
    durability,
    fault_tolerance,
    liveness,
    safety,
)
from harness.history import BlockRecord, FaultRecord, FinalChain, History, TxRecord

# ---- builders -------------------------------------------------------------------------------


def header(n: int = 4, kind: str | None = "bft", rate: float = 10.0, share: float = 1.0,
           measure_end: float = 65.0, settle_end: float | None = 70.0) -> dict[str, Any]:
    phases: dict[str, list[float]] = {"warmup": [0.0, 5.0], "measure": [5.0, measure_end]}
    if settle_end is not None:
        phases["settle"] = [measure_end, settle_end]
    h: dict[str, Any] = {"nodes": [{"name": f"node{i}"} for i in range(n)], "phases": phases,
                         "load": {"rate": rate, "commit_share": share},
                         "chain": {"consensus": kind}}
    if kind is not None:
        f = {"bft": (n - 1) // 3, "cft": (n - 1) // 2}.get(kind, 0)
        h["fault_model"] = {"kind": kind, "nodes": n, "f": f}
    return h


def block(node: int, number: int, seen: float, hash: str | None = None, txs: int = 1) -> BlockRecord:
    return BlockRecord(node=node, number=number, hash=hash or f"h{number}", parent=f"h{number - 1}",
                       seen=seen, fetched=seen + 0.01, timestamp=None, txs=txs)


def blocks(nodes: Iterable[int], heights: Iterable[int], at=lambda h: float(h), prefix: str = "h",
           txs: int = 1) -> list[BlockRecord]:
    """Every node reports every height, height h at at(h) (a blockchain of one block a second)."""
    return [block(n, h, at(h), f"{prefix}{h}", txs) for h in heights for n in nodes]


def tx(i: int, commits: list[tuple[int, float, int]], submitted: float | None = None) -> TxRecord:
    return TxRecord(i=i, id=f"0x{i:02x}", phase="measure", node=0, scheduled=submitted or 0.0,
                    submitted=submitted if submitted is not None else 0.0, acked=None, error=None,
                    commits=commits)


def committed(times: Iterable[float], nodes: int = 4, start: int = 0) -> list[TxRecord]:
    """One tx per time, held by every node at that time, in block int(time)."""
    return [tx(start + k, [(n, t, int(t)) for n in range(nodes)], submitted=t - 0.5)
            for k, t in enumerate(times)]


def steady(rate: float, start: float, end: float) -> list[float]:
    step = 1.0 / rate
    return [start + step * k for k in range(int(round((end - start) * rate)))]


def final(node: int, tip: int, holds: Iterable[int] = (), at: float = 90.0, first: int = 1,
          hashes: dict[int, str] | None = None, error: str | None = None) -> FinalChain:
    hashes = hashes or {}
    return FinalChain(node=node, at=at, chain=[(h, hashes.get(h, f"h{h}")) for h in range(first, tip + 1)],
                      holds=list(holds), error=error)


def fault(id: str, action: str, nodes: list[int], start: float | None, end: float | None,
          status: str = "healed", groups: list[list[int]] | None = None) -> FaultRecord:
    return FaultRecord(id=id, action=action, nodes=nodes, start=start, end=end, status=status,
                       method="test", groups=groups, reason=None if start is not None else "not supported")


def run(module: Any, history: History, **config: Any) -> dict[str, Any]:
    result = module.check(history, {**module.DEFAULTS, **config})
    json.dumps(result)   # results.json must be able to hold it
    assert result["id"] == module.ID and result["verdict"] in ("pass", "fail", "unknown")
    if result["verdict"] != "pass":
        assert result["why"]
    return result


# ---- shared helpers -------------------------------------------------------------------------


def test_reorgs_count_one_switch_per_branch_change_and_measure_its_depth():
    history = History(header=header(kind="pow"), blocks=[
        *blocks([1], range(1, 6)),
        *[block(1, h, 10.0 + h, f"b{h}") for h in (4, 5, 6)],   # the new branch from height 4
    ])
    found = chain.reorgs(history)
    assert [(r.node, r.height, r.top, r.depth, r.old, r.new) for r in found] == [(1, 4, 5, 2, "h4", "b4")]


def test_commit_times_use_the_threshold_th_node():
    history = History(header=header(n=4, share=0.75), txs=[
        tx(0, [(0, 1.0, 1), (1, 3.0, 2), (2, 2.0, 1)]),   # third holder at 3.0
        tx(1, [(0, 1.0, 1), (1, 1.5, 1)]),                # only two holders: not committed
    ])
    assert chain.commit_times(history) == {0: 3.0}


def test_progress_is_unknown_when_the_watchers_stop_before_the_bound():
    stalled = blocks([0], range(1, 11))
    p = chain.progress(History(header=header(settle_end=None), blocks=stalled), 10.0, 20.0)
    assert (p.height, p.delay, p.verdict, p.watched_for) == (10, None, "fail", 55.0)
    p = chain.progress(History(header=header(measure_end=20.0, settle_end=None), blocks=stalled), 10.0, 20.0)
    assert (p.verdict, p.watched_for) == ("unknown", 10.0)
    p = chain.progress(History(header=header(), blocks=stalled + [block(1, 11, 12.5)]), 10.0, 20.0)
    assert (p.delay, p.verdict) == (2.5, "pass")


# ---- safety ---------------------------------------------------------------------------------


def test_safety_passes_when_every_height_has_one_hash():
    history = History(header=header(), blocks=blocks(range(4), range(1, 11)),
                      finals=[final(n, 10) for n in range(4)])
    result = run(safety, history)
    assert result["verdict"] == "pass"
    assert result["evidence"]["heights"] == 10 and result["evidence"]["fork_count"] == 0


def test_safety_fails_a_bft_fork_naming_height_hashes_and_nodes():
    history = History(header=header(), blocks=[*blocks([0, 1, 3], range(1, 8)),
                                               *blocks([2], range(1, 5)), block(2, 5, 5.2, "x5")])
    result = run(safety, history)
    assert result["verdict"] == "fail"
    assert "height 5" in result["why"] and "x5 on node2" in result["why"]
    assert "h5 on node0, node1, node3" in result["why"]
    assert result["evidence"]["fork_heights"] == [5]
    assert result["evidence"]["forks"] == [{"height": 5, "hashes": {"h5": ["node0", "node1", "node3"],
                                                                   "x5": ["node2"]}}]


def test_safety_fails_a_fork_seen_only_in_a_final_chain():
    history = History(header=header(kind="cft", n=3), blocks=blocks(range(3), range(1, 8)),
                      finals=[final(0, 9), final(1, 9), final(2, 9, hashes={8: "y8", 9: "y9"})])
    result = run(safety, history)
    assert result["verdict"] == "fail"
    assert result["evidence"]["fork_heights"] == [8, 9]
    assert "height 8" in result["why"] and "y8 on node2" in result["why"] and "1 more" in result["why"]


def test_safety_is_unknown_without_blocks_or_a_consensus_kind():
    assert run(safety, History(header=header()))["why"] == \
        "no node reported a block and no final chain was read"
    result = run(safety, History(header=header(kind=None), blocks=blocks([0], range(1, 3))))
    assert result["verdict"] == "unknown" and "consensus kind" in result["why"]


def test_safety_reports_shallow_pow_reorgs_and_passes():
    history = History(header=header(kind="pow"), blocks=[
        *blocks([0, 1], range(1, 6)),
        *[block(1, h, 10.0 + h, f"b{h}") for h in (4, 5, 6)],
        *[block(0, h, 10.5 + h, f"b{h}") for h in (4, 5, 6)],
    ])
    result = run(safety, history)
    assert result["verdict"] == "pass"
    ev = result["evidence"]
    assert ev["fork_count"] == 2 and ev["fork_heights"] == [4, 5]
    assert ev["reorg_count"] == 2 and ev["max_reorg_depth_seen"] == 2
    assert ev["reorgs"][0] == {"node": "node1", "height": 4, "depth": 2, "at": 14.0}


def test_safety_fails_a_pow_reorg_deeper_than_the_limit():
    history = History(header=header(kind="pow"), blocks=[
        *blocks([0, 1], range(1, 11)),
        *[block(1, h, 20.0 + h, f"b{h}") for h in range(2, 12)],
    ])
    result = run(safety, history)
    assert result["verdict"] == "fail"
    assert result["why"] == "node1 switched branches at height 2 at 22.000 s, 9 blocks deep (limit 6)"
    assert run(safety, history, max_reorg_depth=9)["verdict"] == "pass"


def test_safety_fails_pow_final_chains_that_disagree_deep_below_the_tips():
    deep = {h: f"z{h}" for h in range(3, 21)}
    history = History(header=header(kind="pow", n=2), finals=[final(0, 20), final(1, 18, hashes=deep)])
    result = run(safety, history)
    assert result["verdict"] == "fail"
    assert result["evidence"]["final_disagreements"] == [
        {"nodes": ["node0", "node1"], "height": 3, "depth": 16}]
    assert "node0 and node1 differ from height 3, 16 blocks below" in result["why"]
    shallow = History(header=header(kind="pow", n=2), finals=[final(0, 20), final(1, 20, hashes={20: "z"})])
    result = run(safety, shallow)
    assert result["verdict"] == "pass" and result["evidence"]["final_disagreement_count"] == 1


# ---- liveness -------------------------------------------------------------------------------

KILL = fault("kill-1", "kill", [3], 20.0, 30.0)


def live(commit_times: list[float], faults: list[FaultRecord], heights: Iterable[int] = range(1, 71),
         **kw: Any) -> History:
    return History(header=header(**kw), blocks=blocks(range(3), heights), txs=committed(commit_times),
                   faults=faults)


def test_liveness_passes_when_blocks_and_throughput_come_back():
    history = live(steady(10, 0, 65), [KILL])
    result = run(liveness, history)
    assert result["verdict"] == "pass" and result["why"] is None
    assert result["evidence"]["faults"] == [{
        "id": "kill-1", "action": "kill", "start": 20.0, "healed": 30.0, "height_at_heal": 30,
        "time_to_first_block": 1.0, "progress": "pass", "pre_rate": 10.0, "offered_rate": 10.0,
        "baseline": 10.0, "post_rate": 10.0, "ratio": 1.0, "recovery": "pass"}]


def test_liveness_fails_when_the_first_block_after_the_heal_is_too_late():
    history = live(steady(10, 0, 65), [KILL], heights=[*range(1, 21), *range(21, 71)])
    history.blocks = [b for b in history.blocks if not 20 < b.seen < 55]
    result = run(liveness, history)
    assert result["verdict"] == "fail"
    assert result["why"].startswith("after kill-1 healed at 30.000 s the first new block came 25.0 s later "
                                    "(bound 20 s)")
    assert result["evidence"]["faults"][0]["time_to_first_block"] == 25.0
    assert result["evidence"]["faults"][0]["height_at_heal"] == 20


def offered(history: History, rate: float) -> History:
    """The load scheduled its transactions at `rate` tx/s from t = 0, in the order they committed."""
    for k, record in enumerate(history.txs):
        record.scheduled = k / rate
    return history


def test_liveness_fails_when_throughput_stays_low_after_the_heal():
    history = offered(live(steady(10, 0, 20) + steady(5, 30, 65), [KILL]), 10)
    result = run(liveness, history)
    assert result["verdict"] == "fail"
    f = result["evidence"]["faults"][0]
    assert (f["pre_rate"], f["post_rate"], f["ratio"], f["recovery"]) == (10.0, 5.0, 0.5, "fail")
    assert "was 5.0 tx/s, 50% of the 10.0 tx/s before it (needs 80%)" in result["why"]
    assert run(liveness, history, recovery_share=0.5)["verdict"] == "pass"


def test_liveness_baseline_is_capped_at_the_offered_rate_when_a_backlog_drains_before_the_fault():
    # 10 tx/s offered throughout; an earlier stall's backlog drains at 14 tx/s in the window
    # before the fault (the crash-restart run that flaked in CI: 68.6 tx/s under a 50 tx/s load).
    times = steady(10, 0, 10) + steady(14, 10, 20) + steady(9, 30, 65)
    history = offered(live(times, [KILL]), 10)
    result = run(liveness, history)
    f = result["evidence"]["faults"][0]
    assert (f["pre_rate"], f["offered_rate"], f["baseline"], f["post_rate"]) == (14.0, 10.0, 10.0, 9.0)
    assert result["verdict"] == "pass" and f["ratio"] == 0.9
    result = run(liveness, history, recovery_share=0.95)
    assert result["verdict"] == "fail"
    assert "90% of the 10.0 tx/s offered before it (14.0 tx/s committed, backlog included)" in result["why"]


def test_liveness_is_unknown_when_the_load_ends_before_the_recovery_windows_close():
    late = fault("kill-2", "kill", [3], 40.0, 50.0)
    result = run(liveness, live(steady(10, 0, 65), [late]))
    assert result["verdict"] == "unknown"
    assert result["why"].startswith("the load ended at 65.000 s")
    assert result["evidence"]["faults"][0]["progress"] == "pass"
    assert result["evidence"]["faults"][0]["recovery"] == "unknown"


def test_liveness_is_unknown_when_the_run_ends_right_after_the_heal():
    history = live(steady(10, 0, 65), [fault("kill-3", "kill", [3], 60.0, 66.0)], heights=range(1, 66))
    result = run(liveness, history)
    assert result["verdict"] == "unknown"
    assert result["why"] == ("the run ended 4.0 s after kill-3 healed; liveness needs 20 s "
                             "(and 1 more gaps in the evidence)")
    assert result["evidence"]["faults"][0]["recovery"] == "unknown"


def test_liveness_is_unknown_for_a_failed_heal_or_a_heal_after_the_watchers_stopped():
    broken = fault("kill-4", "kill", [3], 20.0, 30.0, status="failed")
    broken.reason = "heal: container gone"
    result = run(liveness, live(steady(10, 0, 65), [broken]))
    assert (result["verdict"], result["why"]) == (
        "unknown", "kill-4 was not healed (heal: container gone), so recovery after it cannot be judged")
    assert result["evidence"]["faults"][0]["status"] == "failed"
    result = run(liveness, live(steady(10, 0, 65), [fault("kill-5", "kill", [3], 60.0, 72.0)]))
    assert result["why"].startswith("kill-5 healed at 72.000 s, 2.0 s after the block watchers stopped; "
                                    "liveness needs 20 s")
    assert "1 more gaps" in result["why"]   # the load had ended too: recovery is unknown as well


def test_liveness_recovery_needs_two_seconds_of_load_before_the_fault():
    early = fault("kill-0", "kill", [3], 1.0, 5.0)
    result = run(liveness, live(steady(10, 0, 65), [early]))
    assert result["verdict"] == "unknown" and "needs 2 s of load before the fault" in result["why"]


def test_liveness_without_a_healed_fault_is_unknown_and_lists_skipped_faults():
    skipped = fault("delay-1", "delay", [1], None, None, status="skipped")
    result = run(liveness, live(steady(10, 0, 65), [skipped]))
    assert (result["verdict"], result["why"]) == ("unknown", "no fault healed during the run")
    assert result["evidence"]["not_applied"] == [
        {"id": "delay-1", "action": "delay", "status": "skipped", "reason": "not supported"}]


# ---- durability -----------------------------------------------------------------------------


def durable(finals: list[FinalChain], kind: str = "bft", txs: list[TxRecord] | None = None,
            faults: list[FaultRecord] | None = None, blocks_: list[BlockRecord] | None = None) -> History:
    return History(header=header(kind=kind), txs=committed(steady(1, 2, 12)) if txs is None else txs,
                   finals=finals, faults=faults or [], blocks=blocks_ or [])


def test_durability_passes_when_every_node_holds_every_committed_tx():
    history = durable([final(n, 12, holds=range(10)) for n in range(4)], faults=[KILL])
    result = run(durability, history)
    assert result["verdict"] == "pass"
    ev = result["evidence"]
    assert ev["committed"] == 10 and [n["missing"] for n in ev["nodes"]] == [0, 0, 0, 0]
    assert ev["crashed"] == ["node3"] and ev["resynced"] == ["node3"]


def test_durability_fails_naming_the_node_and_the_lost_txs():
    finals = [final(n, 12, holds=range(10)) for n in (0, 1, 3)]
    finals.append(final(2, 12, holds=[0, 1, 2, 4, 5, 6, 8, 9]))
    result = run(durability, durable(finals))
    assert result["verdict"] == "fail"
    assert result["why"] == ("node2's final chain is missing 2 of 10 committed txs, first 0x03 "
                             "(committed at 5.000 s in block 5)")
    assert result["evidence"]["nodes"][2] == {"node": "node2", "missing": 2, "missing_ids": ["0x03", "0x07"],
                                              "above_tip": 0}


def test_durability_says_when_a_node_never_caught_up_and_caps_the_ids():
    txs = committed(steady(1, 2, 32))
    finals = [final(n, 32, holds=range(30)) for n in range(3)] + [final(3, 6, holds=range(5), at=90.0)]
    result = run(durability, durable(finals, txs=txs, faults=[KILL]))
    assert result["verdict"] == "fail"
    assert "missing 25 of 30" in result["why"] and "25 of them lie above its final tip 6" in result["why"]
    node3 = result["evidence"]["nodes"][3]
    assert node3["missing"] == 25 and len(node3["missing_ids"]) == 20 and node3["missing_ids"][0] == "0x05"
    assert result["evidence"]["resynced"] == []


def test_durability_is_unknown_when_a_final_read_failed_and_nothing_is_lost():
    finals = [final(n, 12, holds=range(10)) for n in (0, 2, 3)] + [final(1, 0, error="connection refused")]
    result = run(durability, durable(finals))
    assert result["verdict"] == "unknown"
    assert result["why"] == "node1's final chain could not be read: connection refused"
    lossy = finals[:2] + [final(3, 12, holds=range(9))] + finals[3:]
    assert run(durability, durable(lossy))["verdict"] == "fail"


def test_durability_is_unknown_when_nothing_committed():
    result = run(durability, durable([final(n, 12) for n in range(4)], txs=[]))
    assert result["verdict"] == "unknown" and "no transaction reached the commit threshold" in result["why"]


def _pow_orphan(switch_after: int) -> History:
    """tx 0 committed in block 3 on both nodes; at height `switch_after` both switch to a branch
    from height 3 that lacks it (node0 first)."""
    txs = [tx(0, [(n, 3.0, 3) for n in range(2)])]
    reported = [*blocks([0, 1], range(1, switch_after + 1)),
                *blocks([0, 1], range(3, switch_after + 2), at=lambda h: 50.0 + h, prefix="b")]
    hashes = {h: f"b{h}" for h in range(3, switch_after + 2)}
    finals = [final(n, switch_after + 1, holds=[], hashes=hashes) for n in range(2)]
    h = History(header=header(kind="pow", n=2), txs=txs, blocks=reported, finals=finals)
    return h


def test_durability_reports_a_shallow_pow_orphan_and_passes():
    result = run(durability, _pow_orphan(switch_after=4))
    assert result["verdict"] == "pass"
    assert result["evidence"]["orphaned"] == 1
    assert result["evidence"]["orphaned_txs"] == [
        {"id": "0x00", "block": 3, "depth": 2, "dropped_by": "node0"}]


def test_durability_fails_a_pow_tx_dropped_after_its_block_was_deep():
    result = run(durability, _pow_orphan(switch_after=10))
    assert result["verdict"] == "fail"
    assert result["why"] == "tx 0x00 (block 3) was dropped by node0 after its block was 8 deep (limit 6)"


# ---- convergence ----------------------------------------------------------------------------


def test_convergence_passes_on_agreement_without_faults_and_reports_tip_lag():
    history = History(header=header(n=3), finals=[final(0, 10), final(1, 10), final(2, 9)])
    result = run(convergence, history)
    assert result["verdict"] == "pass"
    ev = result["evidence"]
    assert ev["common_height"] == 9 and ev["tip_lag"] == 1 and ev["time_to_converge"] is None
    assert ev["tips"] == {"node0": 10, "node1": 10, "node2": 9}


def test_convergence_fails_when_final_chains_disagree_at_the_common_height():
    history = History(header=header(n=3), finals=[final(0, 10), final(1, 9), final(2, 11, hashes={9: "x9"})])
    result = run(convergence, history)
    assert result["verdict"] == "fail"
    assert result["why"] == "the final chains disagree at height 9: node0, node1 hold h9 but node2 hold x9"


def test_convergence_is_unknown_when_a_final_read_failed_and_trivial_for_one_node():
    history = History(header=header(n=2), finals=[final(0, 10), final(1, 0, error="timeout")])
    result = run(convergence, history)
    assert (result["verdict"], result["why"]) == ("unknown", "node1's final chain could not be read: timeout")
    single = run(convergence, History(header=header(n=1, kind="single"), finals=[final(0, 4)]))
    assert single["verdict"] == "pass" and "node0 is the only node" in single["why"]


def _rejoin(caught_up_at: float | None, tip3: int = 60, read_at: float = 90.0) -> History:
    """node3 is killed 20-30 s; the others make a block a second; node3 reports 31 at caught_up_at."""
    reported = blocks(range(3), range(1, 61)) + blocks([3], range(1, 20))
    if caught_up_at is not None:
        reported += [block(3, h, caught_up_at + 0.01 * h) for h in range(20, tip3 + 1)]
    finals = [final(n, 60, at=read_at) for n in range(3)] + [final(3, tip3, at=read_at)]
    return History(header=header(), blocks=reported, faults=[KILL], finals=finals)


def test_convergence_times_the_first_shared_block_after_the_last_heal():
    result = run(convergence, _rejoin(caught_up_at=36.0))
    assert result["verdict"] == "pass"
    ev = result["evidence"]
    assert (ev["last_heal"], ev["height_at_last_heal"], ev["converged_height"]) == (30.0, 30, 31)
    assert ev["time_to_converge"] == 6.31


def test_convergence_fails_when_the_rejoining_node_catches_up_too_late():
    result = run(convergence, _rejoin(caught_up_at=70.0))
    assert result["verdict"] == "fail"
    assert result["evidence"]["time_to_converge"] == 40.31
    assert result["why"] == ("after the last heal at 30.000 s the nodes first shared a new block (height 31) "
                             "40.3 s later, when node3 saw it (bound 30 s)")


def test_convergence_fails_a_node_that_never_caught_up():
    result = run(convergence, _rejoin(caught_up_at=None, tip3=19))
    assert result["verdict"] == "fail"
    assert result["why"].startswith("node3 (tip 19) had not caught up 60.0 s after the last heal at 30.000 s")


def test_convergence_falls_back_to_the_final_reads_when_a_watcher_was_silent():
    assert run(convergence, _rejoin(caught_up_at=None, read_at=50.0))["evidence"]["converged_by"] == 20.0
    assert run(convergence, _rejoin(caught_up_at=None, read_at=50.0))["verdict"] == "pass"
    result = run(convergence, _rejoin(caught_up_at=None, read_at=90.0))
    assert result["verdict"] == "unknown"
    assert result["why"].startswith("the watchers of node3 never reported a block made after the last heal")


# ---- fault tolerance ------------------------------------------------------------------------


def tolerant(faults: list[FaultRecord], heights: Iterable[int] = range(1, 71), kind: str = "bft",
             txs_per_block: int = 3, **kw: Any) -> History:
    return History(header=header(kind=kind, **kw), blocks=blocks(range(4), heights, txs=txs_per_block),
                   txs=committed(steady(10, 0, 65)), faults=faults)


def test_fault_tolerance_passes_when_the_chain_continues_with_f_nodes_down():
    result = run(fault_tolerance, tolerant([fault("kill-1", "kill", [3], 20.0, 40.0)]))
    assert result["verdict"] == "pass"
    f = result["evidence"]["faults"][0]
    assert (f["k"], f["f"], f["expected"], f["window"]) == (1, 1, "continue", [25.0, 40.0])
    assert (f["height_before"], f["new_heights"], f["blocks_with_txs"]) == (24, 16, 16)
    assert f["txs_committed_in_window"] == 150 and f["verdict"] == "pass"


def test_fault_tolerance_fails_when_the_chain_stops_with_f_nodes_down():
    stalled = [*range(1, 21), *range(41, 71)]
    result = run(fault_tolerance, tolerant([fault("kill-1", "kill", [3], 20.0, 40.0)], heights=stalled))
    assert result["verdict"] == "fail"
    assert result["why"] == ("kill-1 (kill) took 1 of 4 nodes out (f=1), yet node0, node1, node2 reported "
                             "no new height between 25.000 s and 40.000 s")


def test_fault_tolerance_fails_empty_blocks_while_the_load_runs():
    result = run(fault_tolerance, tolerant([fault("stop-1", "stop", [0], 20.0, 40.0)], txs_per_block=0))
    assert result["verdict"] == "fail" and "none carried any of the" in result["why"]


def test_fault_tolerance_passes_a_halt_beyond_f_that_resumes_after_the_heal():
    split = fault("part-1", "partition", [2, 3], 20.0, 40.0, groups=[[0, 1], [2, 3]])
    history = tolerant([split], heights=[*range(1, 21), *range(41, 71)])
    result = run(fault_tolerance, history)
    assert result["verdict"] == "pass"
    f = result["evidence"]["faults"][0]
    assert (f["k"], f["expected"], f["new_heights"], f["resumed_after"]) == (2, "halt", 0, 1.0)
    assert "safety" in result["evidence"]["note"]


def test_fault_tolerance_fails_progress_without_a_quorum():
    split = fault("part-1", "partition", [2, 3], 20.0, 40.0, groups=[[0, 1], [2, 3]])
    result = run(fault_tolerance, tolerant([split]))
    assert result["verdict"] == "fail"
    assert "took 2 of 4 nodes out (f=1), more than it tolerates, yet node0, node1 reported 16 new heights " \
           "(25-40)" in result["why"]


def test_fault_tolerance_fails_a_halt_that_never_resumes_and_is_unknown_if_the_run_ends():
    kill2 = fault("kill-2", "kill", [2, 3], 20.0, 40.0)
    result = run(fault_tolerance, tolerant([kill2], heights=range(1, 21)))
    assert result["verdict"] == "fail"
    assert "did not resume within 20 s of the heal at 40.000 s (none came)" in result["why"]
    late = fault("kill-2", "kill", [2, 3], 50.0, 66.0)
    result = run(fault_tolerance, tolerant([late], heights=range(1, 51)))
    assert (result["verdict"], result["why"]) == (
        "unknown", "the run ended 4.0 s after kill-2 healed; resuming needs 20 s")


def test_fault_tolerance_is_unknown_without_a_model_a_threshold_or_a_crash_fault():
    no_model = tolerant([fault("kill-1", "kill", [3], 20.0, 40.0)])
    del no_model.header["fault_model"]
    assert "no fault_model" in run(fault_tolerance, no_model)["why"]
    pow_run = run(fault_tolerance, tolerant([fault("kill-1", "kill", [3], 20.0, 40.0)], kind="pow"))
    assert pow_run["why"] == "the fault model gives no threshold for pow chains"
    short = [fault("kill-1", "kill", [3], 20.0, 24.0), fault("restart-1", "restart", [1], 30.0, 45.0),
             fault("delay-1", "delay", [1], 30.0, 45.0), fault("wipe-1", "wipe", [3], 50.0, 59.9)]
    result = run(fault_tolerance, tolerant(short))
    assert result["verdict"] == "unknown" and "no crash-like fault" in result["why"]
    assert result["evidence"]["too_short"] == ["kill-1", "wipe-1"]   # under grace 5 s + window 5 s
    assert run(fault_tolerance, tolerant(short), min_window=4.0)["evidence"]["too_short"] == ["kill-1"]


# ---- the registry ---------------------------------------------------------------------------


def test_evaluate_runs_the_named_checkers_in_a_fixed_order_with_merged_settings():
    history = live(steady(10, 0, 20) + steady(5, 30, 65), [KILL])
    results = correctness.evaluate(history, {"liveness": {"recovery_share": 0.5}, "safety": None})
    assert [r["id"] for r in results] == ["safety", "liveness"]
    assert results[1]["verdict"] == "pass" and results[1]["evidence"]["recovery_share"] == 0.5
    assert results[1]["evidence"]["bound"] == 20.0


def test_evaluate_rejects_unknown_checkers_and_settings():
    assert list(correctness.DEFAULTS) == ["causality", "safety", "liveness", "durability", "convergence",
                                          "fault_tolerance", "supervision", "freshness", "readback"]
    assert correctness.DEFAULTS["liveness"] == {"bound": 20.0, "recovery_share": 0.8, "window": 10.0}
    with pytest.raises(ValueError, match="unknown correctness checker 'linearizable'"):
        correctness.evaluate(History(header=header()), {"linearizable": {}})
    with pytest.raises(ValueError, match="liveness: unknown setting"):
        correctness.evaluate(History(header=header()), {"liveness": {"bond": 5}})


def test_fault_tolerance_judges_a_full_disk_on_at_most_f_nodes_as_taking_them_out():
    one = fault("disk-1", "disk", [3], 20.0, 40.0)
    assert run(fault_tolerance, tolerant([one]))["verdict"] == "pass"
    stalled = tolerant([one])
    stalled.blocks = [b for b in stalled.blocks if not 25 <= b.seen <= 40]
    assert run(fault_tolerance, stalled)["verdict"] == "fail"        # the others must go on
    two = fault("disk-2", "disk", [2, 3], 20.0, 40.0)                # k > f: no halt demanded
    result = run(fault_tolerance, tolerant([two]))
    assert result["verdict"] == "unknown" and result["evidence"]["faults"] == []
