"""The judge layer stands on the model alone: re-judging, verifying and rendering a stored
run loads neither the Docker SDK nor the HTTP stack (DESIGN.md, layers)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "fixtures" / "sample_run"
ENGINE_SIDE = ("docker", "aiohttp")

JUDGE_MODULES = ("harness.model", "harness.history", "harness.metrics", "harness.results",
                 "harness.checks.correctness", "harness.checks.safety", "harness.checks.liveness",
                 "harness.checks.durability", "harness.checks.convergence", "harness.checks.readback",
                 "harness.checks.fault_tolerance", "harness.standards", "harness.audit",
                 "harness.audit.evm", "harness.audit.bitcoin", "harness.audit.cometbft",
                 "harness.signing", "harness.report", "harness.campaign", "harness.verdicts",
                 "harness.suite", "harness.certify.judge", "harness.certify.capacity",
                 "harness.scorecard.collect", "harness.scorecard.listing", "harness.scorecard.site")


def loaded_after(code: str, cwd: Path = ROOT) -> dict:
    """Run `code` in a fresh interpreter; which engine-side modules did it load?"""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps({{m: m in sys.modules for m in {ENGINE_SIDE!r}}}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_judge_layer_loads_no_engine_client():
    imports = "\n".join(f"import {m}" for m in JUDGE_MODULES)
    assert loaded_after(imports) == dict.fromkeys(ENGINE_SIDE, False)


def test_report_and_verify_of_a_stored_run_load_no_engine_client(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(SAMPLE, run)
    key = tmp_path / "key"
    code = f"""
import sys
from harness import cli
for argv in (["report", {str(run)!r}], ["keys", "init", "--dir", {str(key)!r}],
             ["sign", {str(run)!r}, "--key", {str(key / "signing.key")!r}],
             ["verify", {str(run)!r}, "--key", {str(key / "signing.pub")!r}]):
    try:
        code = cli.main(argv)
    except SystemExit as exit:
        code = exit.code
    assert code in (0, 1, None), (argv, code)
"""
    assert loaded_after(code) == dict.fromkeys(ENGINE_SIDE, False)


def test_the_model_imports_only_the_standard_library():
    source = (ROOT / "harness" / "model.py").read_text()
    imports = [line.split()[1] for line in source.splitlines()
               if line.startswith(("import ", "from ")) and not line.startswith("from __future__")]
    assert all(name.split(".")[0] in sys.stdlib_module_names for name in imports), imports


def test_the_harness_never_raises_the_recursion_limit():
    """A node's `[[[[...` answer must end in RecursionError, never overflow the C stack: the
    harness process (run, adapters, probes) keeps Python's default limit. py_ecc, imported by
    eth_account, raises it to 100000 on import, so neither may be imported by the harness."""
    import subprocess
    import sys

    code = ("import sys, harness.run, harness.adapters.evm, harness.adapters.bitcoin, "
            "harness.adapters.cometbft, harness.security as s; s.registry(); "
            "print(sys.getrecursionlimit(), 'py_ecc' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["1000", "False"]
