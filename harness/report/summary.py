"""summary.md: the run (or campaign) in a few lines of Markdown, for CI comments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.report import certify_view
from harness.report.text import md

ICON = {"pass": "✅", "fail": "❌", "inconclusive": "❔", "unknown": "❔", "not-applicable": "➖",
        "incomplete": "⚠️"}


def _figure(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _requirement_lines(results: dict[str, Any]) -> list[str]:
    certification = results.get("certification")
    if not certification:
        return []
    counts = ", ".join(f"{n} {v}" for v, n in certification["counts"].items() if n)
    lines = ["", f"**Certification:** {ICON.get(certification['verdict'], '')} {certification['verdict']}, "
                 f"grade **{certification['grade']}** ({counts}) against "
                 + ", ".join(f"{md(s['id'])} {md(s['version'])}" for s in results.get("standards", [])), ""]
    lines += ["| requirement | obligation | verdict | why |", "|---|---|---|---|"]
    order = {"fail": 0, "inconclusive": 1, "pass": 2, "not-applicable": 3}
    for r in sorted(results.get("requirements", []), key=lambda r: (order[r["verdict"]], r["id"])):
        lines.append(f"| {md(r['id'])} | {md(r['obligation'])} | {ICON[r['verdict']]} {r['verdict']} | "
                     f"{md(r.get('why'))} |")
    return lines


def _certify_lines(results: dict[str, Any]) -> list[str]:
    """A `bctest certify` folder's program: who and what, the claims judged, the capacity."""
    if not isinstance(results.get("certify"), dict):
        return []
    view = certify_view.view(results, Path("."))
    assert view is not None
    pack = view["pack"]
    quick = ", a vendor's self-check, not a certificate" if view["profile"] != "full" else ""
    lines = ["", f"**Certification program** (profile {md(view['profile'])}{quick}): "
                 f"vendor {md(view['vendor'])}, submission {md(view['submission'])}, "
                 f"pack {md(pack['name'])} {md(pack['version'])} "
                 f"({md(pack['family'])}, {md(pack['consensus'])})", ""]
    if view["claims"]:
        lines += ["| claim | claimed | measured | unit | verdict | why |", "|---|---|---|---|---|---|"]
        lines += [f"| {md(c['id'])} | {c['claimed']} | {c['measured']} | {md(c['unit'])} | "
                  f"{ICON[c['verdict']]} {c['verdict']} | {md(c['why']['en'])} |" for c in view["claims"]]
    else:
        lines.append("No claim verdict was recorded." if view["claimed"] else "The vendor made no claims.")
    lines += ["", f"**Capacity:** {md(view['capacity_sentence']['en'])}"]
    if view["search_sentence"]:
        lines += ["", f"How the search ended: {md(view['search_sentence']['en'])}"]
    lines.append("")
    lines += [f"- {r['status'].replace('-', ' ')}: {md(r['case'])} ({md(r['why']['en'])})"
              for r in view["rounds"]]
    return lines


def build(results: dict[str, Any]) -> str:
    chain = results.get("chain") or {}
    verdict = results["verdict"]
    title = results.get("name") or results["suite"]["name"]
    lines = [f"### bctest {ICON.get(verdict, '')} {verdict}: {md(title)} on {md(chain.get('name', '?'))} "
             f"{md(chain.get('version', ''))}", ""]
    if results.get("format", "").startswith("bctest-campaign"):
        lines += ["| case | status | verdict | throughput | success | p99 |", "|---|---|---|---|---|---|"]
        for case in results["cases"]:
            head = case.get("headline") or {}
            lines.append(f"| {md(case['id'])} | {md(case['status'])} | {ICON.get(case['verdict'] or '', '')} "
                         f"{case['verdict'] or '-'} | {_figure(head.get('throughput'), ' tx/s')} | "
                         f"{_figure(head.get('success_ratio'), '', 3)} | "
                         f"{_figure(head.get('latency_p99'), ' ms', 0)} |")
    else:
        measure = results["phases"].get("measure", {})
        latency = measure.get("latency", {})
        lines.append(f"{results['node_count']} nodes, target {measure.get('target_rate')} tx/s: sent "
                     f"{_figure(measure.get('send_rate'), ' tx/s')}, throughput "
                     f"{_figure(measure.get('throughput'), ' tx/s')}, success "
                     f"{_figure(measure.get('success_ratio'), '', 3)}, latency p50 "
                     f"{_figure(latency.get('p50'), ' ms', 0)} p99 {_figure(latency.get('p99'), ' ms', 0)}")
        query = results["phases"].get("query")
        if query:
            lines.append(f"queries ({md(query.get('kind'))}), target {query.get('target_rate')}/s: answered "
                         f"{query.get('answered')} of {query.get('submitted')}, throughput "
                         f"{_figure(query.get('throughput'), ' queries/s')}, latency p50 "
                         f"{_figure(query['latency'].get('p50'), ' ms', 1)} p99 "
                         f"{_figure(query['latency'].get('p99'), ' ms', 1)}")
        judged = [(c["id"], c["verdict"], c.get("why")) for c in results.get("checks", [])]
        judged += [(c["id"], c["verdict"], c.get("why")) for c in results.get("checkers", [])]
        judged += [(f"security {p['probe']}", p["verdict"], p.get("why") or p.get("reason"))
                   for p in (results.get("security") or {}).get("probes", [])]
        if judged:
            lines += ["", "| check | verdict | why |", "|---|---|---|"]
            lines += [f"| {md(i)} | {ICON.get(v, '')} {v} | {md(w)} |" for i, v, w in judged]
        for warning in results.get("warnings", []):
            lines.append(f"\n> ⚠️ {md(warning)}")
    lines += _certify_lines(results)
    lines += _requirement_lines(results)
    lines += ["", f"run {md(results['run_id'])} · bctest {md(results['harness']['version'])} · full report: "
                  "report.html"]
    return "\n".join(lines) + "\n"


def write(run_dir: Path, results: dict[str, Any]) -> None:
    """summary.md in `run_dir` (the report writer `markdown`)."""
    path = run_dir / "summary.md"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(build(results), encoding="utf-8")
    os.replace(partial, path)
