"""Load a YAML/JSON document and check it against one of harness/schemas/*.json.

Every problem becomes one InputError naming the file, the field path inside it and
what was expected, never a traceback.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from harness.errors import InputError

SCHEMA_DIR = Path(__file__).parent / "schemas"


@cache
def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


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
        return yaml.safe_load(text)
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
    if hint:
        message += f" ({hint})"
    return field_path(path), message


def validate(document: Any, schema_name: str, file: str) -> None:
    validator = jsonschema.Draft202012Validator(schema(schema_name))
    errors = sorted(validator.iter_errors(document), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        # The shallowest error is the most useful one: deeper ones often follow from it.
        best = jsonschema.exceptions.best_match(errors) or errors[0]
        where, message = _describe(best)
        raise InputError(file, where, message)


def load_and_validate(path: Path, schema_name: str) -> dict[str, Any]:
    document = load_yaml(path)
    validate(document, schema_name, str(path))
    return document
