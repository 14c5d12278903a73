"""FilterCriteria: compile Lambda's event-filter patterns once, then match Kafka record values.

The pattern language is Lambda's (EventBridge-style) one, restricted the way Lambda restricts it
for Kafka: a pattern may only look at the record's ``value``. The value is base64 in the event;
here it arrives as the raw bytes, is decoded as UTF-8 and then:

* a JSON object or array is matched by JSON patterns ``{"value": {"field": [...]}}``;
* anything else (plain text, or a bare JSON scalar) is matched by plain-string patterns
  ``{"value": [...]}``; a tombstone (no value) is the plain value ``null``;
* on a mismatch (JSON pattern vs plain value, or the reverse) and for bytes that are not UTF-8,
  the data filter never matches.

Within a pattern, fields are AND-ed, the matchers in one array are OR-ed, ``$or`` OR-s whole
sub-patterns, and up to five filters are OR-ed. A field whose value is an array matches when any
element does. Exact number matching compares the numbers' JSON text, as Lambda does (``300`` is not
``300.0``); ``numeric`` compares values.

This module is the grammar: it validates patterns and compiles them into the nodes of
:mod:`triggerfish.esm.matching`. Invalid patterns are rejected when the mapping is configured, with Lambda's text
``Invalid filter pattern definition.`` followed by the part that is wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from triggerfish.errors import InvalidParameterError
from triggerfish.esm.matching import (
    COMPARE,
    AnythingBut,
    Equals,
    EqualsIgnoreCase,
    Exists,
    FilterSet,
    Leaf,
    Matcher,
    Numeric,
    ObjectPattern,
    Prefix,
    Suffix,
    ValuePattern,
    is_number,
    is_scalar,
    loads,
)
from triggerfish.validation import shape_error

_MAX_FILTERS = 5
_MAX_PATTERN_LENGTH = 4096
_INVALID = "Invalid filter pattern definition."


# ---------------------------------------------------------------------------------------------
# Compilation (configuration time)


class _Invalid(Exception):
    def __init__(self, where: str, problem: str, hint: str = "") -> None:
        self.where = where
        self.problem = problem
        self.hint = hint


def validate_criteria(criteria: Any, where: str = "") -> None:
    """The mapping config's deep check: compile its FilterCriteria, raising Lambda's error text."""
    compile_criteria(criteria, f"{where}.FilterCriteria" if where else "FilterCriteria")


def compile_criteria(criteria: Any, field: str = "FilterCriteria") -> FilterSet | None:
    """Validate and compile ``{"Filters": [{"Pattern": "<json>"}, ...]}``; None when absent.

    Raises ``InvalidParameterError`` naming the filter, the part of the pattern that is wrong and
    how to fix it.
    """
    if criteria is None:
        return None
    if not isinstance(criteria, Mapping):
        raise InvalidParameterError(field, f"Value '{criteria}' is not an object", 'write {"Filters": [{"Pattern": "..."}]}')
    unknown = [k for k in criteria if k != "Filters"]
    if unknown:
        raise InvalidParameterError(f"{field}.{unknown[0]}", f"Unknown field '{unknown[0]}'", "FilterCriteria only holds Filters")
    filters = criteria.get("Filters") or []
    if isinstance(filters, (str, bytes)) or not isinstance(filters, Sequence):
        raise InvalidParameterError(f"{field}.Filters", "Value is not a list", 'write Filters: [{"Pattern": "..."}]')
    if len(filters) > _MAX_FILTERS:
        raise InvalidParameterError(
            f"{field}.Filters",
            f"Invalid filter criteria: {len(filters)} filters exceed the limit of {_MAX_FILTERS} filters per event source mapping.",
            f"combine patterns with $or or keep at most {_MAX_FILTERS} filters",
        )
    patterns = []
    for index, item in enumerate(filters):
        where = f"{field}.Filters[{index}].Pattern"
        if not isinstance(item, Mapping) or set(item) - {"Pattern"}:
            raise InvalidParameterError(f"{field}.Filters[{index}]", "A filter holds exactly one field, Pattern", 'write {"Pattern": "..."}')
        patterns.append(compile_pattern(item.get("Pattern"), where))
    return FilterSet(tuple(patterns))


def compile_pattern(pattern: Any, field: str = "Pattern") -> ValuePattern:
    """Compile one Pattern (a JSON string, or an already parsed mapping)."""
    if isinstance(pattern, Mapping):
        pattern = json.dumps(pattern)
    if not isinstance(pattern, str):
        raise InvalidParameterError(field, f"{_INVALID} The pattern must be a JSON string.", "quote the pattern")
    if len(pattern) > _MAX_PATTERN_LENGTH:
        raise shape_error(
            field, pattern[:40] + "...", f"Member must have length less than or equal to {_MAX_PATTERN_LENGTH}",
            "shorten the pattern or split it into several filters",
        )
    try:
        parsed = loads(pattern)
    except ValueError as exc:
        raise InvalidParameterError(field, f"{_INVALID} The pattern is not valid JSON: {exc}.", "fix the JSON") from None
    try:
        return _root(parsed, "")
    except _Invalid as exc:
        part = f"{exc.where}: {exc.problem}" if exc.where else exc.problem
        raise InvalidParameterError(field, f"{_INVALID} {part}.", exc.hint or _OPERATORS) from None


_OPERATORS = "see FilterCriteria in the README for the operators"


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _root(parsed: Any, where: str) -> ValuePattern:
    if not isinstance(parsed, dict):
        raise _Invalid(where, "A pattern must be a JSON object")
    if not parsed:
        raise _Invalid(where, "A pattern must name at least one field")
    value: ObjectPattern | Leaf | None = None
    groups = []
    for name, sub in parsed.items():
        if name == "$or":
            groups.append(tuple(_root(alt, f"{_join(where, '$or')}[{i}]") for i, alt in enumerate(_or_list(sub, where))))
        elif name == "value":
            path = _join(where, "value")
            value = _object(sub, path) if isinstance(sub, dict) else _leaf(sub, path)
        else:
            raise _Invalid(
                _join(where, name),
                "Kafka event source mappings only support filtering on the value key",
                'put the fields under "value", e.g. {"value": {"device_ID": [{"prefix": "AB"}]}}',
            )
    return ValuePattern(value, tuple(groups))


def _or_list(sub: Any, where: str) -> list[Any]:
    if not isinstance(sub, list) or len(sub) < 2:
        raise _Invalid(_join(where, "$or"), "$or takes an array of at least two patterns")
    return sub


def _object(parsed: dict[str, Any], where: str) -> ObjectPattern:
    if not parsed:
        raise _Invalid(where, "An object in a pattern must name at least one field")
    fields: list[tuple[str, ObjectPattern | Leaf]] = []
    groups = []
    for name, sub in parsed.items():
        if name == "$or":
            alts = _or_list(sub, where)
            compiled = []
            for i, alt in enumerate(alts):
                if not isinstance(alt, dict):
                    raise _Invalid(f"{_join(where, '$or')}[{i}]", "Each $or alternative must be a JSON object")
                compiled.append(_object(alt, f"{_join(where, '$or')}[{i}]"))
            groups.append(tuple(compiled))
        elif isinstance(sub, dict):
            fields.append((name, _object(sub, _join(where, name))))
        else:
            fields.append((name, _leaf(sub, _join(where, name))))
    return ObjectPattern(tuple(fields), tuple(groups))


def _leaf(sub: Any, where: str) -> Leaf:
    if not isinstance(sub, list):
        raise _Invalid(where, "match values must be inside an array", f"write [{json.dumps(sub)}]")
    if not sub:
        raise _Invalid(where, "An array of match values must not be empty")
    return Leaf(tuple(_matcher(item, where) for item in sub))


def _matcher(item: Any, where: str) -> Matcher | Exists:
    if is_scalar(item):
        return Equals(item)
    if isinstance(item, list):
        raise _Invalid(where, "Arrays cannot be nested in a match array")
    if len(item) != 1:
        raise _Invalid(where, f"A match object holds exactly one operator, got {sorted(item) or 'none'}")
    ((op, arg),) = item.items()
    if op in ("prefix", "suffix", "equals-ignore-case"):
        return _string_op(op, arg, where)
    if op == "anything-but":
        return _anything_but(arg, where)
    if op == "numeric":
        return _numeric(arg, where)
    if op == "exists":
        if not isinstance(arg, bool):
            raise _Invalid(where, "exists takes true or false")
        return Exists(arg)
    raise _Invalid(
        where,
        f"Unrecognized match type {op}",
        "use prefix, suffix, equals-ignore-case, anything-but, numeric or exists",
    )


def _string_op(op: str, arg: Any, where: str) -> Prefix | Suffix | EqualsIgnoreCase:
    if not isinstance(arg, str):
        raise _Invalid(where, f"{op} match pattern must be a string")
    if op == "prefix":
        return Prefix(arg)
    if op == "suffix":
        return Suffix(arg)
    return EqualsIgnoreCase(arg)


def _anything_but(arg: Any, where: str) -> AnythingBut:
    if isinstance(arg, dict):
        if len(arg) != 1 or next(iter(arg)) not in ("prefix", "suffix", "equals-ignore-case"):
            raise _Invalid(where, "anything-but takes a value, an array of values, or one of prefix, suffix, equals-ignore-case")
        ((op, inner),) = arg.items()
        return AnythingBut(inner=_string_op(op, inner, where))
    values = arg if isinstance(arg, list) else [arg]
    if not values:
        raise _Invalid(where, "anything-but needs at least one value")
    for value in values:
        if not (isinstance(value, str) or is_number(value)):
            raise _Invalid(where, "anything-but values must be strings or numbers")
    return AnythingBut(excluded=tuple(values))


def _numeric(arg: Any, where: str) -> Numeric:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise _Invalid(where, 'numeric takes ["op", number] or [">", low, "<", high]')
    conditions = []
    for i in range(0, len(arg), 2):
        op, bound = arg[i], arg[i + 1]
        if op not in COMPARE:
            raise _Invalid(where, f"Unrecognized numeric range operator {op!r}", "use =, <, <=, > or >=")
        if not is_number(bound) or not math.isfinite(float(bound)):
            raise _Invalid(where, f"Value of {op} must be numeric")
        conditions.append((op, float(bound)))
    if len(conditions) == 2:
        (low_op, low), (high_op, high) = conditions
        if low_op not in (">", ">=") or high_op not in ("<", "<="):
            raise _Invalid(where, 'A numeric range is [">" or ">=", low, "<" or "<=", high]')
        if low >= high:
            raise _Invalid(where, "Bottom must be less than top in a numeric range")
    return Numeric(tuple(conditions))
