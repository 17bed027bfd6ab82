"""`bctest run suites/topology/sovereign-3tier.yaml`: the plan's three tiers on 9 real
CometBFT nodes — 4 root validators in two provinces, a national management node, 4 regional
application nodes taking the load — with zone latencies shaped for the whole run, measured
by the harness, visible in the per-zone commit latency, a region cut judged, and the
report's topology picture checked in Chromium."""

from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import ROOT, bctest, results, run_objects
from .test_report_browser import LINKS, SVG_SIZE, TIERS, ZONES, check_page, chromium_binary

SUITE = ROOT / "suites" / "topology" / "sovereign-3tier.yaml"


@pytest.fixture(scope="module")
def sovereign(docker_client, cometbft_image, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("sovereign") / "run"
    done = bctest("run", str(SUITE), "--out", str(run_dir), timeout=900)
    got = results(run_dir) if (run_dir / "results.json").exists() else None
    return done, got, run_dir


def test_the_three_tier_suite_passes_every_structure_check(sovereign, docker_client):
    done, got, _ = sovereign
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    verdicts = {c["id"]: c["verdict"] for c in got["checkers"]}
    assert verdicts == {"causality": "pass", "safety": "pass", "durability": "pass", "convergence": "pass",
                        "supervision": "pass", "freshness": "pass"}, verdicts
    assert got["commit_nodes"] == ["node0", "node1", "node2", "node3"]     # the root tier
    roles = got["topology"]["roles"]
    assert roles == ["root"] * 4 + ["management"] + ["application"] * 4
    measure = got["phases"]["measure"]
    assert measure["submitted"] == 2400 and measure["committed"] == 2400
    # the load went to the application tier only, one region a node
    assert {z: v["submitted"] for z, v in got["zones"].items() if v["submitted"]} == \
        {"region-1": 600, "region-2": 600, "region-3": 600, "region-4": 600}
    assert got["topology"]["supervision_completeness"] == 1.0
    # judged against standards/topology.yaml: every requirement passes on this run
    [catalogue] = got["standards"]
    assert catalogue["id"] == "bctest-topology" and catalogue["verdict"] == "pass", catalogue
    assert {r["id"]: r["verdict"] for r in got["requirements"]} == dict.fromkeys(
        ["TOP-SUPERVISION", "TOP-FRESHNESS", "TOP-CROSS-ZONE-COMMIT", "TOP-ZONE-CUT-RECOVERY"], "pass")
    assert run_objects(docker_client, got["run_id"]) == []
    leftovers = subprocess.run(["pgrep", "-f", "harness.faults.nfqueue"], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "an NFQUEUE delayer outlived the run"


def test_the_links_are_shaped_and_measured(sovereign):
    _, got, _ = sovereign
    applied = got["topology"]["links_applied"]
    assert applied["via"] in ("netem", "nfqueue") and applied["method"]
    pairs = {(p["from"], p["to"]): p for p in applied["pairs"]}
    # each end delays what it sends across: a round trip sees both directions' delay
    for pair in pairs.values():
        expected = pair["expected_rtt_ms"]
        assert pair["rtt_ms"] is not None, pair
        assert expected - 5 <= pair["rtt_ms"]["p50"] <= expected + 40, pair
    assert pairs[("province-a", "region-1")]["expected_rtt_ms"] == 40
    assert pairs[("province-a", "national")]["expected_rtt_ms"] == 80
    assert pairs[("province-a", "region-4")]["expected_rtt_ms"] == 300


def test_the_remote_region_commits_later_by_its_link(sovereign):
    _, got, _ = sovereign
    mean = {zone: got["zones"][zone]["latency"]["mean"] for zone in ("region-1", "region-3", "region-4")}
    near = (mean["region-1"] + mean["region-3"]) / 2
    # region-4's txs reach the validators 150 ms after they leave it, the others' 20 ms: with
    # 600 txs a region, the means differ by ~130 ms (a block interval of noise averaged out)
    assert mean["region-4"] - near >= 60, mean


def test_the_region_cut_is_applied_judged_and_recovered(sovereign):
    _, got, _ = sovereign
    cut = next(f for f in got["faults"] if f["id"] == "region-cut")
    assert cut["nodes"] == ["node6"] and cut["status"] == "healed"
    freshness = next(c for c in got["checkers"] if c["id"] == "freshness")["evidence"]
    node6 = freshness["nodes"]["node6"]
    assert node6["zone"] == "region-2" and node6["caught_up"] and node6["excluded"] > 0
    assert node6["recoveries"] and node6["recoveries"][0]["fault"] == "region-cut"
    durability = next(c for c in got["checkers"] if c["id"] == "durability")["evidence"]
    assert all(n["missing"] == 0 for n in durability["nodes"])


def test_the_report_draws_the_topology(sovereign, tmp_path):
    _, got, run_dir = sovereign
    chromium_binary()
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    assert '<svg id="topology-svg"' in text
    # every chart the report embeds must load
    found = check_page(run_dir / "report.html", tmp_path / "profile", images=text.count("<img"),
                       extra={"zones": ZONES, "links": LINKS, "tiers": TIERS, "svg": SVG_SIZE})
    assert len(found["images"]) >= 3
    zones = {z["zone"]: z for z in found["zones"]}
    assert set(zones) == {"national", "province-a", "province-b", "region-1", "region-2", "region-3",
                          "region-4"}, zones
    for name, zone in zones.items():
        assert zone["name"] == name and zone["shown"] and zone["inside"], zone
    assert [len(zones[z]["nodes"]) for z in ("province-a", "province-b", "national")] == [2, 2, 1]
    assert zones["region-2"]["cut"] and not zones["region-1"]["cut"]
    labels = {link["between"]: " ".join(link["text"]) for link in found["links"]}
    assert "150 ms" in labels.get("province-a region-4", "") + labels.get("region-4 province-a", ""), labels
    assert any("RTT" in text for text in labels.values()), labels
    assert len(found["tiers"]) == 3
    json.dumps(found["svg"])
