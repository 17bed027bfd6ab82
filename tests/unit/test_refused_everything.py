"""Exit 3 when the chain took no load at all: every transaction of the measure phase failed."""

from harness.run import refused_everything


def phase(submitted: int, failed: int, errors=None) -> dict:
    return {"phases": {"measure": {"submitted": submitted, "failed": failed, "errors": errors or []}}}


def test_only_a_phase_where_every_send_failed_counts():
    assert refused_everything(phase(0, 0)) is None           # nothing sent: the load never ran
    assert refused_everything(phase(40, 39)) is None         # one accepted: a verdict, not exit 3
    assert refused_everything(phase(40, 40, [{"error": "nonce too low", "count": 31},
                                             {"error": "timeout", "count": 9}])) == (
        "all 40 transactions sent in the measure phase failed, most often: nonce too low (31×)")

