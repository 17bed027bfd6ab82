"""A campaign: several suites (cases) run one after another, judged together against
requirement catalogues. `bctest certify` (harness/certify/) builds one for any chain pack;
a test center may also write its own campaign file (docs/standards.md).

Folder: campaign.json (what was planned: cases, catalogues, ids), cases/<id>/ (each a
complete run), and the campaign's results.json, report.html, junit.xml, summary.md and
findings.sarif. The campaign's results are a pure function of campaign.json and the
cases' histories: `bctest report RUN_DIR` recomputes them without a chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from harness import __version__, findings, results, signing, standards, suite, verdicts
from harness.certify import judge as certify_judge
from harness.errors import EXIT_INFRA_FAILED, EXIT_INTERRUPTED, InfraError, InputError
from harness.standards.catalogue import Catalogue
from harness.standards.verdicts import describe
from harness.validation import load_and_validate

FORMAT = "bctest-campaign/1"
PLAN = "campaign.json"


@dataclass(frozen=True)
class Case:
    id: str
    suite: suite.Suite


@dataclass(frozen=True)
class Campaign:
    name: str
    description: str
    path: Path
    sha256: str
    standards: list[Catalogue]
    cases: list[Case]


def is_campaign(path: Path) -> bool:
    """A campaign file has a top-level `cases:` list (a suite never does)."""
    try:
        return any(line.startswith("cases:") for line in path.read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return False


def load(path: Path) -> Campaign:
    doc = load_and_validate(path, "campaign")
    file = str(path)
    ids: dict[str, int] = {}
    cases = []
    for index, entry in enumerate(doc["cases"]):
        if entry["id"] in ids:
            raise InputError(file, f"cases[{index}].id", f"a unique case id; '{entry['id']}' is also "
                             f"cases[{ids[entry['id']]}]")
        ids[entry["id"]] = index
        suite_path = path.parent / entry["suite"]
        if not suite_path.is_file():
            raise InputError(file, f"cases[{index}].suite", f"a suite file; {suite_path} does not exist")
        loaded = suite.load(suite_path)
        if loaded.case not in (entry["id"], loaded.name):
            raise InputError(file, f"cases[{index}].id", f"the case the suite says it is evidence for "
                             f"('{loaded.case}' in {suite_path.name}), got '{entry['id']}'")
        cases.append(Case(id=entry["id"], suite=loaded))
    catalogues = [standards.catalogue.load(suite.resolve_standard(ref, path.parent, file, f"standards[{i}]"))
                  for i, ref in enumerate(doc["standards"])]
    return Campaign(name=doc["name"], description=doc.get("description", ""), path=path.resolve(),
                    sha256=hashlib.sha256(path.read_bytes()).hexdigest(), standards=catalogues,
                    cases=cases)


def plan(campaign: Campaign, run_id: str) -> dict[str, Any]:
    return {
        "format": FORMAT, "run_id": run_id, "name": campaign.name,
        "description": campaign.description, "path": str(campaign.path), "sha256": campaign.sha256,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "harness": {"version": __version__},
        "standards": [standards.entry(c) for c in campaign.standards],
        "cases": [_planned_case(c) for c in campaign.cases],
    }


def _planned_case(case: Case) -> dict[str, Any]:
    return {"id": case.id, "suite": {"name": case.suite.name, "path": str(case.suite.path),
                                     "sha256": case.suite.sha256}}


def execute(campaign: Campaign, out: Path | None, console: Console, rebuild: bool = False) -> int:
    from harness import run

    run_id = run.new_run_id()
    if out is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{campaign.name}-{stamp}-{run_id}"
    begin(out)
    results.write_json(out / PLAN, plan(campaign, run_id))
    console.print(f"campaign {run_id}: {campaign.name}, {len(campaign.cases)} cases → {out}", highlight=False)
    codes = []
    for number, case in enumerate(campaign.cases, 1):
        code = run_case(out, case, f"case {number}/{len(campaign.cases)}", console,
                        rebuild=rebuild and number == 1)
        codes.append(code)
        if code == EXIT_INTERRUPTED:
            console.print("campaign interrupted: the remaining cases were not run", highlight=False)
            break
    return conclude(out, console, codes)


def begin(out: Path) -> None:
    """Make the campaign folder; refuse one that already holds a run."""
    if (out / PLAN).exists() or (out / "results.json").exists():
        raise InputError(str(out), None, "already holds a run; choose another --out or remove it")
    out.mkdir(parents=True, exist_ok=True)


def run_case(out: Path, case: Case, label: str, console: Console, rebuild: bool = False) -> int:
    """Run one case into cases/<id>/; an infrastructure failure is its exit code, not the
    campaign's end."""
    from harness import run

    console.print(Text.assemble("\n", (f"{label}: {case.id}", "bold"), f" ({case.suite.path.name})"),
                  highlight=False)
    try:
        return run.execute(case.suite, out / "cases" / case.id, console, rebuild=rebuild)
    except InfraError as exc:
        console.print(Text.assemble((f"case {case.id} failed:", "red"), f" {exc}"), highlight=False)
        return EXIT_INFRA_FAILED


def add_case(out: Path, case: Case) -> None:
    """Append a case to campaign.json (a certification plans its capacity steps as it goes)."""
    planned = json.loads((out / PLAN).read_text(encoding="utf-8"))
    planned["cases"].append(_planned_case(case))
    results.write_json(out / PLAN, planned)


def conclude(out: Path, console: Console, codes: list[int]) -> int:
    """Judge the campaign, write its reports, sign it; the exit code."""
    from harness.report import write_campaign_reports

    judged = judge(out)
    write_campaign_reports(out, judged)
    signed = signing.sign_if_configured(out)
    if signed:
        console.print(f"signed with key {signed['key_id']}: {out / signing.SIGNATURE}", highlight=False)
    certification = judged["certification"]
    console.print(f"\ncertification: {describe(certification)}; report: "
                  f"{out / 'report.html'}", highlight=False)
    if judged.get("certify"):
        from harness.report import console as console_report
        console_report.certify_summary(console, judged)
    for requirement in judged["requirements"]:
        if requirement["verdict"] in ("fail", "inconclusive") and requirement["obligation"] == "mandatory":
            console.print(f"  {requirement['verdict']:>12} {requirement['id']}: {requirement['why']}",
                          highlight=False)
    if EXIT_INTERRUPTED in codes:
        return EXIT_INTERRUPTED
    if EXIT_INFRA_FAILED in codes:  # a case could not be run: the campaign certifies nothing
        return EXIT_INFRA_FAILED
    return verdicts.exit_code(judged)


def stored_case_results(run_dir: Path, case_id: str) -> dict[str, Any] | None:
    path = run_dir / "cases" / case_id / "results.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def judge(run_dir: Path, catalogues: list[dict[str, Any]] | None = None,
          cases: dict[str, dict[str, Any] | None] | None = None) -> dict[str, Any]:
    """The campaign's results.json from campaign.json and its cases' results: those given
    (e.g. just recomputed from the histories), else the ones stored in cases/<id>/."""
    planned = json.loads((run_dir / PLAN).read_text(encoding="utf-8"))
    found = {c["id"]: (cases.get(c["id"]) if cases is not None else stored_case_results(run_dir, c["id"]))
             for c in planned["cases"]}
    ran = {case_id: r for case_id, r in found.items() if r is not None}
    catalogues = planned["standards"] if catalogues is None else catalogues
    certify_plan = _certify_plan(run_dir)
    judged = standards.judge_all(catalogues, ran, certify_plan and program_context(certify_plan))
    for requirement in judged["requirements"]:
        for evidence in requirement["evidence"]:
            if evidence.get("history"):
                evidence["history"] = f"cases/{evidence['case']}/{evidence['history']}"
    first = next(iter(ran.values()), {})
    complete = len(ran) == len(planned["cases"]) and all(r["status"] == "complete" for r in ran.values())
    # Every case's verdict and the certification, merged (pass < inconclusive < fail).
    certified = certify_judge.judge(certify_plan, found) if certify_plan else None
    verdict = ("incomplete" if not complete else verdicts.outcome(verdicts.worst(
        [*(r["verdict"] for r in ran.values()), judged["certification"]["verdict"],
         certify_judge.worst_claim(certified)])))
    extra = {"certify": certified} if certified else {}
    return {
        **{k: planned[k] for k in ("format", "run_id", "name", "description", "path", "sha256",
                                   "started_at", "harness")},
        "host": first.get("host", {}),
        "chain": first.get("chain", {}),
        "cases": [_case_entry(c, found[c["id"]]) for c in planned["cases"]],
        **judged,
        "security": findings.merge({case_id: r.get("security") for case_id, r in ran.items()}),
        **extra,
        "status": "complete" if complete else "incomplete",
        "verdict": verdict,
    }


def _certify_plan(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / certify_judge.PLAN
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def program_context(certify_plan: dict[str, Any]) -> dict[str, Any]:
    """What the requirement verdicts need of a certification program (standards/verdicts.py)."""
    skipped = {r["case"]: {"verdict": "not-applicable" if r["status"] == "not-applicable" else "inconclusive",
                           "why": r["why"]}
               for r in certify_plan["rounds"] if r["status"] != "run"}
    return {"skipped": skipped, "max_nodes": certify_plan["pack"].get("max_nodes"),
            "consensus": certify_plan["pack"]["consensus"]}


def _case_entry(planned: dict[str, Any], got: dict[str, Any] | None) -> dict[str, Any]:
    folder = f"cases/{planned['id']}"
    entry = {"id": planned["id"], "suite": planned["suite"], "dir": folder}
    if got is None:
        return {**entry, "status": "not run", "verdict": None, "run_id": None}
    measure = (got.get("phases") or {}).get("measure") or {}
    latency = measure.get("latency") or {}
    return {**entry, "status": got["status"], "verdict": got["verdict"], "run_id": got["run_id"],
            "report": f"{folder}/report.html", "results": f"{folder}/results.json",
            "history": f"{folder}/history.jsonl",
            "headline": {"throughput": measure.get("throughput"), "send_rate": measure.get("send_rate"),
                         "success_ratio": measure.get("success_ratio"),
                         "latency_p50": latency.get("p50"), "latency_p99": latency.get("p99")},
            "faults": got.get("faults", []),
            "checkers": [{k: c[k] for k in ("id", "verdict", "why")} for c in got.get("checkers", [])]}
