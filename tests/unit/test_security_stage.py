"""The security stage, findings and SARIF, against fake probes and fake nodes (no engine).

The probes themselves are tested against stub nodes in tests/unit/test_probe_*.py and
against real nodes in tests/integration/test_security_*.py.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from harness import findings, security
from harness.model import Attempt, Node, ProbeOutcome
from harness.phases import security as stage
from harness.phases.context import LoadState, RunContext
from harness.report import sarif
from harness.security.probe import NotApplicable, Reply, clip
from harness.suite import SecuritySpec


class FakeAdapter:
    """Heights go up by one per call unless `stalled`; `drive` records that it ran."""

    def __init__(self, stalled: bool = False):
        self.height_now, self.stalled, self.drove = 10, stalled, False

    async def height(self, node: Node) -> int:
        if not self.stalled:
            self.height_now += 1
        return self.height_now

    async def drive(self, nodes: list[Node], stop: asyncio.Event) -> None:
        self.drove = True
        await stop.wait()


class FakeRuntime:
    def __init__(self):
        self.state = {"Running": True, "ExitCode": 0, "StartedAt": "t1"}
        self.restarts = 0

    def container(self, node: Node):
        return SimpleNamespace(attrs={"State": dict(self.state), "RestartCount": self.restarts})

    def pid(self, node: Node) -> int:
        return 0


def probe_module(name: str, run, severity: str = "high") -> security.Probe:
    module = ModuleType(f"fake.{name}")
    module.run = run
    return security.Probe(id=name, order=1, title={"en": f"{name} probe", "zh": name}, severity=severity,
                          defaults={"n": 1}, settings_schema={}, module=module)


def context(probes: list[security.Probe], adapter=None, runtime=None, liveness=1.0, budget=5.0):
    spec = SecuritySpec(probes=tuple(p.id for p in probes), budget=budget, liveness=liveness,
                        settings={p.id: {"n": 2} for p in probes})
    suite = SimpleNamespace(security=spec, chain=SimpleNamespace(family="evm", ports={"rpc": 8545}),
                            load=SimpleNamespace(rate=20.0))
    ctx = RunContext(suite=suite, run_id="r", run_dir=None, console=None, stopped=lambda: None,
                     say=lambda line: None)
    ctx.adapter, ctx.runtime = adapter or FakeAdapter(), runtime or FakeRuntime()
    ctx.nodes = [Node("node0", 0, "c0", {"rpc": 1}), Node("node1", 1, "c1", {"rpc": 2})]
    ctx.load = LoadState(t0=time.monotonic(), prepared=[], tracker=None)
    return ctx


def run_stage(ctx, probes, monkeypatch):
    monkeypatch.setattr(security, "registry", lambda: {p.id: p for p in probes})
    asyncio.run(stage.probes(ctx))
    return ctx.security


def test_a_probe_gets_its_settings_and_its_attempts_are_kept_with_survival(monkeypatch):
    seen = {}

    async def run(target):
        seen["settings"], seen["left"] = target.settings, target.time_left()
        return [target.attempt("case.a", target.nodes[0], True, "refuses a"),
                target.attempt("case.b", target.nodes[1], False, "refuses b", "it answered 0x1",
                               request=b'{"m":1}', answer="HTTP 200\n\n{}")]

    adapter = FakeAdapter()
    probes = [probe_module("p", run)]
    (outcome,) = run_stage(context(probes, adapter), probes, monkeypatch)
    assert seen["settings"] == {"n": 2} and 0 < seen["left"] <= 5
    assert adapter.drove   # a regtest chain needs its block maker beside the probes
    assert outcome.status == "ran" and outcome.started is not None and outcome.ended >= outcome.started
    cases = [(a.case, a.node, a.verdict) for a in outcome.attempts]
    assert cases[:2] == [("case.a", "node0", "pass"), ("case.b", "node1", "fail")]
    assert ("survival.running", "node0", "pass") in cases and ("survival.blocks", "node1", "pass") in cases
    assert outcome.attempts[1].request == '{"m":1}' and outcome.attempts[1].severity == "high"


def test_a_node_the_probe_crashed_is_a_critical_finding_of_that_probe(monkeypatch):
    runtime = FakeRuntime()

    async def crash(target):
        runtime.state = {"Running": False, "ExitCode": 139, "StartedAt": "t1"}
        return [target.attempt("x", target.nodes[0], True, "answered")]

    probes = [probe_module("crasher", crash)]
    (outcome,) = run_stage(context(probes, runtime=runtime), probes, monkeypatch)
    died = [a for a in outcome.attempts if a.case == "survival.running"]
    assert {a.verdict for a in died} == {"fail"} and {a.severity for a in died} == {"critical"}
    assert "exit code 139" in died[0].why
    assert findings.probe_entry(outcome)["verdict"] == "fail"


def test_a_restart_between_before_and_after_is_a_crash(monkeypatch):
    runtime = FakeRuntime()

    async def restart(target):
        runtime.state = {**runtime.state, "StartedAt": "t2"}   # crashed and came back
        return []

    probes = [probe_module("p", restart)]
    (outcome,) = run_stage(context(probes, runtime=runtime), probes, monkeypatch)
    assert [a.verdict for a in outcome.attempts if a.case == "survival.running"] == ["fail", "fail"]


def test_stalled_block_production_fails_survival_within_the_bound(monkeypatch):
    async def quiet(target):
        return [target.attempt("x", target.nodes[0], True, "ok")]

    probes = [probe_module("p", quiet)]
    began = time.monotonic()
    (outcome,) = run_stage(context(probes, FakeAdapter(stalled=True), liveness=0.6), probes, monkeypatch)
    blocks = [a for a in outcome.attempts if a.case == "survival.blocks"]
    assert {a.verdict for a in blocks} == {"fail"} and "height 10 before" in blocks[0].why
    assert time.monotonic() - began < 5


def test_not_applicable_error_and_timeout_are_kept_apart(monkeypatch):
    async def not_here(target):
        raise NotApplicable("no such interface on this family")

    async def broken(target):
        raise KeyError("adapter has no keys")

    async def slow(target):
        await asyncio.sleep(30)

    probes = [probe_module("na", not_here), probe_module("err", broken), probe_module("slow", slow)]
    na, err, slow_outcome = run_stage(context(probes, budget=0.3), probes, monkeypatch)
    assert (na.status, na.reason, na.attempts) == ("not-applicable", "no such interface on this family", [])
    assert err.status == "error" and "KeyError" in err.reason
    assert slow_outcome.status == "error" and "budget of 0.3 s" in slow_outcome.reason
    assert [findings.probe_entry(o)["verdict"] for o in (na, err, slow_outcome)] == \
        ["not-applicable", "unknown", "unknown"]
    # survival is still judged after a broken probe: it may have hurt the node before raising
    assert any(a.case == "survival.running" for a in err.attempts)


def attempt(verdict: str, severity: str = "high", case: str = "c") -> Attempt:
    return Attempt("p", case, "node0", verdict, severity, "title", "why", "req", "ans")


def test_findings_merge_worst_first_and_count_by_severity():
    outcomes = [ProbeOutcome("a", "A", "ran", attempts=[attempt("pass"), attempt("unknown")]),
                ProbeOutcome("b", "B", "ran",
                             attempts=[attempt("fail", "medium"), attempt("fail", "critical")]),
                ProbeOutcome("c", "C", "not-applicable", "bitcoin has no websocket")]
    entry = findings.entry(outcomes)
    verdicts = {p["probe"]: p["verdict"] for p in entry["probes"]}
    assert verdicts == {"a": "unknown", "b": "fail", "c": "not-applicable"}
    assert entry["verdict"] == "fail"
    assert entry["findings"]["critical"] == 1 and entry["findings"]["medium"] == 1
    b = entry["probes"][1]
    assert b["severity"] == "critical" and b["why"].startswith("2 of 2 attempts failed")
    assert findings.entry([]) is None
    only_na = findings.entry([outcomes[2]])
    assert only_na["verdict"] == "not-applicable"
    assert findings.entry([ProbeOutcome("e", "E", "ran")])["probes"][0]["verdict"] == "unknown"


def test_sarif_has_one_rule_per_probe_and_one_result_per_failed_attempt():
    outcomes = [ProbeOutcome("exposure", "Interface exposure", "ran",
                             attempts=[attempt("fail", "high", "http.anvil_nodeInfo"), attempt("pass")]),
                ProbeOutcome("replay", "Replay", "not-applicable", "no")]
    results = {"run_id": "r1", "harness": {"version": "x"}, "chain": {"name": "anvil"},
               "security": findings.entry(outcomes), "requirements": []}
    log = sarif.build(results)["runs"][0]
    assert [r["id"] for r in log["tool"]["driver"]["rules"]] == ["exposure"]
    (result,) = log["results"]
    assert result["ruleId"] == "exposure" and result["level"] == "error"
    assert result["properties"]["request"] == "req" and result["properties"]["answer"] == "ans"
    assert log["properties"]["probes_not_applicable"] == ["replay"]


@pytest.mark.parametrize("raw, shown", [
    (b"ok\n\tfine", "ok\n\tfine"),
    (b"\x1b[31mred\x00", "\\x1b[31mred\\x00"),      # no terminal escapes reach a report
    (b"\xff\xfe", "\ufffd\ufffd"),
])
def test_clip_makes_hostile_bytes_printable(raw, shown):
    assert clip(raw) == shown


def test_clip_cuts_and_says_how_much_there_was():
    assert clip(b"a" * 5000, 10) == "a" * 10 + " … (5000 bytes in all)"


def test_a_reply_reads_rpc_errors_and_results_of_any_shape():
    assert Reply(200, b'{"error": {"message": "method not found"}}').rpc_error() == "method not found"
    assert Reply(200, b'{"result": [1]}').rpc_result() == (True, [1])
    assert Reply(200, b"[[[[").rpc_result() == (False, None)
    assert Reply(200, b"[" * 100_000).json() is None      # deep nesting: not JSON to us
    assert Reply(None, error="ConnectionRefusedError").text().startswith("(no HTTP answer")


def test_every_registered_probe_is_a_module_named_by_its_id():
    assert security.names() == [p for p in security.names() if p in security.probe_ids()]
    for probe in security.registry().values():
        assert probe.module.__name__.endswith(f".{probe.id}")


def test_probe_lines_round_trip_and_judge_the_run(tmp_path):
    """History /3 keeps every attempt; results.json (schema-valid) fails the run on a finding."""
    from pathlib import Path

    from harness import history as hist
    from harness import results as results_module
    from harness.standards import metrics

    sample = Path(__file__).parent.parent / "fixtures" / "sample_run" / "history.jsonl"
    history = hist.read(sample)
    history.probes = [ProbeOutcome("exposure", "Interface exposure", "ran", None, 30.0, 31.5,
                                   [attempt("fail", "high", "http.anvil_nodeInfo"), attempt("pass")])]
    hist.write(tmp_path / "history.jsonl", history)
    back = hist.read(tmp_path / "history.jsonl")
    assert back.probes == history.probes
    results = results_module.compute(back)
    results_module.validate(results)
    assert results["security"]["probes"][0]["verdict"] == "fail"
    assert results["verdict"] == "fail"
    assert metrics.read("security_findings_high", results) == (1, None)
    history.probes[0].attempts = [attempt("pass")]
    assert results_module.compute(history)["security"]["verdict"] == "pass"


def test_deep_nesting_is_not_parsed_at_all():
    from harness.security.probe import MAX_DEPTH, nesting_depth

    assert nesting_depth(b'{"a": "[[[[", "b": [1, {"c": "\\"]"}]}') == 3   # strings do not count
    assert Reply(200, b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)).json() is None
    assert Reply(200, b"[" * 10 + b"]" * 10).json() == [[[[[[[[[[]]]]]]]]]]


def test_the_worst_finding_leads_the_probe_summary():
    outcome = ProbeOutcome("x", "X", "ran", attempts=[
        Attempt("x", "cors", "node0", "fail", "medium", "no CORS grant", "it echoed the origin"),
        Attempt("x", "send", "node0", "fail", "critical", "eth_sendTransaction refused", "it signed")])
    entry = findings.probe_entry(outcome)
    assert entry["why"] == "2 of 2 attempts failed; worst: eth_sendTransaction refused — it signed"
    assert entry["severity"] == "critical"


@pytest.mark.parametrize("name", ["evm", "geth-clique", "cometbft", "bitcoin",
                                  "cometbft-equivocation-negative"])
def test_the_shipped_security_suites_load_with_every_probe_they_name(name):
    from pathlib import Path

    from harness import suite as suite_module

    loaded = suite_module.load(Path(__file__).parents[2] / "suites" / "security" / f"{name}.yaml")
    assert loaded.security is not None and set(loaded.security.probes) <= set(security.names())
    for probe in loaded.security.probes:    # every probe's settings: its DEFAULTS, then the suite's
        assert set(loaded.security.settings[probe]) == set(security.registry()[probe].defaults)


def test_an_unknown_probe_or_setting_is_one_clear_input_error(tmp_path):
    from harness import suite as suite_module
    from harness.errors import InputError

    base = ("name: s\nchain: {chain}\nnodes: 1\nload: {{rate: 1, duration: 1}}\n")
    chain = Path(__file__).parents[2] / "chains" / "anvil"
    for extra, field in (("security: {probes: [nosuchprobe]}\n", "security.probes"),
                         ("security: {settings: {exposure: {nosuch: 1}}}\n", "security.settings")):
        path = tmp_path / "s.yaml"
        path.write_text(base.format(chain=chain) + extra)
        with pytest.raises(InputError) as error:
            suite_module.load(path)
        assert str(error.value.field).startswith(field), error.value
