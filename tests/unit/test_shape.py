"""Load shapes (harness/load/shape.py): the schedule's offsets, count, target over time and
named windows; suites that use them; hostile trace files; per-window figures; and the ways
a vendor could try to game a shape."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness import metrics, suite
from harness.errors import InputError
from harness.history import History, TxRecord
from harness.load import shape as shapes
from harness.load.driver import plan_workers
from harness.model import Prepared, scheduled_offset


def build(doc: dict, warmup: float = 0.0, folder: Path = Path(".")) -> shapes.Schedule:
    return shapes.schedule(shapes.parse(doc, folder, "s.yaml"), warmup, "s.yaml")


def monotone(offsets: np.ndarray) -> bool:
    return bool(np.all(np.diff(offsets) >= 0))


# ---------------------------------------------------------------- the fixed shape is today's


@pytest.mark.parametrize("rate, duration, warmup", [(200, 30, 5), (3, 1.1, 0), (50, 20, 2),
                                                    (7, 0.3, 0.2), (1000, 1, 1)])
def test_fixed_shape_is_todays_schedule_to_the_rounding(rate, duration, warmup):
    plan = shapes.schedule(shapes.from_rate(rate, duration), warmup)
    count = int(round(rate * (warmup + duration)))           # phases/setup.py before shapes
    assert plan.count == count
    assert plan.offset_list() == [scheduled_offset(i, rate) for i in range(count)]
    assert plan.windows == {"warmup": (0.0, warmup), "measure": (warmup, warmup + duration)}
    assert plan.header() == {}                               # a fixed run's History is unchanged
    assert plan.due_before(count) == scheduled_offset(count, rate)


def test_long_form_fixed_equals_short_form():
    short = shapes.schedule(shapes.from_rate(100, 4), 1)
    long = build({"kind": "fixed", "rate": 100, "duration": 4}, 1)
    assert long.offset_list() == short.offset_list() and long.windows == short.windows


# ---------------------------------------------------------------- each shape's schedule


def test_step_follows_each_step_and_names_them():
    plan = build({"kind": "step", "steps": [{"rate": 10, "duration": 2}, {"rate": 40, "duration": 1},
                                            {"rate": 0, "duration": 1}, {"rate": 20, "duration": 1}]}, 1)
    assert plan.per_second() == [10, 10, 10, 40, 0, 20]      # the warmup runs at the first step's rate
    assert plan.windows["step-1"] == (1.0, 3.0) and plan.windows["step-2"] == (3.0, 4.0)
    assert plan.windows["step-3"] == (4.0, 5.0) and plan.windows["step-4"] == (5.0, 6.0)
    assert [plan.target_rate(f"step-{n}") for n in range(1, 5)] == [10, 40, 0, 20]
    assert plan.count == 90 and monotone(plan.offsets)


def test_ramp_sends_along_the_line():
    plan = build({"kind": "ramp", "from": 0, "to": 100, "duration": 10})
    # the target's integral over second s of a 0 -> 100 ramp over 10 s: 10 s + 5
    per_second = plan.per_second()
    assert sum(per_second) == plan.count == 500
    for s, got in enumerate(per_second):
        assert abs(got - (10 * s + 5)) <= 1, (s, got)
    down = build({"kind": "ramp", "from": 100, "to": 0, "duration": 10})
    assert down.per_second() == [max(0, c) for c in down.per_second()] and down.count == 500
    assert down.per_second()[0] > down.per_second()[-1]


def test_spike_windows_are_fixed_by_the_schedule():
    plan = build({"kind": "spike", "baseline": 50, "rate": 200, "start": 2, "length": 1, "duration": 5}, 1)
    assert plan.windows["baseline"] == (1.0, 3.0)
    assert plan.windows["spike"] == (3.0, 4.0)
    assert plan.windows["after"] == (4.0, 6.0)
    assert plan.per_second() == [50, 50, 50, 200, 50, 50]
    assert plan.target_rate("spike") == 200 and plan.target_rate("baseline") == 50
    # the History keeps the planned windows and the target, so a stored run is judged alone
    header = plan.header()
    assert header["windows"]["spike"] == {"window": [3.0, 4.0], "planned": 200, "target_rate": 200.0}
    assert header["target"] == [50, 50, 50, 200, 50, 50]


def test_composite_runs_parts_in_sequence_with_prefixed_windows():
    plan = build({"kind": "composite", "parts": [
        {"kind": "fixed", "rate": 10, "duration": 1},
        {"kind": "spike", "baseline": 10, "rate": 50, "start": 1, "length": 1, "duration": 3,
         "name": "round"},
        {"kind": "step", "steps": [{"rate": 30, "duration": 1}]}]})
    assert plan.per_second() == [10, 10, 50, 10, 30]
    assert plan.windows["part-1"] == (0.0, 1.0)
    assert plan.windows["round"] == (1.0, 4.0) and plan.windows["round.spike"] == (2.0, 3.0)
    assert plan.windows["part-3.step-1"] == (4.0, 5.0)


def test_trace_of_counts_replays_each_interval(tmp_path):
    (tmp_path / "blocks.csv").write_text("block,txs\n1,10\n2,0\n3,30\n4,20\n")
    plan = build({"kind": "trace", "file": "blocks.csv", "format": "counts", "column": "txs",
                  "interval": 0.5}, 0, tmp_path)
    assert plan.count == 60 and plan.total == 2.0
    assert plan.planned(0, 0.5) == 10 and plan.planned(0.5, 1.0) == 0 and plan.planned(1.0, 1.5) == 30
    assert plan.windows["trace"] == (0.0, 2.0)
    digest = hashlib.sha256((tmp_path / "blocks.csv").read_bytes()).hexdigest()
    assert plan.header()["shape"]["sha256"] == digest      # the History names the bytes replayed
    scaled = build({"kind": "trace", "file": "blocks.csv", "format": "counts", "column": "txs",
                    "scale": 0.1}, 0, tmp_path)
    assert scaled.count == 6                                  # 1 + 0 + 3 + 2: the cumulative rounding


def test_trace_of_offsets_sends_at_those_offsets(tmp_path):
    (tmp_path / "t.csv").write_text("offset\n0\n0.25\n0.25\n1.5\n2.75\n")
    plan = build({"kind": "trace", "file": "t.csv"}, 1, tmp_path)
    assert plan.offset_list()[-5:] == [1.0, 1.25, 1.25, 2.5, 3.75]
    assert plan.total == 4.0                                   # whole seconds past the last offset
    assert plan.per_second()[0] == 3                           # warmup: the trace's first second's rate


# ---------------------------------------------------------------- properties


shape_docs = st.one_of(
    st.builds(lambda r, d: {"kind": "fixed", "rate": r, "duration": d},
              st.floats(1, 500), st.floats(0.1, 5)).filter(lambda d: d["rate"] * d["duration"] >= 2),
    st.builds(lambda steps: {"kind": "step", "steps": [{"rate": r, "duration": d} for r, d in steps]},
              st.lists(st.tuples(st.floats(0, 500), st.floats(0.1, 3)), min_size=1, max_size=5)
              .filter(lambda s: sum(r * d for r, d in s) >= 2)),
    st.builds(lambda a, b, d: {"kind": "ramp", "from": a, "to": b, "duration": d},
              st.floats(0, 500), st.floats(0, 500), st.floats(0.5, 5)).filter(
        lambda d: (d["from"] + d["to"]) * d["duration"] >= 4),
    st.builds(lambda base, extra, start, length, tail: {
        "kind": "spike", "baseline": base, "rate": base + extra, "start": start, "length": length,
        "duration": start + length + tail},
              st.floats(1, 200), st.floats(1, 500), st.floats(0, 3), st.floats(0.1, 2), st.floats(0, 3)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=shape_docs, warmup=st.sampled_from([0.0, 0.5, 1.0, 2.5]))
def test_every_schedule_is_open_loop_monotone_and_follows_its_target(doc, warmup):
    shape = shapes.parse(doc, Path("."), "s.yaml")
    integral = shape.initial_rate * warmup + sum(p.planned for p in shape.pieces)
    assume(integral >= 1)       # (below one transaction a shape is refused: tested apart)
    plan = build(doc, warmup)
    offsets = plan.offsets
    assert plan.count == len(offsets) >= 1
    assert monotone(offsets)
    assert offsets[0] >= 0 and offsets[-1] < plan.total + 1e-9
    # the windows: warmup first, then measure, both covering the whole schedule
    assert list(plan.windows)[:2] == ["warmup", "measure"]
    assert plan.windows["measure"] == (warmup, plan.total)
    # the count is the target's integral (within one tx of rounding per piece, plus the warmup)
    assert abs(plan.count - integral) <= len(shape.pieces) + 2
    # each named window gets what its target says
    for name, a, b in shape.segments:
        if b - a < 1e-9:
            continue
        expected = sum(_integral(p, t, a, b) for p, t in _starts(shape))
        assert abs(plan.planned(warmup + a, warmup + b) - expected) <= 2, (name, expected)


def _starts(shape):
    t = 0.0
    for piece in shape.pieces:
        yield piece, t
        t += piece.seconds


def _integral(piece, start, a, b):
    """The piece's target integrated over [a, b) (shape clock)."""
    lo, hi = max(a, start), min(b, start + piece.seconds)
    if hi <= lo:
        return 0.0
    slope = (piece.r1 - piece.r0) / piece.seconds
    rate = lambda t: piece.r0 + slope * (t - start)    # noqa: E731
    return (rate(lo) + rate(hi)) / 2 * (hi - lo)


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(0, 400), min_size=1, max_size=40).filter(lambda c: sum(c) > 0),
       interval=st.sampled_from([0.25, 0.5, 1.0, 12.0]))
def test_trace_counts_are_exact_per_interval(tmp_path_factory, counts, interval):
    folder = tmp_path_factory.mktemp("trace")
    (folder / "c.csv").write_text("count\n" + "".join(f"{c}\n" for c in counts))
    plan = build({"kind": "trace", "file": "c.csv", "format": "counts", "interval": interval}, 0, folder)
    assert plan.count == sum(counts) and monotone(plan.offsets)
    for k, c in enumerate(counts):
        assert plan.planned(k * interval, (k + 1) * interval) == c


def test_plan_workers_deals_the_schedules_offsets():
    plan = build({"kind": "step", "steps": [{"rate": 10, "duration": 1}, {"rate": 30, "duration": 1}]})
    prepared = [Prepared(body=b"%d" % i, tx_id=str(i)) for i in range(plan.count)]
    plans = plan_workers(prepared, [(0, "http://127.0.0.1:1/")], plan.offset_list(), 2, 64, 10.0, {}, "x")
    got = sorted((i, o) for p in plans for i, o in zip(p.indexes, p.offsets, strict=True))
    assert got == list(enumerate(plan.offset_list()))
    with pytest.raises(ValueError):
        plan_workers(prepared, [(0, "http://127.0.0.1:1/")], plan.offset_list()[:-1], 1, 64, 10.0, {}, "x")
    with pytest.raises(TypeError, match="not a rate"):    # the old call, plan_workers(..., rate, ...)
        plan_workers(prepared, [(0, "http://127.0.0.1:1/")], 100.0, 1, 64, 10.0, {}, "x")


# ---------------------------------------------------------------- gaming a shape


def test_a_trace_that_puts_everything_at_t0_is_refused(tmp_path):
    (tmp_path / "burst.csv").write_text("offset\n" + "0\n" * 5000)
    with pytest.raises(InputError) as info:
        build({"kind": "trace", "file": "burst.csv"}, 0, tmp_path)
    assert info.value.file == str((tmp_path / "burst.csv").resolve())
    assert "all 5000 offsets" in str(info.value)


def test_a_burst_beyond_the_rate_cap_in_one_second_is_refused(tmp_path):
    (tmp_path / "c.csv").write_text("count\n1\n2000000\n1\n")
    with pytest.raises(InputError, match="sends in any second"):
        build({"kind": "trace", "file": "c.csv", "format": "counts"}, 0, tmp_path)


def test_the_warmup_cannot_swallow_the_hard_part_of_a_trace(tmp_path):
    """A trace whose burst comes first: the warmup is a prefix before the trace, so the
    burst is inside `measure` (and the trace window), never left out as warmup."""
    (tmp_path / "c.csv").write_text("count\n500\n10\n10\n10\n")
    plan = build({"kind": "trace", "file": "c.csv", "format": "counts"}, 2, tmp_path)
    assert plan.planned(*plan.windows["measure"]) == 530
    assert plan.planned(*plan.windows["trace"]) == 530
    assert plan.windows["trace"][0] == plan.windows["measure"][0] == 2.0


def test_a_check_cannot_name_a_window_the_shape_does_not_have(tmp_path, inputs):
    doc = inputs.suite()
    doc["load"] = {"shape": {"kind": "step", "steps": [{"rate": 10, "duration": 2}]}, "warmup": 1}
    doc["checks"] = [{"metric": "success_ratio", "op": ">=", "value": 0.99, "phase": "spike"}]
    path = inputs.make_suite(tmp_path, doc)
    with pytest.raises(InputError) as info:
        suite.load(path)
    assert info.value.field == "checks[0].phase" and "step-1" in str(info.value)


def test_a_spike_window_is_judged_on_what_it_asked_not_where_the_chain_looked_good():
    """The chain stalls through the spike and catches up after it: the spike's txs count in
    the spike (late), its throughput is what landed in it, and `after` shows the backlog;
    the measure window alone would hide the stall."""
    plan = build({"kind": "spike", "baseline": 10, "rate": 100, "start": 2, "length": 1, "duration": 5})
    txs = []
    for i, at in enumerate(plan.offset_list()):
        in_spike = 2 <= at < 3
        committed = 3.5 if in_spike else at + 0.1     # nothing lands during the spike
        txs.append(TxRecord(i=i, id=str(i), phase="measure", node=0, scheduled=at, submitted=at,
                            acked=at, error=None, commits=[(0, committed, 1)]))
    header = {"phases": {"warmup": [0.0, 0.0], "measure": [0.0, 5.0],
                         **{n: list(w) for n, w in plan.windows.items() if n not in ("warmup", "measure")}},
              "load": {"rate": plan.target_rate("measure"), "commit_share": 1.0, **plan.header()},
              "nodes": [{"name": "node0"}], "t0_wall": 0.0}
    figures = metrics.compute(History(header=header, txs=txs, footer={}))["phases"]
    assert list(figures) == ["warmup", "measure", "baseline", "spike", "after"]
    spike, after = figures["spike"], figures["after"]
    assert spike["target_rate"] == 100 and spike["scheduled"] == 100 and spike["submitted"] == 100
    assert spike["throughput"] <= 1.0                        # (one baseline tx landed at its start)
    assert spike["latency"]["min"] >= 500                    # every spike tx waited for the stall
    assert after["throughput"] > after["target_rate"]        # the backlog landed after it
    assert figures["measure"]["success_ratio"] == 1.0        # ...which measure alone would not show


def test_the_fixed_runs_results_keep_their_phases():
    """No shape windows, no extra header keys: a fixed run's figures are today's."""
    plan = shapes.schedule(shapes.from_rate(10, 2), 1)
    header = {"phases": {"warmup": [0.0, 1.0], "measure": [1.0, 3.0]},
              "load": {"rate": 10.0, "commit_share": 1.0, **plan.header()},
              "nodes": [{"name": "node0"}], "t0_wall": 0.0}
    txs = [TxRecord(i=i, id=str(i), phase="warmup" if o < 1 else "measure", node=0, scheduled=o,
                    submitted=o, acked=o, error=None, commits=[(0, o + 0.2, 1)])
           for i, o in enumerate(plan.offset_list())]
    figures = metrics.compute(History(header=header, txs=txs, footer={}))["phases"]
    assert list(figures) == ["warmup", "measure"] and figures["measure"]["target_rate"] == 10.0


# ---------------------------------------------------------------- suites and hostile traces


def _suite_with(tmp_path, inputs, shape: dict, **load) -> Path:
    doc = inputs.suite()
    doc["load"] = {"shape": shape, "warmup": 1, **load}
    return inputs.make_suite(tmp_path, doc)


def test_a_suite_with_a_shape_loads_its_schedule(tmp_path, inputs):
    s = suite.load(_suite_with(tmp_path, inputs, {"kind": "ramp", "from": 10, "to": 30, "duration": 4}))
    plan = s.load.plan()
    assert plan.kind == "ramp" and s.load.duration == 4 and s.load.total_seconds == 5
    assert s.load.rate == pytest.approx(20.0)                # the measure window's mean target
    assert plan.count == 10 + 80


@pytest.mark.parametrize("shape, extra, field, words", [
    ({"kind": "ramp", "from": 1, "to": 2, "duration": 3}, {"rate": 5}, "load.rate", ["beside load.shape"]),
    ({"kind": "spike", "baseline": 50, "rate": 40, "start": 1, "length": 1, "duration": 3}, {},
     "load.shape.rate", ["above its baseline"]),
    ({"kind": "spike", "baseline": 5, "rate": 40, "start": 2, "length": 2, "duration": 3}, {},
     "load.shape.length", ["ends within"]),
    ({"kind": "ramp", "from": 0, "to": 0, "duration": 3}, {}, "load.shape.to", ["both 0"]),
    ({"kind": "fixed", "rate": 1000000, "duration": 86400}, {}, "load.shape", ["10,000,000"]),
    ({"kind": "step", "steps": []}, {}, "load.shape.steps", []),
    ({"kind": "wave", "rate": 1}, {}, "load.shape.kind", ["expected one of"]),
    ({"kind": "ramp", "from": 1, "duration": 3}, {}, "load.shape.to", ["required field is missing"]),
    ({"kind": "spike", "baseline": 1, "rate": 2, "start": 0, "length": 1, "duration": 2, "peak": 3}, {},
     "load.shape.peak", ["unknown key"]),
    ({"kind": "composite", "parts": [{"kind": "composite", "parts": []}]}, {},
     "load.shape.parts[0].kind", ["expected one of"]),
    ({"kind": "composite", "parts": [{"kind": "fixed", "rate": 1, "duration": 3, "name": "measure"}]},
     {}, "load.shape.parts[0].name", ["window name"]),
    ({"kind": "composite", "parts": [{"kind": "fixed", "rate": 1, "duration": 3, "name": "a"},
                                     {"kind": "fixed", "rate": 1, "duration": 3, "name": "a"}]},
     {}, "load.shape.parts[1].name", ["another part"]),
    ({"kind": "composite", "parts": [{"kind": "fixed", "rate": 1, "duration": 3, "name": "spike"}]},
     {}, "load.shape.parts[0].name", ["window name"]),     # a quiet part passed off as the spike
    ({"kind": "composite", "parts": [{"kind": "fixed", "rate": 1, "duration": 3, "name": "step-2"}]},
     {}, "load.shape.parts[0].name", ["window name"]),
    ({"kind": "fixed", "rate": 1, "duration": 3, "name": "x"}, {}, "load.shape.name", ["composite"]),
    ({"kind": "trace", "file": "/etc/passwd"}, {}, "load.shape.file", ["relative"]),
    ({"kind": "trace", "file": "../outside.csv"}, {}, "load.shape.file", ["inside the suite's folder"]),
    ({"kind": "trace", "file": "missing.csv"}, {}, "load.shape.file", ["not found"]),
    ({"kind": "trace", "file": "."}, {}, "load.shape.file", ["inside the suite's folder"]),
], ids=lambda v: None)
def test_bad_shapes_are_one_clear_input_error(tmp_path, inputs, shape, extra, field, words):
    (tmp_path / "outside.csv").write_text("offset\n1\n")
    folder = tmp_path / "s"
    folder.mkdir()
    path = _suite_with(folder, inputs, shape, **extra)
    with pytest.raises(InputError) as info:
        suite.load(path)
    assert info.value.file == str(path) and info.value.field == field, str(info.value)
    for word in words:
        assert word in str(info.value), str(info.value)


@pytest.mark.parametrize("content, fmt, field, words", [
    (b"", "offsets", "row 1", ["header row"]),
    (b"time\n1\n", "offsets", "row 1", ["column named 'offset'"]),
    (b"offset\n", "offsets", None, ["at least one row"]),
    (b"offset\n0.5\nabc\n", "offsets", "row 3 (offset)", ["an offset", "'abc'"]),
    (b"offset\n0.5\nnan\n", "offsets", "row 3 (offset)", ["an offset"]),
    (b"offset\n0.5\ninf\n", "offsets", "row 3 (offset)", ["an offset"]),
    (b"offset\n-1\n", "offsets", "row 2 (offset)", ["within 0..86400"]),
    (b"offset\n1\n0.5\n", "offsets", "row 3 (offset)", ["non-decreasing"]),
    (b"offset\n\xff\xfe\n", "offsets", None, ["UTF-8"]),
    (b"a,offset\n1\n", "offsets", "row 2", ["a value in column"]),
    (b"count\n1.5\n", "counts", "row 2 (count)", ["whole number"]),
    (b"count\n-3\n", "counts", "row 2 (count)", ["whole number"]),
    (b"count\n0\n0\n", "counts", "count", ["every count is 0"]),
    (b"offset\n1\x00\n", "offsets", "row 2 (offset)", ["an offset"]),
    (b"offset\n" + b"9" * 200_000 + b"\n", "offsets", "row 2", ["CSV"]),
])
def test_hostile_trace_files_are_one_clear_input_error(tmp_path, content, fmt, field, words):
    (tmp_path / "t.csv").write_bytes(content)
    with pytest.raises(InputError) as info:
        build({"kind": "trace", "file": "t.csv", "format": fmt}, 0, tmp_path)
    assert info.value.file == str((tmp_path / "t.csv").resolve()), str(info.value)
    assert info.value.field == field, str(info.value)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_trace_size_and_rows_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(shapes, "MAX_TRACE_BYTES", 64)
    (tmp_path / "big.csv").write_text("offset\n" + "1\n" * 100)
    with pytest.raises(InputError, match="at most 64 bytes"):
        build({"kind": "trace", "file": "big.csv"}, 0, tmp_path)
    monkeypatch.setattr(shapes, "MAX_TRACE_BYTES", 2**20)
    monkeypatch.setattr(shapes, "MAX_TRACE_ROWS", 10)
    with pytest.raises(InputError, match="at most 10 rows"):
        build({"kind": "trace", "file": "big.csv"}, 0, tmp_path)


def test_a_trace_that_is_not_a_regular_file_is_refused(tmp_path):
    import os
    os.mkfifo(tmp_path / "fifo.csv")      # would block a reader for ever
    with pytest.raises(InputError, match="regular file"):
        build({"kind": "trace", "file": "fifo.csv"}, 0, tmp_path)


def test_a_trace_duration_must_cover_its_offsets(tmp_path):
    (tmp_path / "t.csv").write_text("offset\n0\n2.5\n")
    with pytest.raises(InputError) as info:
        build({"kind": "trace", "file": "t.csv", "duration": 2}, 0, tmp_path)
    assert info.value.field == "load.shape.duration"
    assert build({"kind": "trace", "file": "t.csv", "duration": 3}, 0, tmp_path).total == 3


def test_the_shipped_shape_suites_load():
    root = Path(__file__).resolve().parents[2] / "suites" / "shapes"
    kinds = set()
    for path in sorted(root.glob("*.yaml")):
        s = suite.load(path)
        kinds.add(s.load.plan().kind)
        assert all(c.phase in s.load.plan().windows for c in s.checks)
        assert s.load.plan().total <= 7 and max(s.load.plan().per_second()) <= 300   # CI-sized
    assert kinds == set(shapes.KINDS)


def test_a_window_the_harness_could_not_send_is_said_to_be_the_harness_limit():
    from harness.results import harness_warnings
    window = {"send_rate": 120.0, "target_rate": 200.0, "send_rate_ratio": 0.6}
    phases = {"measure": {"send_rate_ratio": 0.99, "on_time_ratio": 1.0},
              "baseline": {**window, "send_rate_ratio": 1.0}, "spike": window}
    said = harness_warnings({"phases": phases}, {"status": "complete"})
    assert len(said) == 1 and "spike window" in said[0] and "harness's ceiling" in said[0]
