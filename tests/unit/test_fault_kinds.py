"""The fault-kind registry: every kind declares what schedule, schema and checkers read,
importing it needs no engine, and a new kind is one file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jsonschema
import pytest

from harness.errors import InputError
from harness.faults import kinds
from harness.faults.kinds.base import FaultKind
from harness.faults.schedule import plan
from harness.history import FaultRecord

ROOT = Path(__file__).resolve().parents[2]
KIND_DIR = ROOT / "harness" / "faults" / "kinds"


def test_importing_the_registry_loads_neither_docker_nor_aiohttp():
    """The checkers read the kinds' declarations; the judge layer runs without an engine."""
    code = ("import sys, json\n"
            "from harness.faults import kinds\n"
            "kinds.registry(); kinds.schema({}); kinds.crash_kinds()\n"
            "import harness.faults.kinds.skew, harness.faults.schedule\n"
            "print(json.dumps(sorted(m for m in ('docker', 'aiohttp') if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_every_kind_is_one_module_named_after_its_action():
    modules = sorted(p.stem for p in KIND_DIR.glob("*.py") if p.stem != "base" and not p.stem.startswith("_"))
    assert list(kinds.names()) == modules
    assert set(kinds.names()) == {"kill", "stop", "restart", "pause", "wipe", "partition", "loss",
                                  "bandwidth", "delay", "disk", "skew"}


@pytest.mark.parametrize("name", sorted(kinds.names()))
def test_kind_settings_are_json_schema_and_required_ones_declared(name):
    kind = kinds.get(name)
    for key, fragment in kind.settings.items():
        jsonschema.Draft202012Validator.check_schema(fragment)
        assert key.isidentifier()
    assert set(kind.required) <= set(kind.settings)


def test_the_loaded_suite_schema_lists_the_kinds_and_their_settings():
    from harness.validation import schema
    item = schema("suite")["properties"]["faults"]["items"]
    assert item["properties"]["action"]["enum"] == list(kinds.names())
    assert set(kinds.setting_names()) <= set(item["properties"])
    assert item["additionalProperties"] is False
    assert {"id", "target", "at", "duration", "until", "repeat"} <= set(item["properties"])


def test_printed_schema_is_the_complete_one():
    done = subprocess.run([sys.executable, "-m", "harness.faults.kinds"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)["properties"]["faults"]["items"]
    assert printed["properties"]["action"]["enum"] == list(kinds.names())


# What the checkers did before the registry, kept exactly: durability's crashed nodes and
# fault_tolerance's crash-like faults.
OLD_CRASH = ("kill", "stop", "pause", "restart", "wipe")


def _old_crash_like(action: str, nodes: int, f: int) -> bool:
    if action == "disk":
        return nodes <= f
    return action != "restart" and (action in OLD_CRASH or action == "partition")


@pytest.mark.parametrize("name", sorted(kinds.names()))
@pytest.mark.parametrize(("nodes", "f"), [(1, 1), (2, 1), (1, 0), (3, 2)])
def test_checker_declarations_match_the_old_behaviour(name, nodes, f):
    from harness.checks import chain
    from harness.checks.fault_tolerance import _crash_like
    record = FaultRecord(id="x", action=name, nodes=list(range(nodes)), start=1.0, end=2.0,
                         status="healed", method="")
    assert _crash_like(record, f) == _old_crash_like(name, nodes, f)
    assert (name in chain.CRASH_ACTIONS) == (name in OLD_CRASH)


def test_unknown_action_of_an_old_history_is_not_judged():
    from harness.checks.fault_tolerance import _crash_like
    record = FaultRecord(id="x", action="meteor", nodes=[0], start=1.0, end=2.0, status="healed", method="")
    assert not _crash_like(record, 1)


def test_preflight_is_needed_exactly_for_network_kinds():
    assert set(kinds.network_kinds()) == {"partition", "loss", "bandwidth", "delay"}
    def one(action, **settings):
        return plan([{"action": action, "at": 1, "duration": 2, **settings}], 4, 1, 1, 100.0, "s.yaml")
    assert kinds.needs_preflight(one("loss", probability=0.5))
    assert not kinds.needs_preflight(one("kill") + one("skew", seconds=5) + one("disk", size="1m"))


def test_a_new_kind_is_one_file(tmp_path, monkeypatch):
    """Drop a module into the package path: schedule and schema take it, nothing else changes."""
    (tmp_path / "meteor.py").write_text(textwrap.dedent('''
        from harness.faults.kinds.base import FaultKind

        class Meteor(FaultKind):
            name = "meteor"
            settings = {"craters": {"type": "integer", "minimum": 1}}
            required = ("craters",)
            takes_out = True
            description = "a meteor"

            def apply(self, ctx):
                ctx.params["hit"] = [n.name for n in ctx.targets()]

        KIND = Meteor()
        '''))
    monkeypatch.setattr(kinds, "__path__", [*kinds.__path__, str(tmp_path)])
    kinds.registry.cache_clear()
    try:
        assert isinstance(kinds.get("meteor"), FaultKind)
        item = kinds.schema({"properties": {}})
        assert "meteor" in item["properties"]["action"]["enum"] and "craters" in item["properties"]
        [step] = plan([{"action": "meteor", "craters": 3, "at": 1, "duration": 2}], 4, 1, 1, 100.0, "s.yaml")
        assert step.settings == {"craters": 3} and step.nodes == (3,)
        with pytest.raises(InputError, match="craters"):
            plan([{"action": "meteor", "at": 1, "duration": 2}], 4, 1, 1, 100.0, "s.yaml")
    finally:
        kinds.registry.cache_clear()


def test_two_kinds_may_not_give_one_setting_two_meanings(tmp_path, monkeypatch):
    (tmp_path / "clash.py").write_text(textwrap.dedent('''
        from harness.faults.kinds.base import FaultKind

        class Clash(FaultKind):
            name = "clash"
            settings = {"size": {"type": "integer"}}

        KIND = Clash()
        '''))
    monkeypatch.setattr(kinds, "__path__", [*kinds.__path__, str(tmp_path)])
    kinds.registry.cache_clear()
    try:
        with pytest.raises(TypeError, match="'size'"):
            kinds.registry()
    finally:
        kinds.registry.cache_clear()
