"""The nemesis schedule: targets, partitions, timing and the errors bad fault lists get."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import suite as suite_module
from harness.errors import InputError
from harness.faults.schedule import partition, plan, resolve_target, target_count


def steps(faults, nodes=4, tolerated=1, seed=1, load_end=100.0):
    return plan(faults, nodes, tolerated, seed, load_end, "suite.yaml")


@pytest.mark.parametrize(("target", "nodes", "f", "count"), [
    ("one", 4, 1, 1), ("minority", 4, 1, 1), ("minority", 5, 1, 2), ("majority", 4, 1, 3),
    ("majority", 5, 1, 3), ("f", 4, 1, 1), ("f+1", 4, 1, 2), ("f", 7, 2, 2), ("f+1", 7, 2, 3),
    ("all", 4, 1, 4)])
def test_target_counts_follow_the_fault_model(target, nodes, f, count):
    assert target_count(target, nodes, f) == count


def test_count_targets_take_the_highest_numbered_nodes():
    import random
    assert resolve_target("f+1", 4, 1, random.Random(1), "s", "t") == (2, 3)
    assert resolve_target("one", 4, 1, random.Random(1), "s", "t") == (3,)
    assert resolve_target(["node2", "node0"], 4, 1, random.Random(1), "s", "t") == (0, 2)


def test_random_target_is_seeded_and_differs_between_repetitions():
    fault = [{"action": "kill", "target": "random", "at": 5, "duration": 2,
              "repeat": {"every": 5, "times": 8}}]
    first = [s.nodes for s in steps(fault, seed=7)]
    assert first == [s.nodes for s in steps(fault, seed=7)]
    assert len(set(first)) > 1
    assert [s.id for s in steps(fault)][:2] == ["kill-0#1", "kill-0#2"]
    assert [s.start for s in steps(fault)][:3] == [5.0, 10.0, 15.0]


def test_partition_shapes_block_exactly_the_pairs_across_groups():
    groups, blocked = partition("isolate", (3,), 4)
    assert groups == ((0, 1, 2), (3,))
    assert blocked == {(0, 3), (1, 3), (2, 3)}
    groups, blocked = partition("halves", (), 4)
    assert groups == ((0, 1), (2, 3))
    assert blocked == {(0, 2), (0, 3), (1, 2), (1, 3)}
    groups, blocked = partition("bridge", (), 5)
    assert groups == ((0, 1, 2), (2, 3, 4))
    assert (0, 2) not in blocked and (2, 4) not in blocked and (0, 4) in blocked
    groups, blocked = partition("ring", (), 5)
    assert groups is None
    assert (0, 1) not in blocked and (0, 4) not in blocked and (0, 2) in blocked


def test_halves_partition_names_the_cut_off_side():
    [step] = steps([{"action": "partition", "shape": "halves", "at": 10, "duration": 5}])
    assert step.nodes == (2, 3)
    assert step.groups == ((0, 1), (2, 3))
    assert (step.start, step.end) == (10.0, 15.0)


def test_until_and_instant_restart():
    until, restart = steps([{"action": "pause", "at": 10, "until": 30},
                            {"action": "restart", "target": ["node1"], "at": 12}])
    assert (until.start, until.end) == (10.0, 30.0)
    assert (restart.start, restart.end, restart.nodes) == (12.0, 12.0, (1,))


@pytest.mark.parametrize(("fault", "field", "expected"), [
    ({"action": "kill", "at": 5}, "faults[0].duration", "'duration' or 'until'"),
    ({"action": "loss", "at": 5, "duration": 3}, "faults[0].probability", "required"),
    ({"action": "kill", "at": 5, "duration": 3, "until": 9}, "faults[0].until", "not both"),
    ({"action": "kill", "at": 5, "until": 4}, "faults[0].until", "after 'at'"),
    ({"action": "kill", "at": 90, "duration": 20}, "faults[0]", "heals by the end of the load"),
    ({"action": "kill", "at": 5, "duration": 3, "target": ["node9"]}, "faults[0].target", "node9"),
    ({"action": "kill", "at": 5, "duration": 3, "target": "f"}, "faults[0].target", "selects none"),
    ({"action": "partition", "at": 5, "duration": 3, "target": "all"}, "faults[0].target",
     "both sides"),
    ({"action": "kill", "at": 5, "duration": 10, "repeat": {"every": 5, "times": 2}},
     "faults[0].repeat.every", "at least the fault's length"),
])
def test_bad_faults_name_the_field(fault, field, expected):
    tolerated = 0 if fault.get("target") == "f" else 1
    with pytest.raises(InputError) as error:
        steps([fault], tolerated=tolerated)
    assert error.value.field == field
    assert expected in error.value.expected


def test_suite_with_faults_loads_and_a_bad_one_names_the_file(tmp_path: Path):
    from harness import suite

    root = Path(__file__).resolve().parents[2]
    good = suite.load(root / "suites" / "faults" / "bft-threshold.yaml")
    assert [(s.id, s.nodes) for s in good.faults] == [("kill-f", (3,)), ("kill-f+1", (2, 3))]
    assert good.load_nodes == (0, 1)
    assert set(good.checker_config()) == {"causality", "safety", "liveness", "durability", "convergence",
                                          "fault_tolerance"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nchain: cometbft\nnodes: 4\nload: {rate: 10, duration: 10, "
                   "nodes: [node7]}\n")
    with pytest.raises(InputError) as error:
        suite.load(bad)
    assert (error.value.file, error.value.field) == (str(bad), "load.nodes")


def test_pow_fault_suite_without_checkers_gets_no_threshold_checker(tmp_path: Path):
    from harness import suite

    path = tmp_path / "pow.yaml"
    path.write_text("name: pow\nchain: litecoin\nnodes: 4\nload: {rate: 10, duration: 30}\n"
                    "faults: [{action: partition, shape: halves, at: 10, duration: 5}]\n")
    loaded = suite.load(path)
    assert "fault_tolerance" not in loaded.checker_config()
    assert "safety" in loaded.checker_config()


def test_safety_runs_on_every_chain_that_claims_finality(tmp_path, inputs):
    """Whatever the suite names (here: no checkers, no faults), a bft/cft/single chain is
    held to its finality; a proof-of-work chain forks by design and is judged only if asked."""
    for kind, expected in (("bft", True), ("cft", True), ("single", True), ("pow", False)):
        pack = inputs.pack()
        pack["consensus"] = {"kind": kind, "min_nodes": 1, "max_nodes": 8}
        loaded = suite_module.load(inputs.make_suite(tmp_path / kind, pack_doc=pack))
        assert ("safety" in loaded.checker_config()) is expected, kind
