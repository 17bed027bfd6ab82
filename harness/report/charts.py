"""Charts for report.html: one function per chart, each returning a self-contained
`data:image/svg+xml;base64,...` URI that an <img> tag shows without any other file.

Inputs are plain results.json values (and, for the distribution, a list of latencies
in ms), so every chart can be redrawn from a stored run. Output is deterministic
(no date in the SVG metadata, fixed id salt): rendering a run twice gives the same file.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # never a display: reports are rendered on headless machines

import matplotlib.pyplot as plt
import numpy as np

# One palette for the whole report (the HTML template uses the same colours).
SENT = "#4c72b0"
COMMITTED = "#2e8b57"
TARGET = "#444444"
P50 = "#4c72b0"
P99 = "#c44e52"
WINDOWS = {"warmup": "#f2c14e", "measure": "#7fb3d5", "settle": "#bbbbbb", "query": "#c5b3e6"}
FAULT = "#d62728"
MARKS = {"p50": P50, "p90": "#8172b2", "p95": "#dd8452", "p99": P99}

STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e5e5e5",
    "grid.linewidth": 0.8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "svg.hashsalt": "bctest",
    "svg.fonttype": "path",
}
WIDTH, HEIGHT = 10.0, 3.4  # inches; the page shows charts at full content width
TIMELINE = {"left": 0.075, "right": 0.85, "top": 0.9, "bottom": 0.15}  # legend goes right


def _data_uri(fig: Any, tight: bool) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight" if tight else None,
                metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _render(draw: Any, *, width: float = WIDTH, height: float = HEIGHT, ncols: int = 1,
            margins: dict[str, float] | None = None, **kwargs: Any) -> str:
    """Draw into a fresh figure and return it as a data URI; the figure is always closed.

    With `margins` (fractions, as for subplots_adjust) the axes sit at the same place in
    every chart that uses them, so time charts stacked on the page line up second by second.
    """
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, ncols, figsize=(width, height), **kwargs)
        try:
            if margins:
                fig.subplots_adjust(**margins)
            draw(fig, axes)
            return _data_uri(fig, tight=margins is None)
        finally:
            plt.close(fig)


def _windows(phases: dict[str, Any]) -> list[tuple[str, float, float]]:
    out = []
    for name in ("warmup", "measure", "settle", "query"):
        window = (phases.get(name) or {}).get("window")
        if window and len(window) == 2 and None not in window:
            out.append((name, float(window[0]), float(window[1])))
    return out


def fault_spans(faults: Sequence[dict[str, Any]]) -> list[tuple[str, float, float | None]]:
    """(label, start, end) for every fault entry that has a start; end None if it never healed."""
    spans = []
    for fault in faults or []:
        start = fault.get("start")
        if not isinstance(start, (int, float)):
            continue
        end = fault.get("end")
        label = str(fault.get("action") or "fault")
        if fault.get("nodes"):
            label += " " + ",".join(str(n) for n in fault["nodes"])
        elif fault.get("target") is not None:
            label += f" {fault['target']}"
        spans.append((label, float(start), float(end) if isinstance(end, (int, float)) else None))
    return spans


def _shade(ax: Any, phases: dict[str, Any], faults: Sequence[dict[str, Any]]) -> None:
    """Phase windows as light bands labelled at the top; fault spans hatched in red."""
    for name, start, end in _windows(phases):
        ax.axvspan(start, end, color=WINDOWS[name], alpha=0.18, lw=0, zorder=0)
        ax.text((start + end) / 2, 1.0, name, transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=8, color="#555555", clip_on=False)
    right = ax.get_xlim()[1]
    for index, (label, start, end) in enumerate(fault_spans(faults)):
        stop = end if end is not None else right
        ax.axvspan(start, stop, facecolor="none", edgecolor=FAULT, hatch="///", lw=0,
                   alpha=0.5, zorder=0, label="fault" if index == 0 else None)
        ax.axvline(start, color=FAULT, lw=1, zorder=1)
        ax.text(start, 0.97 - 0.07 * (index % 4), " " + label, transform=ax.get_xaxis_transform(),
                ha="left", va="top", fontsize=7, color=FAULT)


def _series(timeseries: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if row.get(key) is None else float(row[key]) for row in timeseries],
                    dtype=float)


def _x_limits(timeseries: Sequence[dict[str, Any]], phases: dict[str, Any]) -> tuple[float, float]:
    ends = [end for _, _, end in _windows(phases)]
    last = max([len(timeseries)] + [math.ceil(e) for e in ends] + [1])
    return 0.0, float(last)


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", zorder=5,
            fontsize=10, color="#555555",
            bbox={"facecolor": "white", "edgecolor": "#dddddd", "boxstyle": "round,pad=0.5"})


def target_series(load: dict[str, Any]) -> list[float] | None:
    """A load shape's target (planned sends in each second of the schedule); None for the
    fixed rate (drawn as one line) or when results.json holds no usable series."""
    series = load.get("target")
    if not isinstance(series, list) or not series or len(series) > 1_000_000:
        return None
    values = [_number(v) for v in series]
    return None if any(math.isnan(v) or v < 0 for v in values) else values


def shape_windows(load: dict[str, Any], phases: dict[str, Any]) -> list[tuple[str, float, float]]:
    """The shape's named windows as measured (step-1, spike, ...; not warmup/measure)."""
    out = []
    for name in (load.get("windows") or {}):
        if name in ("warmup", "measure"):
            continue
        window = (phases.get(name) or {}).get("window") if isinstance(phases.get(name), dict) else None
        if isinstance(window, list) and len(window) == 2:
            start, end = _number(window[0]), _number(window[1])
            if not (math.isnan(start) or math.isnan(end)):
                out.append((str(name), start, end))
    return out


def throughput(results: dict[str, Any]) -> str:
    """Per-second target vs sent vs committed transactions, phase and shape windows, faults."""
    timeseries = results.get("timeseries") or []
    phases = results.get("phases") or {}
    load = results.get("load") or {}
    shaped = target_series(load)
    target = None if shaped is not None else load.get("rate")

    def draw(fig: Any, ax: Any) -> None:
        ax.set_xlim(*_x_limits(timeseries, phases))
        if timeseries:
            # bucket t holds [t, t+1): draw each value across its second
            t = np.array([row["t"] for row in timeseries], dtype=float)
            edges = np.append(t, t[-1] + 1)
            sent = _series(timeseries, "sent")
            committed = _series(timeseries, "committed")
            # sent as a wide pale line under committed: both stay visible where they coincide
            ax.stairs(sent, edges, color=SENT, lw=5, alpha=0.35, label="sent / s", baseline=None)
            ax.stairs(committed, edges, color=COMMITTED, lw=1.8, label="committed / s",
                      baseline=None)
            failed = _series(timeseries, "failed")
            if np.nansum(failed) > 0:
                ax.stairs(failed, edges, color=P99, lw=1.2, ls=":", label="failed / s",
                          baseline=None)
        else:
            _empty(ax, "no time series in results")
        if shaped is not None:   # a load shape: the target moves, second by second
            ax.stairs(shaped, np.arange(len(shaped) + 1, dtype=float), color=TARGET, lw=1.2,
                      ls="--", label="target / s", baseline=None)
        elif target:
            ax.axhline(target, color=TARGET, lw=1.2, ls="--", label=f"target {target:g} tx/s")
        peak = max(shaped) if shaped else (target or 0)
        ax.set_ylim(bottom=0, top=max(ax.get_ylim()[1], peak * 1.15, 1))
        _shade(ax, phases, results.get("faults") or [])
        for index, (name, start, end) in enumerate(shape_windows(load, phases)):
            if "." in name and any(w[0] == name.split(".")[0] for w in shape_windows(load, phases)):
                continue   # a composite part's inner segment: its part's label is enough
            ax.axvline(start, color=TARGET, lw=0.6, ls=":", zorder=1)
            ax.text((start + end) / 2, 0.02 + 0.06 * (index % 2), name, ha="center", va="bottom",
                    transform=ax.get_xaxis_transform(), fontsize=7, color="#333333")
        ax.set_xlabel("run time (s)")
        ax.set_ylabel("transactions per second")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))

    return _render(draw, margins=TIMELINE)


def latency_over_time(results: dict[str, Any]) -> str:
    """p50 and p99 latency of the transactions that committed in each second."""
    timeseries = results.get("timeseries") or []
    phases = results.get("phases") or {}

    def draw(fig: Any, ax: Any) -> None:
        ax.set_xlim(*_x_limits(timeseries, phases))
        p50 = _series(timeseries, "p50_ms")
        p99 = _series(timeseries, "p99_ms")
        if timeseries and not np.all(np.isnan(p99)):
            centres = np.array([row["t"] for row in timeseries], dtype=float) + 0.5
            ax.plot(centres, p99, color=P99, lw=1.6, marker="o", ms=3, label="p99")
            ax.plot(centres, p50, color=P50, lw=1.6, marker="o", ms=3, label="p50")
            ax.set_ylim(bottom=0, top=np.nanmax(p99) * 1.15 or 1)
        else:
            ax.set_ylim(0, 1)
            ax.set_yticks([])
            _empty(ax, "no transaction committed: no latency to show")
        _shade(ax, phases, results.get("faults") or [])
        ax.set_xlabel("run time (s), by second of commit")
        ax.set_ylabel("latency (ms)")
        if not np.all(np.isnan(p99)):
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))

    return _render(draw, margins=TIMELINE)


def cpu_per_node(results: dict[str, Any]) -> str | None:
    """CPU use of each node (% of one core) over the run; None when it was not sampled."""
    series = (results.get("resources") or {}).get("cpu_percent") or {}
    if not any(series.values()):
        return None
    timeseries = results.get("timeseries") or []
    phases = results.get("phases") or {}

    def draw(fig: Any, ax: Any) -> None:
        ax.set_xlim(*_x_limits(timeseries, phases))
        for name, rows in series.items():
            if rows:
                ax.plot([r[0] for r in rows], [r[1] for r in rows], lw=1.2, label=name)
        ax.set_ylim(bottom=0)
        _shade(ax, phases, results.get("faults") or [])
        ax.set_xlabel("run time (s)")
        ax.set_ylabel("CPU (% of one core)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
                  ncol=1 if len(series) <= 8 else 2)

    return _render(draw, margins=TIMELINE)


def latency_distribution(latencies_ms: Sequence[float],
                         marks: dict[str, float | None] | None = None) -> str:
    """Histogram of per-transaction latencies (left) and the percentile curve (right).

    `marks` (e.g. {"p50": 516.9, "p99": 1007.1}) are drawn as dashed lines on the histogram.
    """
    values = np.sort(np.asarray(latencies_ms, dtype=float))

    def draw(fig: Any, axes: Any) -> None:
        hist, curve = axes
        if values.size == 0:
            for ax in axes:
                _empty(ax, "no latencies")
            return
        bins = int(min(60, max(10, math.sqrt(values.size))))
        low, high = float(values[0]), float(values[-1])
        if high - low < 1e-3:   # (nearly) equal latencies: numpy cannot split a zero-width range
            low, high = low - 0.5, high + 0.5
        hist.hist(values, bins=bins, range=(low, high), color=SENT, alpha=0.85, edgecolor="white", lw=0.5)
        for name, value in (marks or {}).items():
            colour = MARKS.get(name, TARGET)
            if value is not None:
                hist.axvline(value, color=colour, ls="--", lw=1.3)
                hist.text(value, 0.98, f"{name} {value:,.0f} ms", transform=hist.get_xaxis_transform(),
                          ha="right", va="top", rotation=90, fontsize=8, color=colour,
                          bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0, "alpha": 0.85})
        hist.set_xlabel("latency (ms)")
        hist.set_ylabel("transactions")
        hist.set_title(f"Histogram ({values.size:,} transactions)", loc="left")

        # Percentile curve on the usual HDR axis: distance to 100% on a log scale,
        # so the tail (99%, 99.9%) gets as much room as the median.
        quantiles = (np.arange(values.size) + 0.5) / values.size
        curve.plot(1.0 / (1.0 - quantiles), values, color=P99, lw=1.6)
        curve.set_xscale("log")
        ticks = [p for p in (0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999)
                 if p <= quantiles[-1] + 1e-12]
        curve.set_xticks([1.0 / (1.0 - p) for p in ticks])
        curve.set_xticklabels([f"{p * 100:g}%" for p in ticks])
        curve.minorticks_off()
        curve.set_xlim(left=1.0)
        curve.set_ylim(bottom=0)
        curve.set_xlabel("percentile")
        curve.set_ylabel("latency (ms)")
        curve.set_title("Percentile curve", loc="left")

    return _render(draw, ncols=2, width=8.0, height=3.3, layout="constrained")


# ---------------------------------------------------------------- capacity search (certify)

PASSED = COMMITTED
FAILED = P99
KNEE = "#8172b2"


def _number(value: Any) -> float:
    """A figure of a capacity step as a float; NaN when absent or not a number (hostile or old)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def capacity_curve(capacity: dict[str, Any] | None) -> str | None:
    """The capacity search's curve: committed throughput against the offered rate beside the
    y = x line (left), p50 and p99 latency against the offered rate (right). Passing steps are
    filled circles, failing steps red crosses, the confirmation run a star; the knee (the
    highest passing step) is a labelled vertical line. None when no step has an offered rate."""
    steps = [s for s in (capacity or {}).get("steps") or [] if isinstance(s, dict)]
    steps = [s for s in steps if not math.isnan(_number(s.get("offered")))]
    if not steps:
        return None
    steps.sort(key=lambda s: (_number(s.get("offered")), s.get("stage") == "confirm"))
    offered = np.array([_number(s.get("offered")) for s in steps])
    passed = np.array([s.get("passed") is True for s in steps])
    confirm = np.array([s.get("stage") == "confirm" for s in steps])
    searched = ~confirm   # the line joins the search steps; the confirmation run stands alone
    knee_case = capacity.get("knee") if capacity else None
    knee = next((s for s in steps if knee_case is not None and s.get("case") == knee_case
                 and s.get("stage") != "confirm"), None) or \
        next((s for s in steps if knee_case is not None and s.get("case") == knee_case), None)
    bound = _number(((capacity or {}).get("criteria") or {}).get("latency_p99_ms"))

    def marks(ax: Any, y: np.ndarray, colour: str, label: str | None) -> None:
        """One series: a line through the search steps, markers telling pass from fail."""
        ax.plot(offered[searched], y[searched], color=colour, lw=1.4, zorder=2, label=label)
        for mask, marker, size, face, edge in (
                (passed & ~confirm, "o", 6, colour, colour), (~passed & ~confirm, "x", 7, FAILED, FAILED),
                (passed & confirm, "*", 12, colour, colour), (~passed & confirm, "*", 12, "white", FAILED)):
            if mask.any():
                ax.scatter(offered[mask], y[mask], marker=marker, s=size ** 2, zorder=3, color=face,
                           edgecolors=edge if marker == "*" else None)

    def draw(fig: Any, axes: Any) -> None:
        rate, latency = axes
        throughput = np.array([_number(s.get("throughput")) for s in steps])
        top = np.nanmax(np.concatenate([offered, throughput, [1.0]]))
        rate.plot([0, top * 1.05], [0, top * 1.05], color=TARGET, lw=1.0, ls="--",
                  label="y = x (all committed)")
        marks(rate, throughput, COMMITTED, "committed throughput")
        rate.set_xlim(0, top * 1.05)
        rate.set_ylim(0, top * 1.05)
        rate.set_xlabel("offered rate (tx/s)")
        rate.set_ylabel("committed throughput (tx/s)")
        rate.set_title("Throughput vs offered load", loc="left")

        p50 = np.array([_number(s.get("latency_p50")) for s in steps])
        p99 = np.array([_number(s.get("latency_p99")) for s in steps])
        if np.all(np.isnan(p99)) and np.all(np.isnan(p50)):
            latency.set_ylim(0, 1)
            latency.set_yticks([])
            _empty(latency, "no transaction committed: no latency to show")
        else:
            marks(latency, p99, P99, "p99")
            marks(latency, p50, P50, "p50")
            highest = np.nanmax(np.concatenate([p99, p50]))
            if not math.isnan(bound):
                latency.axhline(bound, color=TARGET, lw=1.0, ls=":", label=f"p99 bound {bound:,.0f} ms")
                highest = max(highest, bound)
            latency.set_ylim(0, highest * 1.15 or 1)
        latency.set_xlim(0, top * 1.05)
        latency.set_xlabel("offered rate (tx/s)")
        latency.set_ylabel("latency (ms)")
        latency.set_title("Latency vs offered load", loc="left")

        if knee is not None:
            at = _number(knee.get("offered"))
            for ax in axes:
                ax.axvline(at, color=KNEE, lw=1.2, ls="-.", zorder=1)
                ax.text(at, 0.99, f" knee {at:,.4g} tx/s", transform=ax.get_xaxis_transform(),
                        ha="left", va="top", fontsize=8, color=KNEE)
        legend = [plt.Line2D([], [], color=COMMITTED, marker="o", ls="", label="step passed"),
                  plt.Line2D([], [], color=FAILED, marker="x", ls="", label="step failed"),
                  plt.Line2D([], [], color=COMMITTED, marker="*", ms=10, ls="", label="confirmation run")]
        if knee is not None:
            legend.append(plt.Line2D([], [], color=KNEE, ls="-.", label="knee (highest passing step)"))
        handles, _ = rate.get_legend_handles_labels()
        rate.legend(handles=handles + legend, loc="lower right")
        if latency.get_legend_handles_labels()[0]:
            latency.legend(loc="upper left")

    return _render(draw, ncols=2, width=10.0, height=3.8, layout="constrained")
