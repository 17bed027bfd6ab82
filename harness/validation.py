"""Load a YAML/JSON document and check it against one of harness/schemas/*.json.

Every problem becomes one InputError naming the file, the field path inside it and
what was expected, never a traceback.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from harness.errors import InputError

SCHEMA_DIR = Path(__file__).parent / "schemas"


@cache
def schema(name: str) -> dict[str, Any]:
    loaded = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())
    if name == "suite":   # the checkers and fault kinds follow their registries (one file each)
        from harness.checks import correctness
        from harness.faults import kinds
        loaded["properties"]["checkers"] = correctness.suite_schema()
        faults = loaded["properties"]["faults"]
        faults["items"] = kinds.schema(faults["items"])
        from harness import security
        section = loaded["properties"]["security"]
        section["properties"]["probes"]["items"]["enum"] = security.names()
        section["properties"]["settings"] = security.settings_schema()
    return loaded


MAX_EXPANDED_NODES = 1_000_000   # what a document may unfold to once its aliases are expanded


def expanded_size(node: yaml.Node, sizes: dict[int, int] | None = None) -> int:
    """How many nodes the document has with every alias expanded, counted in linear time
    (an alias is the same node object twice, so a size is computed once per object)."""
    sizes = {} if sizes is None else sizes
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1   # a cycle (an alias inside its own anchor) counts once
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(expanded_size(k, sizes) + expanded_size(v, sizes) for k, v in node.value)
    else:
        size = 1
    sizes[id(node)] = size
    return size


def _bounded_load(text: str, path: Path) -> Any:
    """yaml.safe_load, refusing an alias bomb (a few KB that unfold to billions of nodes)
    before anything walks the unfolded document."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = expanded_size(node)
        if size > MAX_EXPANDED_NODES:
            raise InputError(str(path), None, f"a document of at most {MAX_EXPANDED_NODES} values once "
                             f"its YAML aliases are expanded; this one unfolds to {size}")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(path: Path) -> Any:
    if not path.exists():
        raise InputError(str(path), None, "file does not exist")
    if not path.is_file():
        raise InputError(str(path), None, "expected a file, found a directory")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), None, f"cannot be read as UTF-8 text ({exc})") from None
    try:
        return _bounded_load(text, path)
    except RecursionError:
        raise InputError(str(path), None, "nested too deeply to be a bctest file") from None
    except ValueError as exc:  # PyYAML's own constructors, e.g. an impossible date 2020-13-45
        raise InputError(str(path), None, f"not valid YAML: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(str(path), where, f"not valid YAML: {problem}") from None


def field_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


MESSAGE_LIMIT = 300


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        if extra:
            path.append(extra[0])
            return field_path(path), f"unknown key '{extra[0]}' (allowed: {', '.join(allowed)})"
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        path.append(missing)
        return field_path(path), "required field is missing"
    hint = error.schema.get("description")
    message = error.message
    if error.validator == "type":
        message = f"expected {error.validator_value}, got {type(error.instance).__name__} {error.instance!r}"
    elif error.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        word = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
        message = f"expected a number {word[error.validator]} {error.validator_value}, got {error.instance!r}"
    elif error.validator == "enum":
        message = f"expected one of {', '.join(map(str, error.validator_value))}, got {error.instance!r}"
    if len(message) > MESSAGE_LIMIT:   # a vendor's 100 kB string is not echoed back whole
        message = f"{message[:MESSAGE_LIMIT]}… ({len(message)} characters in all)"
    if hint:
        message += f" ({hint})"
    return field_path(path), message


# JSON's integer includes 2.0; ours does not, so `nodes: 2.0` is an error, not a float count.
_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPES)
LARGEST_NUMBER = 2**53  # beyond this a float() loses the value; no bctest field needs more


def _check_plain_data(value: Any, path: list[Any], file: str) -> None:
    """What JSON Schema cannot say: keys are strings, numbers are finite and representable."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(file, field_path(path + [str(key)]),
                                 f"keys must be strings, got {type(key).__name__} {key!r}")
            _check_plain_data(item, path + [key], file)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain_data(item, path + [index], file)
    elif isinstance(value, float) and not math.isfinite(value):
        raise InputError(file, field_path(path), f"expected a finite number, got {value}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool) \
            and abs(value) > LARGEST_NUMBER:
        digits = len(str(int(value)))
        raise InputError(file, field_path(path), f"number too large ({digits} digits); at most 2^53")


def validate(document: Any, schema_name: str, file: str) -> None:
    try:
        _check_plain_data(document, [], file)
    except RecursionError:
        raise InputError(file, None, "nested too deeply to be a bctest file") from None
    validator = _Validator(schema(schema_name))
    try:
        errors = sorted(validator.iter_errors(document), key=lambda e: (len(e.absolute_path), e.path))
    except RecursionError:
        raise InputError(file, None, "nested too deeply to be a bctest file") from None
    if errors:
        # The shallowest error is the most useful one: deeper ones often follow from it.
        best = jsonschema.exceptions.best_match(errors) or errors[0]
        where, message = _describe(best)
        raise InputError(file, where, message)


def load_and_validate(path: Path, schema_name: str) -> dict[str, Any]:
    document = load_yaml(path)
    validate(document, schema_name, str(path))
    return document
