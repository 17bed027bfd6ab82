"""A signed run folder is signed whole: editing the report ("GRADE A"), junit.xml,
summary.md or a node log after signing is named by `bctest verify` (before, only
results.json and history.jsonl were covered and verify said "every file intact")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness import signing
from harness.cli import main


@pytest.fixture
def signed(tmp_path: Path, monkeypatch) -> tuple[Path, object]:
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"verdict": "fail"}))
    (run / "history.jsonl").write_text('{"type":"header"}\n')
    (run / "report.html").write_text("<h1>GRADE C</h1>")
    (run / "junit.xml").write_text("<testsuites/>")
    (run / "summary.md").write_text("# fail\n")
    (run / "logs" / "node0.log").write_text("CONSENSUS FAILURE!!!\n")
    keys = tmp_path / "keys"
    monkeypatch.setenv("BCTEST_KEYS", str(keys))
    signing.init_keys(keys)
    document = signing.sign(run, keys / signing.PRIVATE)
    assert set(document["manifest"]["files"]) == {
        "results.json", "history.jsonl", "report.html", "junit.xml", "summary.md", "logs/node0.log"}
    return run, signing.load_public(keys / signing.PUBLIC)


@pytest.mark.parametrize("name,forged", [
    ("report.html", "<h1>GRADE A</h1>"), ("junit.xml", "<testsuites tests='0'/>"),
    ("summary.md", "# pass\n"), ("logs/node0.log", "all good\n")])
def test_an_edited_report_or_log_is_named(signed, name, forged):
    run, trusted = signed
    (run / name).write_text(forged)
    assert signing.check_signature(run, trusted) == [f"{name} changed since it was signed (SHA-256 differs)"]


def test_removed_and_added_files_are_named(signed):
    run, trusted = signed
    (run / "logs" / "node0.log").unlink()
    (run / "logs" / "node1.log").write_text("planted\n")
    assert sorted(signing.check_signature(run, trusted)) == [
        "logs/node0.log is missing",
        "logs/node1.log is not covered by the signature (added after signing)"]


def test_a_planted_link_is_named_and_a_folder_with_one_is_not_signed(signed, tmp_path):
    run, trusted = signed
    os.symlink(tmp_path / "keys" / signing.PRIVATE, run / "evidence.txt")
    assert signing.check_signature(run, trusted) == [
        "evidence.txt is a link or a special file, not a signed file"]
    with pytest.raises(signing.InputError, match="links"):
        signing.sign(run, tmp_path / "keys" / signing.PRIVATE)


def test_duplicated_json_keys_are_refused(signed, tmp_path):
    run, trusted = signed
    # Same canonical content for a last-key-wins reader, another verdict for a first-key one.
    (run / "results.json").write_text('{"verdict": "pass", "verdict": "fail"}')
    problems = signing.check_signature(run, trusted)
    assert len(problems) == 1 and "duplicated key 'verdict'" in problems[0]
    with pytest.raises(signing.InputError, match="duplicated key"):
        signing.sign(run, tmp_path / "keys" / signing.PRIVATE)


def test_verify_cli_names_the_edited_report_and_fails(signed, capsys):
    run, _ = signed
    (run / "report.html").write_text("<h1>GRADE A</h1>")
    assert main(["verify", str(run)]) == 1
    out = capsys.readouterr().out
    assert "report.html changed since it was signed" in out and "every file intact" not in out


def test_verify_of_a_non_json_results_file_is_one_input_error(signed, capsys):
    run, _ = signed
    (run / "results.json").write_text("not json {")
    assert main(["verify", str(run)]) == 2
    err = capsys.readouterr().err
    assert "results.json" in err and "Traceback" not in err


def test_a_format_1_signature_still_verifies_its_files(signed, tmp_path):
    """Folders signed by bctest 0.2.0 covered results and history: still checked for those."""
    run, trusted = signed
    key = signing.load_private(tmp_path / "keys" / signing.PRIVATE)
    manifest = {"format": signing.FORMAT_V1, "files": {
        name: signing.file_digest(run / name) for name in signing.v1_signed_files(run)}}
    document = json.loads((run / signing.SIGNATURE).read_text())
    document.update(manifest=manifest, signature=key.sign(signing.canonical(manifest)).hex())
    (run / signing.SIGNATURE).write_text(json.dumps(document))
    assert signing.check_signature(run, trusted) == []
    assert not signing.covers_everything(run)
    (run / "history.jsonl").write_text("{}\n")
    assert signing.check_signature(run, trusted) == [
        "history.jsonl changed since it was signed (SHA-256 differs)"]
