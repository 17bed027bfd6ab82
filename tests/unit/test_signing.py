"""Signing and verification of run folders: Ed25519 over a canonical manifest; tampering
with any signed figure is caught and named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import signing
from harness.cli import main
from harness.errors import InputError


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({"verdict": "pass", "phases": {"measure": {
        "throughput": 49.9}}}, indent=2))
    (folder / "history.jsonl").write_text('{"type":"header"}\n{"type":"footer"}\n')
    return folder


@pytest.fixture
def keys(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "keys"
    monkeypatch.setenv("BCTEST_KEYS", str(folder))
    signing.init_keys(folder)
    return folder


def test_signature_covers_results_and_history(run_dir, keys):
    document = signing.sign(run_dir, keys / signing.PRIVATE)
    assert set(document["manifest"]["files"]) == {"results.json", "history.jsonl"}
    assert (keys / signing.PRIVATE).stat().st_mode & 0o777 == 0o600
    trusted = signing.load_public(keys / signing.PUBLIC)
    assert signing.check_signature(run_dir, trusted) == []
    # Re-serialising results.json (same content) keeps the signature valid.
    data = json.loads((run_dir / "results.json").read_text())
    (run_dir / "results.json").write_text(json.dumps(data, sort_keys=True))
    assert signing.check_signature(run_dir, trusted) == []


def test_tampering_is_named(run_dir, keys):
    signing.sign(run_dir, keys / signing.PRIVATE)
    trusted = signing.load_public(keys / signing.PUBLIC)
    data = json.loads((run_dir / "results.json").read_text())
    data["phases"]["measure"]["throughput"] = 500.0
    (run_dir / "results.json").write_text(json.dumps(data))
    with open(run_dir / "history.jsonl", "a") as history:
        history.write('{"type":"tx"}\n')
    assert sorted(signing.check_signature(run_dir, trusted)) == [
        "history.jsonl changed since it was signed (SHA-256 differs)",
        "results.json changed since it was signed (SHA-256 differs)"]


def test_altered_signature_and_foreign_key(run_dir, keys, tmp_path):
    signing.sign(run_dir, keys / signing.PRIVATE)
    document = json.loads((run_dir / signing.SIGNATURE).read_text())
    document["manifest"]["files"]["results.json"] = "0" * 64
    (run_dir / signing.SIGNATURE).write_text(json.dumps(document))
    trusted = signing.load_public(keys / signing.PUBLIC)
    assert signing.check_signature(run_dir, trusted) == [
        "the signature does not match the manifest: signature.json was altered"]
    other = tmp_path / "other"
    signing.init_keys(other)
    with pytest.raises(InputError) as error:
        signing.check_signature(run_dir, signing.load_public(other / signing.PUBLIC))
    assert error.value.field == "public_key" and "signed by key" in error.value.expected


def test_differences_name_the_path_and_both_values():
    stored = {"phases": {"measure": {"throughput": 999.0, "latency": {"p99": 10}}}, "checks": [1, 2]}
    fresh = {"phases": {"measure": {"throughput": 49.9, "latency": {"p99": 10}}}, "checks": [1, 3]}
    assert signing.differences(stored, fresh) == [
        "checks[1]: results.json says 2, the history gives 3",
        "phases.measure.throughput: results.json says 999.0, the history gives 49.9"]


def test_cli_errors_exit_2(run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BCTEST_KEYS", str(tmp_path / "none"))
    assert main(["verify", str(run_dir)]) == 2
    assert "pass --key FILE" in capsys.readouterr().err
    assert main(["keys", "init"]) == 0
    assert main(["verify", str(run_dir)]) == 2   # not signed yet
    assert "no signature.json" in capsys.readouterr().err
    assert main(["keys", "init"]) == 2           # never silently replaced
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    assert main(["verify", str(run_dir), "--key", str(bad)]) == 2


SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "sample_run"


def _signed_run(tmp_path: Path, judged_by: str, throughput: float) -> Path:
    """The sample run's real History, with results.json as another harness version wrote it."""
    from harness import history, results

    folder = tmp_path / "judged"
    folder.mkdir(parents=True)
    (folder / "history.jsonl").write_bytes((SAMPLE / "history.jsonl").read_bytes())
    stored = json.loads((SAMPLE / "results.json").read_text())
    document = results.compute(history.read(folder / "history.jsonl"), stored.get("standards") or [])
    document["harness"] = {"version": judged_by}
    document["phases"]["measure"]["throughput"] = throughput
    (folder / "results.json").write_text(json.dumps(document))
    signing.sign(folder, signing.key_dir() / signing.PRIVATE)
    return folder


def test_verify_notes_differences_from_another_version_and_fails_them_in_strict_mode(keys, tmp_path, capsys):
    from harness import __version__

    older = _signed_run(tmp_path / "a", "0.0.1", 123.0)
    assert main(["verify", str(older)]) == 0
    out = capsys.readouterr().out
    assert "bctest 0.0.1 judged this run" in out and f"recomputed with bctest {__version__}" in out
    assert "phases.measure.throughput: results.json says 123.0" in out
    assert main(["verify", str(older), "--strict"]) == 1
    same = _signed_run(tmp_path / "b", __version__, 123.0)
    assert main(["verify", str(same)]) == 1      # same version, different figures: something is wrong
    assert "verify failed" in capsys.readouterr().out


def test_verify_of_a_folder_that_is_no_run_is_one_clear_error(tmp_path, capsys):
    from harness import cli
    assert cli.main(["verify", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "history.jsonl or campaign.json" in err and "Traceback" not in err
