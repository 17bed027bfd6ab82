"""The certification program of a `bctest certify` folder in its reports: the `certify` block of
the campaign's results.json (format bctest-certify/1) shown in report.html (both languages),
summary.md, junit.xml and on the console. The campaign is the one test_report_campaign.py
builds, grown by the capacity search's cases; a campaign without `certify` renders as before.
"""

from __future__ import annotations

import copy
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness.report import certify_view, html, junit, summary
from harness.report import console as console_report
from tests.unit.test_report_campaign import build_campaign, section
from tests.unit.test_report_html import CJK, DATA_SVG, chinese, english, visible_main

SUBMISSION = "5a" * 32
MANIFEST = "6b" * 32
CARDS = r'id="(capacity-[a-z]+)"><div class="label">.*?</div><div class="value">(.*?)</div>'
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'


def step(case: str, stage: str, offered: float, passed: bool, why: str | None = None,
         **figures: Any) -> dict[str, Any]:
    ratio = 1.0 if passed else 0.8
    return {"case": case, "stage": stage, "offered": offered, "send_rate": offered * 0.998,
            "throughput": offered * (0.99 if passed else 0.7), "success_ratio": ratio,
            "commit_send_ratio": 0.99 if passed else 0.7, "latency_p50": 800.0 + offered,
            "latency_p99": 1500.0 + 10 * offered, "passed": passed, "why": why, **figures}


def certify_block(**changes: Any) -> dict[str, Any]:
    """A `certify` block as the lead's `bctest certify` writes it (/work/notes/certify.md)."""
    block = {
        "format": "bctest-certify/1", "profile": "full",
        "vendor": {"name": "acme", "submission": SUBMISSION},
        "pack": {"name": "anvil", "version": "1.7.1", "family": "evm", "consensus": "single",
                 "manifest_sha256": MANIFEST},
        "claims": {"throughput": {"4": 500.0}, "latency_p99_ms": 3000.0, "fault_tolerance": {"4": 1},
                   "sha256": "7c" * 32},
        "claim_verdicts": [
            {"id": "throughput-4",
             "title": {"en": "Sustained throughput at 4 nodes", "zh": "4 节点持续吞吐量"},
             "claimed": 500.0, "measured": 480.2, "unit": "tx/s", "verdict": "fail",
             "why": "480.2 tx/s committed at the claimed 500 tx/s, below the claim",
             "case": "pressure-4"},
            {"id": "latency-p99",
             "title": {"en": "p99 latency at the claimed rate", "zh": "声明速率下的 p99 时延"},
             "claimed": 3000.0, "measured": 1007.1, "unit": "ms", "verdict": "pass",
             "why": "p99 1007.1 ms ≤ 3000 ms", "case": "pressure-4"},
            {"id": "fault-tolerance-4",
             "title": {"en": "Faulty nodes tolerated at 4 nodes", "zh": "4 节点容忍的故障节点数"},
             "claimed": 1, "measured": None, "unit": "nodes", "verdict": "unknown",
             "why": "the bft-threshold round did not finish", "case": "bft-threshold"},
        ],
        "capacity": {
            "nodes": 4,
            "criteria": {"success_ratio": 0.95, "commit_send_ratio": 0.95, "latency_p99_ms": 10000.0,
                         "send_rate_ratio": 0.95},
            "steps": [step("capacity-01", "ramp", 100.0, True), step("capacity-02", "ramp", 200.0, True),
                      step("capacity-03", "ramp", 400.0, False, "commits 70.0 % of sends, below 95 %"),
                      step("capacity-04", "bisect", 300.0, True),
                      step("capacity-confirm", "confirm", 300.0, True)],
            "capacity": 300.0, "confirmed": True, "limited_by": "chain", "knee": "capacity-04",
            "why": "the chain kept pace up to 300 tx/s; at 400 tx/s commits fell behind sends"},
        "not_applicable": [{"case": "partition-pow",
                            "why": "partition applies to pow chains; anvil is single"}],
        "not_run": [{"case": "spike-4", "why": "not in the quick profile"}],
    }
    block.update(changes)
    return block


def build_certified(folder: Path) -> dict[str, Any]:
    """The campaign of test_report_campaign.py as a certify folder: its capacity cases (each
    with a report.html of its own) and the `certify` block."""
    campaign = build_campaign(folder)
    for case_id in ("capacity-01", "capacity-02", "capacity-03", "capacity-04", "capacity-confirm"):
        (folder / "cases" / case_id).mkdir(parents=True)
        (folder / "cases" / case_id / "report.html").write_text("<!doctype html>", encoding="utf-8")
        campaign["cases"].append({"id": case_id, "suite": {"name": f"capacity-{case_id}"},
                                  "status": "complete", "verdict": "pass", "run_id": f"run-{case_id}",
                                  "report": f"cases/{case_id}/report.html"})
    campaign["certify"] = certify_block()
    return campaign


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("certify")
    return build_certified(folder), folder


@pytest.fixture(scope="module")
def page(built: tuple[dict[str, Any], Path]) -> str:
    campaign, folder = built
    return html.render_campaign(campaign, folder)


def text_of(fragment: str) -> str:
    """What a reader sees of an HTML fragment: tags dropped, white space collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment)).strip()


def rows(table: str) -> list[list[str]]:
    return [[text_of(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table[table.index("<tbody>"):], re.DOTALL)]


def table(page: str, table_id: str) -> str:
    start = page.index(f'<table id="{table_id}">')
    return page[start:page.index("</table>", start)]


# ------------------------------------------------------------------ report.html

def test_the_program_comes_before_the_requirements_and_numbers_follow(page: str) -> None:
    ids = ["summary", "certify", "requirements", "cases", "reproducibility"]
    positions = [page.index(f'<section id="{i}">') for i in ids]
    assert positions == sorted(positions)
    numbers = re.findall(r'<h2><span class="num">(\d)</span>', page)
    assert numbers == ["1", "2", "3", "4", "5"]
    nav = english(page[page.index("<nav>"):page.index("</nav>")])
    assert re.findall(r'href="#([a-z]+)">(\d) ', nav) == [
        ("summary", "1"), ("certify", "2"), ("requirements", "3"), ("cases", "4"), ("reproducibility", "5")]
    assert "Certification program" in nav


def test_who_and_what_was_certified(page: str) -> None:
    facts = english(section(page, "certify"))
    facts = facts[facts.index('id="certify-facts"'):facts.index('id="certify-claims"')]
    shown = dict(re.findall(r"<dt>([^<]+)</dt><dd[^>]*>([^<]*)</dd>", facts))
    assert shown == {"Vendor": "acme", "Submission": SUBMISSION, "Profile": "full",
                     "Program format": "bctest-certify/1", "Claims sha256": "7c" * 32, "Pack": "anvil",
                     "Version": "1.7.1", "Family": "evm", "Consensus": "single", "Manifest sha256": MANIFEST}
    profile = text_of(english(section(page, "certify")).split('id="certify-profile">')[1].split("</p>")[0])
    assert profile.startswith("Profile full: the certification program")


def test_a_quick_profile_says_it_is_a_self_check(built: tuple[dict[str, Any], Path]) -> None:
    campaign, folder = copy.deepcopy(built[0]), built[1]
    campaign["certify"]["profile"] = "quick"
    part = section(html.render_campaign(campaign, folder), "certify")
    profile = part.split('id="certify-profile">')[1].split("</p>")[0]
    assert "the vendor&#39;s self-check in minutes, NOT a certificate" in english(profile)
    assert "不是认证证书" in chinese(profile)
    assert 'class="skip" id="certify-profile"' in part


def test_claims_table(page: str, built: tuple[dict[str, Any], Path]) -> None:
    claims = english(table(page, "claims"))
    assert rows(claims) == [
        ["throughput-4 Sustained throughput at 4 nodes", "500.0", "480.2", "tx/s", "fail",
         "480.2 tx/s committed at the claimed 500 tx/s, below the claim", "pressure-4"],
        ["latency-p99 p99 latency at the claimed rate", "3,000.0", "1,007.1", "ms", "pass",
         "p99 1007.1 ms ≤ 3000 ms", "pressure-4"],
        ["fault-tolerance-4 Faulty nodes tolerated at 4 nodes", "1", "—", "nodes", "unknown",
         "the bft-threshold round did not finish", "bft-threshold"]]
    assert claims.count('<a href="cases/pressure-4/report.html">pressure-4</a>') == 2
    assert '<a href="cases/bft-threshold/report.html">bft-threshold</a>' in claims
    assert '<span class="badge v-fail">fail</span>' in claims
    zh = chinese(table(page, "claims"))
    assert "4 节点持续吞吐量" in zh and "不通过" in zh and "未知" in zh and "实测值" in zh


def test_capacity_sentence_figures_and_claim(page: str) -> None:
    part = section(page, "certify")
    en = text_of(english(part).split('id="capacity-sentence">')[1].split("</p>")[0])
    assert en == ("Measured capacity 300.0 tx/s at 4 nodes, limited by the chain; the vendor claims "
                  "500.0 tx/s at 4 nodes.")
    why = text_of(english(part).split('id="capacity-why">')[1].split("</p>")[0])
    assert why == ("How the search ended: The chain kept pace up to 300 tx/s; at 400 tx/s commits fell "
                   "behind sends.")
    zh = text_of(chinese(part).split('id="capacity-sentence">')[1].split("</p>")[0])
    assert "4 个节点下实测容量 300.0 tx/s，受限于链本身；厂商声明 4 个节点下为 500.0 tx/s。" in zh
    cards = dict(re.findall(CARDS, english(part)))
    assert cards == {"capacity-value": "300.0", "capacity-claimed": "500.0", "capacity-limited": "chain",
                     "capacity-confirmed": "yes"}
    assert "capacity-harness-limit" not in part
    assert ("A step passes when success ≥ 95.0 %, commits / sends ≥ 95.0 %, send rate / offered ≥ 95.0 % "
            "and p99 ≤ 10,000 ms.") in english(part)
    assert "台阶通过的条件：成功率 ≥ 95.0 %，上链数 / 发送数 ≥ 95.0 %" in chinese(part)


def test_capacity_curve_is_embedded(page: str) -> None:
    part = section(page, "certify")
    figure = part[part.index('<figure id="capacity-curve">'):part.index("</figure>")]
    (src,) = re.findall(r'<img src="([^"]+)"', figure)
    assert src.startswith(DATA_SVG) and len(src) > 10_000
    import base64
    svg = base64.b64decode(src[len(DATA_SVG):]).decode("utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "<script" not in svg


def test_steps_table(page: str) -> None:
    steps = english(table(page, "capacity-steps"))
    assert rows(steps) == [
        ["capacity-01", "ramp", "100.0", "99.8", "99.0", "100.0 %", "99.0 %", "900.0", "2,500.0", "pass",
         "—"],
        ["capacity-02", "ramp", "200.0", "199.6", "198.0", "100.0 %", "99.0 %", "1,000.0", "3,500.0", "pass",
         "—"],
        ["capacity-03", "ramp", "400.0", "399.2", "280.0", "80.0 %", "70.0 %", "1,200.0", "5,500.0", "fail",
         "commits 70.0 % of sends, below 95 %"],
        ["capacity-04 knee", "bisect", "300.0", "299.4", "297.0", "100.0 %", "99.0 %", "1,100.0", "4,500.0",
         "pass", "—"],
        ["capacity-confirm", "confirm", "300.0", "299.4", "297.0", "100.0 %", "99.0 %", "1,100.0", "4,500.0",
         "pass", "—"]]
    assert '<tr class="step focus">' in steps and steps.count('<tr class="step focus">') == 1
    for case in ("capacity-01", "capacity-03", "capacity-confirm"):
        assert f'<a href="cases/{case}/report.html">{case}</a>' in steps
    zh = chinese(table(page, "capacity-steps"))
    assert "递增" in zh and "二分" in zh and "确认" in zh and "拐点" in zh


def test_rounds_not_applicable_and_not_run(page: str) -> None:
    assert rows(english(table(page, "rounds"))) == [
        ["partition-pow", "not-applicable", "partition applies to pow chains; anvil is single"],
        ["spike-4", "not run", "not in the quick profile"]]
    zh = chinese(table(page, "rounds"))
    assert "不适用" in zh and "未运行" in zh


def test_every_link_resolves_and_the_page_stays_self_contained(page: str,
                                                               built: tuple[dict[str, Any], Path]) -> None:
    folder = built[1]
    assert "None" not in page and "Undefined" not in page
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page
    for href in set(re.findall(r'href="(cases/[^"]+)"', page)):
        assert (folder / href).is_file(), href


def test_the_section_comes_in_both_languages(page: str) -> None:
    part = section(page, "certify")
    en = visible_main("<main>" + english(part) + "</main>")
    leak = CJK.search(en)
    assert not leak, en[max(0, leak.start() - 120):leak.start() + 40]
    zh = chinese(part)
    headings = re.findall(r"<h[23][^>]*>(.*?)</h[23]>", zh, re.DOTALL)
    assert len(headings) == 4 and all(CJK.search(h) for h in headings), headings
    for label in ("认证测试方案", "厂商", "清单 sha256", "厂商的声明", "容量", "实测容量", "受限于",
                  "不适用或未运行的测试轮次"):
        assert label in zh, label


# ------------------------------------------------------------------ capacity as it may end

def _capacity_part(built: tuple[dict[str, Any], Path], **capacity: Any) -> str:
    campaign, folder = copy.deepcopy(built[0]), built[1]
    campaign["certify"]["capacity"].update(capacity)
    return section(html.render_campaign(campaign, folder), "certify")


def test_a_harness_limit_is_a_lower_bound_not_the_chain_s_limit(built: tuple[dict[str, Any], Path]) -> None:
    part = _capacity_part(built, limited_by="harness", why=None)
    en = text_of(english(part).split('id="capacity-sentence">')[1].split("</p>")[0])
    assert en.startswith("Measured capacity 300.0 tx/s at 4 nodes, limited by the harness;")
    assert "The harness could not send faster: 300.0 tx/s is a lower bound of the chain's capacity, " \
           "not the chain's limit." in en.replace("&#39;", "'")
    warning = text_of(english(part).split('id="capacity-harness-limit">')[1].split("</p>")[0])
    assert "could not send faster" in warning and "never the chain's limit" in warning.replace("&#39;", "'")
    assert "下限" in chinese(part)


def test_a_profile_limit_is_a_lower_bound(built: tuple[dict[str, Any], Path]) -> None:
    part = _capacity_part(built, limited_by="profile", confirmed=False)
    en = text_of(english(part).split('id="capacity-sentence">')[1].split("</p>")[0])
    assert "limited by the profile (not confirmed by a full-length run);" in en
    assert "the full profile tries: the chain may sustain more, and 300.0 tx/s is a lower bound." in en


def test_no_capacity_when_no_step_passed(built: tuple[dict[str, Any], Path]) -> None:
    failed = [step("capacity-01", "ramp", 100.0, False, "success 80.0 %, below 95 %")]
    part = _capacity_part(built, capacity=None, knee=None, confirmed=False, steps=failed, why=None)
    en = text_of(english(part).split('id="capacity-sentence">')[1].split("</p>")[0])
    assert en == ("No offered rate met the criteria at 4 nodes, so there is no measured capacity "
                  "(even the lowest rate tried, 100.0 tx/s, failed); the vendor claims 500.0 tx/s at 4 "
                  "nodes.")
    cards = dict(re.findall(CARDS, english(part)))
    assert cards["capacity-value"] == "—" and cards["capacity-confirmed"] == "no"
    assert "focus" not in table(part, "capacity-steps") and "None" not in part
    assert '<figure id="capacity-curve">' in part   # the failing step is still drawn


def test_a_knee_that_failed_confirmation_certifies_no_capacity(built: tuple[dict[str, Any], Path]) -> None:
    steps = copy.deepcopy(built[0]["certify"]["capacity"]["steps"])
    steps[-1].update(passed=False, why="latency_p99 = 12000, needs <= 10000")
    part = _capacity_part(built, capacity=None, confirmed=False, steps=steps, why=None)
    en = text_of(english(part).split('id="capacity-sentence">')[1].split("</p>")[0])
    assert en == ("No capacity is certified at 4 nodes: the best step, 300.0 tx/s, did not pass its "
                  "full-length confirmation run; the vendor claims 500.0 tx/s at 4 nodes.")
    assert "最佳台阶 300.0 tx/s 未通过完整时长的确认运行" in chinese(part)
    assert rows(table(english(part), "capacity-steps"))[-1][-2:] == ["fail",
                                                                    "latency_p99 = 12000, needs &lt;= 10000"]


def test_no_capacity_search(built: tuple[dict[str, Any], Path]) -> None:
    campaign, folder = copy.deepcopy(built[0]), built[1]
    campaign["certify"]["capacity"] = None
    part = section(html.render_campaign(campaign, folder), "certify")
    assert "The capacity search did not run: this certification has no capacity figure." in english(part)
    assert "capacity-steps" not in part and "capacity-curve" not in part


def test_capacity_curve_chart_function() -> None:
    from harness.report import charts
    capacity = certify_block()["capacity"]
    assert charts.capacity_curve(capacity).startswith(DATA_SVG)
    assert charts.capacity_curve(capacity) == charts.capacity_curve(copy.deepcopy(capacity))  # deterministic
    assert charts.capacity_curve(None) is None
    assert charts.capacity_curve({"steps": [{"offered": "fast"}, "junk"]}) is None
    bare = {"steps": [{"case": "c1", "offered": 10, "passed": False}], "knee": "nowhere"}
    assert charts.capacity_curve(bare).startswith(DATA_SVG)   # no figures but the rate: still drawn


# ------------------------------------------------------------------ hostile and missing values

def test_hostile_vendor_strings_are_escaped(built: tuple[dict[str, Any], Path]) -> None:
    campaign, folder = copy.deepcopy(built[0]), built[1]
    block = campaign["certify"]
    block["vendor"]["name"] = HOSTILE
    block["pack"].update(name=HOSTILE, version=HOSTILE, family="[bold]x[/bold]")
    block["claim_verdicts"][0].update(id=HOSTILE, title={"en": HOSTILE, "zh": HOSTILE}, unit=HOSTILE,
                                      why=HOSTILE, case="../../etc/passwd")
    block["claim_verdicts"][1].update(case="javascript:alert(1)", verdict="<b>pass</b>")
    block["capacity"]["steps"][0].update(case=HOSTILE, why=HOSTILE, stage=HOSTILE)
    block["capacity"]["why"] = HOSTILE
    block["not_applicable"][0].update(case=HOSTILE, why=HOSTILE)
    page = html.render_campaign(campaign, folder)
    assert "<script" not in page and "<img src=x" not in page and "<b>pass" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'href="javascript:' not in page and "etc/passwd\"" not in page and 'href="../' not in page
    claims = rows(english(table(page, "claims")))
    assert claims[1][4] == "unknown"          # a verdict that is not one is unknown


def test_missing_values_render_as_a_dash(built: tuple[dict[str, Any], Path]) -> None:
    campaign, folder = copy.deepcopy(built[0]), built[1]
    campaign["certify"] = {"format": "bctest-certify/1", "profile": None, "vendor": {"name": "acme",
                                                                                    "submission": None},
                           "pack": None, "claims": None, "capacity": {"nodes": None, "steps": [
                               {"case": "capacity-01", "offered": 50.0, "passed": None}]}}
    page = html.render_campaign(campaign, folder)
    part = english(section(page, "certify"))
    assert "None" not in page and "Undefined" not in page
    shown = dict(re.findall(r"<dt>([^<]+)</dt><dd[^>]*>([^<]*)</dd>", part))
    assert shown["Submission"] == "—" and shown["Pack"] == "—" and shown["Manifest sha256"] == "—"
    assert "The vendor made no claims" in part
    assert rows(table(part, "capacity-steps")) == [["capacity-01", "—", "50.0"] + ["—"] * 8]
    assert "not a profile this report knows; read it as a self-check" in part
    assert "No offered rate met the criteria at the nodes tested" in part
    assert "Every round of the program applied and ran." in part


def test_certify_of_the_wrong_shape_does_not_crash(built: tuple[dict[str, Any], Path]) -> None:
    campaign, folder = copy.deepcopy(built[0]), built[1]
    campaign["certify"] = {"vendor": "acme", "pack": [], "claims": "lots", "claim_verdicts": {"x": 1},
                           "capacity": "fast", "not_applicable": "none", "not_run": [None, 3]}
    page = html.render_campaign(campaign, folder)
    assert '<section id="certify">' in page and "None" not in page
    assert summary.build(campaign) and junit.build(campaign) is not None


# ------------------------------------------------------------------ without certify: as before

def test_a_campaign_without_certify_has_no_program(tmp_path: Path) -> None:
    campaign = build_campaign(tmp_path)
    page = html.render_campaign(campaign, tmp_path)
    assert 'id="certify"' not in page and "Certification program" not in page and "认证测试方案" not in page
    assert re.findall(r'<h2><span class="num">(\d)</span>', page) == ["1", "2", "3", "4"]
    assert ".quote" not in page
    assert certify_view.view(campaign, tmp_path) is None
    assert "Certification program" not in summary.build(campaign)
    assert "bctest.claims" not in ET.tostring(junit.build(campaign), encoding="unicode")
    out = io.StringIO()
    console_report.certify_summary(Console(file=out, width=200), campaign)
    assert out.getvalue() == ""


# ------------------------------------------------------------------ summary.md, junit.xml, console

def test_summary_md_has_the_program_claims_and_capacity(built: tuple[dict[str, Any], Path]) -> None:
    campaign = copy.deepcopy(built[0])
    campaign["certify"]["vendor"]["name"] = "acme | ### ✅ pass"
    text = summary.build(campaign)
    assert "**Certification program** (profile full" in text
    assert "acme \\| ### ✅ pass" in text and "\n### ✅" not in text.split("**Certification program**")[1]
    assert "| claim | claimed | measured | unit | verdict | why |" in text
    assert ("| throughput-4 | 500.0 | 480.2 | tx/s | ❌ fail | 480.2 tx/s committed at the claimed 500 tx/s, "
            "below the claim |") in text
    assert "| fault-tolerance-4 | 1 | — | nodes | ❔ unknown |" in text
    assert ("**Capacity:** Measured capacity 300.0 tx/s at 4 nodes, limited by the chain; the vendor claims "
            "500.0 tx/s at 4 nodes.\n\nHow the search ended: The chain kept pace up to 300 tx/s; at 400 tx/s "
            "commits fell behind sends.") in text
    assert "not applicable: partition-pow (partition applies to pow chains; anvil is single)" in text
    assert "not run: spike-4 (not in the quick profile)" in text
    assert text.index("**Certification program**") < text.index("**Certification:**")


def test_junit_has_a_testcase_per_claim(built: tuple[dict[str, Any], Path]) -> None:
    campaign = copy.deepcopy(built[0])
    campaign["certify"]["claim_verdicts"][1]["id"] = "latency\x00p99"
    suite = junit.build(campaign).find("testsuite")
    assert suite is not None
    claims = {c.get("name"): c for c in suite.iter("testcase") if c.get("classname") == "bctest.claims"}
    assert list(claims) == ["throughput-4", "latency p99", "fault-tolerance-4"]
    (failure,) = claims["throughput-4"].findall("failure")
    assert failure.get("message") == "480.2 tx/s committed at the claimed 500 tx/s, below the claim"
    assert not list(claims["latency p99"]) and claims["fault-tolerance-4"].find("skipped") is not None
    total = len(list(suite.iter("testcase")))
    assert suite.get("tests") == str(total)
    failures = sum(1 for c in suite.iter("testcase") if c.find("failure") is not None)
    assert suite.get("failures") == str(failures)
    ET.fromstring(ET.tostring(junit.build(campaign)))   # still parses


def test_console_summary(built: tuple[dict[str, Any], Path]) -> None:
    campaign = copy.deepcopy(built[0])
    campaign["certify"]["pack"]["name"] = "[red]evil[/red]"
    campaign["certify"]["capacity"]["limited_by"] = "harness"
    out = io.StringIO()
    console_report.certify_summary(Console(file=out, width=300, color_system=None), campaign)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("certify (profile full): vendor acme, submission " + SUBMISSION
                        + ", pack [red]evil[/red] 1.7.1 (evm, single)")
    assert ("   fail claim throughput-4: claimed 500.0 tx/s, measured 480.2 tx/s: 480.2 tx/s committed "
            "at the claimed 500 tx/s, below the claim") in lines
    assert any(line.startswith("capacity: Measured capacity 300.0 tx/s at 4 nodes, limited by the harness")
               and "a lower bound" in line for line in lines)
    assert "not applicable: partition-pow (partition applies to pow chains; anvil is single)" in lines
    assert "not run: spike-4 (not in the quick profile)" in lines
    assert "  how the search ended: The chain kept pace up to 300 tx/s; at 400 tx/s commits fell behind " \
           "sends." in lines
