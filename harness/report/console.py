"""The run's summary on the console: the measure (and query) phase in one line each (and,
for a topology run, each zone that received load), the warnings, every check, fault and
checker verdict, and where the report is.

Anything that came from a chain pack, a node or a suite is escaped: it is shown, never
read as console markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from harness.report import certify_view

COLOURS = {"pass": "green", "fail": "red"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _verdict(verdict: str) -> str:
    colour = COLOURS.get(verdict, "yellow")
    return f"[{colour}]{escape(f'{verdict:>7}')}[/{colour}]"


def audit_summary(audited: dict[str, Any]) -> str:
    """One plain line: the audit's verdict, and per check its verdict and figures."""
    line = f"authenticity audit of {audited.get('node')}: {audited['verdict']}"
    if audited.get("error"):
        return f"{line} ({audited['error']})"
    checks = []
    for name, check in (audited.get("checks") or {}).items():
        figures = [f"{check['checked']} checked", *(f"{v} {k}" for k, v in check.get("counts", {}).items())]
        if check.get("failed"):
            figures.append(f"{check['failed']} failed")
        checks.append(f"{name} {check['verdict']} ({', '.join(figures)})")
    return f"{line}; {audited.get('blocks')} blocks: " + "; ".join(checks)


def summarize(console: Console, results: dict[str, Any], run_dir: Path) -> None:
    def plain(text: str) -> None:
        console.print(text, highlight=False, markup=False)

    measure = results["phases"]["measure"]
    latency = measure["latency"]
    plain(f"measure: target {measure['target_rate']:g} tx/s, sent {measure['send_rate']:.1f} tx/s, "
          f"throughput {measure['throughput']:.1f} tx/s; submitted {measure['submitted']}, "
          f"committed {measure['committed']}, failed {measure['failed']}; latency p50 "
          f"{_ms(latency['p50'])} p99 {_ms(latency['p99'])} max {_ms(latency['max'])}")
    query = results["phases"].get("query")
    if query:
        plain(f"query ({query['kind']}): target {query['target_rate']:g} q/s, "
              f"sent {query['send_rate']:.1f} q/s, "
              f"throughput {query['throughput']:.1f} q/s; submitted {query['submitted']}, answered "
              f"{query['answered']}, failed {query['failed']}; latency p50 {_ms(query['latency']['p50'])} "
              f"p99 {_ms(query['latency']['p99'])} max {_ms(query['latency']['max'])}")
    for name, zone in (results.get("zones") or {}).items():   # a topology run: by zone of submission
        if zone.get("submitted"):
            plain(f"  zone {name} ({zone.get('tier')}): submitted {zone['submitted']}, committed "
                  f"{zone.get('committed')}; latency p50 {_ms(zone['latency']['p50'])} "
                  f"p99 {_ms(zone['latency']['p99'])}")
    for warning in results["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, markup=True)
    for check in results["checks"]:
        console.print(f"{_verdict(check['verdict'])} {escape(str(check['id']))} "
                      f"(measured {escape(str(check['measured']))})", highlight=False, markup=True)
    for fault in results.get("faults", []):
        when = "-" if fault["start"] is None else f"{fault['start']:.1f}–" + (
            "?" if fault["end"] is None else f"{fault['end']:.1f} s")
        plain(f"  fault {fault['id']}: {fault['action']} {','.join(fault['nodes'])} {when} "
              f"{fault['status']}" + (f" ({fault['reason']})" if fault["reason"] else ""))
    for checker in results.get("checkers", []):
        console.print(f"{_verdict(checker['verdict'])} {escape(str(checker['id']))}"
                      + (f": {escape(str(checker['why']))}" if checker["why"] else ""), highlight=False,
                      markup=True)
    for probe in (results.get("security") or {}).get("probes", []):
        why = probe.get("why") or probe.get("reason")
        console.print(f"{_verdict(probe['verdict'])} security {escape(probe['probe'])}"
                      + (f": {escape(str(why))}" if why else ""), highlight=False, markup=True)
    plain(f"verdict: {results['verdict']} ({results['status']}); report: {run_dir / 'report.html'}")


def certify_summary(console: Console, results: dict[str, Any]) -> None:
    """A `bctest certify` folder's program after the campaign's summary: who and what, each
    claim's verdict, the capacity sentence, the rounds that did not apply or run. Prints
    nothing for a campaign without `certify`."""
    view = certify_view.view(results, Path("."))
    if view is None:
        return

    def plain(text: str) -> None:
        console.print(text, highlight=False, markup=False)

    pack = view["pack"]
    quick = ", a vendor's self-check, not a certificate" if view["profile"] != "full" else ""
    plain(f"certify (profile {view['profile']}{quick}): vendor {view['vendor']}, submission "
          f"{view['submission']}, pack {pack['name']} {pack['version']} "
          f"({pack['family']}, {pack['consensus']})")
    for claim in view["claims"]:
        unit = "" if claim["unit"] == certify_view.DASH else f" {claim['unit']}"
        console.print(f"{_verdict(claim['verdict'])} claim {escape(claim['id'])}: claimed "
                      f"{escape(claim['claimed'] + unit)}, measured {escape(claim['measured'] + unit)}: "
                      f"{escape(claim['why']['en'])}", highlight=False, markup=True)
    plain(f"capacity: {view['capacity_sentence']['en']}")
    if view["search_sentence"]:
        plain(f"  how the search ended: {view['search_sentence']['en']}")
    for row in view["rounds"]:
        plain(f"{row['status'].replace('-', ' ')}: {row['case']} ({row['why']['en']})")
