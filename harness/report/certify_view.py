"""The certification program of a `bctest certify` folder, for people: the `certify` block of
the campaign's results.json (format bctest-certify/1) turned into display-ready values for
report.html (reports/_certify.j2), summary.md, junit.xml and the console.

Everything in the block is treated as hostile: the vendor's and the pack's strings are shown,
never trusted (the writers escape them for their format), a field of the wrong type is shown
as absent, and an absent figure is "—", never "None" and never a crash.
Labels and sentences come as {"en": …, "zh": …}.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from harness.report import charts
from harness.report.html import bilingual, local_href, text
from harness.report.text import one_line

DASH = "—"
VERDICTS = ("pass", "fail", "unknown")
STAGES = {"ramp": text("ramp", "递增"), "bisect": text("bisect", "二分"), "confirm": text("confirm", "确认")}
LIMITED_BY = {"chain": text("the chain", "链本身"), "harness": text("the harness", "测试框架"),
              "profile": text("the profile", "测试配置")}


# ---------------------------------------------------------------- hostile values

def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def number(value: Any) -> float | None:
    """A figure, or None when absent or not a finite number (a bool is not a figure)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def figure(value: Any, digits: int = 1) -> str:
    """A number for people ("—" when absent): whole numbers stay whole, others get `digits`."""
    n = number(value)
    if n is None:
        return DASH
    return f"{int(value):,}" if isinstance(value, int) else f"{n:,.{digits}f}"


def ratio(value: Any) -> str:
    n = number(value)
    return DASH if n is None else f"{n * 100:.1f} %"


def word(value: Any) -> str:
    """A string value on one line, "—" when absent or empty."""
    if value is None or isinstance(value, (dict, list)):
        return DASH
    return one_line(value) or DASH


def sentence(value: Any) -> dict[str, str]:
    """A `why` as {"en", "zh"}: as written when it comes in both languages, else the same text twice."""
    if value is None or value == "":
        return text(DASH, DASH)
    if isinstance(value, dict):
        both = bilingual(value)
        return {k: one_line(v) or DASH for k, v in both.items()}
    return text(word(value), word(value))


def verdict(value: Any) -> str:
    """pass, fail or unknown: anything else a claim verdict says is unknown."""
    return value if value in VERDICTS else "unknown"


# ---------------------------------------------------------------- sentences

def profile_sentence(certify: dict[str, Any]) -> dict[str, str]:
    """What the profile makes of this folder: quick is a self-check, full the certificate."""
    profile = certify.get("profile")
    if profile == "quick":
        return text("Profile quick: the vendor's self-check in minutes, NOT a certificate. Its figures come "
                    "from short runs; only the full profile certifies a chain.",
                    "配置 quick：厂商数分钟内完成的自检，不是认证证书。"
                    "其数据来自短时运行；只有 full 配置才能认证一条链。")
    if profile == "smoke":
        return text("Profile smoke: the shortest self-check (the harness's own tests use it), NOT a "
                    "certificate. Its figures come from very short runs; only the full profile certifies "
                    "a chain.",
                    "配置 smoke：最短的自检（供测试框架自身的测试使用），不是认证证书。"
                    "其数据来自极短的运行；只有 full 配置才能认证一条链。")
    if profile == "full":
        return text("Profile full: the certification program; this report is the evidence of the "
                    "certificate.",
                    "配置 full：完整的认证测试方案；本报告即认证证书的依据。")
    return text(f"Profile {word(profile)}: not a profile this report knows; read it as a self-check, not a "
                "certificate.", f"配置 {word(profile)}：本报告不认识该配置；请视为自检，而非认证证书。")


def claimed_throughput(certify: dict[str, Any], nodes: Any) -> float | None:
    """The throughput the vendor claims at `nodes` nodes (claims.yaml `throughput`), or None."""
    claimed = _dict(_dict(certify.get("claims")).get("throughput"))
    if isinstance(nodes, bool) or not isinstance(nodes, int):
        return None
    # "4" once results.json is read back; 4 in the dict the campaign hands the writers
    return next((number(rate) for count, rate in claimed.items() if str(count) == str(nodes)), None)


def _finished(line: str) -> str:
    """A clause as a sentence: capital first letter, closing full stop."""
    line = line[:1].upper() + line[1:]
    return line if line.endswith((".", "!", "?", "。", DASH)) else line + "."


def capacity_sentence(certify: dict[str, Any]) -> dict[str, str]:
    """The capacity in words a tester can quote: the measured figure at N nodes and what limited
    it, beside the vendor's claim; a harness or profile limit is said to be a lower bound, never
    the chain's limit. The search's own account follows it (`search_sentence`)."""
    capacity = certify.get("capacity")
    if not isinstance(capacity, dict):
        return text("The capacity search did not run: this certification has no capacity figure.",
                    "未进行容量搜索：本次认证没有容量数据。")
    nodes = capacity.get("nodes")
    n_en = f"{figure(nodes)} nodes" if number(nodes) is not None else "the nodes tested"
    n_zh = f"{figure(nodes)} 个节点" if number(nodes) is not None else "所测节点数"
    value = number(capacity.get("capacity"))
    limited = capacity.get("limited_by")
    limit = LIMITED_BY.get(limited) if isinstance(limited, str) else None
    steps = _list(capacity.get("steps"))
    knee = next((s for s in steps if s.get("case") == capacity.get("knee") and s.get("stage") != "confirm"
                 and number(s.get("offered")) is not None), None) if capacity.get("knee") else None
    claimed = claimed_throughput(certify, nodes)
    claim_en = f"; the vendor claims {figure(claimed)} tx/s at {n_en}" if claimed is not None else ""
    claim_zh = f"；厂商声明 {n_zh}下为 {figure(claimed)} tx/s" if claimed is not None else ""
    if value is None and knee is not None:
        best = f"{figure(knee.get('offered'))} tx/s"
        en = (f"No capacity is certified at {n_en}: the best step, {best}, did not pass its full-length "
              f"confirmation run{claim_en}.")
        zh = f"{n_zh}下未认证容量：最佳台阶 {best} 未通过完整时长的确认运行{claim_zh}。"
    elif value is None:
        tried = [number(s.get("offered")) for s in steps]
        lowest = min((t for t in tried if t is not None), default=None)
        en = f"No offered rate met the criteria at {n_en}, so there is no measured capacity"
        zh = f"在 {n_zh}下没有任何发送速率满足判据，因此没有实测容量"
        if lowest is not None:
            en += f" (even the lowest rate tried, {figure(lowest)} tx/s, failed)"
            zh += f"（连尝试的最低速率 {figure(lowest)} tx/s 也未通过）"
        en, zh = f"{en}{claim_en}.", f"{zh}{claim_zh}。"
    else:
        en = f"Measured capacity {figure(capacity.get('capacity'))} tx/s at {n_en}"
        zh = f"{n_zh}下实测容量 {figure(capacity.get('capacity'))} tx/s"
        if limit:
            en += f", limited by {limit['en']}"
            zh += f"，受限于{limit['zh']}"
        elif limited is not None:
            en += f", limited by {word(limited)}"
            zh += f"，受限于 {word(limited)}"
        if capacity.get("confirmed") is not True:
            en += " (not confirmed by a full-length run)"
            zh += "（未经完整时长运行确认）"
        en, zh = f"{en}{claim_en}.", f"{zh}{claim_zh}。"
    shown = f"{figure(capacity.get('capacity'))} tx/s" if value is not None else None
    if limited == "harness":
        if shown:
            en += (f" The harness could not send faster: {shown} is a lower bound of the chain's capacity, "
                   "not the chain's limit.")
            zh += f"测试框架无法发送得更快：{shown} 只是该链容量的下限，而不是链的极限。"
        else:
            en += " The harness could not send fast enough: this says nothing about the chain's capacity."
            zh += "测试框架无法以足够的速率发送：这并不说明链的容量。"
    elif limited == "profile" and shown:
        profile = word(certify.get("profile"))
        en += (f" The search stopped at the highest rate the {profile} profile tries: "
               f"the chain may sustain more, and {shown} is a lower bound.")
        zh += f"搜索在 {profile} 配置所尝试的最高速率处停止：该链可能承受更高负载，{shown} 只是下限。"
    return text(en, zh)


def search_sentence(certify: dict[str, Any]) -> dict[str, str] | None:
    """How the capacity search ended, in its own words (`capacity.why`), as a sentence."""
    why = _dict(certify.get("capacity")).get("why")
    if not why:
        return None
    both = sentence(why)
    return {k: _finished(v) for k, v in both.items()}


def criteria_sentence(criteria: dict[str, Any]) -> dict[str, str] | None:
    """When a step of the search passes, from its `criteria`; None when none is given."""
    parts = [(key, en, zh, op) for key, en, zh, op in (
        ("success_ratio", "success", "成功率", "≥"),
        ("commit_send_ratio", "commits / sends", "上链数 / 发送数", "≥"),
        ("send_rate_ratio", "send rate / offered", "实际发送速率 / 目标速率", "≥"),
        ("latency_p99_ms", "p99", "p99", "≤")) if number(criteria.get(key)) is not None]
    if not parts:
        return None
    shown = [(en, zh, f"{op} {figure(criteria[k], 0)} ms" if k == "latency_p99_ms"
              else f"{op} {ratio(criteria[k])}") for k, en, zh, op in parts]
    en = [f"{en} {v}" for en, _, v in shown]
    listed = f"{', '.join(en[:-1])} and {en[-1]}" if len(en) > 1 else en[0]
    return text(f"A step passes when {listed}.",
                "台阶通过的条件：" + "，".join(f"{zh} {v}" for _, zh, v in shown) + "。")


# ---------------------------------------------------------------- view model

def _case_href(case: Any, case_reports: dict[str, str | None], run_dir: Path) -> str | None:
    """The case's own report: as the campaign lists it, else cases/<case>/report.html if it is there."""
    if not isinstance(case, str):
        return None
    if case_reports.get(case):
        return case_reports[case]
    href = local_href(f"cases/{case}/report.html")
    return href if href and (run_dir / href).is_file() else None


def claim_rows(certify: dict[str, Any], case_reports: dict[str, str | None] | None = None,
               run_dir: Path | None = None) -> list[dict[str, Any]]:
    """One row per judged claim."""
    rows = []
    for claim in _list(certify.get("claim_verdicts")):
        title = claim.get("title")
        rows.append({
            "id": word(claim.get("id")),
            "title": sentence(title) if title else text(word(claim.get("id")), word(claim.get("id"))),
            "claimed": figure(claim.get("claimed")), "measured": figure(claim.get("measured")),
            "unit": word(claim.get("unit")), "verdict": verdict(claim.get("verdict")),
            "why": sentence(claim.get("why")), "case": word(claim.get("case")),
            "href": _case_href(claim.get("case"), case_reports or {}, run_dir or Path(".")),
        })
    return rows


def _step_rows(capacity: dict[str, Any], case_reports: dict[str, str | None],
               run_dir: Path) -> list[dict[str, Any]]:
    knee = capacity.get("knee")
    rows = []
    for step in _list(capacity.get("steps")):
        stage = step.get("stage")
        passed = step.get("passed")
        rows.append({
            "case": word(step.get("case")), "href": _case_href(step.get("case"), case_reports, run_dir),
            "stage": STAGES.get(stage) if isinstance(stage, str) and stage in STAGES else sentence(stage),
            "offered": figure(step.get("offered")), "send_rate": figure(step.get("send_rate")),
            "throughput": figure(step.get("throughput")), "success": ratio(step.get("success_ratio")),
            "commit_send": ratio(step.get("commit_send_ratio")),
            "p50": figure(step.get("latency_p50")), "p99": figure(step.get("latency_p99")),
            "passed": "pass" if passed is True else "fail" if passed is False else None,
            "why": sentence(step.get("why")) if step.get("why") else None,
            "knee": knee is not None and step.get("case") == knee and stage != "confirm",
        })
    return rows


def capacity_view(certify: dict[str, Any], case_reports: dict[str, str | None],
                  run_dir: Path) -> dict[str, Any] | None:
    capacity = certify.get("capacity")
    if not isinstance(capacity, dict):
        return None
    nodes = capacity.get("nodes")
    claimed = claimed_throughput(certify, nodes)
    limited = capacity.get("limited_by")
    return {
        "value": figure(capacity.get('capacity')), "nodes": figure(nodes),
        "claimed": figure(claimed) if claimed is not None else None,
        "limited_by": word(limited), "harness_limited": limited == "harness",
        "confirmed": capacity.get("confirmed") is True, "knee": word(capacity.get("knee")),
        "criteria": criteria_sentence(_dict(capacity.get("criteria"))),
        "chart": charts.capacity_curve(capacity),
        "steps": _step_rows(capacity, case_reports, run_dir),
    }


def view(results: dict[str, Any], run_dir: Path,
         case_reports: dict[str, str | None] | None = None) -> dict[str, Any] | None:
    """Everything reports/_certify.j2 shows; None when results.json has no `certify` block."""
    certify = results.get("certify")
    if not isinstance(certify, dict):
        return None
    vendor, pack, claims = _dict(certify.get("vendor")), _dict(certify.get("pack")), certify.get("claims")
    reports = case_reports or {}
    rounds = [{"case": word(r.get("case")), "status": status, "why": sentence(r.get("why")),
               "href": _case_href(r.get("case"), reports, run_dir)}
              for key, status in (("not_applicable", "not-applicable"), ("not_run", "not run"))
              for r in _list(certify.get(key))]
    return {
        "format": word(certify.get("format")),
        "profile": word(certify.get("profile")), "quick": certify.get("profile") != "full",
        "profile_sentence": profile_sentence(certify),
        "vendor": word(vendor.get("name")), "submission": word(vendor.get("submission")),
        "pack": {key: word(pack.get(key)) for key in ("name", "version", "family", "consensus",
                                                       "manifest_sha256")},
        "claimed": isinstance(claims, dict),
        "claims_sha256": word(_dict(claims).get("sha256")),
        "claims": claim_rows(certify, reports, run_dir),
        "capacity_sentence": capacity_sentence(certify),
        "search_sentence": search_sentence(certify),
        "capacity": capacity_view(certify, reports, run_dir),
        "rounds": rounds,
    }
