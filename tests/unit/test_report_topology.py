"""report.html of a topology run (no Docker): the Topology section's picture, tables and
sentences, its layout's geometry, and its escaping of hostile zone names."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness import history as hist
from harness import results as results_module
from harness.report import html, topology_view
from tests.unit.test_report_html import SAMPLE
from tests.unit.test_topology_judge import topology_run


@pytest.fixture
def run(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    topology_run(tmp_path)
    return results_module.compute(hist.read(tmp_path / "history.jsonl")), tmp_path


def section(page: str) -> str:
    start = page.index('<section id="topology">')
    return page[start:page.index("</section>", start)]


def test_the_topology_section_draws_tiers_zones_nodes_and_links(run):
    results, folder = run
    page = section(html.render(results, folder))
    assert page.count('<g class="zone ') == 4
    for zone in ("province-a", "national", "region-1", "region-2"):
        assert f'data-zone="{zone}"' in page
        assert re.search(rf'<text class="zone-name"[^>]*>{zone}</text>', page)
    assert re.findall(r'<text class="node-name"[^>]*>(node\d)</text>', page) == \
        ["node2", "node0", "node1", "node3", "node4"]    # tier by tier, top to bottom
    assert re.search(r'<g class="zone zone-application zone-cut" data-zone="region-1">', page)
    assert "✂ region-cut (partition) 5.0–10.0 s" in page
    whole = html.render(results, folder)
    fault_log = whole[whole.index('id="fault-log"'):]
    assert re.search(r'node3 <span class="zone-tag"><span lang="en">zone</span><span lang="zh">区域</span> '
                     r'region-1</span>', fault_log[:fault_log.index("</table>")])
    labels = re.findall(r'<g class="link-label" data-between="([^"]+)">(.*?)</g>', page, re.S)
    by_pair = {pair: re.findall(r">([^<]+)</text>", body) for pair, body in labels}
    assert by_pair == {"province-a national": ["40 ms", "RTT 80.9 ms"],
                       "province-a region-1": ["20 ms ± 2", "RTT 41.2 ms"],
                       "province-a region-2": ["20 ms ± 2"]}       # no RTT recorded for it
    assert 'lang="zh"' in page and "管理节点（国家级）" in page
    assert "Links applied with" in page and "netem" in page


def test_the_topology_section_tables_and_sentences(run):
    results, folder = run
    page = section(html.render(results, folder))
    table = page[page.index('id="zone-table"'):page.index("</table>", page.index('id="zone-table"'))]
    rows = re.findall(r"<tr><td class=\"mono\">([a-z0-9-]+)", table)
    assert rows == ["province-a", "national", "region-1", "region-2"]
    assert re.search(r"region-1.*?<td class=\"n\">10</td><td class=\"n\">10</td>", table, re.S)
    assert "The management tier (node2) held 20 of 20 committed transaction copies" in page
    assert "管理层（node2）在运行结束前持有已上链交易 20 / 20 份" in page
    assert re.search(r"node3 \(region-1\) followed the root tier over 14 blocks: .*5 blocks during faults "
                     r"on it left out; .*After region-cut healed at 10.0 s it reached the root tier&#39;s "
                     r"height 8 1.08 s later", page, re.S), page
    assert "node4（region-2）跟随根节点层共 19 个区块" in page
    assert "100.00 %" in page     # supervision completeness


def test_a_run_without_a_topology_has_no_topology_section(tmp_path):
    results = json.loads((SAMPLE / "results.json").read_text(encoding="utf-8"))
    assert topology_view.view(results) is None
    page = html.render(results, SAMPLE)
    assert '<section id="topology">' not in page and '<svg id="topology-svg"' not in page


def test_hostile_zone_and_node_names_are_escaped_in_the_picture(run):
    results, folder = run
    hostile = copy.deepcopy(results)
    evil = '"><script>alert(1)</script><text x="'
    hostile["topology"]["zones"][0]["name"] = evil
    hostile["topology"]["zones"][2]["parent"] = evil
    hostile["zones"] = {evil: hostile["zones"]["province-a"]}
    hostile["nodes"][0]["name"] = "<img src=x onerror=alert(2)>"
    hostile["topology"]["links_applied"] = {"method": "<b>netem</b>", "pairs": [
        {"from": evil, "to": "national", "rtt_ms": {"p50": "<i>9</i>"}}, "not a pair", None]}
    page = html.render(hostile, folder)
    assert "<script>" not in page and "<img src=x" not in page and "<b>netem" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;netem&lt;/b&gt;" in page
    assert 'data-zone="&#34;&gt;&lt;script&gt;' in page


def test_malformed_topology_in_results_draws_nothing_rather_than_failing(run):
    results, folder = run
    broken = copy.deepcopy(results)
    broken["topology"]["zones"] = [{"tier": "root"}]      # no name, no nodes
    assert topology_view.layout(broken) is None
    assert '<section id="topology">' not in html.render(broken, folder)


def test_the_layout_keeps_boxes_apart_and_inside_the_picture(run):
    results, _ = run
    g = topology_view.layout(results)
    assert [t["tier"] for t in g["tiers"]] == ["management", "root", "application"]
    boxes = [(z["x"], z["y"], z["x"] + z["w"], z["y"] + z["h"]) for z in g["zones"]]
    for k, a in enumerate(boxes):
        assert 0 <= a[0] and a[2] <= g["width"] and 0 <= a[1] and a[3] <= g["height"]
        for b in boxes[k + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    rows = {z["name"]: z["y"] for z in g["zones"]}
    assert rows["national"] < rows["province-a"] < rows["region-1"] == rows["region-2"]
    labels = [(line["lx"] - line["lw"] / 2, line["ly"] - 12, line["lx"] + line["lw"] / 2,
               line["ly"] - 12 + line["lh"]) for line in g["lines"]]
    for k, a in enumerate(labels):
        for b in labels[k + 1:] + boxes:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_the_console_summary_has_a_line_per_zone_that_received_load(run):
    from rich.console import Console

    from harness.report import console as console_module
    results, folder = run
    out = Console(record=True, width=200)
    console_module.summarize(out, results, folder)
    lines = [line for line in out.export_text().splitlines() if line.startswith("  zone ")]
    assert lines == ["  zone region-1 (application): submitted 10, committed 10; latency p50 1100.8 ms "
                     "p99 1100.8 ms",
                     "  zone region-2 (application): submitted 10, committed 10; latency p50 1100.8 ms "
                     "p99 1100.8 ms"]
