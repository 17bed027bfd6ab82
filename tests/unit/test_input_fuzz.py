"""Fuzzing the input layer: whatever YAML document a user writes, `suite.load` and
`chainpack.load` either succeed or raise InputError (exit code 2), never a traceback.

Three kinds of documents: arbitrary JSON-like values; schema-shaped documents whose
fields are mostly valid (so the loader gets past validation into the code after it);
and valid documents with a few keys replaced, deleted or added.

Values include non-string keys, NaN/inf, NUL bytes, names longer than NAME_MAX and
numbers beyond 2^53 and beyond float range (10**400).
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

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
# Values at the schema's edges (bounds, enums, paths) are drawn as often as random ones.
edges = st.sampled_from([0, 1, -1, 2, 3, 4, 8, 9, 0.5, 1.5, 64, 65, 3600, 86400, 1_000_000,
                         1_000_001, 65535, 65536, 2**63, 1e308, -0.0, float("nan"), float("inf"),
                         "", "0", "pack", "demo", "bft", "pow", "single", "transfer", ">=",
                         "throughput", "latency_p99", "measure", "rpc", "tcp", "Dockerfile", ".",
                         "..", "/", "chain.yaml", "pack/chain.yaml", "512m", "CHOWN",
                         2**53 + 1, 10**400, "a" * 300, "pa\x00ck", "2020-13-45"])
scalars = st.one_of(edges, st.none(), st.booleans(),
                    st.integers(min_value=-(2**63), max_value=2**63),
                    st.floats(allow_nan=True, allow_infinity=True), text)
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(SUITE_KEYS + LOAD_KEYS + PACK_KEYS + ["kind", "share", "tag", "build",
                                                               "tarball", "context", "rpc"])
        | text | st.integers(-3, 3) | st.none() | st.booleans(),  # YAML keys need not be strings
        inner, max_size=5),
    max_leaves=6,
)


def field(*valid: Any) -> st.SearchStrategy:
    """A field value: mostly one the schema accepts (so most of a document is valid and the
    loader gets past validation), else an edge or an arbitrary value."""
    if not valid:
        return st.one_of(edges, json_like)
    good = st.sampled_from(valid)
    return st.integers(0, 19).flatmap(lambda n: good if n < 17 else edges if n < 19 else json_like)


def some(**fields: st.SearchStrategy) -> st.SearchStrategy:
    """A mapping whose keys are each present or absent."""
    return st.fixed_dictionaries({}, optional=fields)


suite_shaped = st.fixed_dictionaries(
    {"name": field("s", "suite-1"), "chain": field("pack", "pack/chain.yaml"),
     "load": st.fixed_dictionaries(
         {"rate": field(1, 100.5), "duration": field(1, 60)},
         optional={"warmup": field(0, 5), "settle": field(0, 30), "workers": field(1, 4),
                   "max_in_flight": field(1, 100), "submit_timeout": field(0.5, 10)})},
    optional={
        "description": field("d"), "nodes": field(1, 4, 8), "seed": field(0, 1),
        "ready_timeout": field(1, 30.5),
        "params": st.dictionaries(st.sampled_from(["block_time", "quiet", "other"]) | text,
                                  field(1, True, "x"), max_size=3),
        "workload": some(kind=field("transfer"), accounts=field(1, 256)),
        "commit": some(share=field(0.5, 1), poll_interval=field(0.1), subscribe=field(True)),
        "checks": st.lists(st.fixed_dictionaries(
            {"metric": field("throughput", "latency_p99", "failed"), "op": field(">=", "<", "=="),
             "value": field(0, 1.5)},
            optional={"id": field("c1"), "phase": field("warmup", "measure")}), max_size=3),
    })

pack_shaped = st.fixed_dictionaries(
    {"name": field("demo", "a.b-c_1"), "version": field("1.0"), "family": field("evm"),
     "consensus": st.fixed_dictionaries(
         {"kind": field("single", "bft", "cft", "pow")},
         optional={"commit_share": field(0.5, 1), "min_nodes": field(1, 4),
                   "max_nodes": field(1, 8)}),
     "image": st.fixed_dictionaries(
         {"tag": field("demo:1")},
         optional={"build": some(dockerfile=field("Dockerfile"), context=field(".", ".."),
                                 args=st.dictionaries(text, field("v"), max_size=2),
                                 artifacts=st.lists(st.fixed_dictionaries(
                                     {"dest": field("a.tgz")},
                                     optional={"npm": field("x@1"), "go": field("m@v1"),
                                               "env": field({"A": "b"}),
                                               "ldflags": field("-s")}), max_size=2)),
                   "tarball": field("image.tar", "Dockerfile")}),
     "ports": st.fixed_dictionaries({"rpc": field(8545)}, optional={"p2p": field(30303),
                                                                       "ws": field(8546)})},
    optional={
        "description": field("d"), "chain_id": field(1, 1337),
        "readiness": some(probe=field("adapter", "tcp"), timeout=field(1, 60.5)),
        "resources": some(cpus=field(0.5, 2), memory=field("512m", "2g"), pids=field(16, 256)),
        "capabilities": st.lists(field("CHOWN", "SETUID"), max_size=3),
        "command": st.lists(field("run"), max_size=3),
        "params": st.dictionaries(text, field(1, True, "x"), max_size=3),
        "options": json_like,
    })


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
    for _ in range(data.draw(st.sampled_from([1, 1, 1, 2, 3]), label="mutations")):
        paths = _paths(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]), label="action")
        if action == "replace":
            parent[path[-1]] = data.draw(field(), label="value")
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(text, label="new key")] = data.draw(field(), label="new value")
    return doc


def _write(path: Path, doc: Any) -> None:
    path.write_text(yaml.dump(doc, Dumper=DUMPER, sort_keys=False), encoding="utf-8")


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
@given(doc=suite_shaped)
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
@given(doc=pack_shaped)
def test_chain_pack_shaped_document_loads_or_raises_input_error(doc, root):
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
