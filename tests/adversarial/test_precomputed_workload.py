"""A predictable workload (issue 10, item 7): sender keys derived from the suite's seed
let a node precompute every transaction and commit it before it was sent; the latency was
clamped to 1 µs, unflagged. Now the workload's seed mixes in a secret drawn per run
(recorded after the run), and a commit seen before its submit fails the run."""

from __future__ import annotations

from harness.adapters.cometbft import make_tx
from harness.checks import causality
from harness.history import History
from harness.model import TxRecord
from harness.phases.setup import workload_seed
from harness.results import compute


def history(*txs: TxRecord) -> History:
    return History(header={"nodes": [{"name": "node0"}, {"name": "node1"}]}, txs=list(txs))


def tx(i, submitted, commits, error=None):
    return TxRecord(i=i, id=f"t{i}", phase="measure", node=0, scheduled=i * 0.1, submitted=submitted,
                    acked=submitted, error=error, commits=commits)


def test_the_workload_cannot_be_known_from_the_suite():
    a, b = workload_seed(1, "a" * 32), workload_seed(1, "b" * 32)
    assert a != b and workload_seed(1, "a" * 32) == a            # reproducible from the secret
    assert make_tx(a, 0) != make_tx(b, 0) != make_tx(1, 0)


def test_a_commit_before_its_submit_fails_causality():
    judged = causality.check(history(tx(0, 1.0, [(0, 1.5, 3)]), tx(1, 2.0, [(0, 1.2, 3), (1, 2.5, 4)])),
                             causality.DEFAULTS)
    assert judged["verdict"] == "fail" and judged["evidence"]["early_count"] == 1
    assert "tx 1 in block 3 on node0, 800.0 ms before it was submitted" in judged["why"]


def test_a_transaction_held_but_never_sent_fails_causality():
    judged = causality.check(history(tx(0, None, [(1, 3.0, 2)], error="not sent: run stopped")),
                             causality.DEFAULTS)
    assert judged["verdict"] == "fail" and "never sent" in judged["why"]


def test_honest_commits_pass_and_nothing_to_judge_is_unknown():
    honest = history(tx(0, 1.0, [(0, 1.0005, 1), (1, 2.0, 1)]))   # 0.5 ms: within the tolerance
    assert causality.check(honest, causality.DEFAULTS)["verdict"] == "pass"
    assert causality.check(history(tx(0, 1.0, [])), causality.DEFAULTS)["verdict"] == "unknown"


def test_a_precomputing_node_fails_the_whole_run():
    """Through the results pipeline: the stored sample run, one commit moved before its submit."""
    import json
    from pathlib import Path

    from harness import history as history_module

    sample = Path(__file__).resolve().parents[1] / "fixtures" / "sample_run" / "history.jsonl"
    stored = history_module.read(sample)
    stored.header["checkers"] = {"causality": {}}
    honest = compute(stored, [])
    assert honest["verdict"] == "pass", json.dumps(honest["checkers"])[:500]
    victim = next(t for t in stored.txs if t.commits and t.submitted is not None)
    victim.commits = [(node, victim.submitted - 0.5, number) for node, _, number in victim.commits]
    judged = compute(stored, [])
    assert judged["verdict"] == "fail"
    assert next(c for c in judged["checkers"] if c["id"] == "causality")["verdict"] == "fail"
