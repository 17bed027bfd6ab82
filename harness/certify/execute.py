"""Run a certification: the capacity search, then every round that applies, as one campaign
folder (harness/campaign.py) with certify.json beside campaign.json; judged, reported,
signed. Each step and round is a complete run (cases/<id>/) whose suite is written to
program/ first, so any one of them can be run again with `bctest run program/<id>.yaml`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import signal
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from harness import __version__, campaign, chainpack, paths, results, suite
from harness.certify import capacity, claims, judge, rounds
from harness.certify.program import FORMAT, PROFILES, ROUND_NODES, Program
from harness.errors import EXIT_INTERRUPTED, InputError
from harness.standards import catalogue

CATALOGUES = ("performance.yaml", "reliability.yaml", "function.yaml", "security.yaml")
VENDOR_NAME = r"[a-z0-9][a-z0-9-]{1,38}"


def build_program(pack_dir: Path, claims_file: Path | None, profile: str) -> Program:
    """The program's inputs, each checked: exit 2 naming the file and field when one is wrong."""
    from harness import adapters

    pack = chainpack.load(pack_dir)
    adapters.adapter_class(pack.family, str(pack.manifest))
    check_sizes(pack)
    claimed = claims.load(claims_file) if claims_file is not None else None
    check_claims(claimed, profile, claims_file)
    return Program(pack=pack, claims=claimed, profile=PROFILES[profile])


def check_sizes(pack: chainpack.ChainPack) -> None:
    if pack.consensus != "single" and not (pack.min_nodes <= ROUND_NODES and
                                            (pack.max_nodes is None or pack.max_nodes >= ROUND_NODES)):
        # A pack cannot opt out of the 4-node rounds by declaring a smaller network: only a
        # single-node chain has them not-applicable.
        raise InputError(str(pack.manifest), "consensus", f"a {pack.consensus} chain is certified at "
                         f"{ROUND_NODES} nodes; the pack allows {pack.min_nodes}..{pack.max_nodes}")


def check_claims(claimed: claims.Claims | None, profile: str, claims_file: Path | None) -> None:
    ceiling = PROFILES[profile].max_rate
    for nodes, rate in sorted((claimed.throughput if claimed else {}).items()):
        if rate > ceiling:   # the rate is signed and sent whole: a claim must not size the test center's work
            field = "throughput" if nodes == ROUND_NODES else f"throughput_{nodes}"
            raise InputError(str(claims_file), field, f"at most {ceiling:g} tx/s (the {profile} profile's "
                             f"ceiling on this test center), got {rate:g}")


def _plan(program: Program, run_id: str, vendor: str, submission: str | None,
          catalogues: list[dict[str, Any]]) -> dict[str, Any]:
    pack = program.pack
    return {"format": FORMAT, "run_id": run_id, "profile": program.profile.name,
            "harness": {"version": __version__},
            "vendor": {"name": vendor, "submission": submission},
            "pack": {"name": pack.name, "version": pack.version, "family": pack.family,
                     "consensus": pack.consensus, "manifest_sha256": pack.manifest_hash(),
                     "folder": str(pack.folder), "max_nodes": pack.max_nodes},
            "claims": program.claims.entry() if program.claims else None,
            "criteria": capacity.criteria(catalogues, program.claims.latency_p99_ms
                                          if program.claims else None).entry(),
            "capacity_nodes": program.round_nodes, "capacity_steps": [], "rounds": []}


class Certification:
    """One certification's folder while it runs."""

    def __init__(self, out: Path, program: Program, plan: dict[str, Any], console: Console, rebuild: bool):
        self.out, self.program, self.plan, self.console = out, program, plan, console
        self.rebuild = rebuild
        self.codes: list[int] = []
        (out / "program").mkdir(parents=True, exist_ok=True)

    def save(self) -> None:
        results.write_json(self.out / judge.PLAN, self.plan)

    def interrupted(self) -> bool:
        return EXIT_INTERRUPTED in self.codes

    def run(self, case_id: str, doc: dict[str, Any], label: str) -> dict[str, Any] | None:
        """Write the case's suite, add it to the campaign, run it; its results."""
        document = {"name": f"certify-{case_id}", "case": case_id, "chain": str(self.program.pack.folder),
                    **doc}
        path = self.out / "program" / f"{case_id}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
        case = campaign.Case(id=case_id, suite=suite.load(path))
        campaign.add_case(self.out, case)
        # Between runs a SIGTERM (a worker stopping) must end the certification like Ctrl-C:
        # judged and written as incomplete. Each run's own loop handles it while it runs and
        # leaves the default (die at once) behind, so set it again before every case.
        signal.signal(signal.SIGTERM, _interrupt)
        self.codes.append(campaign.run_case(self.out, case, label, self.console,
                                            rebuild=self.rebuild and not self.codes))
        return campaign.stored_case_results(self.out, case_id)

    def search(self) -> float | None:
        """The capacity search; the confirmed capacity or None."""
        bars = capacity.Criteria(**self.plan["criteria"])
        steps: list[dict[str, Any]] = []
        while not self.interrupted() and (chosen := capacity.next_step(self.program, steps)) is not None:
            rate, stage = chosen
            case_id = "capacity-confirm" if stage == "confirm" else f"capacity-{len(steps) + 1:02d}"
            self.plan["capacity_steps"].append({"case": case_id, "stage": stage, "offered": rate})
            self.save()
            got = self.run(case_id, capacity.step_suite(self.program, rate, stage),
                           f"capacity {stage} {rate:g} tx/s")
            steps.append(capacity.judge_step(case_id, stage, rate, got, bars))
            step = steps[-1]
            self.console.print(f"  capacity step {case_id}: {rate:g} tx/s offered → "
                               f"{'pass' if step['passed'] else 'fail'}"
                               f"{': ' + step['why'] if step['why'] else ''}", highlight=False, markup=False)
        found = capacity.judge(self.program.profile, self.program.round_nodes, steps, bars)
        self.console.print(f"capacity: {found['why']}", highlight=False, markup=False)
        return found["capacity"]

    def rounds(self) -> None:
        modules = rounds.registry()
        for module in modules:   # plan them all first: certify.json says what will and will not run
            why = module.applies(self.program)
            status = "not-applicable" if why else "run"
            if not why and self.program.profile.name not in module.PROFILES:
                status, why = "not-run", (f"not in the {self.program.profile.name} profile (a self-check; "
                                          "the certificate runs --profile full)")
            self.plan["rounds"].append({"case": module.ID, "title": module.TITLE, "status": status,
                                        "why": why})
        self.save()
        planned = [m for m, r in zip(modules, self.plan["rounds"], strict=True) if r["status"] == "run"]
        for number, module in enumerate(planned, 1):
            if self.interrupted():
                break
            self.run(module.ID, module.suite(self.program), f"round {number}/{len(planned)}")


def certify(pack_dir: Path, claims_file: Path | None, profile: str, out: Path | None, vendor: str,
            submission: str | None, console: Console, rebuild: bool = False) -> int:
    from harness import run

    program = build_program(pack_dir, claims_file, profile)
    catalogues = [catalogue.load(paths.home() / "standards" / name) for name in CATALOGUES]
    run_id = run.new_run_id()
    if out is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"certify-{program.pack.name}-{stamp}-{run_id}"
    campaign.begin(out)
    from harness import standards
    entries = [standards.entry(c) for c in catalogues]
    plan = _plan(program, run_id, vendor, submission, entries)
    results.write_json(out / campaign.PLAN, {
        "format": campaign.FORMAT, "run_id": run_id, "name": f"certify-{program.pack.name}",
        "description": f"bctest certify {program.pack.name} {program.pack.version} ({profile} profile) "
                       f"for {vendor}",
        "path": str((out / "program" / "campaign.yaml").resolve()),
        "sha256": hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "harness": {"version": __version__}, "standards": entries, "cases": []})
    work = Certification(out, program, plan, console, rebuild)
    work.save()
    console.print(f"certify {run_id}: {program.pack.name} {program.pack.version}, {profile} profile, "
                  f"vendor {vendor} → {out}", highlight=False, markup=False)
    try:
        found = work.search()
        work.program = dataclasses.replace(program, capacity=found)
        if not work.interrupted():
            work.rounds()
    except KeyboardInterrupt:
        console.print("certification interrupted between cases: the rest was not run", highlight=False)
        work.codes.append(EXIT_INTERRUPTED)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _write_campaign_file(out)
    return campaign.conclude(out, console, work.codes)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _write_campaign_file(out: Path) -> None:
    """program/campaign.yaml: the cases that ran, as a campaign `bctest run` can repeat."""
    planned = json.loads((out / campaign.PLAN).read_text(encoding="utf-8"))
    document = {"name": planned["name"], "description": planned["description"],
                "standards": [str(paths.home() / "standards" / name) for name in CATALOGUES],
                "cases": [{"id": c["id"], "suite": f"{c['id']}.yaml"} for c in planned["cases"]]}
    (out / "program" / "campaign.yaml").write_text(yaml.safe_dump(document, sort_keys=False),
                                                  encoding="utf-8")
