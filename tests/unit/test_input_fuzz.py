"""Fuzzing the input layer: whatever YAML document a user writes, `suite.load` and
`chainpack.load` either succeed or raise InputError (exit code 2) — never a traceback.

Strategies stay inside the inputs whose crashes are already pinned as strict xfails in
test_suite_validation.py (integers beyond float range, NUL bytes and names longer than
NAME_MAX in paths, non-string keys, impossible dates), so these tests stay green and
keep looking for *new* crash classes. Widen them when those bugs are fixed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import chainpack, suite
from harness.errors import InputError

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
# Full suite loads parse two YAML files with pure-Python PyYAML (~10 ms): fewer examples.
FUZZ_FULL_LOAD = settings(FUZZ, max_examples=100)

SUITE_KEYS = ["name", "description", "chain", "nodes", "seed", "ready_timeout", "params",
              "workload", "load", "commit", "checks"]
LOAD_KEYS = ["rate", "duration", "warmup", "settle", "workers", "max_in_flight", "submit_timeout"]
PACK_KEYS = ["name", "version", "description", "family", "consensus", "chain_id", "image", "ports",
             "readiness", "resources", "capabilities", "command", "params", "options"]

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=30)
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63)
           | st.floats(allow_nan=True, allow_infinity=True) | text
           | st.sampled_from(["pack", "demo", "bft", "pow", "transfer", ">=", "throughput", "rpc",
                              "Dockerfile", ".", "..", "chain.yaml", "pack/chain.yaml"]))
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(SUITE_KEYS + LOAD_KEYS + PACK_KEYS + ["kind", "share", "tag", "build",
                                                               "tarball", "context", "rpc"]) | text,
        inner, max_size=5),
    max_leaves=6,
)


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path inside a document (dict keys and list indexes)."""
    out = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.append(prefix + (key,))
            out += _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out.append(prefix + (i,))
            out += _paths(value, prefix + (i,))
    return out


def _mutate(doc: Any, data: st.DataObject) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        paths = _paths(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]), label="action")
        if action == "replace":
            parent[path[-1]] = data.draw(json_like, label="value")
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(text, label="new key")] = data.draw(json_like, label="new value")
    return doc


def _write(path: Path, doc: Any) -> None:
    path.write_text(yaml.dump(doc, Dumper=DUMPER), encoding="utf-8")


@pytest.fixture(scope="module")
def root(tmp_path_factory, inputs) -> Path:
    """One folder per module: pack/ (a valid chain pack), the fuzzed suite.yaml next to it
    and fuzzed/ whose chain.yaml each chain pack example overwrites."""
    folder = tmp_path_factory.mktemp("fuzz")
    inputs.make_pack(folder / "pack")
    inputs.make_pack(folder / "fuzzed")
    return folder


def _load_suite(doc: Any, root: Path) -> None:
    path = root / "suite.yaml"
    _write(path, doc)
    try:
        result = suite.load(path)
    except InputError as exc:
        assert exc.file and exc.expected
        return
    assert isinstance(result, suite.Suite)


def _load_pack(doc: Any, root: Path) -> None:
    folder = root / "fuzzed"
    _write(folder / "chain.yaml", doc)
    try:
        result = chainpack.load(folder)
    except InputError as exc:
        assert exc.file == str(folder / "chain.yaml") and exc.expected
        return
    assert isinstance(result, chainpack.ChainPack)


@FUZZ
@given(doc=json_like)
def test_arbitrary_document_as_suite_loads_or_raises_input_error(doc, root):
    _load_suite(doc, root)


@FUZZ_FULL_LOAD
@given(doc=st.fixed_dictionaries({"name": st.just("s"), "chain": st.just("pack"),
                                  "load": st.dictionaries(st.sampled_from(LOAD_KEYS), json_like)},
                                 optional={key: json_like for key in SUITE_KEYS
                                           if key not in ("name", "chain", "load")}))
def test_suite_shaped_document_loads_or_raises_input_error(doc, root):
    _load_suite(doc, root)


@FUZZ_FULL_LOAD
@given(data=st.data())
def test_mutated_valid_suite_loads_or_raises_input_error(data, inputs, root):
    _load_suite(_mutate(inputs.suite(), data), root)


@FUZZ
@given(doc=json_like)
def test_arbitrary_document_as_chain_pack_loads_or_raises_input_error(doc, root):
    _load_pack(doc, root)


@FUZZ
@given(data=st.data())
def test_mutated_valid_chain_pack_loads_or_raises_input_error(data, inputs, root):
    _load_pack(_mutate(inputs.pack(), data), root)


@FUZZ
@given(doc=st.one_of(st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                     st.text(alphabet="abc:{}[]-,'\"\n #&*!|>.0123456789", max_size=120)))
def test_arbitrary_text_as_suite_loads_or_raises_input_error(doc, root):
    (root / "suite.yaml").write_text(doc, encoding="utf-8")
    try:
        suite.load(root / "suite.yaml")
    except InputError:
        pass
