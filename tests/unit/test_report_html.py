"""report.html: one self-contained, escaped page rendered from a stored run (no Docker).

The fixture in tests/fixtures/sample_run/ is the results.json and history.jsonl of a real
5-second anvil run (100 tx/s, 1 node).
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
    html.write(folder / "report.html", results, folder)
    return (folder / "report.html").read_text(encoding="utf-8")


def embedded_images(page: str) -> list[str]:
    return re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', page)


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
    ids = ["summary", "phases", "checks", "charts", "nodes", "detection", "reproducibility"]
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
    html.write(target, sample, run_dir)
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

    html.write(tmp_path / "report.html", zero_commits(sample), tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")

    assert re.search(r'class="verdict-banner v-incomplete"', page)
    assert "interrupted: node0 stopped answering" in page
    assert re.search(r"<td>Latency p99</td><td[^>]*>ms</td>\s*<td[^>]*>-</td>", page)
    assert re.search(r'id="measure-p50">.*?<div class="value">-<', page, re.DOTALL)
    assert "No transaction of the measure phase committed" in page
    assert len(embedded_images(page)) == 2  # the distribution is replaced by the note
    assert '<span class="badge v-fail">fail</span>' in page


def test_missing_history_skips_the_distribution_with_a_note(sample: dict[str, Any],
                                                            tmp_path: Path) -> None:
    page = html.render(sample, tmp_path)
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
        html.write(tmp_path / "report.html", sample, tmp_path)
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
    page = html.render(sparse, tmp_path)
    assert "Undefined" not in page and "None" not in page
    assert '<th class="n focus">measure</th>' in page and ">warmup</th>" not in page
    assert len(embedded_images(page)) == 2
