"""Suite and chain pack loading: valid inputs load into the model, invalid ones raise one
InputError naming the file, the field path inside it and what was expected (exit code 2)."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

from harness import chainpack, suite
from harness.errors import EXIT_INVALID_INPUT, InputError
from harness.suite import Check


def _raises_input_error(path: Path, field: str, *expected_words: str) -> InputError:
    with pytest.raises(InputError) as info:
        suite.load(path)
    exc = info.value
    text = str(exc)
    assert exc.exit_code == EXIT_INVALID_INPUT
    assert exc.file == str(path), text
    assert exc.field == field, text
    assert str(path) in text
    assert f"at {field}" in text
    for word in expected_words:
        assert word in text, f"{word!r} not in {text!r}"
    return exc


# ---------------------------------------------------------------- valid inputs


def test_valid_suite_loads_with_pack_resolved_relative_to_suite(tmp_path, inputs):
    path = inputs.make_suite(tmp_path)
    s = suite.load(path)
    assert s.name == "unit-suite"
    assert s.path == path.resolve()
    assert s.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert s.chain.name == "demo"
    assert s.chain.folder == (tmp_path / "pack").resolve()
    assert s.chain.chain_id == 4242
    assert s.nodes == 4
    assert s.seed == 7
    assert (s.load.rate, s.load.duration, s.load.warmup, s.load.settle) == (50.0, 20.0, 2.0, 5.0)
    assert s.load.total_seconds == 22.0
    assert s.accounts == 16
    assert s.workload == "transfer"
    # suite params override pack defaults; pack defaults not overridden stay
    assert s.params == {"block_time": 2, "quiet": True}
    assert s.commit_share == 1.0
    assert s.poll_interval == 0.2
    assert s.ready_timeout == 30.0  # from the pack's readiness.timeout
    assert s.checks == [Check(id="tps", metric="throughput", op=">=", value=40.0, phase="measure")]


def test_minimal_suite_gets_documented_defaults(tmp_path, inputs):
    pack = inputs.pack()
    pack["consensus"] = {"kind": "pow"}
    del pack["readiness"]
    doc = {"name": "mini", "chain": "pack", "load": {"rate": 3, "duration": 4},
           "checks": [{"metric": "latency_p99", "op": "<", "value": 500}]}
    s = suite.load(inputs.make_suite(tmp_path, doc, pack))
    assert s.nodes == 1
    assert s.seed == 1
    assert s.load.warmup == 5.0 and s.load.settle == 30.0
    assert s.load.workers == 1 and s.load.max_in_flight == 4096 and s.load.submit_timeout == 10.0
    assert s.accounts == 256 and s.workload is None  # the adapter decides
    assert s.commit_share == 0.5  # pow default share from the pack
    assert s.poll_interval == 0.1 and s.subscribe is True
    assert s.ready_timeout == 60.0
    assert s.params == {"block_time": 1, "quiet": True}
    assert s.checks[0].id == "latency_p99 < 500"
    assert s.checks[0].phase == "measure"


def test_suite_commit_share_overrides_pack_default(tmp_path, inputs):
    doc = inputs.suite()
    doc["commit"] = {"share": 0.75}
    assert suite.load(inputs.make_suite(tmp_path, doc)).commit_share == 0.75


def test_suite_ready_timeout_overrides_pack_readiness_timeout(tmp_path, inputs):
    doc = inputs.suite()
    doc["ready_timeout"] = 120
    assert suite.load(inputs.make_suite(tmp_path, doc)).ready_timeout == 120.0


def test_chain_reference_may_point_at_chain_yaml_itself(tmp_path, inputs):
    doc = inputs.suite()
    doc["chain"] = "pack/chain.yaml"
    assert suite.load(inputs.make_suite(tmp_path, doc)).chain.name == "demo"


def test_chain_pack_loads_fields(tmp_path, inputs):
    pack = chainpack.load(inputs.make_pack(tmp_path / "p"))
    assert pack.name == "demo" and pack.version == "1.0" and pack.family == "evm"
    assert pack.consensus == "bft"
    assert pack.image_tag == "bctest-vendor/demo:1.0"
    assert pack.build == {"dockerfile": "Dockerfile"}
    assert pack.tarball is None
    assert pack.ports == {"rpc": 8545}
    assert pack.readiness_probe == "adapter" and pack.readiness_timeout == 30.0
    assert (pack.min_nodes, pack.max_nodes) == (1, 8)
    assert pack.commit_share == 1.0
    assert pack.manifest_hash() == hashlib.sha256((tmp_path / "p" / "chain.yaml").read_bytes()).hexdigest()


@pytest.mark.parametrize("kind, max_nodes, share", [
    ("single", 1, 1.0), ("bft", None, 1.0), ("cft", None, 1.0), ("pow", None, 0.5)])
def test_chain_pack_defaults_depend_on_consensus_kind(tmp_path, inputs, kind, max_nodes, share):
    doc = inputs.pack()
    doc["consensus"] = {"kind": kind}
    pack = chainpack.load(inputs.make_pack(tmp_path / "p", doc))
    assert pack.max_nodes == max_nodes
    assert pack.min_nodes == 1
    assert pack.commit_share == share
    assert pack.chain_id == 4242


@pytest.mark.parametrize("kind, nodes, f", [
    ("bft", 4, 1), ("bft", 3, 0), ("bft", 7, 2), ("bft", 16, 5),
    ("cft", 3, 1), ("cft", 4, 1), ("cft", 5, 2), ("pow", 10, 0), ("single", 1, 0)])
def test_fault_tolerance_follows_consensus_fault_model(tmp_path, inputs, kind, nodes, f):
    doc = inputs.pack()
    doc["consensus"] = {"kind": kind}
    assert chainpack.load(inputs.make_pack(tmp_path / "p", doc)).fault_tolerance(nodes) == f


def test_chain_pack_tarball_image_resolves_relative_to_pack(tmp_path, inputs):
    doc = inputs.pack()
    doc["image"] = {"tag": "bctest-vendor/demo:1", "tarball": "image.tar"}
    folder = inputs.make_pack(tmp_path / "p", doc, dockerfile=False)
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["bctest-vendor/demo:1"], "Layers": []}])
    with tarfile.open(folder / "image.tar", "w") as tar:   # the naming file of a `docker save`
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest.encode()))
    pack = chainpack.load(folder)
    assert pack.tarball == (folder / "image.tar").resolve()
    assert pack.build is None


# ---------------------------------------------------------------- schema errors in the suite


def _set(doc, dotted, value):
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    if isinstance(doc, list):
        doc[int(last)] = value
    else:
        doc[last] = value


def _del(doc, dotted):
    *parents, last = dotted.split(".")
    for key in parents:
        doc = doc[key]
    del doc[last]


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: _set(d, "load.rate", "fast"), "load.rate", ["expected number", "'fast'"]),
    (lambda d: _set(d, "nodes", "four"), "nodes", ["expected integer"]),
    (lambda d: _set(d, "load", [1, 2]), "load", ["expected object"]),
    (lambda d: _del(d, "load.duration"), "load.duration", ["required field is missing"]),
    (lambda d: _del(d, "name"), "name", ["required field is missing"]),
    (lambda d: _set(d, "colour", "red"), "colour", ["unknown key 'colour'", "allowed:", "load"]),
    (lambda d: _set(d, "load.burst", 3), "load.burst", ["unknown key 'burst'", "rate"]),
    (lambda d: _set(d, "load.rate", -5), "load.rate", ["> 0", "-5"]),
    (lambda d: _set(d, "load.rate", 0), "load.rate", ["> 0"]),
    (lambda d: _set(d, "load.rate", 2_000_000), "load.rate", ["<= 1000000"]),
    (lambda d: _set(d, "nodes", 0), "nodes", [">= 1"]),
    (lambda d: _set(d, "commit.share", 1.5), "commit.share", ["<= 1"]),
    (lambda d: _set(d, "checks.0.op", "=>"), "checks[0].op", ["expected one of", "'=>'"]),
    (lambda d: _set(d, "checks.0.metric", "tps"), "checks[0].metric", ["expected one of"]),
    (lambda d: _set(d, "workload.kind", "nosuch"), "workload.kind", ["one of transfer", "nosuch"]),
    (lambda d: _set(d, "params.block_time", [1]), "params.block_time", ["expected"]),
])
def test_suite_schema_error_names_file_field_and_expectation(tmp_path, inputs, mutate, field, words):
    doc = inputs.suite()
    mutate(doc)
    _raises_input_error(inputs.make_suite(tmp_path, doc), field, *words)


def test_suite_that_is_not_a_mapping_is_rejected_at_top_level(tmp_path, inputs):
    path = inputs.make_suite(tmp_path, ["name", "chain"])
    _raises_input_error(path, "(top level)", "expected object")


def test_empty_suite_file_is_rejected_at_top_level(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text("")
    _raises_input_error(path, "(top level)", "expected object")


# ---------------------------------------------------------------- semantic errors (pack vs suite)


def test_missing_chain_pack_blames_the_suite_chain_field(tmp_path, inputs, monkeypatch):
    monkeypatch.setenv("BCTEST_HOME", str(tmp_path / "home"))
    doc = inputs.suite()
    doc["chain"] = "no-such-pack"
    _raises_input_error(inputs.make_suite(tmp_path, doc), "chain", "'no-such-pack' not found",
                        "chain.yaml")


def test_chain_pack_found_by_name_under_bctest_home(tmp_path, inputs, monkeypatch):
    home = tmp_path / "home"
    inputs.make_pack(home / "chains" / "demo")
    monkeypatch.setenv("BCTEST_HOME", str(home))
    doc = inputs.suite()
    doc["chain"] = "demo"
    loaded = suite.load(inputs.make_suite(tmp_path / "s", doc))
    assert loaded.chain.folder == (home / "chains" / "demo").resolve()


@pytest.mark.parametrize("nodes", [9, 64])
def test_nodes_above_pack_maximum_rejected(tmp_path, inputs, nodes):
    doc = inputs.suite()
    doc["nodes"] = nodes
    _raises_input_error(inputs.make_suite(tmp_path, doc), "nodes", "1..8", f"got {nodes}")


def test_nodes_below_pack_minimum_rejected(tmp_path, inputs):
    pack = inputs.pack()
    pack["consensus"] = {"kind": "bft", "min_nodes": 4}
    doc = inputs.suite()
    doc["nodes"] = 3
    _raises_input_error(inputs.make_suite(tmp_path, doc, pack), "nodes", "4..any", "got 3")


def test_single_node_chain_rejects_two_nodes(tmp_path, inputs):
    pack = inputs.pack()
    pack["consensus"] = {"kind": "single"}
    doc = inputs.suite()
    doc["nodes"] = 2
    _raises_input_error(inputs.make_suite(tmp_path, doc, pack), "nodes", "1..1")


def test_unknown_param_rejected_naming_known_params(tmp_path, inputs):
    doc = inputs.suite()
    doc["params"] = {"block_time": 1, "gas_limit": 5}
    _raises_input_error(inputs.make_suite(tmp_path, doc), "params.gas_limit",
                        "unknown parameter", "block_time", "quiet")


def test_invalid_pack_referenced_by_suite_blames_the_pack_manifest(tmp_path, inputs):
    pack = inputs.pack()
    del pack["ports"]
    path = inputs.make_suite(tmp_path, None, pack)
    with pytest.raises(InputError) as info:
        suite.load(path)
    manifest = str(tmp_path / "pack" / "chain.yaml")
    assert info.value.file == manifest
    assert info.value.field == "ports"
    assert manifest in str(info.value) and "required" in str(info.value)


# ---------------------------------------------------------------- chain pack errors


def _pack_error(folder: Path, field: str, *words: str) -> None:
    with pytest.raises(InputError) as info:
        chainpack.load(folder)
    text = str(info.value)
    assert info.value.file == str(folder / "chain.yaml"), text
    assert info.value.field == field, text
    assert f"at {field}" in text
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: _set(d, "consensus.kind", "raft"), "consensus.kind", ["expected one of", "bft"]),
    (lambda d: _set(d, "ports.rpc", 70000), "ports.rpc", ["<= 65535"]),
    (lambda d: _set(d, "ports", {"p2p": 30303}), "ports.rpc", ["required"]),
    (lambda d: _set(d, "name", "Demo Chain"), "name", ["lower-case"]),
    (lambda d: _set(d, "vendor", "acme"), "vendor", ["unknown key 'vendor'"]),
    (lambda d: _set(d, "consensus.commit_share", 0), "consensus.commit_share", ["> 0"]),
    (lambda d: _set(d, "chain_id", 0), "chain_id", [">= 1"]),
    (lambda d: _set(d, "resources", {"memory": "lots"}), "resources.memory", ["does not match"]),
    (lambda d: _del(d, "image.tag"), "image.tag", ["required"]),
])
def test_chain_pack_schema_error_names_manifest_field_and_expectation(tmp_path, inputs, mutate, field, words):
    doc = inputs.pack()
    mutate(doc)
    _pack_error(inputs.make_pack(tmp_path / "p", doc), field, *words)


def test_chain_pack_missing_dockerfile_rejected(tmp_path, inputs):
    folder = inputs.make_pack(tmp_path / "p", dockerfile=False)
    _pack_error(folder, "image.build.dockerfile", "does not exist", "Dockerfile")


def test_chain_pack_missing_build_context_rejected(tmp_path, inputs):
    doc = inputs.pack()
    doc["image"]["build"]["context"] = "ctx"
    _pack_error(inputs.make_pack(tmp_path / "p", doc), "image.build.context", "does not exist")


def test_chain_pack_missing_tarball_rejected(tmp_path, inputs):
    doc = inputs.pack()
    doc["image"] = {"tag": "bctest-vendor/demo:1", "tarball": "image.tar"}
    _pack_error(inputs.make_pack(tmp_path / "p", doc), "image.tarball", "image.tar", "does not exist")


def test_chain_pack_folder_without_manifest_rejected(tmp_path):
    (tmp_path / "p").mkdir()
    with pytest.raises(InputError) as info:
        chainpack.load(tmp_path / "p")
    assert info.value.file == str(tmp_path / "p" / "chain.yaml")
    assert "does not exist" in str(info.value)


# ---------------------------------------------------------------- YAML / file level errors


@pytest.mark.parametrize("text, where", [
    ("name: s\nchain: pack\nload: rate: 10\n", "line 3, column 11"),
    ("name: s\nchain: pack\nload:\n  rate: 10\n duration: 5\n", "line 5, column 2"),
    ("name: s\n\tchain: pack\n", "line 2, column 1"),
    ("name: [\n", "line 2, column 1"),
])
def test_invalid_yaml_reports_line_and_column(tmp_path, text, where):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        suite.load(path)
    assert info.value.file == str(path)
    assert info.value.field == where
    assert str(path) in str(info.value) and "not valid YAML" in str(info.value)


def test_missing_suite_file_rejected(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        suite.load(tmp_path / "absent.yaml")


def test_directory_instead_of_suite_file_rejected(tmp_path):
    with pytest.raises(InputError, match="expected a file"):
        suite.load(tmp_path)


def test_non_utf8_suite_file_rejected(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(InputError, match="UTF-8"):
        suite.load(path)


# ---------------------------------------------------------------- hostile or odd inputs
# Each of these used to escape as a traceback (found by this file and test_input_fuzz.py).

SUITE_HEAD = "name: s\nchain: pack\n"
BIG = "1" + "0" * 400  # an integer YAML literal too large for float()


def _suite_text(tmp_path, inputs, text: str) -> Path:
    inputs.make_pack(tmp_path / "pack")
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def _suite_error(path: Path) -> InputError:
    with pytest.raises(InputError) as info:
        suite.load(path)
    assert info.value.file == str(path), str(info.value)
    assert str(path) in str(info.value)
    return info.value


@pytest.mark.parametrize("text, field", [
    (SUITE_HEAD + "load: {rate: .nan, duration: 5}\n", "load.rate"),
    (SUITE_HEAD + "load: {rate: 5, duration: .nan}\n", "load.duration"),
    (SUITE_HEAD + "load: {rate: 5, duration: 5}\ncommit: {share: .nan}\n", "commit.share"),
    (SUITE_HEAD + "load: {rate: 5, duration: 5}\nready_timeout: .inf\n", "ready_timeout"),
], ids=["load.rate", "load.duration", "commit.share", "ready_timeout-inf"])
def test_non_finite_numbers_in_suite_rejected(tmp_path, inputs, text, field):
    assert _suite_error(_suite_text(tmp_path, inputs, text)).field == field


def test_integer_beyond_2_pow_53_rejected(tmp_path, inputs):
    text = SUITE_HEAD + f"load: {{rate: 5, duration: 5, submit_timeout: {2**60}}}\n"
    assert _suite_error(_suite_text(tmp_path, inputs, text)).field == "load.submit_timeout"


@pytest.mark.parametrize("text", [
    SUITE_HEAD + f"load: {{rate: 5, duration: 5, submit_timeout: {BIG}}}\n",
    SUITE_HEAD + f"load: {{rate: 5, duration: 5}}\nready_timeout: {BIG}\n",
    SUITE_HEAD + f"load: {{rate: 5, duration: 5}}\nchecks: [{{metric: failed, op: '<', value: {BIG}}}]\n",
], ids=["load.submit_timeout", "ready_timeout", "checks.value"])
def test_integer_beyond_float_range_in_suite_raises_input_error(tmp_path, inputs, text):
    _suite_error(_suite_text(tmp_path, inputs, text))


@pytest.mark.parametrize("text, field", [
    (SUITE_HEAD + "load: {rate: 5, duration: 5}\n1: x\nzzz: y\n", "1"),
    (SUITE_HEAD + "load: {rate: 5, duration: 5}\nnull: x\nzzz: y\n", "None"),
    (SUITE_HEAD + "load: {rate: 5, duration: 5, 1: 2, burst: 3}\n", "load.1"),
    (SUITE_HEAD + "load: {rate: 5, duration: 5}\nparams: {1: a, zz: b}\n", "params.1"),
], ids=["top-int-key", "top-null-key", "load-int-key", "params-int-key"])
def test_non_string_keys_in_suite_rejected(tmp_path, inputs, text, field):
    exc = _suite_error(_suite_text(tmp_path, inputs, text))
    assert exc.field == field
    assert "string" in exc.expected


def test_impossible_date_in_suite_rejected(tmp_path, inputs):
    text = SUITE_HEAD + "load: {rate: 5, duration: 5}\ndescription: 2020-13-45\n"
    assert "not valid YAML" in _suite_error(_suite_text(tmp_path, inputs, text)).expected


def test_overlong_chain_reference_blames_chain_field(tmp_path, inputs):
    text = f"name: s\nchain: {'a' * 300}\nload: {{rate: 5, duration: 5}}\n"
    exc = _suite_error(_suite_text(tmp_path, inputs, text))
    assert exc.field == "chain" and "not found" in exc.expected


def test_chain_reference_with_nul_byte_blames_chain_field(tmp_path, inputs):
    text = 'name: s\nchain: "pa\\0ck"\nload: {rate: 5, duration: 5}\n'
    assert _suite_error(_suite_text(tmp_path, inputs, text)).field == "chain"


def test_deeply_nested_yaml_raises_input_error(tmp_path, inputs):
    text = SUITE_HEAD + "load: {rate: 5, duration: 5}\ndescription: " + "[" * 1000 + "]" * 1000 + "\n"
    path = _suite_text(tmp_path, inputs, text)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # the default; test tooling may have raised it (slow and no error)
    try:
        _suite_error(path)
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.parametrize("field", ["nodes", "workers"])
def test_integer_valued_float_is_rejected_or_becomes_int(tmp_path, inputs, field):
    """JSON Schema's integer admits 2.0; a float node/worker count must not reach the model."""
    load = "{rate: 5, duration: 5, workers: 2.0}" if field == "workers" else "{rate: 5, duration: 5}"
    text = SUITE_HEAD + f"load: {load}\n" + ("nodes: 2.0\n" if field == "nodes" else "")
    try:
        s = suite.load(_suite_text(tmp_path, inputs, text))
    except InputError:
        return
    value = s.nodes if field == "nodes" else s.load.workers
    assert type(value) is int and value == 2


@pytest.mark.parametrize("field", ["readiness.timeout", "consensus.commit_share"])
def test_nan_numbers_in_chain_pack_rejected(tmp_path, inputs, field):
    doc = inputs.pack()
    _set(doc, field, float("nan"))
    _pack_error(inputs.make_pack(tmp_path / "p", doc), field)


def test_integer_beyond_float_range_in_chain_pack_raises_input_error(tmp_path, inputs):
    folder = inputs.make_pack(tmp_path / "p")
    text = (folder / "chain.yaml").read_text().replace("timeout: 30", f"timeout: {BIG}")
    (folder / "chain.yaml").write_text(text)
    _pack_error(folder, "readiness.timeout")


def test_non_string_keys_in_chain_pack_rejected(tmp_path, inputs):
    folder = inputs.make_pack(tmp_path / "p")
    with open(folder / "chain.yaml", "a") as out:
        out.write("1: x\nzz: y\n")
    _pack_error(folder, "1", "string")


@pytest.mark.parametrize("image", [
    {"tag": "bctest-vendor/demo:1", "tarball": "a\x00b"},
    {"tag": "bctest-vendor/demo:1", "tarball": "a" * 300},
    {"tag": "demo:1", "build": {"context": "a" * 300}},
], ids=["tarball-nul", "tarball-long", "context-long"])
def test_unusable_image_paths_rejected(tmp_path, inputs, image):
    doc = inputs.pack()
    doc["image"] = image
    with pytest.raises(InputError) as info:
        chainpack.load(inputs.make_pack(tmp_path / "p", doc))
    assert info.value.file == str(tmp_path / "p" / "chain.yaml")
    assert info.value.field.startswith("image")


def test_chain_pack_min_nodes_above_max_nodes_rejected(tmp_path, inputs):
    doc = inputs.pack()
    doc["consensus"] = {"kind": "bft", "min_nodes": 5, "max_nodes": 2}
    _pack_error(inputs.make_pack(tmp_path / "p", doc), "consensus.min_nodes")
