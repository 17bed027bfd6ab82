"""report.html: one self-contained page (inline CSS, charts as data: URIs, no JS) that a
person opens in a browser to read a run.

The layout lives in reports/report.html.j2 (jinja2, autoescape on); this module turns
results.json (plus, for the latency distribution, the run's history.jsonl) into
display-ready values, so the template only arranges them.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from hdrh.histogram import HdrHistogram

from harness import history as history_module
from harness import paths
from harness.errors import InfraError
from harness.metrics import MAX_LATENCY_US, commit_time
from harness.report import charts

TEMPLATE = "report.html.j2"
DISTRIBUTION_PERCENTILES = (50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99)
PHASE_ORDER = ("warmup", "measure")


# ---------------------------------------------------------------- formatting

def fmt(value: Any, digits: int | None = None, unit: str = "") -> str:
    """A number for people: '-' when absent, thousands separators, fixed digits if given."""
    if value is None or isinstance(value, jinja2.Undefined):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        if math.isnan(value):
            return "-"
        text = f"{value:,.{digits}f}" if digits is not None else f"{round(value, 4):,}"
    else:
        text = str(value)
    return f"{text} {unit}".rstrip() if unit else text


def percent(value: Any, digits: int = 1) -> str:
    if value is None or isinstance(value, jinja2.Undefined):
        return "-"
    return f"{value * 100:.{digits}f} %"


def size(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "-"
    return f"{value / 2**30:,.1f} GiB"


def plain(value: Any) -> str:
    """A setting as written in JSON (true, null, lists), not as Python prints it."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, jinja2.Undefined):
        return "-"
    return json.dumps(value, ensure_ascii=False)


_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def local_href(value: Any) -> str | None:
    """A relative link inside the run folder, or None (absolute paths, URLs, '..' are not linked)."""
    if not isinstance(value, str) or not value or _SCHEME.match(value):
        return None
    if value.startswith(("/", "\\")) or ".." in Path(value).parts:
        return None
    return value


# ---------------------------------------------------------------- view model

def _phase_rows(phases: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    names = [n for n in PHASE_ORDER if "submitted" in phases.get(n, {})]
    names += [n for n, p in phases.items() if n not in names and "submitted" in p]
    get: list[tuple[str, str, Callable[[dict[str, Any]], str]]] = [
        ("Window", "s", lambda p: "{} – {}".format(*(fmt(float(w), 3) for w in p["window"]))
         if p.get("window") else "-"),
        ("Target rate", "tx/s", lambda p: fmt(p.get("target_rate"), 1)),
        ("Send rate (achieved)", "tx/s", lambda p: fmt(p.get("send_rate"), 1)),
        ("Send rate / target", "", lambda p: percent(p.get("send_rate_ratio"))),
        ("Throughput (committed)", "tx/s", lambda p: fmt(p.get("throughput"), 1)),
        ("Submitted", "tx", lambda p: fmt(p.get("submitted"))),
        ("Committed", "tx", lambda p: fmt(p.get("committed"))),
        ("Failed", "tx", lambda p: fmt(p.get("failed"))),
        ("Dropped (not sent)", "tx", lambda p: fmt(p.get("dropped"))),
        ("Unconfirmed", "tx", lambda p: fmt(p.get("unconfirmed"))),
        ("Success ratio", "", lambda p: percent(p.get("success_ratio"), 2)),
    ]
    for key in ("p50", "p90", "p95", "p99", "max", "mean", "stddev"):
        label = {"max": "Latency max", "mean": "Latency mean",
                 "stddev": "Latency std. dev."}.get(key, f"Latency {key}")
        get.append((label, "ms", lambda p, k=key: fmt((p.get("latency") or {}).get(k), 1)))
    rows = [{"label": label, "unit": unit, "values": [f(phases[n]) for n in names],
             "latency": label.startswith("Latency")} for label, unit, f in get]
    return names, rows


def measure_latencies(run_dir: Path, threshold: int) -> tuple[list[float] | None, str | None]:
    """Per-transaction latency (ms) of the measure phase, from the history; or (None, why not)."""
    source = run_dir / "history.jsonl"
    if not source.is_file():
        return None, (f"{source.name} is missing from the run folder, so the per-transaction "
                      "latency distribution cannot be drawn.")
    try:
        stored = history_module.read(source)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{source.name} could not be read ({exc}); latency distribution skipped."
    latencies = []
    for tx in stored.txs:
        if tx.phase != "measure" or tx.submitted is None or tx.error:
            continue
        at = commit_time(tx, threshold)
        if at is not None:
            latencies.append((at - tx.submitted) * 1000.0)
    return latencies, None


def distribution_table(latencies_ms: list[float]) -> list[dict[str, str]]:
    """Percentiles from an HDR histogram built exactly as harness.metrics builds it, so the
    p50/p99 here equal the phase table's."""
    histogram = HdrHistogram(1, MAX_LATENCY_US, 3)
    for ms in latencies_ms:
        histogram.record_value(min(MAX_LATENCY_US, max(1, round(ms * 1000))))
    rows = [{"label": "min", "value": fmt(histogram.get_min_value() / 1000, 1)}]
    count = histogram.get_total_count()
    # a percentile is shown only when the run has enough samples to resolve it (p99.9 needs 1000)
    rows += [{"label": f"p{p:g}", "value": fmt(histogram.get_value_at_percentile(p) / 1000, 1)}
             for p in DISTRIBUTION_PERCENTILES if count * (100.0 - p) / 100.0 >= 1.0 - 1e-9]
    rows.append({"label": "max", "value": fmt(histogram.get_max_value() / 1000, 1)})
    return rows


def _distribution(results: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    measure = (results.get("phases") or {}).get("measure") or {}
    latencies, note = measure_latencies(run_dir, int(results.get("threshold_nodes") or 1))
    if latencies is None:
        return {"chart": None, "table": [], "note": note, "count": None}
    if not latencies:
        return {"chart": None, "table": [], "count": 0,
                "note": "No transaction of the measure phase committed: there is no latency "
                        "distribution to draw."}
    expected = (measure.get("latency") or {}).get("count")
    if expected is not None and expected != len(latencies):
        note = (f"history.jsonl gives {len(latencies):,} measure-phase latencies but results.json "
                f"counted {expected:,}: the two files may come from different runs.")
    summary = measure.get("latency") or {}
    marks = {k: summary.get(k) for k in ("p50", "p99")}
    return {"chart": charts.latency_distribution(latencies, marks),
            "table": distribution_table(latencies), "note": note, "count": len(latencies)}


def _headline(results: dict[str, Any]) -> list[dict[str, str]]:
    measure = (results.get("phases") or {}).get("measure") or {}
    latency = measure.get("latency") or {}
    return [
        {"label": "Throughput (measure)", "value": fmt(measure.get("throughput"), 1),
         "unit": "tx/s", "id": "measure-throughput"},
        {"label": "Send rate / target", "value": f"{fmt(measure.get('send_rate'), 1)} / "
         f"{fmt(measure.get('target_rate'), 1)}", "unit": "tx/s", "id": "measure-send-rate"},
        {"label": "Success ratio", "value": percent(measure.get("success_ratio"), 2), "unit": "",
         "id": "measure-success"},
        {"label": "Latency p50", "value": fmt(latency.get("p50"), 1), "unit": "ms",
         "id": "measure-p50"},
        {"label": "Latency p99", "value": fmt(latency.get("p99"), 1), "unit": "ms",
         "id": "measure-p99"},
    ]


def context(results: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    phase_names, phase_rows = _phase_rows(results.get("phases") or {})
    nodes = [{**node, "href": local_href(node.get("log"))} for node in results.get("nodes") or []]
    artifacts = results.get("artifacts") or {}
    files = [(label, artifacts.get(key) if key else "results.json") for label, key in
             (("results", None), ("history", "history"), ("junit", "junit"))]
    return {
        "r": results,
        "headline": _headline(results),
        "phase_names": phase_names,
        "phase_rows": phase_rows,
        "phase_errors": {n: (results["phases"][n].get("errors") or []) for n in phase_names},
        "charts": {"throughput": charts.throughput(results),
                   "latency": charts.latency_over_time(results)},
        "faults": charts.fault_spans(results.get("faults") or []),
        "distribution": _distribution(results, run_dir),
        "nodes": nodes,
        "files": [{"label": label, "href": local_href(name), "name": name}
                  for label, name in files if name],
    }


def evidence(value: Any, limit: int = 600) -> str:
    """A checker's evidence as compact JSON, cut to fit a table cell (results.json has it all)."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[:limit] + " …"


# ---------------------------------------------------------------- rendering

def template_path() -> Path:
    return paths.home() / "reports" / TEMPLATE


def _environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,                      # everything from results.json is user data
        undefined=jinja2.ChainableUndefined,  # older or partial results render with gaps
        finalize=lambda v: "-" if v is None or isinstance(v, jinja2.Undefined) else v,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, percent=percent, size=size, plain=plain,
                       local_href=local_href, evidence=evidence)
    return env


def render(results: dict[str, Any], run_dir: Path) -> str:
    template = template_path()
    if not template.is_file():
        raise InfraError(f"report template {template} is missing: report.html cannot be written "
                         "(set BCTEST_HOME to the bctest checkout that holds reports/)")
    return _environment(template.parent).get_template(TEMPLATE).render(**context(results, run_dir))


def write(path: Path, results: dict[str, Any], run_dir: Path) -> None:
    """Render report.html and replace `path` atomically (a reader never sees half a page)."""
    document = render(results, run_dir)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(document, encoding="utf-8")
    os.replace(partial, path)
