"""report.html: one self-contained page (inline CSS, charts as data: URIs, no script) that a
person opens in a browser to read a run, or a campaign of runs; in English or Chinese.

The layouts live in reports/report.html.j2 (one run) and reports/campaign.html.j2 (a
campaign), which share reports/_base.css.j2 (styles), _i18n.j2 (the zh / en switch) and
_standards.j2 (certification, requirements, host facts); jinja2, autoescape on. This module
turns results.json (plus, for the latency distribution, the run's history.jsonl) into
display-ready values, one function per section, so the templates only arrange them.
Labels made here come as {"en": …, "zh": …}; the templates show the chosen one.
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
from harness.metrics import MAX_LATENCY_US, CommitRule, commit_rule
from harness.report import charts, topology_view
from harness.standards.verdicts import OPS

TEMPLATE = "report.html.j2"
CAMPAIGN_TEMPLATE = "campaign.html.j2"
DISTRIBUTION_PERCENTILES = (50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99)
PHASE_ORDER = ("warmup", "measure")
CATEGORIES = {"function": "功能", "performance": "性能", "security": "安全", "reliability": "可靠性"}
VERDICTS = ("pass", "fail", "inconclusive", "not-applicable")

# The words the harness itself writes into results.json (verdicts, statuses, enums), in Chinese.
ZH = {
    "pass": "通过", "fail": "不通过", "incomplete": "未完成", "inconclusive": "无法判定",
    "not-applicable": "不适用", "unknown": "未知", "complete": "完成", "not run": "未运行",
    "healed": "已恢复", "skipped": "已跳过", "failed": "失败", "applied": "已施加",
    "mandatory": "强制", "recommended": "推荐", "warmup": "预热", "measure": "测量", "settle": "收尾",
    "query": "查询",
    **CATEGORIES,
}
VERDICT_CLASS = {"pass": "pass", "fail": "fail", "incomplete": "incomplete",
                 "inconclusive": "inconclusive", "not-applicable": "na"}
OP_SYMBOL = {">=": "≥", "<=": "≤", "!=": "≠", "==": "="}
GRADE_MEANING = {
    "A": ("every applicable requirement passed", "所有适用要求均通过"),
    "B": ("every mandatory requirement passed; some recommended ones did not",
          "所有强制要求均通过，部分推荐要求未通过"),
    "C": ("no mandatory requirement failed, but some could not be judged",
          "无强制要求不通过，但部分强制要求无法判定"),
    "F": ("a mandatory requirement failed", "有强制要求不通过"),
}


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


# A file of the run folder: plain path characters only. No colon (no scheme, however it is
# disguised: " javascript:", "java\tscript:"), no leading slash, no backslash, no "..".
_LOCAL_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+@=-]*(/[A-Za-z0-9_.+@=-]+)*")


def local_href(value: Any) -> str | None:
    """A relative link inside the run folder, or None (absolute paths, URLs, '..' are not linked)."""
    if not isinstance(value, str) or not _LOCAL_PATH.fullmatch(value):
        return None
    if ".." in Path(value).parts:
        return None
    return value


# ---------------------------------------------------------------- language

def text(en: str, zh: str) -> dict[str, str]:
    """A label made here, in both languages (the templates show one)."""
    return {"en": en, "zh": zh}


def bilingual(value: Any) -> dict[str, str]:
    """{"en", "zh"} for a value from results.json: {zh, en} texts as they are, the harness's
    own words translated, anything else the same in both languages."""
    if isinstance(value, dict) and ("en" in value or "zh" in value):
        en, zh = value.get("en") or value.get("zh"), value.get("zh") or value.get("en")
        return {"en": str(en), "zh": str(zh)}
    if value is None or isinstance(value, jinja2.Undefined):
        return {"en": "-", "zh": "-"}
    word = value if isinstance(value, str) else plain(value)
    return {"en": word, "zh": ZH.get(word, word)}


def verdict_class(value: Any) -> str:
    """The CSS class suffix (v-…) of a verdict or status."""
    return VERDICT_CLASS.get(value, "unknown") if isinstance(value, str) else "unknown"


# ---------------------------------------------------------------- view model

def _phase_rows(phases: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    names = [n for n in PHASE_ORDER if "submitted" in phases.get(n, {})]
    # the query phase (reads, not transactions) is shown in the headline, not in this table
    names += [n for n, p in phases.items() if n not in names and n != "query" and "submitted" in p]
    get: list[tuple[dict[str, str], str, Callable[[dict[str, Any]], str]]] = [
        (text("Window", "时间窗"), "s",
         lambda p: "{} – {}".format(*(fmt(float(w), 3) for w in p["window"])) if p.get("window") else "-"),
        (text("Target rate", "目标速率"), "tx/s", lambda p: fmt(p.get("target_rate"), 1)),
        (text("Send rate (achieved)", "实际发送速率"), "tx/s", lambda p: fmt(p.get("send_rate"), 1)),
        (text("Send rate / target", "发送速率 / 目标"), "", lambda p: percent(p.get("send_rate_ratio"))),
        (text("Throughput (committed)", "吞吐量（已上链）"), "tx/s", lambda p: fmt(p.get("throughput"), 1)),
        (text("Submitted", "已发送"), "tx", lambda p: fmt(p.get("submitted"))),
        (text("Committed", "已上链"), "tx", lambda p: fmt(p.get("committed"))),
        (text("Failed", "失败"), "tx", lambda p: fmt(p.get("failed"))),
        (text("Dropped (not sent)", "丢弃（未发送）"), "tx", lambda p: fmt(p.get("dropped"))),
        (text("Unconfirmed", "未确认"), "tx", lambda p: fmt(p.get("unconfirmed"))),
        (text("Success ratio", "成功率"), "", lambda p: percent(p.get("success_ratio"), 2)),
    ]
    latency_labels = {"max": text("Latency max", "时延最大值"), "mean": text("Latency mean", "时延平均值"),
                      "stddev": text("Latency std. dev.", "时延标准差")}
    for key in ("p50", "p90", "p95", "p99", "max", "mean", "stddev"):
        label = latency_labels.get(key, text(f"Latency {key}", f"时延 {key}"))
        get.append((label, "ms", lambda p, k=key: fmt((p.get("latency") or {}).get(k), 1)))
    rows = [{"label": label, "unit": unit, "values": [f(phases[n]) for n in names],
             "group": label["en"] == "Latency p50"} for label, unit, f in get]
    return names, rows


def measure_latencies(run_dir: Path, threshold: int | None = None
                      ) -> tuple[list[float] | None, dict[str, str] | None]:
    """Per-transaction latency (ms) of the measure phase, from the history; or (None, why not).
    Commit time follows the history's own rule (its commit nodes: a topology's root tier);
    `threshold`, when given, overrides the number of commit nodes that must hold a tx."""
    source = run_dir / "history.jsonl"
    if not source.is_file():
        return None, text(f"{source.name} is missing from the run folder, so the per-transaction "
                          "latency distribution cannot be drawn.",
                          f"运行目录中缺少 {source.name}，无法绘制逐笔交易的时延分布。")
    try:
        stored = history_module.read(source)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, text(f"{source.name} could not be read ({exc}); latency distribution skipped.",
                          f"无法读取 {source.name}（{exc}），已跳过时延分布。")
    rule = commit_rule(stored.header)
    if threshold is not None:
        rule = CommitRule(threshold, rule.nodes)
    latencies = []
    for tx in stored.txs:
        if tx.phase != "measure" or tx.submitted is None or tx.error:
            continue
        at = rule.time(tx)
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
    latencies, note = measure_latencies(run_dir, results.get("threshold_nodes"))
    if latencies is None:
        return {"chart": None, "table": [], "note": note, "count": None}
    if not latencies:
        return {"chart": None, "table": [], "count": 0,
                "note": text("No transaction of the measure phase committed: there is no latency "
                             "distribution to draw.", "测量阶段没有交易上链，无时延分布可绘制。")}
    expected = (measure.get("latency") or {}).get("count")
    if expected is not None and expected != len(latencies):
        note = text(f"history.jsonl gives {len(latencies):,} measure-phase latencies but results.json "
                    f"counted {expected:,}: the two files may come from different runs.",
                    f"history.jsonl 给出 {len(latencies):,} 个测量阶段时延，而 results.json 统计为 "
                    f"{expected:,}：两个文件可能来自不同的运行。")
    summary = measure.get("latency") or {}
    marks = {k: summary.get(k) for k in ("p50", "p99")}
    return {"chart": charts.latency_distribution(latencies, marks),
            "table": distribution_table(latencies), "note": note, "count": len(latencies)}


def _headline(results: dict[str, Any]) -> list[dict[str, Any]]:
    measure = (results.get("phases") or {}).get("measure") or {}
    latency = measure.get("latency") or {}
    send = f"{fmt(measure.get('send_rate'), 1)} / {fmt(measure.get('target_rate'), 1)}"
    return [
        {"label": text("Throughput (measure)", "吞吐量（测量阶段）"), "id": "measure-throughput",
         "value": fmt(measure.get("throughput"), 1), "unit": "tx/s"},
        {"label": text("Send rate / target", "发送速率 / 目标"), "id": "measure-send-rate",
         "value": send, "unit": "tx/s"},
        {"label": text("Success ratio", "成功率"), "id": "measure-success",
         "value": percent(measure.get("success_ratio"), 2), "unit": ""},
        {"label": text("Latency p50", "时延 p50"), "id": "measure-p50",
         "value": fmt(latency.get("p50"), 1), "unit": "ms"},
        {"label": text("Latency p99", "时延 p99"), "id": "measure-p99",
         "value": fmt(latency.get("p99"), 1), "unit": "ms"},
    ] + _query_headline((results.get("phases") or {}).get("query"))


def _query_headline(query: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The read workload's figures beside the transaction figures (when the run had one)."""
    if not query:
        return []
    latency = query.get("latency") or {}
    return [
        {"label": text(f"Query throughput ({query.get('kind')})", f"查询吞吐量（{query.get('kind')}）"),
         "id": "query-throughput", "value": fmt(query.get("throughput"), 1), "unit": "queries/s"},
        {"label": text("Queries answered / sent", "查询已应答 / 已发送"), "id": "query-answered",
         "value": f"{fmt(query.get('answered'))} / {fmt(query.get('submitted'))}",
         "unit": f"(target {fmt(query.get('target_rate'), 1)}/s)"},
        {"label": text("Query latency p50 / p99", "查询时延 p50 / p99"), "id": "query-latency",
         "value": f"{fmt(latency.get('p50'), 1)} / {fmt(latency.get('p99'), 1)}", "unit": "ms"},
    ]


# ---------------------------------------------------------------- certification and requirements

def _certification(results: dict[str, Any]) -> dict[str, Any] | None:
    """The overall grade over every standard judged; None when the run named no standard."""
    certification = results.get("certification")
    if not certification:
        return None
    grade = certification.get("grade")
    en, zh = GRADE_MEANING.get(grade, ("", ""))
    counts = certification.get("counts") or {}
    return {"grade": grade, "verdict": certification.get("verdict"),
            "meaning": text(en, zh) if en else None,
            "counts": [(v, counts.get(v, 0)) for v in VERDICTS]}


def _standards(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The standards judged, each with its own grade (the document itself is left out)."""
    return [{key: standard.get(key) for key in ("id", "version", "title", "file", "sha256", "grade",
                                                "verdict")}
            | {"counts": [(v, (standard.get("counts") or {}).get(v, 0)) for v in VERDICTS]}
            for standard in results.get("standards") or []]


def _meets(value: Any, op: str, limit: Any) -> bool | None:
    """Whether one measured value meets a threshold; None when there is nothing to compare."""
    if value is None or value in ("unknown", "not-applicable") or op not in OPS:
        return None
    if isinstance(value, str) != isinstance(limit, str):
        return None
    try:
        return bool(OPS[op](value, limit))
    except TypeError:
        return None


def _thresholds(requirement: dict[str, Any]) -> list[dict[str, Any]]:
    """Each threshold with what every case measured for its metric."""
    measured = requirement.get("measured") or {}
    thresholds = requirement.get("threshold") or []
    rows = []
    for threshold in thresholds if isinstance(thresholds, list) else [thresholds]:
        metric, op, limit = threshold.get("metric"), threshold.get("op"), threshold.get("value")
        values = [{"case": case, "value": fmt((figures or {}).get(metric)),
                   "meets": _meets((figures or {}).get(metric), op, limit)}
                  for case, figures in measured.items()]
        rows.append({"metric": metric, "op": OP_SYMBOL.get(op, op), "value": fmt(limit),
                     "unit": threshold.get("unit"), "center": threshold.get("chosen_by") == "test-center",
                     "measured": values})
    return rows


def _evidence(requirement: dict[str, Any], case_reports: dict[str, str | None]) -> list[dict[str, Any]]:
    """Where each case's figures come from: its run, its history and (in a campaign) its report."""
    return [{"case": e.get("case"), "run_id": e.get("run_id"), "ran": bool(e.get("run_id")),
             "history": e.get("history"), "history_href": local_href(e.get("history")),
             "report_href": case_reports.get(e.get("case"))}
            for e in requirement.get("evidence") or []]


def _requirement(requirement: dict[str, Any], case_reports: dict[str, str | None]) -> dict[str, Any]:
    method = requirement.get("method") or {}
    source = requirement.get("source") or {}
    return {
        "id": requirement.get("id"), "standard": requirement.get("standard"),
        "title": requirement.get("title"), "obligation": requirement.get("obligation"),
        "verdict": requirement.get("verdict"), "why": requirement.get("why"),
        "source": {"document": source.get("document"), "clause": source.get("clause"),
                   "note": source.get("note")},
        "thresholds": _thresholds(requirement),
        "evidence": _evidence(requirement, case_reports),
        "cases": method.get("cases") or [],
        "steps": method.get("steps") or [],
        "expected": method.get("expected"),
    }


def requirements_view(results: dict[str, Any],
                      case_reports: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Requirements grouped by category (function, performance, security, reliability, then any
    other), with an overview of the verdicts per category. `case_reports` maps a case id to
    its report (campaigns); a single run's evidence is this page."""
    requirements = results.get("requirements") or []
    categories = list(CATEGORIES) + sorted({str(r.get("category")) for r in requirements} - set(CATEGORIES))
    groups, overview = [], []
    for category in categories:
        members = [r for r in requirements if str(r.get("category")) == category]
        counts = [(v, sum(1 for r in members if r.get("verdict") == v)) for v in VERDICTS]
        label = text(category.capitalize(), CATEGORIES.get(category, category))
        overview.append({"id": category, "label": label, "total": len(members), "counts": counts})
        if members:
            groups.append({"id": category, "label": label, "counts": [c for c in counts if c[1]],
                           "items": [_requirement(r, case_reports or {}) for r in members]})
    return {"groups": groups, "overview": overview, "total": len(requirements)}


SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


def security_view(results: dict[str, Any]) -> dict[str, Any] | None:
    """The Security section: one row per probe, then every failed attempt, worst first."""
    security = results.get("security")
    if not security:
        return None
    findings = [{**a, "campaign_case": p.get("case")} for p in security["probes"] for a in p["attempts"]
                if a["verdict"] == "fail"]
    findings.sort(key=lambda a: SEVERITY_ORDER.index(a["severity"]))
    counted = ", ".join(f"{n} {s}" for s, n in security["findings"].items() if n)
    sentence = (f"{len(findings)} findings ({counted})." if findings
                else "No probe found anything.")
    return {"probes": security["probes"], "findings": findings, "sentence": sentence,
            "campaign": any(p.get("case") for p in security["probes"])}


def context(results: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Everything report.html.j2 shows of one run."""
    phase_names, phase_rows = _phase_rows(results.get("phases") or {})
    nodes = [{**node, "href": local_href(node.get("log"))} for node in results.get("nodes") or []]
    artifacts = results.get("artifacts") or {}
    files = [(label, artifacts.get(key) if key else "results.json") for label, key in
             (("results", None), ("history", "history"), ("junit", "junit"))]
    return {
        "r": results,
        "headline": _headline(results),
        "certification": _certification(results),
        "standards": _standards(results),
        "requirements": requirements_view(results),
        "security": security_view(results),
        "topology": topology_view.view(results),
        "phase_names": phase_names,
        "phase_rows": phase_rows,
        "phase_errors": {n: (results["phases"][n].get("errors") or []) for n in phase_names},
        "charts": {"throughput": charts.throughput(results),
                   "latency": charts.latency_over_time(results),
                   "cpu": charts.cpu_per_node(results)},
        "faults": charts.fault_spans(results.get("faults") or []),
        "distribution": _distribution(results, run_dir),
        "nodes": nodes,
        "files": [{"label": label, "href": local_href(name), "name": name}
                  for label, name in files if name],
    }


# ---------------------------------------------------------------- campaign view model

CAMPAIGN_FILES = (("results", "results.json"), ("plan", "campaign.json"), ("junit", "junit.xml"),
                  ("summary", "summary.md"), ("findings", "findings.sarif"))


def _case_seed(run_dir: Path, case: dict[str, Any]) -> Any:
    """The load seed of a case, read from its results.json when the campaign folder holds it."""
    name = local_href(case.get("results"))
    if not name or not (run_dir / name).is_file():
        return None
    try:
        return (json.loads((run_dir / name).read_text(encoding="utf-8")).get("load") or {}).get("seed")
    except (OSError, ValueError, AttributeError):
        return None


def _case_rows(results: dict[str, Any], run_dir: Path) -> list[dict[str, Any]]:
    """One row per planned case: how it ended, its headline figures and links into its folder."""
    rows = []
    for case in results.get("cases") or []:
        headline = case.get("headline") or {}
        rows.append({
            "id": case.get("id"), "suite": case.get("suite") or {}, "status": case.get("status"),
            "verdict": case.get("verdict"), "run_id": case.get("run_id"),
            "report_href": local_href(case.get("report")),
            "results_href": local_href(case.get("results")),
            "history_href": local_href(case.get("history")),
            "throughput": fmt(headline.get("throughput"), 1),
            "send_rate": fmt(headline.get("send_rate"), 1),
            "success": percent(headline.get("success_ratio"), 2),
            "p50": fmt(headline.get("latency_p50"), 1),
            "p99": fmt(headline.get("latency_p99"), 1),
            "faults": len(case.get("faults") or []) if case.get("run_id") else None,
            "checkers": [{"id": c.get("id"), "verdict": c.get("verdict"), "why": c.get("why")}
                         for c in case.get("checkers") or []],
            "seed": _case_seed(run_dir, case),
        })
    return rows


def _campaign_headline(results: dict[str, Any]) -> list[dict[str, Any]]:
    cases = results.get("cases") or []
    requirements = results.get("requirements") or []
    applicable = [r for r in requirements if r.get("verdict") != "not-applicable"]
    return [
        {"label": text("Cases complete", "完成的用例"), "id": "cases-complete",
         "value": f"{sum(1 for c in cases if c.get('status') == 'complete')} / {len(cases)}"},
        {"label": text("Cases passed", "通过的用例"), "id": "cases-passed",
         "value": f"{sum(1 for c in cases if c.get('verdict') == 'pass')} / {len(cases)}"},
        {"label": text("Requirements passed", "通过的要求"), "id": "requirements-passed",
         "value": f"{sum(1 for r in applicable if r.get('verdict') == 'pass')} / {len(applicable)}"},
        {"label": text("Faults injected", "注入的故障"), "id": "faults-injected",
         "value": fmt(sum(len(c.get("faults") or []) for c in cases))},
    ]


def campaign_context(results: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Everything campaign.html.j2 shows: the certification, the certification program (a
    `bctest certify` folder), the requirements with evidence linked to each case's own
    report, the cases and the reproducibility facts."""
    from harness.report import certify_view  # it builds on this module's helpers

    case_reports = {c.get("id"): local_href(c.get("report")) for c in results.get("cases") or []}
    return {
        "c": results,
        "headline": _campaign_headline(results),
        "certification": _certification(results),
        "standards": _standards(results),
        "requirements": requirements_view(results, case_reports),
        "cases": _case_rows(results, run_dir),
        "security": security_view(results),
        "certify": certify_view.view(results, run_dir, case_reports),
        "files": [{"label": label, "href": name, "name": name}
                  for label, name in CAMPAIGN_FILES if (run_dir / name).is_file()],
    }


def evidence(value: Any, limit: int = 600) -> str:
    """A checker's evidence as compact JSON, cut to fit a table cell (results.json has it all)."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= limit else text[:limit] + " …"


# ---------------------------------------------------------------- rendering

def template_path(name: str = TEMPLATE) -> Path:
    return paths.home() / "reports" / name


def _environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,                      # everything from results.json is user data
        undefined=jinja2.ChainableUndefined,  # older or partial results render with gaps
        finalize=lambda v: "-" if v is None or isinstance(v, jinja2.Undefined) else v,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, percent=percent, size=size, plain=plain, local_href=local_href,
                       evidence=evidence, bilingual=bilingual, vclass=verdict_class)
    return env


def _render(name: str, values: dict[str, Any]) -> str:
    template = template_path(name)
    if not template.is_file():
        raise InfraError(f"report template {template} is missing: report.html cannot be written "
                         "(set BCTEST_HOME to the bctest checkout that holds reports/)")
    return _environment(template.parent).get_template(name).render(**values)


def render(results: dict[str, Any], run_dir: Path) -> str:
    """report.html of one run."""
    return _render(TEMPLATE, context(results, run_dir))


def render_campaign(results: dict[str, Any], run_dir: Path) -> str:
    """report.html of a campaign (results.json format bctest-campaign/1)."""
    return _render(CAMPAIGN_TEMPLATE, campaign_context(results, run_dir))


def _replace(path: Path, document: str) -> None:
    """Replace `path` atomically (a reader never sees half a page)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(document, encoding="utf-8")
    os.replace(partial, path)


def write(run_dir: Path, results: dict[str, Any]) -> None:
    """report.html in `run_dir`, of a run or a campaign (the report writer `html`)."""
    if results.get("format", "").startswith("bctest-campaign"):
        write_campaign(run_dir / "report.html", results, run_dir)
    else:
        write_run(run_dir / "report.html", results, run_dir)


def write_run(path: Path, results: dict[str, Any], run_dir: Path) -> None:
    """Render report.html of one run into `path`, atomically."""
    _replace(path, render(results, run_dir))


def write_campaign(path: Path, results: dict[str, Any], run_dir: Path) -> None:
    """Render the campaign's report.html into `path`, atomically."""
    _replace(path, render_campaign(results, run_dir))
