"""report.html: one self-contained, escaped page rendered from a stored run (no Docker).

The fixture in tests/fixtures/sample_run/ is the results.json and history.jsonl of a real
5-second anvil run (100 tx/s, 1 node). `judged()` adds requirement verdicts shaped as
harness.standards.judge_all writes them (also used by test_report_campaign.py).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InfraError
from harness.report import charts, html

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "sample_run"
DATA_SVG = "data:image/svg+xml;base64,"
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
STANDARD_SHA = "ab" * 32


def _requirement(rid: str, category: str, verdict: str, threshold: list[dict[str, Any]],
                 measured: dict[str, Any] | None, evidence: list[dict[str, Any]], *,
                 obligation: str = "mandatory", why: str | None = None,
                 title: dict[str, str] | None = None) -> dict[str, Any]:
    return {"id": rid, "standard": "bctest-demo", "category": category, "obligation": obligation,
            "title": title or {"zh": f"{rid} 的中文标题", "en": f"{rid} English title"},
            "source": {"document": "GB/T 43575-2023", "clause": "6.4", "note": "fault tolerance"},
            "method": {"cases": sorted({e["case"] for e in evidence}) or ["bft-threshold"],
                       "steps": [{"zh": "负载下杀死 f 个共识节点",
                                  "en": "Under load, kill f consensus nodes"},
                                 {"zh": "恢复全部节点", "en": "Heal every node"}],
                       "expected": {"zh": "恢复后继续出块", "en": "blocks again after the heal"}},
            "threshold": threshold, "verdict": verdict, "why": why, "measured": measured,
            "evidence": evidence}


def judged(history: dict[str, str | None]) -> dict[str, Any]:
    """requirements, standards and certification as results.json holds them, for the cases
    pressure-4, bft-threshold and crash-restart; `history` maps each to its history path, or
    None when the case did not run."""
    def evidence(case: str, figures: dict[str, Any]) -> dict[str, Any]:
        if history.get(case) is None:
            return {"case": case}
        return {"case": case, "run_id": f"run-{case}", "history": history[case], "figures": figures}

    throughput = {"throughput": 100.0}
    latency = {"latency_p99": 1007.1}
    checkers = {"checker_fault_tolerance": "pass", "checker_safety": "pass"}
    requirements = [
        _requirement("PERF-TX-PRESSURE-4", "performance", "pass",
                     [{"metric": "throughput", "op": ">=", "value": 90, "unit": "tx/s",
                       "chosen_by": "test-center"}],
                     {"pressure-4": throughput}, [evidence("pressure-4", throughput)]),
        _requirement("PERF-TX-LATENCY-4", "performance", "fail",
                     [{"metric": "latency_p99", "op": "<=", "value": 500, "unit": "ms",
                       "chosen_by": "source"}],
                     {"pressure-4": latency}, [evidence("pressure-4", latency)], obligation="recommended",
                     why="latency_p99 = 1007.1 ms in case pressure-4, expected <= 500 ms"),
        _requirement("REL-FT-THRESHOLD", "reliability", "pass",
                     [{"metric": "checker_fault_tolerance", "op": "==", "value": "pass"},
                      {"metric": "checker_safety", "op": "==", "value": "pass"}],
                     {"bft-threshold": checkers}, [evidence("bft-threshold", checkers)]),
        _requirement("REL-DURABILITY", "reliability", "inconclusive",
                     [{"metric": "checker_durability", "op": "==", "value": "pass"}],
                     {"crash-restart": None}, [evidence("crash-restart", {})],
                     why="case crash-restart was not run"),
        _requirement("FUN-POW-ONLY", "function", "not-applicable",
                     [{"metric": "checker_safety", "op": "==", "value": "pass"}], None, [],
                     why="applies to pow chains; this chain is bft"),
        _requirement("SEC-ESCAPE", "security", "pass",
                     [{"metric": "checker_safety", "op": "==", "value": "pass"}],
                     {"bft-threshold": checkers}, [evidence("bft-threshold", checkers)],
                     title={"zh": "<script>alert('zh')</script>", "en": "<script>alert('en')</script>"}),
    ]
    counts = {"pass": 3, "fail": 1, "inconclusive": 1, "not-applicable": 1}
    standard = {"id": "bctest-demo", "version": "2026.11", "file": "/work/main/standards/demo.yaml",
                "title": {"zh": "演示标准", "en": "Demo standard"}, "sha256": STANDARD_SHA,
                "grade": "C", "verdict": "inconclusive", "counts": counts, "document": {"requirements": []}}
    return {"requirements": requirements, "standards": [standard],
            "certification": {"grade": "C", "verdict": "inconclusive", "counts": counts}}


@pytest.fixture
def sample() -> dict[str, Any]:
    return json.loads((SAMPLE / "results.json").read_text(encoding="utf-8"))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    shutil.copy(SAMPLE / "history.jsonl", tmp_path / "history.jsonl")
    return tmp_path


@pytest.fixture(scope="module")
def sample_page(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("sample_run")
    shutil.copy(SAMPLE / "history.jsonl", folder / "history.jsonl")
    results = json.loads((SAMPLE / "results.json").read_text(encoding="utf-8"))
    html.write_run(folder / "report.html", results, folder)
    return (folder / "report.html").read_text(encoding="utf-8")


def embedded_images(page: str) -> list[str]:
    return re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', page)


def english(page: str) -> str:
    """The page as an English reader sees it: Chinese spans dropped, English spans unwrapped."""
    page = re.sub(r'<span lang="zh">.*?</span>', "", page, flags=re.DOTALL)
    return re.sub(r'<span lang="en">(.*?)</span>', r"\1", page, flags=re.DOTALL)


def chinese(page: str) -> str:
    """The page as a Chinese reader sees it."""
    page = re.sub(r'<span lang="en">.*?</span>', "", page, flags=re.DOTALL)
    return re.sub(r'<span lang="zh">(.*?)</span>', r"\1", page, flags=re.DOTALL)


def zero_commits(results: dict[str, Any]) -> dict[str, Any]:
    """The sample as if the chain never committed anything and the run was cut short."""
    broken = copy.deepcopy(results)
    broken.update(status="incomplete", verdict="incomplete",
                  status_reason="interrupted: node0 stopped answering")
    for name in ("warmup", "measure"):
        phase = broken["phases"][name]
        phase.update(committed=0, unconfirmed=phase["submitted"], throughput=0.0,
                     success_ratio=0.0)
        phase["latency"] = {k: None for k in phase["latency"]} | {"count": 0}
    for row in broken["timeseries"]:
        row.update(committed=0, p50_ms=None, p99_ms=None)
    for check in broken["checks"]:
        check.update(measured=0.0, verdict="fail", why="0.0 is not >= 0.99")
    return broken


# ------------------------------------------------------------------ the sample run

def test_sample_report_is_one_self_contained_document(sample_page: str) -> None:
    assert sample_page.lower().startswith("<!doctype html>")
    assert sample_page.count("<html") == 1 and sample_page.rstrip().endswith("</html>")
    assert "http://" not in sample_page and "https://" not in sample_page
    assert "<script" not in sample_page.lower() and "<link" not in sample_page.lower()
    for value in re.findall(r'\b(?:src|href)="([^"]*)"', sample_page):
        assert value.startswith(("data:", "#")) or not re.match(r"^[a-z][a-z0-9+.-]*:|^/", value), \
            f"reference to an outside file: {value[:80]}"


def test_sample_report_shows_verdict_and_measure_throughput(sample_page: str,
                                                            sample: dict[str, Any]) -> None:
    sample_page = english(sample_page)
    assert re.search(r'id="verdict">\s*<div class="word">pass</div>', sample_page)
    measure = sample["phases"]["measure"]
    card = re.search(r'id="measure-throughput">.*?<div class="value">([^<]*)<', sample_page, re.DOTALL)
    assert card and card.group(1) == f"{measure['throughput']:.1f}" == "100.0"
    assert "success_ratio &gt;= 0.99" in sample_page  # the check, escaped


def test_sample_report_embeds_three_svg_charts(sample_page: str) -> None:
    images = embedded_images(sample_page)
    assert len(images) == 3
    for uri in images:
        assert uri.startswith(DATA_SVG)
        svg = base64.b64decode(uri[len(DATA_SVG):]).decode("utf-8")
        assert "<svg" in svg and svg.rstrip().endswith("</svg>")


def test_sample_report_keeps_sections_in_order(sample_page: str) -> None:
    ids = ["summary", "requirements", "phases", "checks", "charts", "nodes", "detection", "reproducibility"]
    positions = [sample_page.index(f'<section id="{i}">') for i in ids]
    assert positions == sorted(positions)
    assert '<a href="logs/node0.log">logs/node0.log</a>' in sample_page
    for fact in ("12fbde9954c52bab7f72a1c87a51f9af2bccb244fa4ca8fe9a18c3ecfc2d75ad",  # suite
                 "940aadf7a668cbaf5f568e8cb62c0fc8faa7ad0cbe5143d05606e9082ef74ffd",  # manifest
                 "20.10.24+dfsg1", "AMD EPYC", "23.5 GiB"):
        assert fact in sample_page


def test_percentile_table_agrees_with_the_phase_table(sample: dict[str, Any],
                                                      run_dir: Path) -> None:
    latencies, note = html.measure_latencies(run_dir, sample["threshold_nodes"])
    assert note is None and len(latencies) == sample["phases"]["measure"]["latency"]["count"]
    table = {row["label"]: row["value"] for row in html.distribution_table(latencies)}
    summary = sample["phases"]["measure"]["latency"]
    for key in ("p50", "p90", "p95", "p99", "max", "min"):
        assert table[key] == html.fmt(summary[key], 1), key
    assert "p99.9" not in table  # 500 samples cannot resolve it


def test_rendering_is_deterministic(sample: dict[str, Any], run_dir: Path) -> None:
    assert html.render(sample, run_dir) == html.render(sample, run_dir)


def test_write_replaces_atomically(sample: dict[str, Any], run_dir: Path) -> None:
    target = run_dir / "report.html"
    target.write_text("old")
    html.write_run(target, sample, run_dir)
    assert target.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert [p.name for p in run_dir.iterdir() if p.name.endswith(".partial")] == []


# ------------------------------------------------------------------ degraded runs

def test_zero_commits_and_incomplete_still_render(sample: dict[str, Any], tmp_path: Path) -> None:
    lines = []
    for line in (SAMPLE / "history.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("type") == "tx":
            entry["commits"] = []
        lines.append(json.dumps(entry))
    (tmp_path / "history.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    html.write_run(tmp_path / "report.html", zero_commits(sample), tmp_path)
    page = english((tmp_path / "report.html").read_text(encoding="utf-8"))

    assert re.search(r'class="verdict-banner v-incomplete"', page)
    assert "interrupted: node0 stopped answering" in page
    assert re.search(r"<td>Latency p99</td><td[^>]*>ms</td>\s*<td[^>]*>-</td>", page)
    assert re.search(r'id="measure-p50">.*?<div class="value">-<', page, re.DOTALL)
    assert "No transaction of the measure phase committed" in page
    assert len(embedded_images(page)) == 2  # the distribution is replaced by the note
    assert '<span class="badge v-fail">fail</span>' in page


def test_missing_history_skips_the_distribution_with_a_note(sample: dict[str, Any],
                                                            tmp_path: Path) -> None:
    page = english(html.render(sample, tmp_path))
    note = re.search(r'id="distribution-note">([^<]*)<', page)
    assert note and "history.jsonl is missing" in note.group(1)
    assert len(embedded_images(page)) == 2


def test_user_text_is_escaped(sample: dict[str, Any], run_dir: Path) -> None:
    hostile = copy.deepcopy(sample)
    hostile["suite"]["name"] = "<script>alert(1)</script>"
    hostile["warnings"] = ['<img src="https://evil.example/x.png">']
    hostile["nodes"][0]["name"] = "n<b>0</b>"
    hostile["nodes"][0]["log"] = "javascript:alert(1)"
    page = html.render(hostile, run_dir)
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<img src="https://' not in page and "&lt;img src=&#34;https://evil" in page
    assert "n&lt;b&gt;0&lt;/b&gt;" in page
    assert 'href="javascript:' not in page


def test_faults_with_spans_are_listed(sample: dict[str, Any], run_dir: Path) -> None:
    faulty = copy.deepcopy(sample)
    faulty["faults"] = [{"action": "kill", "target": "node0", "start": 3.0, "end": 4.5},
                        {"action": "pause", "start": 5.0},          # never healed
                        {"action": "note-without-times"}]
    assert charts.fault_spans(faulty["faults"]) == [("kill node0", 3.0, 4.5),
                                                    ("pause", 5.0, None)]
    page = html.render(faulty, run_dir)
    assert "Red hatched spans: faults (2)" in page
    assert re.search(r"<td>kill node0</td><td[^>]*>3\.000</td><td[^>]*>4\.500</td>", page)
    assert len(embedded_images(page)) == 3


def test_missing_template_is_an_infra_error(sample: dict[str, Any], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCTEST_HOME", str(tmp_path))
    with pytest.raises(InfraError, match=re.escape(str(tmp_path / "reports" / "report.html.j2"))):
        html.write_run(tmp_path / "report.html", sample, tmp_path)
    assert not (tmp_path / "report.html").exists()


# ------------------------------------------------------------------ formatting

@pytest.mark.parametrize("value, args, expected", [
    (None, (), "-"), (1234567, (), "1,234,567"), (516.863, (1,), "516.9"),
    (1.008, (3, "s"), "1.008 s"), (float("nan"), (1,), "-"), (0.1 + 0.2, (), "0.3"),
])
def test_fmt(value: Any, args: tuple, expected: str) -> None:
    assert html.fmt(value, *args) == expected


@pytest.mark.parametrize("value, expected", [
    ("logs/node0.log", "logs/node0.log"), ("/etc/passwd", None), ("../x.log", None),
    ("https://example.org/x", None), ("javascript:alert(1)", None), (None, None),
])
def test_local_href(value: Any, expected: str | None) -> None:
    assert html.local_href(value) == expected


def test_results_without_optional_fields_render(sample: dict[str, Any], tmp_path: Path) -> None:
    sparse = copy.deepcopy(sample)
    for key in ("time_to_ready_seconds", "threshold_nodes", "sender", "status_reason"):
        sparse.pop(key)
    del sparse["phases"]["warmup"], sparse["phases"]["settle"]
    del sparse["host"]["docker"], sparse["chain"]["manifest_sha256"], sparse["chain"]["params"]
    del sparse["commit_detection"]["seen_after_block_timestamp_ms"]
    sparse["timeseries"] = []
    page = english(html.render(sparse, tmp_path))
    assert "Undefined" not in page and "None" not in page
    assert '<th class="n focus">measure</th>' in page and ">warmup</th>" not in page
    assert len(embedded_images(page)) == 2


# ------------------------------------------------------------------ certification and requirements

@pytest.fixture
def certified(sample: dict[str, Any]) -> dict[str, Any]:
    """The sample judged against a demo standard (history links point into the run folder)."""
    results = copy.deepcopy(sample)
    results.update(judged({"pressure-4": "history.jsonl", "bft-threshold": "history.jsonl",
                           "crash-restart": None}))
    results["chain"]["image"]["repo_digests"] = ["bctest/anvil@sha256:" + "cd" * 32]
    return results


def requirement_card(page: str, rid: str) -> str:
    found = re.search(rf'<div class="req r-[a-z]+" id="req-{rid}">.*?</details>\s*</div>', page, re.DOTALL)
    assert found, rid
    return found.group(0)


def test_summary_shows_grade_standards_and_image_digest(certified: dict[str, Any], run_dir: Path) -> None:
    page = english(html.render(certified, run_dir))
    summary = page[page.index('<section id="summary">'):page.index('<section id="requirements">')]
    assert re.search(r'<div class="grade grade-C">C</div>', summary)
    assert "no mandatory requirement failed, but some could not be judged" in summary
    assert '<span class="badge v-inconclusive">inconclusive</span>' in summary
    assert re.search(r'<tr id="standard-bctest-demo"><td class="mono">bctest-demo</td><td>2026.11</td>'
                     r'<td>Demo standard</td>', summary)
    assert "bctest/anvil@sha256:" + "cd" * 32 in summary and "anvil 1.7.1" in summary


def test_requirements_are_grouped_by_category_in_order(certified: dict[str, Any], run_dir: Path) -> None:
    page = english(html.render(certified, run_dir))
    section = page[page.index('<section id="requirements">'):page.index('<section id="phases">')]
    order = [section.index(f'<h3 id="cat-{c}">') for c in ("function", "performance", "security",
                                                            "reliability")]
    assert order == sorted(order)
    assert section.index('id="req-PERF-TX-PRESSURE-4"') < section.index('id="req-PERF-TX-LATENCY-4"')
    overview = re.search(r'<table class="narrow" id="requirement-overview">.*?</table>', section, re.DOTALL)
    assert overview and re.search(r'Performance</a></td><td class="n">2</td>\s*<td class="n">1</td>'
                                  r'<td class="n">1</td><td class="n">-</td><td class="n">-</td>',
                                  overview.group(0))
    assert re.search(r'Security</a></td><td class="n">1</td>', overview.group(0))
    assert re.search(r'Function</a></td><td class="n">1</td>', overview.group(0))


def test_requirement_shows_verdict_measured_threshold_source_and_evidence(certified: dict[str, Any],
                                                                          run_dir: Path) -> None:
    page = english(html.render(certified, run_dir))
    passed = requirement_card(page, "PERF-TX-PRESSURE-4")
    assert '<span class="badge v-pass">pass</span>' in passed
    assert "PERF-TX-PRESSURE-4 English title" in passed and "的中文标题" not in passed
    assert re.search(r'<td>≥ 90 tx/s <span class="tag center">the test center&#39;s choice</span></td>',
                     passed)
    assert re.search(r'pressure-4: <strong class="ok">100.0</strong> ✓', passed)
    assert "GB/T 43575-2023, clause 6.4 — fault tolerance" in passed
    assert '<a href="history.jsonl">history.jsonl</a>' in passed and "run-pressure-4" in passed
    assert re.search(r"<details>\s*<summary>Method: steps and expected result</summary>\s*"
                     r"<ol><li>Under load, kill f consensus nodes</li><li>Heal every node</li></ol>", passed)

    failed = requirement_card(page, "PERF-TX-LATENCY-4")
    assert '<span class="badge v-fail">fail</span>' in failed and "recommended" in failed
    assert re.search(r'<td>≤ 500 ms</td>', failed) and 'class="tag center"' not in failed
    assert re.search(r'pressure-4: <strong class="bad">1,007.1</strong> ✗', failed)
    assert "latency_p99 = 1007.1 ms in case pressure-4, expected &lt;= 500 ms" in failed

    missing = requirement_card(page, "REL-DURABILITY")
    assert '<span class="badge v-inconclusive">inconclusive</span>' in missing
    assert "case crash-restart (not run)" in missing and "crash-restart: <strong" in missing
    inapplicable = requirement_card(page, "FUN-POW-ONLY")
    assert '<span class="badge v-na">not-applicable</span>' in inapplicable
    assert "none: the requirement does not apply to this chain" in inapplicable

    zh = chinese(html.render(certified, run_dir))
    assert "PERF-TX-PRESSURE-4 的中文标题" in requirement_card(zh, "PERF-TX-PRESSURE-4")
    assert "测试中心选定" in zh and "负载下杀死 f 个共识节点" in zh and "不通过" in zh


def test_requirement_titles_are_escaped(certified: dict[str, Any], run_dir: Path) -> None:
    page = html.render(certified, run_dir)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#39;en&#39;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#39;zh&#39;)&lt;/script&gt;" in page


def test_reproducibility_lists_seed_standards_and_run(certified: dict[str, Any], run_dir: Path) -> None:
    page = english(html.render(certified, run_dir))
    facts = page[page.index('<section id="reproducibility">'):]
    assert re.search(r"<dt>Seed</dt><dd[^>]*>1</dd>", facts)
    assert "<dt>Standard bctest-demo 2026.11</dt>" in facts and STANDARD_SHA in facts
    assert re.search(r"<dt>Run id</dt><dd[^>]*>217bdf2355</dd>", facts)
    assert re.search(r"<dt>Started at</dt><dd>[^<]+</dd>", facts)


def test_without_a_standard_the_report_says_so(sample: dict[str, Any], run_dir: Path) -> None:
    plain_run = copy.deepcopy(sample)
    plain_run.update(requirements=[], standards=[], certification=None)
    page = english(html.render(plain_run, run_dir))
    assert "No standard was named" in page and 'class="grade' not in page
    assert "No requirement was judged" in page and 'id="standards"' not in page


# ------------------------------------------------------------------ zh / en

def test_language_switch_is_pure_css_and_english_by_default(sample_page: str) -> None:
    assert re.search(r'<input type="radio" name="bctest-lang" id="lang-en" class="lang-radio" checked',
                     sample_page)
    assert '<label for="lang-zh" lang="zh-CN">中文</label>' in sample_page
    assert '#lang-en:checked ~ main [lang="zh"], #lang-zh:checked ~ main [lang="en"]' in sample_page
    assert sample_page.index('id="lang-zh"') < sample_page.index("<main>")  # siblings before <main>


def visible_main(page: str) -> str:
    """<main> without the language switch (whose labels name both languages)."""
    main = page[page.index("<main>"):page.index("</main>")]
    return re.sub(r'<div class="lang-switch".*?</div>', "", main, flags=re.DOTALL)


def test_every_fixed_label_comes_in_both_languages(certified: dict[str, Any], run_dir: Path) -> None:
    page = html.render(certified, run_dir)
    en = visible_main(english(page))
    leak = CJK.search(en)
    assert not leak, en[max(0, leak.start() - 120):leak.start() + 40]
    zh = visible_main(chinese(page))
    headings = re.findall(r"<h[23][^>]*>(.*?)</h[23]>", zh, re.DOTALL)
    assert len(headings) > 15 and all(CJK.search(h) for h in headings), headings
    for label in ("摘要", "认证等级", "功能", "性能", "安全", "可靠性", "强制", "推荐", "无法判定", "不适用",
                  "出处", "证据", "吞吐量（测量阶段）", "时延 p99", "随机种子", "镜像摘要", "测试工具版本"):
        assert label in zh, label


def test_query_phase_figures_appear_beside_the_transaction_figures(sample: dict[str, Any],
                                                                   run_dir: Path) -> None:
    from harness.report import summary
    assert "query-throughput" not in html.render(sample, run_dir)   # no query phase, no card
    results = copy.deepcopy(sample)
    results["phases"]["query"] = {
        "window": [60.0, 65.0], "seconds": 5.0, "kind": "tx", "target_rate": 200, "scheduled": 1000,
        "submitted": 1000, "answered": 990, "failed": 10, "dropped": 0, "send_rate": 200.0,
        "send_rate_ratio": 1.0, "on_time_ratio": 1.0, "send_lag_p99_ms": 1.0, "throughput": 198.0,
        "success_ratio": 0.99, "errors": [],
        "latency": {"p50": 1.5, "p90": 2.0, "p95": 2.5, "p99": 4.25, "max": 9.0, "min": 0.5,
                    "mean": 1.6, "stddev": 0.4, "count": 990}}
    page = english(html.render(results, run_dir))
    card = re.search(r'id="query-throughput">.*?<div class="value">([^<]*)<', page, re.DOTALL)
    assert card and card.group(1) == "198.0"
    card = re.search(r'id="query-latency">.*?<div class="value">([^<]*)<', page, re.DOTALL)
    assert card and card.group(1) == "1.5 / 4.2"
    assert "990 of 1000, throughput 198" in summary.build(results)


def test_an_inconclusive_run_says_so_in_the_banner(sample: dict[str, Any], tmp_path: Path) -> None:
    undecided = {**sample, "verdict": "inconclusive"}
    html.write_run(tmp_path / "report.html", undecided, tmp_path)
    page = english((tmp_path / "report.html").read_text())
    assert re.search(r'<div class="verdict-banner v-inconclusive" id="verdict">\s*<div class="word">'
                     r'inconclusive</div>', page)
    assert "could not be decided (unknown): no pass can be claimed" in page


def test_security_section_shows_each_finding_with_its_request_and_answer(sample: dict[str, Any],
                                                                         run_dir: Path) -> None:
    from harness import findings
    from harness.model import Attempt, ProbeOutcome

    probed = copy.deepcopy(sample)
    hostile_answer = 'HTTP 200\n\n{"result": "<script>alert(1)</script>"}'
    probed["security"] = findings.entry([
        ProbeOutcome("exposure", "Interface exposure", "ran", attempts=[
            Attempt("exposure", "http.anvil_nodeInfo", "node0", "fail", "high",
                    "anvil_nodeInfo is refused over HTTP", "the node answered it",
                    '{"jsonrpc":"2.0","id":1,"method":"anvil_nodeInfo","params":[]}', hostile_answer),
            Attempt("exposure", "http.admin_nodeInfo", "node0", "pass", "high", "admin refused")]),
        ProbeOutcome("equivocation", "Twins", "not-applicable", "the evm family has no validator keys")])
    page = html.render(probed, run_dir)
    assert '<section id="security">' in page and "1 findings (1 high)." in page
    assert "anvil_nodeInfo is refused over HTTP" in page and "the node answered it" in page
    assert "&#34;method&#34;:&#34;anvil_nodeInfo&#34;" in page          # the exact request, escaped
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "the evm family has no validator keys" in page
    plain = html.render(sample, run_dir)
    assert '<section id="security">' not in plain
    assert '<span class="num">5</span>' in plain                    # sections renumber without it
