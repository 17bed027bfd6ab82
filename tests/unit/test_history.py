"""The History file: JSON Lines written atomically and read back unchanged."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import history as hist
from harness.history import BlockRecord, History, TxRecord


def sample() -> History:
    return History(
        header={"run_id": "r1", "t0_wall": 1_700_000_000.25,
                "phases": {"warmup": [0.0, 2.0], "measure": [2.0, 12.0]},
                "load": {"rate": 10, "commit_share": 1.0},
                "nodes": [{"name": "n0"}, {"name": "n1"}]},
        txs=[
            TxRecord(i=0, id="0xaa", phase="warmup", node=0, scheduled=0.1, submitted=0.100125,
                     acked=0.2, error=None, commits=[(0, 1.5, 3), (1, 1.75, 3)]),
            TxRecord(i=1, id="0xbb", phase="measure", node=1, scheduled=2.0, submitted=2.000001,
                     acked=None, error="nonce too low", commits=[]),
            TxRecord(i=2, id="0xcc", phase="measure", node=0, scheduled=2.1, submitted=None,
                     acked=None, error=None, commits=[]),
        ],
        blocks=[BlockRecord(node=0, number=3, hash="0x03", parent="0x02", seen=1.5, fetched=1.51,
                            timestamp=1_700_000_001.0, txs=1),
                BlockRecord(node=1, number=3, hash="0x03", parent="0x02", seen=1.75, fetched=1.8,
                            timestamp=None, txs=1)],
        footer={"watch_methods": {"n0": "subscribe", "n1": "poll"}, "ended": 14.5},
    )


def test_round_trip_preserves_every_record(tmp_path):
    original = sample()
    path = tmp_path / "history.jsonl"
    hist.write(path, original)
    back = hist.read(path)
    assert back.header == {"format": hist.FORMAT, **original.header}
    assert back.txs == original.txs
    assert back.blocks == original.blocks
    assert back.footer == original.footer


def test_write_leaves_no_partial_file(tmp_path):
    path = tmp_path / "history.jsonl"
    hist.write(path, sample())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.jsonl"]


def test_write_replaces_existing_history(tmp_path):
    path = tmp_path / "history.jsonl"
    hist.write(path, sample())
    second = sample()
    second.txs = second.txs[:1]
    hist.write(path, second)
    assert len(hist.read(path).txs) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.jsonl"]


def test_failed_write_keeps_previous_history_intact(tmp_path):
    path = tmp_path / "history.jsonl"
    hist.write(path, sample())
    before = path.read_bytes()
    broken = sample()
    broken.footer = {"oops": object()}  # not JSON-serialisable: fails after the tx lines
    with pytest.raises(TypeError):
        hist.write(path, broken)
    assert path.read_bytes() == before


def test_failed_write_leaves_no_partial_file(tmp_path):
    path = tmp_path / "history.jsonl"
    broken = sample()
    broken.footer = {"oops": object()}
    with pytest.raises(TypeError):
        hist.write(path, broken)
    assert list(tmp_path.iterdir()) == []


def test_file_is_json_lines_header_first_footer_last(tmp_path):
    path = tmp_path / "history.jsonl"
    hist.write(path, sample())
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["type"] for line in lines] == ["header", "tx", "tx", "tx", "block", "block", "footer"]
    assert lines[0]["format"] == hist.FORMAT


def test_times_are_rounded_to_microseconds_and_nan_becomes_null(tmp_path):
    h = sample()
    h.txs = [TxRecord(i=0, id="0x1", phase="measure", node=0, scheduled=1.23456789,
                      submitted=float("nan"), acked=2.0000004, error=None,
                      commits=[(0, 3.1234567, 9)])]
    path = tmp_path / "h.jsonl"
    hist.write(path, h)
    tx = hist.read(path).txs[0]
    assert tx.scheduled == 1.234568
    assert tx.submitted is None
    assert tx.acked == 2.0
    assert tx.commits == [(0, 3.123457, 9)]


def test_read_rejects_other_format(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps({"type": "header", "format": "other/9"}) + "\n")
    with pytest.raises(ValueError, match="format"):
        hist.read(path)


def test_read_rejects_missing_header(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps({"type": "footer"}) + "\n")
    with pytest.raises(ValueError, match="header"):
        hist.read(path)


def test_read_rejects_empty_file(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        hist.read(path)


def test_read_names_line_of_broken_json(tmp_path):
    path = tmp_path / "h.jsonl"
    hist.write(path, sample())
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:10]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"h\.jsonl:3: not JSON"):
        hist.read(path)


micro = st.integers(0, 10**9).map(lambda n: n / 1e6)
tx_records = st.builds(
    TxRecord, i=st.integers(0, 10**6), id=st.text(max_size=10),
    phase=st.sampled_from(["warmup", "measure"]), node=st.integers(0, 15), scheduled=micro,
    submitted=st.none() | micro, acked=st.none() | micro, error=st.none() | st.text(max_size=20),
    commits=st.lists(st.tuples(st.integers(0, 15), micro, st.integers(0, 10**6)), max_size=4))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(txs=st.lists(tx_records, max_size=20))
def test_round_trip_property(tmp_path, txs):
    h = History(header={"phases": {}}, txs=txs)
    path = tmp_path / "prop.jsonl"
    hist.write(path, h)
    back = hist.read(path)
    assert back.txs == txs
    assert not any(math.isnan(t) for tx in back.txs for _, t, _ in tx.commits)
    assert not (tmp_path / "prop.jsonl.partial").exists()


def _tx(i: int) -> TxRecord:
    return TxRecord(i=i, id=f"0x{i:04x}", phase="measure", node=0, scheduled=i / 1000,
                    submitted=i / 1000, acked=None, error=None, commits=[(0, i / 1000 + 1, i)])


def test_txs_are_written_as_they_are_produced(tmp_path):
    # The record stage hands write() a generator: lines reach the file while later records
    # are still to be made, so a million-tx run is never a million records in memory.
    path = tmp_path / "history.jsonl"
    partial = tmp_path / "history.jsonl.partial"
    lines_on_disk = []

    def produce():
        for i in range(3 * hist.FLUSH_EVERY):
            if i == 2 * hist.FLUSH_EVERY:
                lines_on_disk.append(len(partial.read_text().splitlines()))
            yield _tx(i)

    hist.write(path, History(header={"phases": {}}, txs=produce()))
    assert lines_on_disk[0] >= 1 + hist.FLUSH_EVERY      # header + at least one flushed batch
    assert [t.i for t in hist.read(path).txs] == list(range(3 * hist.FLUSH_EVERY))
    assert not partial.exists()


def test_a_failing_producer_leaves_neither_file(tmp_path):
    def produce():
        yield _tx(0)
        raise RuntimeError("record stage failed")

    path = tmp_path / "history.jsonl"
    with pytest.raises(RuntimeError):
        hist.write(path, History(header={"phases": {}}, txs=produce()))
    assert list(tmp_path.iterdir()) == []


def test_every_line_type_written_has_a_decoder():
    # a new line type needs both halves (D adds `readback`): the writer's sections and DECODERS
    written = {kind for kind, _, _ in hist._sections(History(header={}))}
    assert written <= set(hist.DECODERS)
