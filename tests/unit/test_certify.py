"""The certification program's own logic: the capacity search's choices, the rounds that
apply to each kind of pack, the claims' verdicts, and the attacks a vendor could try
through its pack or its claims (no engine: fake results dicts)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from harness import chainpack, paths
from harness.certify import capacity, claims, judge, rounds
from harness.certify.execute import build_program, check_claims, check_sizes
from harness.certify.program import PROFILES, Program
from harness.errors import InputError
from harness.standards import verdicts

BARS = capacity.Criteria(success_ratio=0.95, commit_send_ratio=0.95, latency_p99_ms=5000,
                         send_rate_ratio=0.95)


def pack(name: str) -> chainpack.ChainPack:
    return chainpack.load(paths.home() / "chains" / name)


def program(name: str = "cometbft", profile: str = "full", claimed: claims.Claims | None = None) -> Program:
    return Program(pack=pack(name), claims=claimed, profile=PROFILES[profile])


def results(offered: float, sent: float | None = None, committed: float | None = None, success: float = 1.0,
            p99: float = 800.0, status: str = "complete") -> dict:
    sent = offered if sent is None else sent
    committed = sent if committed is None else committed
    return {"status": status, "node_count": 4,
            "phases": {"measure": {"send_rate": sent, "send_rate_ratio": sent / offered,
                                   "throughput": committed,
                                   "success_ratio": success, "latency": {"p50": p99 / 2, "p99": p99}}}}


def chain_with_capacity(limit: float, harness_limit: float = 1e9):
    """A fake chain that keeps up to `limit` tx/s, behind a harness that sends up to `harness_limit`."""
    def run(rate: float) -> dict:
        sent = min(rate, harness_limit)
        return results(rate, sent=sent, committed=min(sent, limit), p99=800 if sent <= limit else 20000)
    return run


def search(prog: Program, chain) -> dict:
    steps: list[dict] = []
    while (chosen := capacity.next_step(prog, steps)) is not None:
        rate, stage = chosen
        case = capacity.confirm_case(steps) if stage == "confirm" else f"capacity-{len(steps) + 1:02d}"
        steps.append(capacity.judge_step(case, stage, rate, chain(rate), BARS))
        assert len(steps) < 30, "the search must end"
    return capacity.judge(prog.profile, prog.round_nodes, steps, BARS)


def test_ramp_then_bisect_then_confirm_finds_the_knee():
    found = search(program(), chain_with_capacity(300))
    stages = [s["stage"] for s in found["steps"]]
    offered = [s["offered"] for s in found["steps"]]
    assert offered[:4] == [50, 100, 200, 400] and stages[:4] == ["ramp"] * 4   # doubled until 400 failed
    assert stages[4:7] == ["bisect"] * 3 and stages[-1] == "confirm"
    assert 250 <= found["capacity"] <= 300 and found["confirmed"] and found["limited_by"] == "chain"
    assert found["knee"] == next(s["case"] for s in found["steps"] if s["offered"] == found["capacity"]
                                 and s["stage"] != "confirm")
    assert "400 tx/s failed" in found["why"] or "failed" in found["why"]


def test_the_claim_sets_the_start_and_quick_keeps_it_short():
    claimed = claims.Claims(throughput={4: 1000.0}, latency_p99_ms=None, fault_tolerance=None, sha256="")
    found = search(program(profile="quick", claimed=claimed), chain_with_capacity(5000))
    assert [s["offered"] for s in found["steps"]] == [500, 2000, 2000]   # ×4, at most 2000 in quick
    assert found["limited_by"] == "profile" and found["capacity"] == 2000
    assert "at least 2000" in found["why"] and "highest rate (2000" in found["why"]
    found = search(program(profile="quick"), chain_with_capacity(1e9))
    assert [s["offered"] for s in found["steps"]] == [25, 100, 400, 1600, 1600]
    assert "its 4 ramp steps" in found["why"]


def test_the_harness_ceiling_is_never_reported_as_the_chains_capacity():
    found = search(program(), chain_with_capacity(10_000, harness_limit=150))
    assert found["limited_by"] == "harness"
    assert not any(s["stage"] == "bisect" for s in found["steps"])   # no bisecting into the harness's limit
    assert found["capacity"] is None or found["capacity"] <= 150
    assert "harness" in found["why"] and ("at least" in found["why"] or "no step passed" in found["why"])


def test_a_chain_that_keeps_nothing_has_no_capacity():
    found = search(program(), chain_with_capacity(0.5))
    assert found["capacity"] is None and found["knee"] is None
    assert [s["offered"] for s in found["steps"]][:3] == [50, 25, 12.5]   # halved down from the start
    assert "no step passed" in found["why"]


def run_search(prog: Program, chain) -> dict:
    """The search against `chain(rate, stage)`."""
    steps: list[dict] = []
    while (chosen := capacity.next_step(prog, steps)) is not None:
        rate, stage = chosen
        case = capacity.confirm_case(steps) if stage == "confirm" else f"capacity-{len(steps) + 1:02d}"
        steps.append(capacity.judge_step(case, stage, rate, chain(rate, stage), BARS))
        assert len(steps) < 30, "the search must end"
    return capacity.judge(prog.profile, prog.round_nodes, steps, BARS)


def test_a_failed_confirmation_steps_down_to_a_rate_that_holds():
    def chain(rate: float, stage: str) -> dict:   # short steps keep 300 tx/s, full-length runs 200
        limit = 200 if stage == "confirm" else 300
        return results(rate, committed=min(rate, limit), p99=800 if rate <= limit else 20000)
    found = run_search(program(), chain)
    confirms = [s for s in found["steps"] if s["stage"] == "confirm"]
    assert [s["case"] for s in confirms][:2] == ["capacity-confirm", "capacity-confirm-2"]
    assert not confirms[0]["passed"] and confirms[-1]["passed"] and confirms[-1]["offered"] <= 200
    assert found["capacity"] == confirms[-1]["offered"] and found["confirmed"]
    assert "passed a short step but not the full-length run" in found["why"]


def test_confirmations_that_never_hold_certify_no_capacity():
    def chain(rate: float, stage: str) -> dict:
        return results(rate, committed=rate / 2) if stage == "confirm" else chain_with_capacity(300)(rate)
    prog = program()
    found = run_search(prog, chain)
    assert sum(1 for s in found["steps"] if s["stage"] == "confirm") == prog.profile.confirm_attempts
    assert found["capacity"] is None and not found["confirmed"] and "no capacity is certified" in found["why"]


def test_a_step_is_judged_on_every_criterion():
    assert capacity.judge_step("c", "ramp", 100, results(100), BARS)["passed"]
    slow = capacity.judge_step("c", "ramp", 100, results(100, p99=6000), BARS)
    assert not slow["passed"] and "latency_p99" in slow["why"]
    behind = capacity.judge_step("c", "ramp", 100, results(100, committed=80), BARS)
    assert not behind["passed"] and "commit_send_ratio" in behind["why"]
    lossy = capacity.judge_step("c", "ramp", 100, results(100, success=0.9), BARS)
    assert not lossy["passed"] and "success_ratio" in lossy["why"]
    harness = capacity.judge_step("c", "ramp", 100, results(100, sent=60), BARS)
    assert harness["harness_limited"] and "harness" in harness["why"]
    # Behind its schedule, but the chain did not keep even what was sent: the chain's failure.
    both = capacity.judge_step("c", "ramp", 1600, results(1600, sent=1452, committed=599, p99=37000), BARS)
    assert not both["passed"] and not both["harness_limited"]
    assert "commit_send_ratio" in both["why"] and "1452 tx/s the harness did send" in both["why"]
    broken = capacity.judge_step("c", "ramp", 100, results(100, status="interrupted"), BARS)
    assert not broken["passed"] and "did not complete" in broken["why"]


def test_criteria_come_from_the_catalogues_and_a_stricter_claim():
    from harness import standards
    from harness.standards import catalogue
    entries = [standards.entry(catalogue.load(paths.home() / "standards" / "performance.yaml"))]
    assert capacity.criteria(entries, None).latency_p99_ms == 10000
    assert capacity.criteria(entries, 2000).latency_p99_ms == 2000
    assert capacity.criteria(entries, 99999).latency_p99_ms == 10000   # a looser claim moves no bar


def plan_of(prog: Program) -> dict[str, str]:
    out = {}
    for module in rounds.registry():
        why = module.applies(prog)
        out[module.ID] = "n/a" if why else ("run" if prog.profile.name in module.PROFILES else "not-run")
    return out


def test_rounds_follow_the_consensus_kind_and_the_profile():
    bft = plan_of(program("cometbft"))
    assert bft["bft-threshold"] == "run" and bft["partition-pow"] == "n/a" and bft["pressure-16"] == "run"
    pow_ = plan_of(program("litecoin"))
    assert pow_["bft-threshold"] == "n/a" and pow_["partition-pow"] == "run"
    assert pow_["crash-restart"] == "run"
    single = plan_of(program("anvil"))
    assert single["pressure-4"] == "run" and single["security"] == "run"
    assert all(single[r] == "n/a" for r in ("spike-4", "bft-threshold", "crash-restart", "pressure-16"))
    quick = plan_of(program("cometbft", profile="quick"))
    assert quick["pressure-4"] == "run" and quick["security"] == "run" and quick["bft-threshold"] == "not-run"
    # smoke (the tests' profile) runs quick's rounds, and leaves out what quick leaves out
    smoke = plan_of(program("cometbft", profile="smoke"))
    assert smoke == quick


def test_smoke_is_still_a_search_that_ends_in_a_confirmation():
    found = search(program(profile="smoke"), chain_with_capacity(1e9))
    steps = [(s["offered"], s["stage"]) for s in found["steps"]]
    assert steps == [(25, "ramp"), (100, "ramp"), (100, "confirm")]
    assert found["confirmed"] and found["limited_by"] == "profile" and "its 2 ramp steps" in found["why"]
    found = search(program(profile="smoke"), chain_with_capacity(60))
    assert [s["offered"] for s in found["steps"]] == [25, 100, 25]   # no bisection: confirm the best pass
    assert found["capacity"] == 25 and found["limited_by"] == "chain"


def test_every_round_builds_a_suite_that_loads(tmp_path: Path):
    import yaml

    from harness import suite
    for name in ("cometbft", "litecoin", "anvil"):
        prog = dataclasses.replace(program(name), capacity=120.0)
        for module in rounds.registry():
            if module.applies(prog):
                continue
            doc = {"name": f"t-{module.ID}", "case": module.ID, "chain": str(prog.pack.folder),
                   **module.suite(prog)}
            path = tmp_path / f"{name}-{module.ID}.yaml"
            path.write_text(yaml.safe_dump(doc))
            assert suite.load(path).case == module.ID


def test_a_multi_node_chain_cannot_declare_its_way_out_of_the_4_node_rounds():
    small = dataclasses.replace(pack("cometbft"), max_nodes=3)
    with pytest.raises(InputError, match="certified at 4 nodes"):
        check_sizes(small)
    check_sizes(pack("anvil"))   # a single-node chain is what it says: its 4-node rounds are n/a


def test_a_crash_round_cannot_be_dodged_by_omitting_the_data_dir():
    prog = Program(pack=dataclasses.replace(pack("cometbft"), data_dir=None), claims=None,
                   profile=PROFILES["full"])
    assert plan_of(prog)["crash-restart"] == "run"


def test_claims_are_validated_and_cannot_size_the_test_centers_work(tmp_path: Path):
    bad = tmp_path / "claims.yaml"
    for text, field in (("throughput: -5\n", "throughput"), ("tps: 5\n", "tps"),
                        ("fault_tolerance: 2\n", "fault_tolerance"), ("- 1\n", None)):
        bad.write_text(text)
        with pytest.raises(InputError) as caught:
            claims.load(bad)
        assert str(bad) in str(caught.value)
        if field:
            assert field in str(caught.value)
    bad.write_text("throughput: 900000\n")
    with pytest.raises(InputError, match="ceiling"):
        check_claims(claims.load(bad), "full", bad)
    with pytest.raises(InputError, match="throughput"):
        build_program(paths.home() / "chains" / "anvil", bad, "quick")


def claims_of(**kw) -> claims.Claims:
    return claims.Claims(throughput=kw.get("throughput", {}), latency_p99_ms=kw.get("p99"),
                         fault_tolerance=kw.get("f"), sha256="x")


def test_claim_verdicts():
    cases = {"pressure-4": results(500, committed=490, p99=2500)}
    got = {c["id"]: c for c in judge.claim_verdicts(claims_of(throughput={4: 500.0}, p99=3000), cases, "bft")}
    assert got["throughput-4"]["verdict"] == "pass" and got["latency-p99"]["verdict"] == "pass"
    cases = {"pressure-4": results(500, committed=300, p99=4000)}
    got = {c["id"]: c for c in judge.claim_verdicts(claims_of(throughput={4: 500.0}, p99=3000), cases, "bft")}
    assert got["throughput-4"]["verdict"] == "fail" and "60%" in got["throughput-4"]["why"]
    assert got["latency-p99"]["verdict"] == "fail"
    harness_short = {"pressure-4": results(500, sent=200)}
    got = judge.claim_verdicts(claims_of(throughput={4: 500.0}), harness_short, "bft")
    assert got[0]["verdict"] == "unknown"
    assert judge.claim_verdicts(claims_of(throughput={16: 100.0}), {}, "bft")[0]["verdict"] == "unknown"
    ft = {"bft-threshold": {"status": "complete", "checkers": [{"id": "fault_tolerance", "verdict": "pass"}]}}
    assert judge.claim_verdicts(claims_of(f=1), ft, "bft")[0]["verdict"] == "pass"
    assert judge.claim_verdicts(claims_of(f=1), {}, "pow")[0]["verdict"] == "unknown"
    assert judge.worst_claim({"claim_verdicts": []}) == "pass"


REQUIREMENT = {"id": "R", "title": {"en": "r", "zh": "r"}, "category": "performance",
               "obligation": "mandatory",
               "source": {"document": "x", "clause": "1"}, "method": {"cases": ["spike-4"]},
               "threshold": {"metric": "success_ratio", "op": ">=", "value": 0.9},
               "conditions": {"nodes": [4]}}


def test_rounds_the_program_left_out_keep_their_reason():
    skipped = {"spike-4": {"verdict": "inconclusive", "why": "not in the quick profile"}}
    judged = verdicts.judge_requirement(REQUIREMENT, {}, "bft", {"skipped": skipped})
    assert judged["verdict"] == "inconclusive" and "quick profile" in judged["why"]
    skipped = {"spike-4": {"verdict": "not-applicable", "why": "needs 4 nodes"}}
    judged = verdicts.judge_requirement(REQUIREMENT, {}, "single", {"skipped": skipped})
    assert judged["verdict"] == "not-applicable"
    one_node = {"spike-4": {**results(10), "node_count": 1}}
    judged = verdicts.judge_requirement(REQUIREMENT, one_node, "single", {"max_nodes": 1})
    assert judged["verdict"] == "not-applicable"
    assert verdicts.judge_requirement(REQUIREMENT, one_node, "bft", None)["verdict"] == "inconclusive"


def test_the_certify_block_is_recomputed_from_the_plan_and_matches_its_schema():
    import jsonschema

    from harness.validation import schema
    plan = {"format": "bctest-certify/1", "profile": "full", "vendor": {"name": "acme", "submission": None},
            "pack": {"name": "x", "version": "1", "family": "cometbft", "consensus": "bft",
                     "manifest_sha256": "0" * 64, "max_nodes": None},
            "claims": claims_of(throughput={4: 200.0}).entry(), "criteria": BARS.entry(), "capacity_nodes": 4,
            "capacity_steps": [{"case": "capacity-01", "stage": "ramp", "offered": 100.0},
                               {"case": "capacity-02", "stage": "ramp", "offered": 200.0},
                               {"case": "capacity-confirm", "stage": "confirm", "offered": 100.0}],
            "rounds": [{"case": "pressure-4", "status": "run", "why": None},
                       {"case": "partition-pow", "status": "not-applicable", "why": "pow only"}]}
    cases = {"capacity-01": results(100), "capacity-02": results(200, committed=120),
             "capacity-confirm": results(100), "pressure-4": results(200, committed=150)}
    block = judge.judge(plan, cases)
    jsonschema.Draft202012Validator(schema("certify")).validate(block)
    assert block["capacity"]["capacity"] == 100 and block["capacity"]["knee"] == "capacity-01"
    assert block["claim_verdicts"][0]["verdict"] == "fail"   # claimed 200, the chain keeps 100
    assert block["not_applicable"] == [{"case": "partition-pow", "why": "pow only"}]
    assert judge.worst_claim(block) == "fail"


def test_the_spike_round_is_judged_on_its_spike_window_not_the_calm_around_it(tmp_path: Path):
    import yaml

    from harness import suite
    from harness.certify.rounds import spike_4
    from harness.standards import metrics
    prog = dataclasses.replace(program("cometbft"), capacity=100.0)
    doc = {"name": "t-spike", "case": "spike-4", "chain": str(prog.pack.folder), **spike_4.suite(prog)}
    path = tmp_path / "spike.yaml"
    path.write_text(yaml.safe_dump(doc))
    loaded = suite.load(path)
    windows = loaded.load.plan().windows
    assert {"baseline", "spike", "after"} <= set(windows)
    assert loaded.load.plan().target_rate("spike") == pytest.approx(2 * prog.pressure_rate)
    # A chain that commits the calm and drops the spike: the measure window looks fine-ish,
    # the spike window (which the catalogue reads) does not.
    results = {"phases": {"measure": {"success_ratio": 0.8}, "spike": {"success_ratio": 0.4}}}
    assert metrics.read("spike_success_ratio", results) == (0.4, None)
