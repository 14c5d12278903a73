"""Requests checked against Strimzi's OpenAPI spec, with the errors Strimzi's validator (Vert.x json-schema) gives.

Strimzi validates path and query parameters and JSON bodies against ``openapi.json`` before any handler
runs, and lists the validator's output units in ``validation_errors``: no instance locations, a wrapper
unit for each keyword that failed below it ("Property "records" does not match schema", "Items did not
match schema", "A subschema had errors" for a ``$ref``), and a property whose own schema failed reported
again against ``additionalProperties``. Clients and Strimzi's own tests match these strings, so
``check_parameters`` and ``check_body`` reproduce them for the keywords the spec uses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from triggerfish.bridge.errors import validation
from triggerfish.errors import InvalidRequestError

_REF_PREFIX = "#/components/schemas/"


@cache
def spec_bytes() -> bytes:
    """Strimzi's ``openapi.json`` as shipped (Apache-2.0, strimzi/strimzi-kafka-bridge)."""
    return resources.files("triggerfish.bridge").joinpath("openapi.json").read_bytes()


@dataclass(frozen=True)
class _Operation:
    parameters: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (name, "path"|"query", schema)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)  # content type -> schema
    body_required: bool = False


@cache
def _spec() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(spec_bytes())
    return doc


@cache
def _operations() -> dict[str, _Operation]:
    out: dict[str, _Operation] = {}
    for item in _spec()["paths"].values():
        for op in item.values():
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            declared = [*item.get("parameters", []), *op.get("parameters", [])]  # the path's and the operation's
            params = [(p["name"], p["in"], p.get("schema", {})) for p in declared if "name" in p]
            request_body = op.get("requestBody") or {}
            content = request_body.get("content", {})
            bodies = {ctype: _resolve(media["schema"]) for ctype, media in content.items() if "schema" in media}
            out[op["operationId"]] = _Operation(params, bodies, bool(request_body.get("required")))
    return out


@cache
def _checked_parameters() -> dict[str, list[tuple[str, str, dict[str, Any], bool]]]:
    # a parameter whose schema is only {"type": "string"} accepts any text: no need to check it per request;
    # the flag: whether plain digits (a timeout, an offset) are valid without running the validator
    return {name: [(n, where, schema, _digits_valid(schema)) for n, where, schema in op.parameters
                   if schema != {"type": "string"}] for name, op in _operations().items()}


def _digits_valid(schema: dict[str, Any]) -> bool:
    minimum = schema.get("minimum", 0)
    return (schema.get("type") == "integer" and set(schema) <= {"type", "minimum"}
            and isinstance(minimum, int) and minimum <= 0)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    # the validator is built from the dereferenced body schema: no "A subschema had errors" at the top
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
        resolved: dict[str, Any] = _spec()["components"]["schemas"][ref[len(_REF_PREFIX):]]
        return resolved
    return schema


def check_parameters(operation: str, path: Mapping[str, str], query: Mapping[str, str]) -> None:
    """Raise Strimzi's 400 for a path or query parameter its schema refuses (``partitionid=-1``, ``async=maybe``)."""
    for name, where, schema, digits_valid in _checked_parameters().get(operation, ()):
        raw = (path if where == "path" else query).get(name)
        if raw is None or (digits_valid and len(raw) <= 18 and raw.isascii() and raw.isdigit()):
            continue
        errors = errors_of(_parse_parameter(raw, schema.get("type")), schema)
        if errors:
            raise validation(errors)


def check_body(operation: str, content_type: str | None, body: bytes) -> None:
    """Raise Strimzi's 400 for a missing required body or a JSON body its schema refuses; bodies that are
    not JSON, or in a content type the spec does not list for ``operation``, are left to the handler."""
    op = _operations().get(operation)
    if op is None:
        return
    if not body.strip():
        if op.body_required:
            raise InvalidRequestError("Validation error on: The related request does not contain the required body.")
        return
    if content_type not in op.bodies:
        return
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return
    errors = errors_of(doc, op.bodies[content_type])
    if errors:
        raise validation(errors)


def _parse_parameter(raw: str, kind: object) -> object:
    """A parameter's text as its schema type, or the text itself when it is not one (as Vert.x does)."""
    if kind == "integer" or kind == "number":
        try:
            return int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                return raw
            return value if math.isfinite(value) else raw
    if kind == "boolean" and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return raw


def errors_of(instance: object, schema: object) -> list[str]:
    """The validator's output units for ``instance`` against ``schema``, in its order; empty when valid."""
    if schema is True:
        return []
    if schema is False:
        return ["False boolean schema"]
    if not isinstance(schema, dict):
        return []
    errors: list[str] = []
    ref = schema.get("$ref")
    if isinstance(ref, str):
        sub = errors_of(instance, _resolve({"$ref": ref}))
        if sub:
            errors += ["A subschema had errors", *sub]
    kind = type_of(instance)
    expected = schema.get("type")
    if expected is not None:
        wanted = expected if isinstance(expected, list) else [expected]
        if not any(_is_type(instance, kind, w) for w in wanted):
            errors.append(f"Instance type {kind} is invalid. Expected {', '.join(map(str, wanted))}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"Instance does not match any of {json.dumps(schema['enum'])}")
    one_of = schema.get("oneOf")
    if isinstance(one_of, list):
        sub_errors: list[str] = []
        matches = 0
        for sub_schema in one_of:
            sub = errors_of(instance, sub_schema)
            sub_errors += sub
            matches += not sub
        if matches != 1:
            errors += [f"Instance does not match exactly one subschema ({matches} matches)", *sub_errors]
    if kind == "object":
        assert isinstance(instance, dict)
        errors += _object_errors(instance, schema)
    elif kind == "array":
        assert isinstance(instance, list)
        items = schema.get("items")
        if items is not None:
            for item in instance:
                sub = errors_of(item, items)
                if sub:
                    errors += ["Items did not match schema", *sub]
    elif kind == "number":
        assert isinstance(instance, (int, float))
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{_number(instance)} is less than {_number(schema['minimum'])}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{_number(instance)} is greater than {_number(schema['maximum'])}")
    return errors


def _object_errors(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    errors = [f'Instance does not have required property "{name}"'
              for name in schema.get("required", []) if name not in instance]
    evaluated: set[str] = set()
    properties = schema.get("properties", {})
    for name, sub_schema in properties.items():
        if name not in instance:
            continue
        sub = errors_of(instance[name], sub_schema)
        if sub:
            errors += [f'Property "{name}" does not match schema', *sub]
        else:
            evaluated.add(name)
    additional = schema.get("additionalProperties")
    if additional is not None:
        for name, value in instance.items():
            if name in evaluated:
                continue
            # Vert.x reports a refused additional property without the "False boolean schema" below it
            sub = [] if additional is False else errors_of(value, additional)
            if additional is False or sub:
                errors += [f'Property "{name}" does not match additional properties schema', *sub]
    return errors


def _is_type(instance: object, kind: str, wanted: object) -> bool:
    if wanted == "integer":
        return kind == "number" and isinstance(instance, (int, float)) and float(instance).is_integer()
    return kind == wanted


def type_of(instance: object) -> str:
    """JSON's type name as the validator says it: every number is ``number``."""
    if instance is None:
        return "null"
    if isinstance(instance, bool):
        return "boolean"
    if isinstance(instance, (int, float)):
        return "number"
    if isinstance(instance, str):
        return "string"
    if isinstance(instance, list):
        return "array"
    return "object"


def _number(n: object) -> str:
    if isinstance(n, float) and n.is_integer():
        return str(int(n))
    return str(n)
