"""Typed readers of configuration values, and ``Settings``: flat string settings read key by key.

This is the one way triggerfish turns configuration into typed values. Each reader takes the field's
name and the raw value and returns the typed value, or raises ``ConfigError`` whose one-line ``str()``
names the field, shows the bad value and says what to write instead::

    read_int("http.port", "eighty", 0, 65535)    # ConfigError: http.port: 'eighty' is not an integer; ...
    read_bool("DRY_RUN", "maybe", words=LENIENT)  # ConfigError: DRY_RUN: 'maybe' is not a boolean; ...

``Settings`` wraps a ``Mapping[str, str]`` (environment variables, a Java ``.properties`` file): values
are stripped, absent keys give the default. Structured, Lambda-shaped objects (functions, mappings)
are read with :class:`triggerfish.validation.Fields`, which reports Lambda's own error texts.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any, TypeVar

from triggerfish.errors import ConfigError

_N = TypeVar("_N", int, float)

#: ``true``/``false`` only (any case): Strimzi's and Lambda's booleans.
_STRICT: tuple[frozenset[str], frozenset[str]] = (frozenset({"true"}), frozenset({"false"}))

#: Also ``1/0``, ``yes/no``, ``on/off`` and the empty string (false): environment-variable flags.
LENIENT: tuple[frozenset[str], frozenset[str]] = (
    frozenset({"true", "1", "yes", "on"}),
    frozenset({"false", "0", "no", "off", ""}),
)


def read_bool(name: str, raw: object, *, words: tuple[frozenset[str], frozenset[str]] = _STRICT) -> bool:
    """A boolean from ``True``/``False`` or one of ``words`` (case-insensitive)."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        value = raw.strip().lower()
        if value in words[0]:
            return True
        if value in words[1]:
            return False
    raise ConfigError(name, f"{raw!r} is not a boolean; use true or false")


def read_int(name: str, raw: object, lo: int, hi: int) -> int:
    """An integer in ``lo..hi`` from an int or its decimal text."""
    value = _number(raw, int)
    if value is None:
        raise ConfigError(name, f"{raw!r} is not an integer; use a whole number in {lo}..{hi}")
    if not lo <= value <= hi:
        raise ConfigError(name, f"{value} is out of range {lo}..{hi}")
    return value


def read_seconds(name: str, raw: object, hi: float) -> float:
    """A duration in seconds, ``0 < seconds <= hi``, from a number or its text."""
    value = _number(raw, float)
    if value is None:
        raise ConfigError(name, f"{raw!r} is not a number of seconds; use e.g. 10 or 2.5")
    if not 0 < value <= hi:
        raise ConfigError(name, f"{raw} is out of range; use 0 < seconds <= {hi:g}")
    return value


def _number(raw: object, kind: type[_N]) -> _N | None:
    """``raw`` as ``kind`` when it is one (never a bool) or its text; None otherwise."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, kind):
        return raw
    if kind is float and isinstance(raw, int):
        return kind(raw)
    if isinstance(raw, str):
        try:
            return kind(raw.strip())
        except ValueError:
            return None
    return None


def read_enum(name: str, raw: object, allowed: Sequence[str], *, shown: Sequence[str] | None = None) -> str:
    """One of ``allowed``; the message lists ``shown`` (default: ``allowed``)."""
    if isinstance(raw, str) and raw in allowed:
        return raw
    if raw is None:
        raise ConfigError(name, f"is missing; use one of {', '.join(shown if shown is not None else allowed)}")
    raise ConfigError(name, f"{raw!r} is not one of {', '.join(shown if shown is not None else allowed)}")


def read_str(name: str, raw: object, *, required: bool = True) -> str:
    """A string; with ``required``, a non-empty one."""
    if not isinstance(raw, str):
        raise ConfigError(name, f"{_show(raw)} is not a string; quote the value")
    if required and not raw:
        raise ConfigError(name, "is empty; give a value")
    return raw


def read_list(name: str, raw: object, *, min_len: int = 0) -> list[Any]:
    """A JSON/YAML array with at least ``min_len`` items."""
    if isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple)):
        raise ConfigError(name, f"{_show(raw)} is not a list; write {name} as an array")
    if len(raw) < min_len:
        raise ConfigError(name, f"has {len(raw)} item(s); give at least {min_len}")
    return list(raw)


def read_map(name: str, raw: object) -> dict[str, Any]:
    """A JSON/YAML object."""
    if not isinstance(raw, Mapping):
        raise ConfigError(name, f"{_show(raw)} is not an object; write {name} as a mapping of names to values")
    return {str(k): v for k, v in raw.items()}


def read_str_map(name: str, raw: object) -> dict[str, str]:
    """A JSON/YAML object whose values are all strings."""
    out: dict[str, str] = {}
    for key, value in read_map(name, raw).items():
        out[key] = read_str(f"{name}.{key}", value, required=False)
    return out


def _show(raw: object) -> str:
    if raw is None:
        return "null"
    text = json.dumps(raw) if isinstance(raw, (list, dict, bool, int, float)) else repr(raw)
    return text if len(text) <= 80 else text[:77] + "..."


class Settings:
    """Flat string settings read by key: stripped values, typed getters, ``ConfigError`` naming the key."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values

    def raw(self, key: str) -> str | None:
        """The value as written (not stripped), or None."""
        return self.values.get(key)

    def str_(self, key: str, default: str = "") -> str:
        """The stripped value; ``default`` when absent."""
        value = self.values.get(key)
        return default if value is None else value.strip()

    def optional(self, key: str) -> str | None:
        """The stripped value, or None when absent or blank."""
        return self.str_(key) or None

    def required(self, key: str, why: str) -> str:
        """The stripped value; absent or blank is ``ConfigError(key, "is not set; <why>")``."""
        value = self.str_(key)
        if not value:
            raise ConfigError(key, f"is not set; {why}")
        return value

    def bool_(self, key: str, default: bool, *, words: tuple[frozenset[str], frozenset[str]] = _STRICT) -> bool:
        value = self.values.get(key)
        return default if value is None else read_bool(key, value, words=words)

    def int_(self, key: str, default: int, lo: int, hi: int) -> int:
        value = self.values.get(key)
        return default if value is None else read_int(key, value, lo, hi)

    def seconds(self, key: str, default: float, hi: float) -> float:
        value = self.values.get(key)
        return default if value is None else read_seconds(key, value, hi)

    def enum_(self, key: str, allowed: Collection[str], default: str, *, shown: Sequence[str] | None = None) -> str:
        """One of ``allowed``; absent or blank gives ``default``."""
        value = self.str_(key) or default
        return read_enum(key, value, list(allowed), shown=shown)

    def list_(self, key: str, default: Sequence[str], sep: str = ",") -> list[str]:
        """A ``sep``-separated list, items stripped, empty items dropped."""
        value = self.values.get(key)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(sep) if item.strip()]
