"""Marker/MaxItems paging as Lambda's List operations do it.

Items are ordered by a stable key; a page ends with a ``NextMarker`` naming the last key served,
so paging stays correct when items are added or removed between calls. Lambda serves at most a
fixed number of items a page whatever ``MaxItems`` says (100 for event source mappings).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from triggerfish.errors import InvalidParameterError

_T = TypeVar("_T")


_PREFIX = "tf1."  # never empty, even for an empty key, so a marker is always distinguishable from none


def _encode_marker(key: str) -> str:
    return _PREFIX + base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii")


def _decode_marker(marker: str) -> str:
    try:
        if not marker.startswith(_PREFIX):
            raise ValueError(marker)
        return base64.urlsafe_b64decode(marker[len(_PREFIX):].encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidParameterError(
            "",
            "Invalid Marker: pass the NextMarker of the previous page unchanged, or omit Marker for the first page."
        ) from None


def page(
    items: Sequence[_T],
    key: Callable[[_T], str],
    *,
    marker: str | None,
    max_items: int | None,
    page_limit: int,
) -> tuple[list[_T], str | None]:
    """One page of ``items`` after ``marker``: (items, next marker or None when this is the last page)."""
    ordered = sorted(items, key=key)
    if marker is not None:
        after = _decode_marker(marker)
        ordered = [item for item in ordered if key(item) > after]
    size = min(max_items or page_limit, page_limit)
    chunk = ordered[:size]
    more = len(ordered) > size
    return chunk, (_encode_marker(key(chunk[-1])) if more and chunk else None)
