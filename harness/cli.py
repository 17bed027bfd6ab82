"""The `bctest` command line (docs/cli.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from harness import __version__, commands, paths
from harness.errors import EXIT_INVALID_INPUT, EXIT_PASS, BctestError, InfraError, InputError
from harness.verdicts import exit_code

# markup=False: names, versions and answers from packs and nodes are printed, never read as
# markup ("[/]" in a pack once made a traceback); colour goes through Text styles.
console = Console(stderr=False, highlight=False, soft_wrap=True, markup=False)
errors = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bctest", description="Blockchain test & evaluation harness")
    parser.add_argument("--version", action="version", version=f"bctest {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a suite against a chain and write a report")
    run.add_argument("suite", type=Path)
    run.add_argument("--out", type=Path, help="run folder (default runs/<suite>-<time>-<id>)")
    run.add_argument("--rebuild", action="store_true", help="rebuild the chain image first")

    validate = sub.add_parser("validate", help="check suite files and chain packs, exit 2 if invalid")
    validate.add_argument("files", type=Path, nargs="+")

    report = sub.add_parser("report", help="recompute results.json and reports from a run's history")
    report.add_argument("run_dir", type=Path)
    report.add_argument("--standard", type=Path, action="append", default=None, metavar="FILE",
                        help="judge against this requirement catalogue instead of the run's own "
                             "(repeatable); needs no chain")

    clean = sub.add_parser("clean", help="end the processes and remove the containers, networks, "
                                          "volumes and data disks left by dead runs")
    clean.add_argument("--all", action="store_true", help="also remove those of runs still alive")

    images = sub.add_parser("images", help="build chain images")
    images_sub = images.add_subparsers(dest="images_command", required=True, metavar="ACTION")
    build = images_sub.add_parser("build", help="build (or load) a chain pack's image")
    build.add_argument("chain", help="chain pack name or folder")
    build.add_argument("--rebuild", action="store_true")
    images_sub.add_parser("base", help="build the offline Debian base image with debootstrap")
    harness_image = images_sub.add_parser("harness", help="build the harness's own image")
    harness_image.add_argument("--tag", default=f"bctest/harness:{__version__}")

    sub.add_parser("chains", help="list the chain packs and installed adapters")

    keys = sub.add_parser("keys", help="the test center's signing key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    keys_init = keys_sub.add_parser("init", help="create an Ed25519 signing key pair")
    keys_init.add_argument("--dir", type=Path, default=None,
                           help="where to keep it (default $BCTEST_KEYS or ~/.config/bctest/keys)")
    keys_init.add_argument("--force", action="store_true", help="replace an existing key")

    sign = sub.add_parser("sign", help="sign a run folder with the test center's key")
    sign.add_argument("run_dir", type=Path)
    sign.add_argument("--key", type=Path, default=None, help="private key (default: the keys dir)")

    verify = sub.add_parser("verify", help="check a run's signature and recompute its verdicts")
    verify.add_argument("run_dir", type=Path)
    verify.add_argument("--key", type=Path, default=None,
                        help="the test center's public key (default: the keys dir)")
    verify.add_argument("--strict", action="store_true",
                        help="fail on recomputed differences even when another bctest version judged the run")

    for module in commands.modules():   # one file each in harness/commands/
        module.configure(sub.add_parser(module.NAME, help=module.HELP, description=module.HELP))
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from harness import campaign, run, suite

    if campaign.is_campaign(args.suite):
        return campaign.execute(campaign.load(args.suite), args.out, console, rebuild=args.rebuild)
    loaded = suite.load(args.suite)
    return run.execute(loaded, args.out, console, rebuild=args.rebuild)


def _is_catalogue(file: Path) -> bool:
    """Requirement catalogues live in standards/ or start with a `catalogue:` section."""
    if file.is_dir() or not file.is_file():
        return False
    if file.parent.name == "standards":
        return True
    try:
        head = file.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return any(line.startswith("catalogue:") for line in head.splitlines())


def cmd_validate(args: argparse.Namespace) -> int:
    from harness import adapters, campaign, chainpack, suite
    from harness.standards import catalogue

    for file in args.files:
        if campaign.is_campaign(file):
            loaded_campaign = campaign.load(file)
            console.print(f"ok: campaign {loaded_campaign.name}: {len(loaded_campaign.cases)} cases, "
                          f"judged against {', '.join(c.id for c in loaded_campaign.standards)} ({file})")
        elif _is_catalogue(file):
            loaded_catalogue = catalogue.load(file)
            console.print(f"ok: catalogue {loaded_catalogue.id} {loaded_catalogue.version}, "
                          f"{len(loaded_catalogue.requirements)} requirements ({file})")
        elif file.is_dir() or file.name == "chain.yaml":
            folder = file if file.is_dir() else file.parent
            pack = chainpack.load(folder)
            adapters.adapter_class(pack.family, str(pack.manifest))
            console.print(f"ok: chain pack {pack.name} {pack.version} ({folder})")
        else:
            loaded = suite.load(file)
            adapter = adapters.adapter_class(loaded.chain.family, str(loaded.chain.manifest))
            adapters.workload_for(adapter, loaded.workload, str(file))
            console.print(f"ok: suite {loaded.name} → {loaded.chain.name}, {loaded.nodes} node(s), "
                          f"{_load_words(loaded.load)} for {loaded.load.duration:g} s ({file})")
    return EXIT_PASS


def _load_words(spec: object) -> str:
    """The load in words: today's "N tx/s", or the shape's kind, count and mean rate."""
    plan = spec.plan()  # type: ignore[attr-defined]   (a suite.LoadSpec; imported lazily)
    if plan.kind == "fixed":
        return f"{spec.rate:g} tx/s"
    return f"a {plan.kind} load shape ({plan.count} txs, mean {plan.mean_rate:.4g} tx/s)"


def cmd_report(args: argparse.Namespace) -> int:
    import jsonschema

    from harness import history, results, standards
    from harness.report import write_reports
    from harness.standards import catalogue, verdicts

    catalogues = None
    if args.standard:
        catalogues = [standards.entry(catalogue.load(file)) for file in args.standard]
    if (args.run_dir / "campaign.json").is_file():
        return _report_campaign(args.run_dir, catalogues)
    source = args.run_dir / "history.jsonl"
    if not source.is_file():
        raise InputError(str(args.run_dir), None, "no history.jsonl: not a bctest run folder")
    try:
        stored = history.read(source)
        computed = results.compute(stored, catalogues)
        results.validate(computed)
    except (ValueError, KeyError, TypeError, IndexError, jsonschema.ValidationError) as exc:
        raise InputError(str(source), None, f"not a readable bctest history "
                         f"({type(exc).__name__}: {exc})") from None
    results.write_json(args.run_dir / "results.json", computed)
    write_reports(args.run_dir, computed)
    if computed.get("certification"):
        console.print(f"certification: {verdicts.describe(computed['certification'])}")
    console.print(f"verdict: {computed['verdict']}; report: {args.run_dir / 'report.html'}")
    return exit_code(computed)


def _report_campaign(run_dir: Path, catalogues: list | None) -> int:
    """Recompute every case from its history, then the campaign's verdicts and reports."""
    import json

    from harness import campaign, history, results
    from harness.report import write_campaign_reports, write_reports
    from harness.standards import verdicts

    planned = json.loads((run_dir / campaign.PLAN).read_text(encoding="utf-8"))
    recomputed: dict[str, dict | None] = {}
    for case in planned["cases"]:
        folder = run_dir / "cases" / case["id"]
        recomputed[case["id"]] = None
        if (folder / "history.jsonl").is_file():
            computed = recomputed[case["id"]] = results.compute(history.read(folder / "history.jsonl"))
            results.write_json(folder / "results.json", computed)
            write_reports(folder, computed)
    judged = campaign.judge(run_dir, catalogues, recomputed)
    write_campaign_reports(run_dir, judged)
    console.print(f"certification: {verdicts.describe(judged['certification'])}")
    if judged.get("certify"):
        from harness.report import console as console_report
        console_report.certify_summary(console, judged)
    console.print(f"verdict: {judged['verdict']}; report: {run_dir / 'report.html'}")
    return exit_code(judged)


def cmd_keys(args: argparse.Namespace) -> int:
    from harness import signing

    public, key_id = signing.init_keys(args.dir or signing.key_dir(), args.force)
    console.print(f"signing key {key_id}: public key {public} (give it to whoever verifies)")
    return EXIT_PASS


def cmd_sign(args: argparse.Namespace) -> int:
    from harness import signing

    if not (args.run_dir / "results.json").is_file():
        raise InputError(str(args.run_dir), None, "a run folder with results.json")
    document = signing.sign(args.run_dir, args.key or signing.key_dir() / signing.PRIVATE)
    console.print(f"signed {len(document['manifest']['files'])} files with key {document['key_id']}: "
                  f"{args.run_dir / signing.SIGNATURE}")
    return EXIT_PASS


def cmd_verify(args: argparse.Namespace) -> int:
    import json

    from harness import campaign, history, results, signing

    if not ((args.run_dir / campaign.PLAN).is_file() or (args.run_dir / "history.jsonl").is_file()):
        raise InputError(str(args.run_dir), None, "a bctest run or campaign folder (history.jsonl or "
                         "campaign.json)")
    trusted = signing.load_public(args.key or signing.key_dir() / signing.PUBLIC)
    problems = signing.check_signature(args.run_dir, trusted)
    stored = signing.load_json(args.run_dir / "results.json")
    if not isinstance(stored, dict):
        raise InputError(str(args.run_dir / "results.json"), None, "a bctest results document")
    catalogues = stored.get("standards") or []
    recomputed_differences: list[str] = []
    try:
        if (args.run_dir / campaign.PLAN).is_file():
            cases: dict[str, dict | None] = {}
            for case in sorted((args.run_dir / "cases").glob("*/history.jsonl")):
                kept = json.loads((case.parent / "results.json").read_text(encoding="utf-8"))
                recomputed = cases[case.parent.name] = results.compute(history.read(case),
                                                                      kept.get("standards") or [])
                recomputed_differences += [f"cases/{case.parent.name}/results.json {d}"
                                           for d in signing.differences(kept, recomputed)]
            recomputed_differences += [f"results.json {d}" for d in signing.differences(
                stored, campaign.judge(args.run_dir, catalogues, cases))]
        else:
            recomputed = results.compute(history.read(args.run_dir / "history.jsonl"), catalogues)
            recomputed_differences += [f"results.json {d}" for d in signing.differences(stored, recomputed)]
    except (ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        # A history that no longer reads is tampering the signature check names as well.
        problems.append(f"the verdicts cannot be recomputed from the history "
                        f"({type(exc).__name__}: {str(exc)[:200]})")
    # The signature already proves nothing changed. A run judged by another harness version
    # may recompute differently (new fields, revised rules): say so, but that is not tampering.
    judged_by = (stored.get("harness") or {}).get("version")
    other_version = judged_by != __version__ and not args.strict
    if not other_version:
        problems += recomputed_differences
    if problems:
        console.print(Text.assemble(("verify failed", "red"), f" for {args.run_dir}:"))
        for problem in problems:
            console.print(f"  {problem}", markup=False)
        return 1
    if recomputed_differences:
        console.print(Text.assemble(
            ("note", "yellow"), f": bctest {judged_by} judged this run; recomputed with bctest "
            f"{__version__}, {len(recomputed_differences)} figure(s) differ (install bctest "
            f"{judged_by} to recompute exactly, or pass --strict to fail on them):"))
        for difference in recomputed_differences:
            console.print(f"  {difference}", markup=False)
        console.print(f"verified: signed by {signing.key_id(trusted)}, every file intact "
                      f"({stored['verdict']}); verdicts recomputed by another harness version, see the note")
        return EXIT_PASS
    scope = ("every file intact" if signing.covers_everything(args.run_dir) else
             "results and histories intact (an older signature format: reports and logs are not covered)")
    console.print(f"verified: signed by {signing.key_id(trusted)}, {scope}, every verdict "
                  f"recomputed from the history ({stored['verdict']})", markup=False)
    return EXIT_PASS


def cmd_clean(args: argparse.Namespace) -> int:
    from harness import lifetime
    from harness.runtime.docker import connect, leftover_runs, remove_run_objects

    client = connect()
    # Processes first: a sender still firing at a node or a delayer still holding its
    # packets goes before the node does.
    ended = [item for item in lifetime.end(lifetime.orphans(include_live=args.all))
             if item.how != "gone"]   # gone between the scan and the signal: nothing was done
    for item in ended:
        process = item.process
        console.print(f"run {process.run_id}: ended process {process.pid} ({item.how}): "
                      f"{process.command[:160]}", highlight=False, markup=False)
    runs = leftover_runs(client, include_live=args.all)
    for run_id in runs:
        console.print(f"run {run_id}: removed {remove_run_objects(client, run_id).describe()}",
                      highlight=False, markup=False)
    if not runs and not ended:
        console.print("nothing to clean")
    failed = [item for item in ended if item.how.startswith("failed")]
    if failed:
        raise InfraError("could not end " + ", ".join(f"process {i.process.pid} ({i.how})" for i in failed))
    return EXIT_PASS


def cmd_images(args: argparse.Namespace) -> int:
    from harness import chainpack
    from harness.runtime import images
    from harness.runtime.docker import connect

    client = connect()
    if args.images_command == "base":
        console.print(f"base image: {images.build_offline_base(client, console.print)}")
        return EXIT_PASS
    if args.images_command == "harness":
        image_id = images.build_harness(client, paths.home(), args.tag, console.print)
        console.print(f"{args.tag}: {image_id}")
        return EXIT_PASS
    pack = chainpack.load(chainpack.resolve(args.chain))
    image_id = images.ensure(client, pack, rebuild=args.rebuild, log=console.print)
    console.print(f"{pack.image_tag}: {image_id}")
    return EXIT_PASS


def cmd_chains(args: argparse.Namespace) -> int:
    from harness import adapters, chainpack

    for manifest in sorted((paths.home() / "chains").glob("*/chain.yaml")):
        try:
            pack = chainpack.load(manifest.parent)
            console.print(f"{pack.name:16} {pack.version:10} {pack.family:8} {pack.consensus:6} "
                          f"{pack.image_tag}")
        except InputError as exc:
            console.print(f"{manifest.parent.name:16} invalid: {exc}")
    console.print(f"adapters: {', '.join(sorted(adapters.installed())) or 'none'}")
    return EXIT_PASS


COMMANDS = {"run": cmd_run, "validate": cmd_validate, "report": cmd_report, "clean": cmd_clean,
            "keys": cmd_keys, "sign": cmd_sign, "verify": cmd_verify,
            "images": cmd_images, "chains": cmd_chains}


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed its message
        return EXIT_INVALID_INPUT if exc.code else EXIT_PASS
    try:
        if args.command in COMMANDS:
            return COMMANDS[args.command](args)
        return next(m for m in commands.modules() if m.NAME == args.command).run(args, console)
    except BctestError as exc:
        errors.print(Text.assemble(("error:", "red"), f" {exc}"))
        return exc.exit_code
    except KeyboardInterrupt:
        errors.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
