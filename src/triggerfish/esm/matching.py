"""Compiled FilterCriteria and how they match a Kafka record's value.

The node types built by :mod:`triggerfish.esm.filter` from Lambda's pattern grammar: matchers for one
leaf (``Equals``, ``Prefix``, ``Numeric``, ...), object patterns that AND their fields, and the
``FilterSet`` that keeps a record when any pattern matches. A record's value is decoded once
(``decode_value``): JSON objects/arrays are matched by JSON patterns, anything else as plain text.
Exact number matching compares the numbers' JSON text, as Lambda does (``300`` is not ``300.0``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_MISSING: Any = object()


class _JsonNumber(float):
    """A JSON number that remembers its text, because exact matching compares the text."""

    text: str

    def __new__(cls, text: str) -> _JsonNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __repr__(self) -> str:
        return self.text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: str) -> Any:
    """Strict JSON (no NaN/Infinity), numbers as ``_JsonNumber``."""
    return json.loads(text, parse_int=_JsonNumber, parse_float=_JsonNumber, parse_constant=_reject_constant)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_text(value: Any) -> str:
    return value.text if isinstance(value, _JsonNumber) else json.dumps(value)


def _same_scalar(a: Any, b: Any) -> bool:
    """JSON equality of two scalars: same type, numbers by their JSON text."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return _number_text(a) == _number_text(b)
    return isinstance(a, str) and isinstance(b, str) and a == b


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int, float))


# ---------------------------------------------------------------------------------------------
# Matchers: one entry of a leaf array. ``matches`` takes one candidate value (never _MISSING;
# ``exists`` is handled by the leaf because it looks at presence, not at values).


@dataclass(frozen=True)
class Equals:
    expected: Any

    def matches(self, value: Any) -> bool:
        return is_scalar(value) and _same_scalar(self.expected, value)


@dataclass(frozen=True)
class Prefix:
    prefix: str

    def matches(self, value: Any) -> bool:
        return isinstance(value, str) and value.startswith(self.prefix)


@dataclass(frozen=True)
class Suffix:
    suffix: str

    def matches(self, value: Any) -> bool:
        return isinstance(value, str) and value.endswith(self.suffix)


@dataclass(frozen=True)
class EqualsIgnoreCase:
    expected: str

    def matches(self, value: Any) -> bool:
        return isinstance(value, str) and value.casefold() == self.expected.casefold()


@dataclass(frozen=True)
class AnythingBut:
    """Any scalar that is none of ``excluded`` (or, with ``inner``, that ``inner`` does not match)."""

    excluded: tuple[Any, ...] = ()
    inner: Prefix | Suffix | EqualsIgnoreCase | None = None

    def matches(self, value: Any) -> bool:
        if not is_scalar(value):
            return False
        if self.inner is not None:
            return isinstance(value, str) and not self.inner.matches(value)
        return not any(_same_scalar(x, value) for x in self.excluded)


COMPARE = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class Numeric:
    conditions: tuple[tuple[str, float], ...]

    def matches(self, value: Any) -> bool:
        if not is_number(value):
            return False
        number = float(value)
        return all(COMPARE[op](number, bound) for op, bound in self.conditions)


@dataclass(frozen=True)
class Exists:
    present: bool


Matcher = Equals | Prefix | Suffix | EqualsIgnoreCase | AnythingBut | Numeric


# ---------------------------------------------------------------------------------------------
# Pattern nodes


@dataclass(frozen=True)
class Leaf:
    """A field's array of matchers (OR-ed)."""

    matchers: tuple[Matcher | Exists, ...]

    def matches(self, value: Any) -> bool:
        present = value is not _MISSING
        # An array field matches when one of its elements does (EventBridge's flattening).
        candidates = value if isinstance(value, list) else [value]
        for matcher in self.matchers:
            if isinstance(matcher, Exists):
                # exists applies to leaves only: an object-valued field neither exists nor is missing.
                if matcher.present and present and not isinstance(value, dict):
                    return True
                if not matcher.present and not present:
                    return True
            elif present and any(matcher.matches(c) for c in candidates):
                return True
        return False


@dataclass(frozen=True)
class ObjectPattern:
    """An object pattern: every field must match (AND), and one alternative of each ``$or``."""

    fields: tuple[tuple[str, ObjectPattern | Leaf], ...]
    alternatives: tuple[tuple[ObjectPattern, ...], ...] = ()

    def matches(self, data: Any) -> bool:
        if isinstance(data, list):
            return any(self.matches(item) for item in data)
        if not isinstance(data, dict):
            return False
        for name, node in self.fields:
            value = data.get(name, _MISSING)
            if isinstance(node, Leaf):
                if not node.matches(value):
                    return False
            elif value is _MISSING or not node.matches(value):
                return False
        return all(any(alt.matches(data) for alt in group) for group in self.alternatives)


@dataclass(frozen=True)
class _Decoded:
    """A record value as the matcher sees it: ``kind`` is json, text, null or binary."""

    kind: str
    data: Any = None


def decode_value(value: bytes | None) -> _Decoded:
    if value is None:
        return _Decoded("null")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return _Decoded("binary")
    try:
        parsed = loads(text)
    except (ValueError, RecursionError):
        return _Decoded("text", text)
    if isinstance(parsed, (dict, list)):
        return _Decoded("json", parsed)
    return _Decoded("text", text)


@dataclass(frozen=True)
class ValuePattern:
    """The root of one Kafka pattern: a matcher for ``value`` plus top-level ``$or`` groups."""

    value: ObjectPattern | Leaf | None
    alternatives: tuple[tuple[ValuePattern, ...], ...] = ()

    def matches(self, decoded: _Decoded) -> bool:
        if self.value is not None and not self._value_matches(decoded):
            return False
        return all(any(alt.matches(decoded) for alt in group) for group in self.alternatives)

    def _value_matches(self, decoded: _Decoded) -> bool:
        if isinstance(self.value, ObjectPattern):
            return decoded.kind == "json" and self.value.matches(decoded.data)
        assert self.value is not None
        if decoded.kind == "text":
            return self.value.matches(decoded.data)
        if decoded.kind == "null":
            return self.value.matches(None)
        return False


@dataclass(frozen=True)
class FilterSet:
    """Compiled FilterCriteria: a record is kept when any pattern matches."""

    patterns: tuple[ValuePattern, ...]

    def matches(self, value: bytes | None) -> bool:
        if not self.patterns:
            return True
        decoded = decode_value(value)
        try:
            return any(p.matches(decoded) for p in self.patterns)
        except RecursionError:  # absurdly deep JSON arrays: no pattern is that deep, so no match
            return False
