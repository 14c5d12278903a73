"""Lambda's shapes from botocore's own service model, to check what the control API answers.

The model that ships with botocore is the contract boto3 and the AWS CLI speak. ``response_problems``
lists every place a response body departs from an operation's output shape (unknown member names,
missing required members, wrong JSON types, values outside enums and ranges), so tests can make
field names and types impossible to drift from Lambda's. Request fields are validated where they
are parsed (``triggerfish.validation``), with Lambda's wording.
"""

from __future__ import annotations

import functools
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape


@functools.cache
def _service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("lambda")


def operation(name: str) -> OperationModel:
    return _service_model().operation_model(name)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def response_problems(operation_name: str, body: Any) -> list[str]:
    """Where a response body departs from the operation's output shape: unknown member names,
    missing required members, wrong JSON types, values outside enums and ranges."""
    shape = operation(operation_name).output_shape
    if shape is None:
        return [] if body in (None, b"", {}) else ["operation has no output body"]
    body_members = {n: s for n, s in shape.members.items() if not s.serialization.get("location")}
    if shape.serialization.get("payload"):
        return []  # a blob payload (Invoke): nothing structured to check
    return _check_structure(body_members, shape.required_members, body, "")


def _check_structure(members: dict[str, Shape], required: list[str], value: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path or '<body>'}: expected an object, got {type(value).__name__}"]
    problems = [f"{_join(path, key)}: not a member of the shape" for key in value if key not in members]
    problems += [f"{_join(path, key)}: required member missing" for key in required if key not in value]
    for key, item in value.items():
        if key in members:
            problems += _check_value(members[key], item, _join(path, key))
    return problems


def _check_value(shape: Shape, value: Any, path: str) -> list[str]:
    if value is None:
        return []
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        return _check_structure(shape.members, shape.required_members, value, path)
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        return [p for i, item in enumerate(value) for p in _check_value(shape.member, item, f"{path}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected a map"]
        return [p for k, item in value.items() for p in _check_value(shape.key, k, f"{path}<key>") + _check_value(shape.value, item, f"{path}.{k}")]
    if kind in ("string", "blob"):
        if not isinstance(value, str):
            return [f"{path}: expected a string, got {type(value).__name__}"]
        if "enum" in meta and value not in meta["enum"]:
            return [f"{path}: {value!r} not in {meta['enum']}"]
        return []
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: expected an integer, got {type(value).__name__}"]
        if ("min" in meta and value < meta["min"]) or ("max" in meta and value > meta["max"]):
            return [f"{path}: {value} outside {meta.get('min')}..{meta.get('max')}"]
        return []
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean"]
    if kind in ("double", "float", "timestamp"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [f"{path}: expected a number, got {type(value).__name__}"]
    return []
