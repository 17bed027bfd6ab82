"""Text and input a vendor controls (issue 10, items 9, 11, 12): a pack cannot lower the
commit threshold, forge a heading in summary.md, break junit.xml or the console, hang
`bctest validate`, or plant links in reports; a wiped or limited node gets the test
center's limits."""

from __future__ import annotations

import copy
import os
import stat
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from harness import signing
from harness.report import html, junit, summary
from harness.report.text import md, xml
from harness.runtime.docker import NODE_CEILING, node_limits
from tests.adversarial.packs import bctest, write_pack

VENDOR_IMAGE = {"tag": "bctest-vendor/evil:1", "build": {"dockerfile": "Dockerfile"}}
SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "sample_run"


def sample_results() -> dict:
    import json
    return json.loads((SAMPLE / "results.json").read_text())


def test_a_pack_cannot_lower_the_commit_threshold(tmp_path):
    pack = write_pack(tmp_path / "pack", VENDOR_IMAGE)
    doc = yaml.safe_load((pack / "chain.yaml").read_text())
    doc["consensus"] = {"kind": "bft", "commit_share": 0.01}
    (pack / "chain.yaml").write_text(yaml.safe_dump(doc))
    done = bctest("validate", str(pack))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "consensus.commit_share" in done.stderr and "at least 1 for a bft chain" in done.stderr
    doc["consensus"] = {"kind": "pow", "commit_share": 0.75}    # raising it is a stricter claim: fine
    (pack / "chain.yaml").write_text(yaml.safe_dump(doc))
    assert bctest("validate", str(pack)).returncode == 0


def test_console_markup_in_a_pack_is_text_not_a_traceback(tmp_path):
    pack = write_pack(tmp_path / "pack", VENDOR_IMAGE)
    doc = yaml.safe_load((pack / "chain.yaml").read_text())
    doc["family"] = "[/]"
    (pack / "chain.yaml").write_text(yaml.safe_dump(doc))
    done = bctest("validate", str(pack))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "family" in done.stderr and "[/]" in done.stderr


@pytest.mark.parametrize("field,value", [("version", "1\n### ✅ pass"), ("description", "a\x07b"),
                                         ("version", "x" * 65)])
def test_free_strings_in_a_pack_are_checked(tmp_path, field, value):
    pack = write_pack(tmp_path / "pack", VENDOR_IMAGE)
    doc = yaml.safe_load((pack / "chain.yaml").read_text())
    doc[field] = value
    (pack / "chain.yaml").write_text(yaml.safe_dump(doc))
    done = bctest("validate", str(pack))
    assert done.returncode == 2 and field in done.stderr, done.stderr


def test_summary_md_cannot_be_given_a_forged_heading_or_row():
    results = sample_results()
    results["chain"]["version"] = "1.0\n### ✅ pass: everything certified"
    results["warnings"] = ["all good | pass |\n\n# Certified"]
    text = summary.build(results)
    assert [line for line in text.splitlines() if line.startswith("#")] == [text.splitlines()[0]]
    assert "\\| pass \\|" in text and "\n# Certified" not in text


def test_junit_xml_parses_whatever_control_characters_a_node_answered():
    results = sample_results()
    results["checkers"] = [{"id": "safety\x00\x1b[31m", "verdict": "fail", "why": "node said \x07\x0b",
                            "evidence": {}}]
    root = ET.fromstring(ET.tostring(junit.build(results)))
    names = [case.get("name") for case in root.iter("testcase")]
    assert "safety\ufffd\ufffd[31m" in names


def test_text_helpers():
    assert md("a\nb|c*d[e](javascript:x)") == "a b\\|c\\*d\\[e\\](javascript:x)"
    assert xml("ok\x00\ud800 fine\t") == "ok\ufffd\ufffd fine\t"


@pytest.mark.parametrize("href", [" javascript:alert(1)", "\tjavascript:alert(1)", "java\nscript:x",
                                  "logs\\..\\..\\x", "C:/Windows", "//evil.example/x", "logs/../../x",
                                  "data:text/html,x"])
def test_report_links_stay_inside_the_run_folder(href):
    assert html.local_href(href) is None


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 12):   # 9^12 values once unfolded, in well under 3 KB
        anchor, previous = chr(97 + level), chr(96 + level)
        lines.append(f"{anchor}: &{anchor} [" + ", ".join([f"*{previous}"] * 9) + "]")
    bomb = tmp_path / "suite.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    assert bomb.stat().st_size < 3000
    began = time.monotonic()
    done = bctest("validate", str(bomb), timeout=60)
    assert done.returncode == 2 and "aliases are expanded" in done.stderr
    assert time.monotonic() - began < 30


def test_a_campaign_case_cannot_be_named_dot_dot(tmp_path):
    campaign = tmp_path / "campaign.yaml"
    root = Path(__file__).resolve().parents[2]
    case = {"id": "..", "suite": str(root / "suites" / "quickstart.yaml")}
    campaign.write_text(yaml.safe_dump({"name": "c", "cases": [case],
                                        "standards": [str(root / "standards" / "performance.yaml")]}))
    done = bctest("validate", str(campaign))
    assert done.returncode == 2 and "cases[0].id" in done.stderr, done.stderr


def test_keys_init_force_replaces_a_loose_key_and_never_follows_a_link(tmp_path):
    folder = tmp_path / "keys"
    signing.init_keys(folder)
    os.chmod(folder / signing.PRIVATE, 0o644)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (folder / signing.PUBLIC).unlink()
    os.symlink(victim, folder / signing.PUBLIC)
    signing.init_keys(folder, force=True)
    assert stat.S_IMODE((folder / signing.PRIVATE).stat().st_mode) == 0o600
    assert victim.read_text() == "precious" and not (folder / signing.PUBLIC).is_symlink()


def test_a_node_gets_the_test_centers_limits_whatever_the_pack_asks():
    greedy = node_limits({"cpus": 256, "memory": "512g", "pids": 10**6})
    assert greedy == {"nano_cpus": int(NODE_CEILING["cpus"] * 1e9), "mem_limit": NODE_CEILING["memory"],
                      "pids_limit": NODE_CEILING["pids"]}
    silent = node_limits({})      # no resources in the pack: defaults, never unlimited
    assert all(value > 0 for value in silent.values())
    modest = copy.deepcopy(node_limits({"cpus": 0.5, "memory": "512m", "pids": 256}))
    assert modest == {"nano_cpus": 500_000_000, "mem_limit": 512 * 1024**2, "pids_limit": 256}
