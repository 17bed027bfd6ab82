"""Shared builders for unit tests: valid chain pack / suite documents written into tmp folders.

The builders are exposed through the session-scoped `inputs` fixture so hypothesis tests
(which must not use function-scoped fixtures) can use them too.
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

VALID_PACK: dict[str, Any] = {
    "name": "demo",
    "version": "1.0",
    "family": "evm",
    "consensus": {"kind": "bft", "min_nodes": 1, "max_nodes": 8},
    "chain_id": 4242,
    "image": {"tag": "bctest-vendor/demo:1.0", "build": {"dockerfile": "Dockerfile"}},
    "ports": {"rpc": 8545},
    "readiness": {"probe": "adapter", "timeout": 30},
    "params": {"block_time": 1, "quiet": True},
}

VALID_SUITE: dict[str, Any] = {
    "name": "unit-suite",
    "chain": "pack",
    "nodes": 4,
    "seed": 7,
    "load": {"rate": 50, "duration": 20, "warmup": 2, "settle": 5},
    "workload": {"kind": "transfer", "accounts": 16},
    "params": {"block_time": 2},
    "commit": {"share": 1.0, "poll_interval": 0.2},
    "checks": [{"id": "tps", "metric": "throughput", "op": ">=", "value": 40}],
}


def write_yaml(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def make_pack(folder: Path, doc: Any = None, dockerfile: bool = True) -> Path:
    """A chain pack folder: chain.yaml (+ Dockerfile). Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    write_yaml(folder / "chain.yaml", copy.deepcopy(VALID_PACK) if doc is None else doc)
    if dockerfile:
        (folder / "Dockerfile").write_text("FROM scratch\n")
    return folder


def make_suite(folder: Path, doc: Any = None, pack_doc: Any = None) -> Path:
    """folder/pack/ (a valid chain pack unless pack_doc says otherwise) and folder/suite.yaml."""
    make_pack(folder / "pack", pack_doc)
    return write_yaml(folder / "suite.yaml", copy.deepcopy(VALID_SUITE) if doc is None else doc)


@pytest.fixture(scope="session")
def inputs() -> SimpleNamespace:
    return SimpleNamespace(
        pack=lambda: copy.deepcopy(VALID_PACK),
        suite=lambda: copy.deepcopy(VALID_SUITE),
        write_yaml=write_yaml,
        make_pack=make_pack,
        make_suite=make_suite,
    )
