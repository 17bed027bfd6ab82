"""The three-tier topology model (harness/topology.py) and what the suite makes of it:
node numbering by zone, roles, link profiles, zone/tier fault targets, commit nodes, and
one clear error (exit 2) for every wrong topology, including a pack without roles."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest

from harness import suite, topology
from harness.errors import EXIT_INVALID_INPUT, InputError
from harness.faults import schedule
from harness.topology import LinkProfile, Topology

THREE_TIER: dict[str, Any] = {
    "zones": [
        {"name": "province-a", "tier": "root", "nodes": 2},
        {"name": "province-b", "tier": "root", "nodes": 2},
        {"name": "national", "tier": "management", "nodes": 1},
        {"name": "region-1", "tier": "application", "nodes": 1, "parent": "province-a"},
        {"name": "region-2", "tier": "application", "nodes": 2, "parent": "province-b"},
    ],
    "links": [
        {"between": ["application", "root"], "delay_ms": 20, "jitter_ms": 2},
        {"between": ["root", "management"], "delay_ms": 40, "rate": "10mbit"},
        {"between": ["region-2", "province-b"], "delay_ms": 60, "loss": 0.01},
    ],
}
ROLES = {"root": "validator", "management": "full node", "application": "full node"}


def parsed(doc: dict[str, Any] | None = None) -> Topology:
    return topology.parse(copy.deepcopy(doc or THREE_TIER), "s.yaml")


def test_nodes_are_numbered_zone_by_zone_with_their_roles():
    t = parsed()
    assert t.count == 8
    assert [z.nodes for z in t.zones] == [(0, 1), (2, 3), (4,), (5,), (6, 7)]
    assert t.roles() == ("root",) * 4 + ("management",) + ("application",) * 3
    assert t.zone_of(6).name == "region-2" and t.role_of(4) == "management"
    assert t.tier_nodes("root") == (0, 1, 2, 3)
    assert t.used_tiers() == ("management", "root", "application")


def test_a_zone_selector_takes_the_zones_below_it():
    t = parsed()
    assert t.nodes_in("zone:region-1") == (5,)
    assert t.nodes_in("zone:province-b") == (2, 3, 6, 7)   # its region hangs below it
    assert t.nodes_in("tier:application") == (5, 6, 7)
    assert t.nodes_in("national") == (4,)
    with pytest.raises(KeyError):
        t.nodes_in("zone:nowhere")


def test_link_profiles_zone_pairs_override_tier_pairs_and_zones_are_unshaped_inside():
    t = parsed()
    assert t.profile(0, 1) is None                            # same zone
    assert t.profile(5, 0) == LinkProfile(delay_ms=20, jitter_ms=2)
    assert t.profile(0, 5) == LinkProfile(delay_ms=20, jitter_ms=2)   # each end shapes its egress
    assert t.profile(6, 2) == LinkProfile(delay_ms=60, loss=0.01)     # the zone pair wins
    assert t.profile(6, 0) == LinkProfile(delay_ms=20, jitter_ms=2)   # region-2 <-> province-a: tiers
    assert t.profile(4, 1) == LinkProfile(delay_ms=40, rate="10mbit")
    assert t.profile(0, 2) is None                            # root <-> root: no link given
    assert t.profile(5, 6) is None                            # region <-> region: no link given
    assert LinkProfile(delay_ms=20, jitter_ms=2).describe() == "20 ms ± 2"


def test_the_header_round_trips():
    t = parsed()
    again = Topology.from_header(t.header())
    assert again.zones == t.zones and again.links == t.links
    assert again.profile(6, 2) == t.profile(6, 2)
    assert t.header()["roles"][4] == "management"


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda d: d["zones"][1].update(name="province-a"), "topology.zones[1].name", ["used twice"]),
    (lambda d: d["zones"][1].update(name="root"), "topology.zones[1].name", ["not a tier name"]),
    (lambda d: d["zones"][3].update(parent="region-2"), "topology.zones[3].parent", ["listed before"]),
    (lambda d: [z.update(tier="application") for z in d["zones"]], "topology.zones", ["tier 'root'"]),
    (lambda d: d["links"][0].update(between=["application", "mars"]), "topology.links[0].between[1]",
     ["a tier", "'mars'"]),
    (lambda d: d["links"][0].update(between=["application", "province-a"]), "topology.links[0].between",
     ["not one of each"]),
    (lambda d: d["links"][0].update(between=["region-1", "region-1"]), "topology.links[0].between",
     ["two different zones"]),
    (lambda d: d["links"][0].update(jitter_ms=30), "topology.links[0].jitter_ms", ["at most delay_ms"]),
    (lambda d: d["links"].append({"between": ["root", "application"], "delay_ms": 5}),
     "topology.links[3].between", ["links[0] names it already"]),
    (lambda d: d["links"].append({"between": ["root", "root"]}), "topology.links[3]", ["at least one of"]),
])
def test_a_wrong_topology_is_one_clear_error(change, field, words):
    doc = copy.deepcopy(THREE_TIER)
    change(doc)
    with pytest.raises(InputError) as info:
        topology.parse(doc, "s.yaml")
    assert info.value.field == field, str(info.value)
    for word in words:
        assert word in str(info.value), str(info.value)


# ------------------------------------------------------------------ through the suite


def topology_suite(tmp_path: Path, inputs, roles: dict[str, str] | None = ROLES, **changes: Any) -> Path:
    doc = inputs.suite()
    del doc["nodes"]
    doc["topology"] = copy.deepcopy(THREE_TIER)
    doc.update(changes)
    pack = inputs.pack()
    pack["consensus"]["max_nodes"] = 16
    if roles is not None:
        pack["roles"] = roles
    return inputs.make_suite(tmp_path, doc, pack)


def test_a_topology_suite_sizes_the_network_loads_the_regions_and_commits_on_the_root_tier(
        tmp_path, inputs):
    s = suite.load(topology_suite(tmp_path, inputs))
    assert s.nodes == 8
    assert s.load_nodes == (5, 6, 7)                 # the clients' load goes to the application tier
    assert s.commit_nodes == (0, 1, 2, 3)            # committed when the root nodes hold it
    assert s.topology is not None and s.topology.count == 8


def test_without_a_topology_every_node_commits(tmp_path, inputs):
    s = suite.load(inputs.make_suite(tmp_path))
    assert s.topology is None and s.commit_nodes == (0, 1, 2, 3)


def test_a_pack_without_roles_is_refused_naming_the_pack_and_the_roles(tmp_path, inputs):
    path = topology_suite(tmp_path, inputs, roles=None)
    with pytest.raises(InputError) as info:
        suite.load(path)
    text = str(info.value)
    assert info.value.exit_code == EXIT_INVALID_INPUT and info.value.field == "topology"
    assert "chain 'demo' declares no node roles" in text
    assert "management, root, application" in text


def test_a_pack_missing_one_role_is_refused(tmp_path, inputs):
    path = topology_suite(tmp_path, inputs, roles={"root": "validator", "application": "full node"})
    with pytest.raises(InputError) as info:
        suite.load(path)
    assert "declares only application, root" in str(info.value)
    assert "needs management" in str(info.value)


def test_nodes_beside_a_topology_must_agree(tmp_path, inputs):
    with pytest.raises(InputError) as info:
        suite.load(topology_suite(tmp_path, inputs, nodes=5))
    assert info.value.field == "nodes" and "(8)" in str(info.value)
    assert suite.load(topology_suite(tmp_path / "b", inputs, nodes=8)).nodes == 8


def test_a_zone_cut_targets_the_zone_and_its_regions(tmp_path, inputs):
    faults = [{"id": "cut", "action": "partition", "target": "zone:province-b", "at": 5, "duration": 5},
              {"id": "nat", "action": "partition", "target": "tier:management", "at": 12, "duration": 3}]
    s = suite.load(topology_suite(tmp_path, inputs, faults=faults))
    cut, national = s.faults
    assert cut.nodes == (2, 3, 6, 7) and cut.groups == ((0, 1, 4, 5), (2, 3, 6, 7))
    assert national.nodes == (4,)


def test_zone_targets_need_a_topology_and_a_known_zone(tmp_path, inputs):
    rng = random.Random(1)
    with pytest.raises(InputError) as info:
        schedule.resolve_target("zone:region-1", 4, 1, rng, "s.yaml", "faults[0].target")
    assert "needs the suite's topology" in str(info.value)
    with pytest.raises(InputError) as info:
        schedule.resolve_target("zone:mars", 8, 1, rng, "s.yaml", "faults[0].target", parsed())
    assert "province-a" in str(info.value) and "'zone:mars'" in str(info.value)


def test_the_fault_model_counts_the_root_tier(tmp_path, inputs):
    # 4 root validators tolerate f = 1 whatever the other tiers hold: `f+1` is 2 root nodes
    faults = [{"action": "kill", "target": "f+1", "at": 5, "duration": 5},
              {"action": "kill", "target": "one", "at": 12, "duration": 2}]
    s = suite.load(topology_suite(tmp_path, inputs, faults=faults))
    assert s.faults[0].nodes == (2, 3)
    assert s.faults[1].nodes == (7,)    # `one` is any node: the highest-numbered


def test_the_structure_checkers_run_by_default_for_the_tiers_there_are(tmp_path, inputs):
    full = suite.load(topology_suite(tmp_path / "full", inputs)).checker_config()
    assert {"supervision", "freshness"} <= set(full)
    # no management tier: nothing to supervise; no application tier: no region to be fresh
    roots_only = {"zones": [{"name": "east", "tier": "root", "nodes": 2},
                            {"name": "west", "tier": "root", "nodes": 2}],
                  "links": [{"between": ["east", "west"], "delay_ms": 30}]}
    config = suite.load(topology_suite(tmp_path / "roots", inputs, topology=roots_only)).checker_config()
    assert "supervision" not in config and "freshness" not in config
    with_regions = copy.deepcopy(THREE_TIER)
    with_regions["zones"] = [z for z in with_regions["zones"] if z["tier"] != "management"]
    config = suite.load(topology_suite(tmp_path / "regions", inputs, topology=with_regions)).checker_config()
    assert "freshness" in config and "supervision" not in config


def test_the_structure_metrics_reach_the_catalogues():
    from harness.standards import metrics
    got = {"topology": {"supervision_completeness": 1.0, "supervision_lag_p99_ms": 79.5,
                        "application_lag_p99_ms": 2486.0}}
    assert metrics.read("supervision_completeness", got)[0] == 1.0
    assert metrics.read("application_lag_p99_ms", got)[0] == 2486.0
    value, why = metrics.read("supervision_lag_p99_ms", {})   # a run without a topology
    assert value is None and why


def test_the_topology_catalogue_loads_and_cites_the_sovereign_suite():
    from harness.standards import catalogue
    loaded = catalogue.load(Path(__file__).resolve().parents[2] / "standards" / "topology.yaml")
    requirements = loaded.document["requirements"]
    assert [r["id"] for r in requirements] == ["TOP-SUPERVISION", "TOP-FRESHNESS", "TOP-CROSS-ZONE-COMMIT",
                                               "TOP-ZONE-CUT-RECOVERY"]
    assert {c for r in requirements for c in r["method"]["cases"]} == {"topology-sovereign-3tier"}
