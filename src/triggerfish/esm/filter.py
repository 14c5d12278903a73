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

Invalid patterns are rejected when the mapping is configured, with Lambda's text
``Invalid filter pattern definition.`` followed by the part that is wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from triggerfish.validation import InvalidParameterError, shape_error

if TYPE_CHECKING:
    from triggerfish.esm.config import MappingConfig

MAX_FILTERS = 5
MAX_PATTERN_LENGTH = 4096
INVALID = "Invalid filter pattern definition."
_MISSING: Any = object()


class JsonNumber(float):
    """A JSON number that remembers its text, because exact matching compares the text."""

    text: str

    def __new__(cls, text: str) -> JsonNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number

    def __repr__(self) -> str:
        return self.text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: str) -> Any:
    """Strict JSON (no NaN/Infinity), numbers as ``JsonNumber``."""
    return json.loads(text, parse_int=JsonNumber, parse_float=JsonNumber, parse_constant=_reject_constant)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number_text(value: Any) -> str:
    return value.text if isinstance(value, JsonNumber) else json.dumps(value)


def _same_scalar(a: Any, b: Any) -> bool:
    """JSON equality of two scalars: same type, numbers by their JSON text."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return _number_text(a) == _number_text(b)
    return isinstance(a, str) and isinstance(b, str) and a == b


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int, float))


# ---------------------------------------------------------------------------------------------
# Matchers: one entry of a leaf array. ``matches`` takes one candidate value (never _MISSING;
# ``exists`` is handled by the leaf because it looks at presence, not at values).


@dataclass(frozen=True)
class Equals:
    expected: Any

    def matches(self, value: Any) -> bool:
        return _is_scalar(value) and _same_scalar(self.expected, value)


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
        if not _is_scalar(value):
            return False
        if self.inner is not None:
            return isinstance(value, str) and not self.inner.matches(value)
        return not any(_same_scalar(x, value) for x in self.excluded)


_COMPARE = {
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
        if not _is_number(value):
            return False
        number = float(value)
        return all(_COMPARE[op](number, bound) for op, bound in self.conditions)


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
class Decoded:
    """A record value as the matcher sees it: ``kind`` is json, text, null or binary."""

    kind: str
    data: Any = None


def decode_value(value: bytes | None) -> Decoded:
    if value is None:
        return Decoded("null")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return Decoded("binary")
    try:
        parsed = loads(text)
    except (ValueError, RecursionError):
        return Decoded("text", text)
    if isinstance(parsed, (dict, list)):
        return Decoded("json", parsed)
    return Decoded("text", text)


@dataclass(frozen=True)
class ValuePattern:
    """The root of one Kafka pattern: a matcher for ``value`` plus top-level ``$or`` groups."""

    value: ObjectPattern | Leaf | None
    alternatives: tuple[tuple[ValuePattern, ...], ...] = ()

    def matches(self, decoded: Decoded) -> bool:
        if self.value is not None and not self._value_matches(decoded):
            return False
        return all(any(alt.matches(decoded) for alt in group) for group in self.alternatives)

    def _value_matches(self, decoded: Decoded) -> bool:
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


# ---------------------------------------------------------------------------------------------
# Compilation (configuration time)


class _Invalid(Exception):
    def __init__(self, where: str, problem: str, hint: str = "") -> None:
        self.where = where
        self.problem = problem
        self.hint = hint


def validate_criteria(mapping: MappingConfig, where: str = "") -> None:
    """The mapping config's deep check: compile its FilterCriteria, raising Lambda's error text."""
    compile_criteria(mapping.filter_criteria, f"{where}.FilterCriteria" if where else "FilterCriteria")


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
    if len(filters) > MAX_FILTERS:
        raise InvalidParameterError(
            f"{field}.Filters",
            f"Invalid filter criteria: {len(filters)} filters exceed the limit of {MAX_FILTERS} filters per event source mapping.",
            f"combine patterns with $or or keep at most {MAX_FILTERS} filters",
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
        raise InvalidParameterError(field, f"{INVALID} The pattern must be a JSON string.", "quote the pattern")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise shape_error(
            field, pattern[:40] + "...", f"Member must have length less than or equal to {MAX_PATTERN_LENGTH}",
            "shorten the pattern or split it into several filters",
        )
    try:
        parsed = loads(pattern)
    except ValueError as exc:
        raise InvalidParameterError(field, f"{INVALID} The pattern is not valid JSON: {exc}.", "fix the JSON") from None
    try:
        return _root(parsed, "")
    except _Invalid as exc:
        part = f"{exc.where}: {exc.problem}" if exc.where else exc.problem
        raise InvalidParameterError(field, f"{INVALID} {part}.", exc.hint or _OPERATORS) from None


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


def _object(parsed: dict, where: str) -> ObjectPattern:
    if not parsed:
        raise _Invalid(where, "An object in a pattern must name at least one field")
    fields = []
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
    if _is_scalar(item):
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
        if not (isinstance(value, str) or _is_number(value)):
            raise _Invalid(where, "anything-but values must be strings or numbers")
    return AnythingBut(excluded=tuple(values))


def _numeric(arg: Any, where: str) -> Numeric:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise _Invalid(where, 'numeric takes ["op", number] or [">", low, "<", high]')
    conditions = []
    for i in range(0, len(arg), 2):
        op, bound = arg[i], arg[i + 1]
        if op not in _COMPARE:
            raise _Invalid(where, f"Unrecognized numeric range operator {op!r}", "use =, <, <=, > or >=")
        if not _is_number(bound) or not math.isfinite(float(bound)):
            raise _Invalid(where, f"Value of {op} must be numeric")
        conditions.append((op, float(bound)))
    if len(conditions) == 2:
        (low_op, low), (high_op, high) = conditions
        if low_op not in (">", ">=") or high_op not in ("<", "<="):
            raise _Invalid(where, 'A numeric range is [">" or ">=", low, "<" or "<=", high]')
        if low >= high:
            raise _Invalid(where, "Bottom must be less than top in a numeric range")
    return Numeric(tuple(conditions))
