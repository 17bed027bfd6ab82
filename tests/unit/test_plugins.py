"""Audits and report writers are found through entry points, like the adapters: bctest's
own are registered in its pyproject.toml, and a vendor's pip package (the example adapter
package in tests/fixtures) brings its own audit and report writer."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from harness import audit, chainpack, report
from harness import history as history_module
from harness import results as results_module
from harness.audit import evm as aevm

from .test_audit import _evm_chain

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "fixtures" / "bctest-adapter-example"
SAMPLE = ROOT / "tests" / "fixtures" / "sample_run"
REPORT_FILES = {"results.json", "junit.xml", "summary.md", "findings.sarif", "report.html"}


@pytest.fixture
def example_package(tmp_path, monkeypatch):
    """The example package as pip would install it: its code importable and its entry points
    (read from its pyproject.toml) in a dist-info folder on sys.path."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site"
    dist_info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                        f"Version: {project['version']}\n")
    (dist_info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items()) + "\n"
        for group, entries in project["entry-points"].items()))
    shutil.copytree(EXAMPLE / "bctest_adapter_example", site / "bctest_adapter_example")
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in [m for m in sys.modules if m.split(".")[0] == "bctest_adapter_example"]:
        del sys.modules[name]


def _not_installed_for_example() -> None:
    # Without the package, its family has no audit (and the message names the group).
    with pytest.raises(ValueError, match="no authenticity audit for .*'example-evm'.*bctest.audits"):
        audit.verifier("example-evm")


def test_bctest_registers_an_audit_per_reference_family():
    from harness.audit import bitcoin, cometbft

    assert audit.verifier("evm") is aevm.verify
    assert audit.verifier("bitcoin") is bitcoin.verify and audit.verifier("cometbft") is cometbft.verify
    _not_installed_for_example()


def test_the_example_package_ships_an_audit_that_is_found_and_run(example_package):
    from bctest_adapter_example import ExampleEvmAdapter
    from bctest_adapter_example.audit import verify

    assert audit.verifier("example-evm") is verify
    blocks, signers = _evm_chain()

    class Fetched(ExampleEvmAdapter):   # the node answers with the recorded blocks
        async def raw_blocks(self, node, numbers):
            return [b for b in blocks if int(b["number"], 16) in numbers]

    pack = chainpack.load(ROOT / "chains" / "anvil")
    adapter = Fetched(pack, pack.params, nodes=1, seed=1, accounts=2)
    assert adapter.audit_expectations() == {"signers": signers}
    result = asyncio.run(audit.audit(adapter, "node0", [1, 2, 3]))
    assert result.family == "example-evm" and result.verdict == "pass" and result.blocks == 3
    # The adapter's expectations reached the verifier: other accounts fail the signatures.
    stranger = Fetched(pack, pack.params, nodes=1, seed=2, accounts=2)
    assert asyncio.run(audit.audit(stranger, "node0", [1, 2, 3])).checks["signatures"].verdict == "fail"


def test_reference_report_writers_write_the_same_files(tmp_path):
    assert [w.name for w in report.writers()][:1] == ["json"]
    assert {"json", "junit", "markdown", "sarif", "html"} <= {w.name for w in report.writers()}
    computed = results_module.compute(history_module.read(SAMPLE / "history.jsonl"))
    assert report.write_reports(tmp_path, computed) == []
    assert {p.name for p in tmp_path.iterdir()} == REPORT_FILES
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(computed))


def test_a_report_writer_added_through_the_entry_point_runs(example_package, tmp_path):
    tmp_path = tmp_path / "run"
    tmp_path.mkdir()
    assert "example-csv" in {w.name for w in report.writers()}
    computed = results_module.compute(history_module.read(SAMPLE / "history.jsonl"))
    computed["checkers"] = [{"id": "safety", "verdict": "pass", "why": None, "evidence": {}}]
    assert report.write_reports(tmp_path, computed) == []
    assert {p.name for p in tmp_path.iterdir()} == REPORT_FILES | {"verdicts.csv"}
    assert (tmp_path / "verdicts.csv").read_text() == "id,verdict\nsafety,pass\n"


def test_a_vendor_writer_that_fails_costs_no_other_report(example_package, tmp_path, monkeypatch,
                                                           capsys):
    tmp_path = tmp_path / "run"
    tmp_path.mkdir()
    import bctest_adapter_example.report as vendor

    def broken(run_dir, results):
        raise OSError("disk quota")
    monkeypatch.setattr(vendor, "write", broken)
    computed = results_module.compute(history_module.read(SAMPLE / "history.jsonl"))
    problems = report.write_reports(tmp_path, computed)
    assert problems == ["report writer 'example-csv' (bctest_adapter_example.report:write) failed: "
                        "OSError: disk quota"]
    assert {p.name for p in tmp_path.iterdir()} == REPORT_FILES
    assert "example-csv" in capsys.readouterr().err
