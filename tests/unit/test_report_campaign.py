"""The campaign's report.html (results.json format bctest-campaign/1), rendered by
harness.report.html.render_campaign from a campaign folder built here: two cases that ran
(each a copy of the stored sample run, with its own report.html) and one that did not.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InfraError
from harness.report import html
from tests.unit.test_report_html import CJK, SAMPLE, STANDARD_SHA, chinese, english, judged, visible_main

CAMPAIGN_SHA = "ef" * 32


def _case(case_id: str, suite: str, results: dict[str, Any] | None) -> dict[str, Any]:
    """A case entry as harness.campaign writes it."""
    folder = f"cases/{case_id}"
    entry = {"id": case_id, "suite": {"name": suite, "path": f"/work/main/suites/{suite}.yaml",
                                      "sha256": f"{len(case_id):02d}" * 32}, "dir": folder}
    if results is None:
        return {**entry, "status": "not run", "verdict": None, "run_id": None}
    measure = results["phases"]["measure"]
    return {**entry, "status": results["status"], "verdict": results["verdict"], "run_id": results["run_id"],
            "report": f"{folder}/report.html", "results": f"{folder}/results.json",
            "history": f"{folder}/history.jsonl",
            "headline": {"throughput": measure["throughput"], "send_rate": measure["send_rate"],
                         "success_ratio": measure["success_ratio"],
                         "latency_p50": measure["latency"]["p50"], "latency_p99": measure["latency"]["p99"]},
            "faults": results.get("faults", []),
            "checkers": [{k: c[k] for k in ("id", "verdict", "why")} for c in results.get("checkers", [])]}


def build_campaign(folder: Path) -> dict[str, Any]:
    """A campaign folder (cases pressure-4 and bft-threshold ran, crash-restart did not) and its
    results.json, which is also written into the folder."""
    sample = json.loads((SAMPLE / "results.json").read_text(encoding="utf-8"))
    faulty = copy.deepcopy(sample)
    faulty.update(run_id="run-bft-threshold", verdict="fail",
                  faults=[{"id": "kill-f", "action": "kill", "nodes": ["node0"], "start": 3.0, "end": 4.5,
                           "status": "healed", "method": "docker kill (SIGKILL), then docker start"}],
                  checkers=[{"id": "safety", "verdict": "pass", "why": None, "evidence": {}},
                            {"id": "liveness", "verdict": "fail", "why": "no new height within 20 s",
                             "evidence": {"bound": 20}}])
    faulty["load"]["seed"] = 7
    ran = {"pressure-4": {**copy.deepcopy(sample), "run_id": "run-pressure-4"}, "bft-threshold": faulty}
    for case_id, results in ran.items():
        case_dir = folder / "cases" / case_id
        case_dir.mkdir(parents=True)
        shutil.copy(SAMPLE / "history.jsonl", case_dir / "history.jsonl")
        (case_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")
        html.write_run(case_dir / "report.html", results, case_dir)
    campaign = {
        "format": "bctest-campaign/1", "run_id": "c0ffee1234", "name": "certification-anvil",
        "description": "anvil certification: pressure and faults",
        "path": "/work/main/suites/certification.yaml", "sha256": CAMPAIGN_SHA,
        "started_at": "2026-11-28T21:00:00.000+00:00", "harness": {"version": "0.1.0"},
        "host": sample["host"],
        "chain": {**{k: sample["chain"][k] for k in ("name", "version", "family", "consensus")},
                  "image": {**sample["chain"]["image"],
                            "repo_digests": ["bctest/anvil@sha256:" + "cd" * 32]}},
        "cases": [_case("pressure-4", "cometbft-pressure-4", ran["pressure-4"]),
                  _case("bft-threshold", "faults-bft-threshold", ran["bft-threshold"]),
                  _case("crash-restart", "faults-crash-restart", None)],
        **judged({"pressure-4": "cases/pressure-4/history.jsonl",
                  "bft-threshold": "cases/bft-threshold/history.jsonl", "crash-restart": None}),
        "status": "incomplete", "verdict": "incomplete",
    }
    (folder / "results.json").write_text(json.dumps(campaign), encoding="utf-8")
    (folder / "campaign.json").write_text("{}", encoding="utf-8")
    return campaign


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("campaign")
    return build_campaign(folder), folder


@pytest.fixture(scope="module")
def page(built: tuple[dict[str, Any], Path]) -> str:
    campaign, folder = built
    html.write_campaign(folder / "report.html", campaign, folder)
    return (folder / "report.html").read_text(encoding="utf-8")


def section(page: str, name: str) -> str:
    start = page.index(f'<section id="{name}">')
    return page[start:page.index("</section>", start)]


# ------------------------------------------------------------------ the page

def test_campaign_report_is_one_self_contained_document(page: str) -> None:
    assert page.lower().startswith("<!doctype html>")
    assert page.count("<html") == 1 and page.rstrip().endswith("</html>")
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and "<link" not in page.lower()
    for value in re.findall(r'\b(?:src|href)="([^"]*)"', page):
        assert value.startswith(("data:", "#")) or not re.match(r"^[a-z][a-z0-9+.-]*:|^/", value), value
    assert "Undefined" not in page and "None" not in page


def test_campaign_sections_in_order(page: str) -> None:
    ids = ["summary", "requirements", "cases", "reproducibility"]
    positions = [page.index(f'<section id="{i}">') for i in ids]
    assert positions == sorted(positions)


def test_summary_shows_chain_image_verdict_grade_and_standards(page: str) -> None:
    summary = english(section(page, "summary"))
    assert re.search(r'id="verdict">\s*<div class="word">incomplete</div>', summary)
    assert "Not every case ran to completion" in summary
    assert re.search(r'<div class="grade grade-C">C</div>', summary)
    assert "anvil 1.7.1" in summary and "bctest/anvil@sha256:" + "cd" * 32 in summary
    assert "sha256:69742286f2fff294bd8419a556a8f99cba340710b5e7c73558ce28497379d0cb" in summary
    assert '<tr id="standard-bctest-demo">' in summary and "Demo standard" in summary
    cards = dict(re.findall(r'id="([a-z-]+)"><div class="label">[^<]*</div><div class="value">([^<]*)<',
                            summary))
    assert cards == {"cases-complete": "2 / 3", "cases-passed": "1 / 3", "requirements-passed": "3 / 5",
                     "faults-injected": "1"}


def test_requirement_evidence_links_to_case_reports(page: str, built: tuple[dict[str, Any], Path]) -> None:
    _, folder = built
    requirements = english(section(page, "requirements"))
    order = [requirements.index(f'<h3 id="cat-{c}">') for c in ("function", "performance", "security",
                                                                 "reliability")]
    assert order == sorted(order)
    assert re.search(r'<a href="cases/pressure-4/report.html">case pressure-4</a> \(<span class="mono">'
                     r'run-pressure-4</span>, <a href="cases/pressure-4/history.jsonl">'
                     r'cases/pressure-4/history.jsonl</a>\)', requirements)
    assert "case crash-restart (not run)" in requirements
    assert '<span class="tag center">the test center&#39;s choice</span>' in requirements
    assert re.search(r'pressure-4: <strong class="bad">1,007.1</strong> ✗', requirements)
    for href in set(re.findall(r'href="(cases/[^"]+)"', page)):
        assert (folder / href).is_file(), href


def test_cases_table(page: str) -> None:
    table = english(section(page, "cases"))
    rows = dict(re.findall(r'<tr id="case-([a-z0-9-]+)">(.*?)</tr>', table, re.DOTALL))
    assert list(rows) == ["pressure-4", "bft-threshold", "crash-restart"]
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", rows["pressure-4"],
                                                                   re.DOTALL)]
    assert cells == ["pressure-4", "cometbft-pressure-4", "complete", "pass", "100.0", "100.0", "100.00 %",
                     "516.9", "1,007.1", "0", "-", "report.html"]
    assert '<a href="cases/pressure-4/report.html">report.html</a>' in rows["pressure-4"]
    assert re.search(r'<span class="badge v-fail" title="fail: no new height within 20 s">liveness</span>',
                     rows["bft-threshold"])
    assert '<span class="badge v-fail">fail</span>' in rows["bft-threshold"]
    assert "not run" in rows["crash-restart"] and "<a " not in rows["crash-restart"]


def test_reproducibility_facts(page: str) -> None:
    facts = english(section(page, "reproducibility"))
    assert re.search(r"<dt>Harness version</dt><dd>bctest 0.1.0</dd>", facts)
    assert "/work/main/suites/certification.yaml" in facts and CAMPAIGN_SHA in facts
    assert "<dt>Standard bctest-demo 2026.11</dt>" in facts and STANDARD_SHA in facts
    assert re.search(r"<dt>Run id</dt><dd[^>]*>c0ffee1234</dd>", facts)
    assert "2026-11-28T21:00:00.000+00:00" in facts and "AMD EPYC" in facts
    seeds = dict(re.findall(r'<td class="mono nowrap">([a-z0-9-]+)</td><td[^>]*>[^<]*<br>[0-9a-f]{64}</td>\s*'
                            r'<td class="mono">([^<]*)</td>', facts))
    assert seeds == {"pressure-4": "1", "bft-threshold": "7", "crash-restart": "-"}
    assert '<a href="results.json">results.json</a>' in facts and '<a href="campaign.json">' in facts
    assert "junit.xml" not in facts  # not in the folder: not linked


def test_campaign_labels_come_in_both_languages(page: str) -> None:
    en = visible_main(english(page))
    leak = CJK.search(en)
    assert not leak, en[max(0, leak.start() - 120):leak.start() + 40]
    zh = visible_main(chinese(page))
    headings = re.findall(r"<h[23][^>]*>(.*?)</h[23]>", zh, re.DOTALL)
    assert headings and all(CJK.search(h) for h in headings), headings
    for label in ("用例", "测试套件", "吞吐量", "报告", "未运行", "测试方案 sha256", "认证等级"):
        assert label in zh, label


# ------------------------------------------------------------------ other campaigns

def test_user_text_is_escaped(built: tuple[dict[str, Any], Path]) -> None:
    campaign, folder = copy.deepcopy(built[0]), built[1]
    campaign["name"] = "<script>alert(1)</script>"
    campaign["cases"][0]["id"] = '"><img src=x onerror=alert(1)>'
    campaign["cases"][0]["report"] = "javascript:alert(1)"
    page = html.render_campaign(campaign, folder)
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page


def test_campaign_without_standards_or_host_renders(tmp_path: Path) -> None:
    sparse = {"format": "bctest-campaign/1", "run_id": "x1", "name": "bare", "cases": [],
              "standards": [], "requirements": [], "certification": None, "status": "incomplete",
              "verdict": "incomplete"}
    page = english(html.render_campaign(sparse, tmp_path))
    assert "Undefined" not in page and "None" not in page
    assert "No standard was named" in page and "No requirement was judged" in page
    assert "The campaign lists no case." in page


def test_write_campaign_replaces_atomically(built: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    campaign, folder = built
    target = tmp_path / "report.html"
    target.write_text("old")
    html.write_campaign(target, campaign, folder)
    assert target.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []
    assert html.render_campaign(campaign, folder) == html.render_campaign(campaign, folder)


def test_missing_campaign_template_is_an_infra_error(built: tuple[dict[str, Any], Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCTEST_HOME", str(tmp_path))
    with pytest.raises(InfraError, match=re.escape(str(tmp_path / "reports" / "campaign.html.j2"))):
        html.write_campaign(tmp_path / "report.html", built[0], built[1])
    assert not (tmp_path / "report.html").exists()


def test_a_campaign_shows_every_case_s_security_findings(built: tuple[dict[str, Any], Path]) -> None:
    from harness import findings
    from harness.model import Attempt, ProbeOutcome
    from harness.report import sarif

    results, folder = copy.deepcopy(built[0]), built[1]
    open_dev = findings.entry([ProbeOutcome("exposure", "Interface exposure", "ran", attempts=[
        Attempt("exposure", "http.anvil_nodeInfo", "node0", "fail", "high", "anvil_* is refused",
                "it answered", "REQ-<b>", "ANS")])])
    clean = findings.entry([ProbeOutcome("exposure", "Interface exposure", "ran", attempts=[
        Attempt("exposure", "http.admin_nodeInfo", "node1", "pass", "high", "admin_* is refused")])])
    results["security"] = findings.merge({"security": open_dev, "pressure-4": None, "security-4": clean})
    assert results["security"]["verdict"] == "fail" and results["security"]["findings"]["high"] == 1
    assert [p["case"] for p in results["security"]["probes"]] == ["security", "security-4"]
    page = html.render_campaign(results, folder)
    part = section(page, "security")
    assert "anvil_* is refused" in part and "security: exposure/http.anvil_nodeInfo" in part
    assert "REQ-&lt;b&gt;" in part and '<span class="num">5</span>' in page   # reproducibility moved
    log = sarif.build(results)["runs"][0]
    assert [r["id"] for r in log["tool"]["driver"]["rules"]] == ["exposure"]
    (finding,) = log["results"]
    assert finding["properties"]["campaign_case"] == "security"
    assert finding["partialFingerprints"]["bctest/case"] == "security/exposure/http.anvil_nodeInfo/node0"
    assert findings.merge({"a": None}) is None
