"""Decoding JSON that comes from outside (request bodies, Kafka records, webhooks): nesting is bounded.

``json.loads`` recurses once per nesting level, so ``[[[[...]]]]`` 100,000 deep raises
``RecursionError``, which no caller expects and which becomes a 500 with a traceback. Even a document
that parses can be too deep for what comes next (re-encoding it, matching it), so ``loads`` also
refuses a document nested deeper than ``MAX_DEPTH`` levels, as Jackson does (its limit is 1000;
Python's whole stack is 1000 frames). Both raise ``NestingError``, a ``ValueError``, so every caller's
existing path for invalid JSON answers it: the caller's 400, in the caller's shape.
"""

from __future__ import annotations

import json
from typing import Any

#: The deepest nesting of arrays and objects accepted.
MAX_DEPTH = 512


class NestingError(ValueError):
    """The document nests arrays/objects deeper than ``limit`` levels."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"JSON nesting depth exceeds the maximum allowed ({limit})")


def loads(data: str | bytes | bytearray, *, max_depth: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads(data, **kwargs)``, refusing nesting deeper than ``max_depth`` with ``NestingError``."""
    try:
        value = json.loads(data, **kwargs)
    except RecursionError:
        raise NestingError(max_depth) from None
    # a document nested N deep holds at least N brackets: most bodies need no walk at all
    if _brackets(data) > max_depth and _deeper_than(value, max_depth):
        raise NestingError(max_depth)
    return value


def _brackets(data: str | bytes | bytearray) -> int:
    if isinstance(data, str):
        return data.count("[") + data.count("{")
    return data.count(b"[") + data.count(b"{")


def _deeper_than(value: Any, limit: int) -> bool:
    # iterative, so that checking depth cannot itself run out of stack
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
