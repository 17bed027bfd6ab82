"""`bctest report RUN_DIR`: results.json is recomputed from history.jsonl alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness import cli, history, results

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "sample_run"


def test_report_recomputes_results_from_the_history_alone(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(SAMPLE / "history.jsonl", run_dir)
    assert cli.main(["report", str(run_dir)]) == 0
    written = json.loads((run_dir / "results.json").read_text())
    results.validate(written)
    assert written == json.loads(json.dumps(results.compute(history.read(run_dir / "history.jsonl"))))
    assert written["phases"]["measure"]["submitted"] == 500
    assert (run_dir / "report.html").stat().st_size > 10_000
    assert (run_dir / "junit.xml").read_text().count("<testcase") == len(written["checks"])


def test_report_on_a_folder_without_history_is_an_input_error(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "no history.jsonl" in capsys.readouterr().err


def test_report_on_a_corrupt_history_names_the_line(tmp_path, capsys):
    (tmp_path / "history.jsonl").write_text('{"type": "header", "format": "bctest-history/1"}\n{oops\n')
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "history.jsonl:2" in capsys.readouterr().err


def test_report_on_a_history_missing_header_fields_is_an_input_error(tmp_path, capsys):
    (tmp_path / "history.jsonl").write_text('{"type": "header", "format": "bctest-history/1"}\n')
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "not a readable bctest history (KeyError" in capsys.readouterr().err
