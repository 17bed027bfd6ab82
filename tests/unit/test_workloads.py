"""The workload registry core: discovery (one file a workload), the suite's `workload.kind` +
`workload.settings` resolved per family with one clear InputError, the prepare wiring, the
read-back stage, its History line and the pure readback checker."""

from __future__ import annotations

import asyncio
import sys
from types import SimpleNamespace

import pytest

import harness.workloads
from harness import history as history_module
from harness import suite, workloads
from harness.checks import correctness
from harness.checks import readback as readback_check
from harness.errors import InputError
from harness.model import Block, Prepared
from harness.phases import query as query_phase
from harness.phases import readback, setup
from harness.tracker import CommitTracker

ECHO = '''
"""A test workload: writes nothing, echoes its settings."""
from harness.model import Prepared

ID = "echo"
FAMILY = "evm"
TITLE = "echo (unit test)"
SETTINGS = {"size": {"type": "integer", "minimum": 1}, "mode": {"enum": ["a", "b"]}}
DEFAULTS = {"size": 3, "mode": "a"}
QUERY_KINDS = ("echo-read",)


class Workload:
    query_kinds = QUERY_KINDS

    def __init__(self, adapter, settings, seed, accounts):
        self.adapter, self.settings, self.seed, self.accounts = adapter, settings, seed, accounts

    async def bootstrap(self, nodes, count):
        return {"deployed": "0xabc", "count": count}

    def prepare(self, count):
        return [Prepared(body=b"echo", tx_id=f"0x{i:064x}") for i in range(count)]

    async def read_back(self, node, committed):
        return {"effects": {"expected": len(committed), "found": len(committed), "missing": 0,
                            "wrong": 0}, "mismatches": [], "must_refuse": []}

    def query_subjects(self, kind, committed):
        return ["k1", "k2"]

    def query_request(self, kind, subject, request_id):
        return Prepared(body=subject.encode(), tx_id=subject)

    @staticmethod
    def query_error(status, body):
        return None
'''


@pytest.fixture
def echo_workload(tmp_path, monkeypatch):
    """One new file in the workloads package (a second folder on its __path__)."""
    folder = tmp_path / "more_workloads"
    folder.mkdir()
    (folder / "evm_echo.py").write_text(ECHO)
    monkeypatch.setattr(harness.workloads, "__path__", [*harness.workloads.__path__, str(folder)])
    workloads.reload()
    yield workloads.find("evm", "echo")
    monkeypatch.undo()
    sys.modules.pop("harness.workloads.evm_echo", None)
    workloads.reload()


def _suite(tmp_path, inputs, workload, query=None):
    doc = inputs.suite()
    doc["workload"] = workload
    if query:
        doc["query"] = query
    return inputs.make_suite(tmp_path, doc)


def test_adding_a_workload_is_one_new_file(echo_workload):
    spec = echo_workload
    assert spec is not None and spec.family == "evm" and spec.query_kinds == ("echo-read",)
    assert "echo" in workloads.of_family("evm")
    assert spec.classifier == "harness.workloads.evm_echo:Workload.query_error"
    made = spec.create("adapter", {"size": 9}, 42, 16)
    assert made.settings == {"size": 9, "mode": "a"} and (made.seed, made.accounts) == (42, 16)


def test_every_registered_workload_declares_its_contract():
    for (family, kind), spec in workloads.registry().items():
        module = spec.load()
        assert (module.FAMILY, module.ID) == (family, kind)
        assert set(spec.defaults) <= set(spec.settings_schema), kind
        for hook in ("bootstrap", "prepare", "read_back"):
            assert callable(getattr(module.Workload, hook)), (kind, hook)
        if spec.query_kinds:
            for hook in ("query_subjects", "query_request", "query_error"):
                assert callable(getattr(module.Workload, hook)), (kind, hook)


def test_a_registered_workload_is_resolved_with_its_settings_and_read_back(echo_workload, tmp_path,
                                                                           inputs):
    loaded = suite.load(_suite(tmp_path, inputs, {"kind": "echo", "settings": {"mode": "b"}},
                               {"rate": 10, "duration": 2, "kind": "echo-read"}))
    assert loaded.workload == "echo" and loaded.workload_registered
    assert loaded.workload_settings == {"size": 3, "mode": "b"}
    assert loaded.query.kind == "echo-read"
    assert "readback" in loaded.checker_config()


def test_the_adapters_own_workload_needs_no_read_back(tmp_path, inputs):
    loaded = suite.load(_suite(tmp_path, inputs, {"kind": "transfer"}))
    assert not loaded.workload_registered and loaded.workload_settings == {}
    assert "readback" not in loaded.checker_config()
    faults = inputs.suite()
    assert "readback" not in suite.load(inputs.make_suite(tmp_path / "f", faults)).checker_config()


@pytest.mark.parametrize("workload, field, words", [
    ({"kind": "nosuch"}, "workload.kind", ["one of transfer", "echo", "'evm' family", "nosuch"]),
    ({"kind": "echo", "settings": {"colour": 1}}, "workload.settings.colour", ["size", "mode"]),
    ({"kind": "echo", "settings": {"size": 0}}, "workload.settings.size", ["minimum"]),
    ({"kind": "echo", "settings": {"mode": "z"}}, "workload.settings.mode", ["'z'"]),
    ({"kind": "transfer", "settings": {"size": 2}}, "workload.settings.size", ["takes none"]),
    ({"kind": "Bad Kind"}, "workload.kind", ["does not match"]),
])
def test_a_bad_workload_is_one_input_error_naming_the_field(echo_workload, tmp_path, inputs,
                                                           workload, field, words):
    with pytest.raises(InputError) as info:
        suite.load(_suite(tmp_path, inputs, workload))
    assert info.value.field == field, str(info.value)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_a_workload_query_kind_needs_that_workload(echo_workload, tmp_path, inputs):
    with pytest.raises(InputError) as info:
        suite.load(_suite(tmp_path, inputs, {"kind": "transfer"},
                          {"rate": 10, "duration": 2, "kind": "echo-read"}))
    assert info.value.field == "query.kind" and "not echo-read" in str(info.value)


def test_the_query_phase_asks_the_workload_for_its_own_kinds(echo_workload):
    workload = echo_workload.create(None, {}, 1, 1)
    adapter = SimpleNamespace(query_kinds=("tx",))
    assert query_phase.reader_for("echo-read", adapter, workload) is workload
    assert query_phase.reader_for("tx", adapter, workload) is adapter
    assert query_phase.reader_for("tx", adapter, None) is adapter
    assert query_phase.query_classifier(workload).endswith("evm_echo:Workload.query_error")


def test_prepare_bootstraps_the_workload_after_the_adapter_and_signs_its_transactions(echo_workload):
    calls = []

    class Adapter:
        async def bootstrap(self, nodes, count):
            calls.append("adapter.bootstrap")
            return {"blocks": "interval"}

        def prepare(self, count):
            raise AssertionError("the workload prepares, not the adapter")

    ctx = SimpleNamespace(
        suite=SimpleNamespace(load=suite.LoadSpec(rate=10, duration=1, warmup=1),
                              workload_settings={"size": 3}),
        adapter=Adapter(), workload="echo",
        workload_impl=echo_workload.create(None, {}, 1, 1),
        nodes=[], say=lambda line: None, runtime=SimpleNamespace(data_bytes=lambda: {}))
    asyncio.run(setup.prepare(ctx))
    assert calls == ["adapter.bootstrap"]
    assert ctx.bootstrap == {"blocks": "interval", "workload": {
        "kind": "echo", "settings": {"size": 3}, "deployed": "0xabc", "count": 20}}
    assert len(ctx.prepared) == 20 and ctx.prepared[0].body == b"echo"


def _block(node, number, ids, hash_=None):
    return Block(node=node, number=number, hash=hash_ or f"h{number}", parent=f"h{number - 1}",
                 seen=float(number), fetched=float(number), tx_ids=tuple(ids))


def test_chain_order_follows_the_nodes_blocks_and_skips_uncommitted():
    tracker = CommitTracker(["a", "b", "c", "d"], nodes=2, share=1.0)
    for node in (0, 1):
        tracker.on_block(_block(node, 2, ["c", "a"]))
        tracker.on_block(_block(node, 3, ["d"]))
    tracker.on_block(_block(0, 4, ["b"]))        # on node0 only: not committed at share 1.0
    assert readback.chain_order(tracker, 0) == [2, 0, 3]
    assert readback.chain_order(tracker, 1) == [2, 0, 3]


def test_a_failed_read_back_is_recorded_with_its_reason_never_raised():
    class Raises:
        async def read_back(self, node, committed):
            raise ValueError("node answered nonsense")

    class Slow:
        async def read_back(self, node, committed):
            await asyncio.sleep(5)

    class Odd:
        async def read_back(self, node, committed):
            return [1, 2]

    assert asyncio.run(readback.run_readback(Raises(), None, [])) == {
        "error": "ValueError: node answered nonsense"}
    assert "longer than 0.05 s" in asyncio.run(readback.run_readback(Slow(), None, [], 0.05))["error"]
    assert "not observations" in asyncio.run(readback.run_readback(Odd(), None, []))["error"]


def _history(read):
    return history_module.History(header={}, readback=read)


def _judge(read):
    return readback_check.check(_history(read), {})


GOOD = {"workload": "echo", "effects": {"expected": 5, "found": 5, "missing": 0, "wrong": 0},
        "mismatches": [], "must_refuse": [{"i": 3, "what": "redeem again", "outcome": "reverted",
                                           "refused": True}]}


def test_readback_checker_passes_when_every_effect_is_there_and_refusals_held():
    got = _judge(GOOD)
    assert got["verdict"] == "pass", got
    assert "all 5 committed effects" in got["why"] and "all 1 that had to be refused" in got["why"]


@pytest.mark.parametrize("change, verdict, words", [
    ({"effects": {"expected": 5, "found": 4, "missing": 1, "wrong": 0}}, "fail", ["1 of 5", "missing"]),
    ({"effects": {"expected": 5, "found": 3, "missing": 0, "wrong": 2}}, "fail", ["2 wrong"]),
    ({"effects": {"expected": 5, "found": 3, "missing": 0, "wrong": 0}}, "fail", ["is not the 5"]),
    ({"must_refuse": [{"i": 3, "what": "redeem again", "refused": False}]}, "fail",
     ["had to be refused took effect", "redeem again"]),
    ({"must_refuse": [{"i": 3, "what": "redeem again", "refused": None}]}, "unknown", ["never sent"]),
    ({"error": "RpcError: connection refused"}, "unknown", ["could not be done", "connection refused"]),
    ({"effects": {"expected": 0, "found": 0, "missing": 0, "wrong": 0}, "must_refuse": []}, "unknown",
     ["nothing to read back"]),
    ({"effects": {"expected": "5", "found": 5, "missing": 0, "wrong": 0}}, "unknown", ["malformed"]),
    ({"effects": {"expected": 5, "found": 5, "missing": -1, "wrong": 1}}, "unknown", ["malformed"]),
    ({"must_refuse": "yes"}, "unknown", ["malformed"]),
    ({"forged": 3}, "fail", ["3 state value(s) that its own proofs contradict"]),
    ({"forged": "many"}, "unknown", ["malformed"]),
])
def test_readback_checker_fails_on_a_missing_effect_and_is_unknown_without_evidence(change, verdict, words):
    got = _judge({**GOOD, **change})
    assert got["verdict"] == verdict, got
    for word in words:
        assert word in got["why"], got["why"]


def test_no_read_back_line_is_unknown_and_the_line_round_trips(tmp_path):
    assert readback_check.check(history_module.History(header={}), {})["verdict"] == "unknown"
    path = tmp_path / "history.jsonl"
    history_module.write(path, history_module.History(header={"run_id": "x"}, readback=GOOD))
    again = history_module.read(path)
    assert again.readback == GOOD
    assert correctness.evaluate(again, {"readback": {}})[0]["verdict"] == "pass"


def test_prepared_is_what_the_workload_returns(echo_workload):
    made = echo_workload.create(None, {}, 1, 1).prepare(2)
    assert made == [Prepared(body=b"echo", tx_id="0x" + "0" * 64),
                    Prepared(body=b"echo", tx_id="0x" + "0" * 63 + "1")]
