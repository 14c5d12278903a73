"""IAM ``Condition`` blocks, evaluated where the doctor knows the request's context keys.

A key the doctor does not know (``aws:PrincipalTag/team``, ``aws:SourceIp`` of a call it has not seen)
makes the condition *unknown*, never true or false: the verdict then says which key it could not
evaluate. Operators follow the IAM reference: the ``IfExists`` suffix, ``ForAnyValue:`` /
``ForAllValues:`` prefixes, ``Null``, and the String, Arn, Bool, Numeric and IpAddress families.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

#: Context: condition key (any case) -> its values; a key mapped to an empty list is known to be absent.
Context = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class ConditionResult:
    """True/False when every key was known; None (unknown) with the keys that were not."""

    value: bool | None
    unknown_keys: tuple[str, ...] = ()


def _like(pattern: str, value: str) -> bool:
    return fnmatchcase(value, pattern.replace("${*}", "*").replace("${?}", "?").replace("${$}", "$"))


def _ip(pattern: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return False


def _number(op: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def compare(pattern: str, value: str) -> bool:
        try:
            return op(float(value), float(pattern))
        except ValueError:
            return False
    return compare


# positive operator -> how one context value matches one condition value
_POSITIVE: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda p, v: p == v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": _like,
    "ArnEquals": lambda p, v: p == v,
    "ArnLike": _like,
    "Bool": lambda p, v: p.lower() == v.lower(),
    "IpAddress": _ip,
    "NumericEquals": _number(lambda v, p: v == p),
    "NumericLessThan": _number(lambda v, p: v < p),
    "NumericLessThanEquals": _number(lambda v, p: v <= p),
    "NumericGreaterThan": _number(lambda v, p: v > p),
    "NumericGreaterThanEquals": _number(lambda v, p: v >= p),
}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
            "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike",
            "NotIpAddress": "IpAddress", "NumericNotEquals": "NumericEquals"}


def _lookup(context: Context, key: str) -> Sequence[str] | None:
    lowered = key.lower()
    for k, values in context.items():
        if k.lower() == lowered:
            return values
    return None


def _one(operator: str, key: str, wanted: Sequence[str], context: Context) -> bool | None:
    """One key of one operator block; None when the key is unknown."""
    qualifier, _, op = operator.rpartition(":")
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    values = _lookup(context, key)
    if op == "Null":  # "true": the key must be absent
        return None if values is None else (not values) == (str(wanted[0]).lower() == "true")
    if values is None:
        return None
    if not values:
        return True if if_exists else op in _NEGATED  # a missing key never equals, so a negation holds
    negated = op in _NEGATED
    match = _POSITIVE.get(_NEGATED.get(op, op))
    if match is None:
        return None  # an operator this reader does not know (DateLessThan, BinaryEquals ...)

    def hit(value: str) -> bool:
        return any(match(str(p), value) for p in wanted)

    if qualifier == "ForAllValues":
        found = all((not hit(v)) if negated else hit(v) for v in values)
    elif negated:
        found = not any(hit(v) for v in values)
    else:
        found = any(hit(v) for v in values)
    return found


def evaluate(condition: Mapping[str, Any] | None, context: Context) -> ConditionResult:
    """All operator blocks and keys must hold (AND); values within one key are alternatives (OR)."""
    if not condition:
        return ConditionResult(True)
    unknown: list[str] = []
    for operator, block in condition.items():
        if not isinstance(block, Mapping):
            unknown.append(str(operator))
            continue
        for key, wanted in block.items():
            values = wanted if isinstance(wanted, list) else [wanted]
            result = _one(str(operator), str(key), [str(v) for v in values], context)
            if result is False:
                return ConditionResult(False)
            if result is None:
                unknown.append(str(key))
    return ConditionResult(None, tuple(unknown)) if unknown else ConditionResult(True)
