"""Ledger growth (JR/T 0193-2020 §7.5) from the bytes each node wrote during the run."""

from harness.history import History
from harness.metrics import ledger_growth


def test_ledger_growth_is_the_median_nodes_bytes_per_committed_tx():
    header = {"ledger": {"method": "m", "before": {"node0": 100, "node1": 100, "node2": 0, "node3": 5},
                         "after": {"node0": 1100, "node1": 2100, "node2": 900_000, "node3": None}}}
    got = ledger_growth(History(header=header, blocks=[], txs=[], faults=[]), 10)
    assert got["bytes_added"] == {"node0": 1000, "node1": 2000, "node2": 900_000}   # node3: unread
    assert got["bytes_per_tx"] == 200.0            # the median node; node2's burst does not decide
    assert ledger_growth(History(header={}, blocks=[], txs=[], faults=[]), 10) is None
    assert ledger_growth(History(header=header, blocks=[], txs=[], faults=[]), 0)["bytes_per_tx"] is None
