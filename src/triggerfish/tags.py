"""Lambda's rules for resource tags (``Tags`` on create, ``TagResource``, ``UntagResource``).

botocore's model: a key is 1..128 characters, a value 0..256, both of letters, digits, spaces and
``_.:/=+-@``; Lambda allows at most 50 tags on a resource, and keys starting with ``aws:`` are AWS's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from triggerfish.errors import InvalidParameterError, ValidationError

MAX_TAGS = 50
_KEY_MAX = 128
_VALUE_MAX = 256
# \p{L}\p{Z}\p{N}_.:/=+\-@ in the model: Python's \w covers Unicode letters, digits and _; spaces.
_ALLOWED = re.compile(r"[\w \u00a0\u3000.:/=+\-@]*")


def _invalid(value: str, where: str, constraint: str) -> ValidationError:
    return ValidationError(
        "", f"1 validation error detected: Value '{value[:256]}' at '{where}' failed to satisfy constraint: {constraint}"
    )


def check_key(key: Any, where: str = "tags") -> str:
    """One tag key as Lambda accepts it."""
    if not isinstance(key, str) or not 1 <= len(key) <= _KEY_MAX:
        raise _invalid(str(key), where, f"Member must have length between 1 and {_KEY_MAX}")
    if not _ALLOWED.fullmatch(key):
        raise _invalid(key, where, r"Member must satisfy regular expression pattern: ([\p{L}\p{Z}\p{N}_.:/=+\-@]*)")
    return key


def check_tags(tags: Any, field: str = "Tags") -> dict[str, str]:
    """A ``Tags`` map as Lambda accepts it: valid keys and values, no ``aws:`` keys."""
    if not isinstance(tags, Mapping):
        raise InvalidParameterError(field, f"{field} must be a map of tag keys to values", 'e.g. {"team": "orders"}')
    out: dict[str, str] = {}
    for key, value in tags.items():
        check_key(key)
        if not isinstance(value, str) or len(value) > _VALUE_MAX:
            raise _invalid(str(value), f"tags.{key}", f"Member must have length less than or equal to {_VALUE_MAX}")
        if not _ALLOWED.fullmatch(value):
            raise _invalid(value, f"tags.{key}",
                           r"Member must satisfy regular expression pattern: ([\p{L}\p{Z}\p{N}_.:/=+\-@]*)")
        if key.lower().startswith("aws:"):
            raise InvalidParameterError(field, f"Tag key '{key}' starts with 'aws:', which is reserved for AWS",
                                        "use another prefix")
        out[key] = value
    check_count(len(out))
    return out


def check_count(count: int) -> None:
    if count > MAX_TAGS:
        raise InvalidParameterError(
            "Tags", f"The resource would have {count} tags; Lambda allows at most {MAX_TAGS}",
            "remove tags with UntagResource first")


def check_keys(keys: Iterable[Any]) -> list[str]:
    return [check_key(k, "tagKeys") for k in keys]
