"""A topology on a chain pack without the roles it uses is refused: `bctest validate` and
`bctest run` exit 2 naming the suite, the field, the pack and the roles, before any node
starts. Litecoin and anvil declare no roles (the three tiers are not applicable to them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness import chainpack

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = {"zones": [{"name": "province-a", "tier": "root", "nodes": 2},
                      {"name": "national", "tier": "management", "nodes": 1},
                      {"name": "region-1", "tier": "application", "nodes": 1,
                       "parent": "province-a"}]}


def bctest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def topology_suite(folder: Path, chain: str, topology: dict = TOPOLOGY) -> Path:
    path = folder / "topo.yaml"
    path.write_text(yaml.safe_dump({"name": "topo", "chain": chain, "topology": topology,
                                    "load": {"rate": 5, "duration": 5}}))
    return path


@pytest.mark.parametrize("chain", ["litecoin", "anvil"])
def test_the_reference_packs_without_roles_declare_none(chain):
    assert chainpack.load(ROOT / "chains" / chain).roles == {}


@pytest.mark.parametrize("chain", ["cometbft", "geth-clique"])
def test_the_reference_packs_with_roles_declare_all_three(chain):
    assert sorted(chainpack.load(ROOT / "chains" / chain).roles) == ["application", "management", "root"]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("chain", ["litecoin", "anvil"])
def test_a_topology_on_a_pack_without_roles_exits_2_naming_pack_and_roles(tmp_path, chain, command):
    path = topology_suite(tmp_path, chain)
    args = [command, str(path)] + (["--out", str(tmp_path / "run")] if command == "run" else [])
    done = bctest(*args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"{path} at topology" in done.stderr
    assert f"chain '{chain}' declares no node roles" in done.stderr
    assert "management, root, application" in done.stderr
    assert str(ROOT / "chains" / chain / "chain.yaml") in done.stderr   # where roles would go
    assert not (tmp_path / "run").exists()   # refused before anything ran


def test_a_pack_declaring_some_roles_is_refused_only_for_the_others(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    doc = yaml.safe_load((ROOT / "chains" / "cometbft" / "chain.yaml").read_text())
    doc["roles"] = {"root": "validator"}
    doc["image"] = {"tag": "bctest-vendor/partial:1"}
    (pack / "chain.yaml").write_text(yaml.safe_dump(doc))
    done = bctest("validate", str(topology_suite(tmp_path, str(pack))))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "declares only root" in done.stderr and "needs management, application" in done.stderr
    only_root = {"zones": [{"name": "province-a", "tier": "root", "nodes": 2}]}
    done = bctest("validate", str(topology_suite(tmp_path, str(pack), only_root)))
    assert done.returncode == 0, done.stdout + done.stderr
