"""Read configuration and reject bad values with one line naming the field, the value and the fix.

Every configuration triggerfish reads goes through this module, in one of two shapes:

* ``Fields``: a structured object (a function or mapping from YAML or the control API), read field by
  field. Errors are ``InvalidParameterError`` carrying Lambda's own text as ``lambda_message`` (the
  control API returns it verbatim), e.g. ``1 validation error detected: Value 'X' at 'batchSize' failed
  to satisfy constraint: Member must have value less than or equal to 10000``, and a ``str()`` that also
  names the config path and the allowed range (what a YAML user needs).
* ``Settings``: flat string settings (environment variables, Java ``.properties``), read key by key.
  Errors are ``ConfigError`` naming the key.

Both are built on the typed readers below (``read_bool``, ``read_int``, ``read_seconds``, ``read_enum``,
``read_str``, ``read_list``, ``read_map``, ``read_str_map``), which any other document (a webhook
payload, say) uses directly.
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any, overload

# Re-exported only because esm.engine still imports it from here; its home is triggerfish.errors.
from triggerfish.errors import InvalidParameterError as InvalidParameterError
from triggerfish.errors import ValidationError

_MISSING: Any = object()


def lambda_name(field: str) -> str:
    """Lambda's wire name in validation messages: ``BatchSize`` -> ``batchSize``."""
    return field[:1].lower() + field[1:]


def shape_error(field: str, value: Any, constraint: str, hint: str = "") -> ValidationError:
    name = field.rsplit(".", 1)[-1].split("[", 1)[0]
    text = (
        f"1 validation error detected: Value '{_show(value)}' at '{lambda_name(name)}' failed to satisfy "
        f"constraint: {constraint}"
    )
    return ValidationError(field, text, hint)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


class Fields:
    """One config object being read; every getter validates and removes the field.

    ``done()`` rejects whatever is left, suggesting the closest known name for typos.
    """

    def __init__(self, data: Any, where: str, known: Iterable[str]) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise InvalidParameterError(where or "config", f"expected a mapping of fields, got {type(data).__name__}")
        self.data = dict(data)
        self.where = where
        self.known = list(known)

    def path(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def has(self, name: str) -> bool:
        return name in self.data and self.data[name] is not None

    def raw(self, name: str, default: Any = None) -> Any:
        value = self.data.pop(name, _MISSING)
        return default if value is _MISSING or value is None else value

    def require(self, name: str) -> Any:
        if not self.has(name):
            raise InvalidParameterError(self.path(name), f"{name} is required", f"add {name} to {self.where or 'the config'}")
        return self.data[name]

    @overload
    def int_(self, name: str, lo: int, hi: int, default: int, *, hint: str = "") -> int: ...
    @overload
    def int_(self, name: str, lo: int, hi: int, default: None = None, *, hint: str = "") -> int | None: ...

    def int_(self, name: str, lo: int, hi: int, default: int | None = None, *, hint: str = "") -> int | None:
        value = self.raw(name, _MISSING)
        if value is _MISSING:
            return default
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParameterError(self.path(name), f"Value '{_show(value)}' is not an integer", f"allowed {lo}..{hi}")
        if value > hi:
            raise shape_error(
                self.path(name), value, f"Member must have value less than or equal to {hi}", hint or f"allowed {lo}..{hi}"
            )
        if value < lo:
            raise shape_error(
                self.path(name), value, f"Member must have value greater than or equal to {lo}", hint or f"allowed {lo}..{hi}"
            )
        return int(value)

    def bool_(self, name: str, default: bool) -> bool:
        value = self.raw(name, _MISSING)
        if value is _MISSING:
            return default
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise InvalidParameterError(self.path(name), f"Value '{_show(value)}' is not a boolean", "use true or false")
        return value

    @overload
    def str_(self, name: str, default: str, *, min_len: int = 0, max_len: int | None = None,
             pattern: str | None = None, hint: str = "") -> str: ...
    @overload
    def str_(self, name: str, default: None = None, *, min_len: int = 0, max_len: int | None = None,
             pattern: str | None = None, hint: str = "") -> str | None: ...

    def str_(
        self,
        name: str,
        default: str | None = None,
        *,
        min_len: int = 0,
        max_len: int | None = None,
        pattern: str | None = None,
        hint: str = "",
    ) -> str | None:
        value = self.raw(name, _MISSING)
        if value is _MISSING:
            return default
        return check_str(self.path(name), value, min_len=min_len, max_len=max_len, pattern=pattern, hint=hint)

    @overload
    def enum_(self, name: str, allowed: list[str], default: str) -> str: ...
    @overload
    def enum_(self, name: str, allowed: list[str], default: None = None) -> str | None: ...

    def enum_(self, name: str, allowed: list[str], default: str | None = None) -> str | None:
        value = self.raw(name, _MISSING)
        if value is _MISSING:
            return default
        if value not in allowed:
            raise shape_error(
                self.path(name),
                value,
                f"Member must satisfy enum value set: [{', '.join(allowed)}]",
                f"use one of {', '.join(allowed)}",
            )
        return str(value)

    @overload
    def list_(self, name: str, *, min_len: int = 0, max_len: int | None = None, default: list[Any]) -> list[Any]: ...
    @overload
    def list_(self, name: str, *, min_len: int = 0, max_len: int | None = None,
              default: None = None) -> list[Any] | None: ...

    def list_(
        self, name: str, *, min_len: int = 0, max_len: int | None = None, default: list[Any] | None = None
    ) -> list[Any] | None:
        value = self.raw(name, _MISSING)
        if value is _MISSING:
            return default
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise InvalidParameterError(self.path(name), f"Value '{_show(value)}' is not a list", f"write {name} as a YAML list")
        if max_len is not None and len(value) > max_len:
            raise shape_error(self.path(name), value, f"Member must have length less than or equal to {max_len}",
                              f"at most {max_len} item(s)")
        if len(value) < min_len:
            raise shape_error(self.path(name), value, f"Member must have length greater than or equal to {min_len}",
                              f"at least {min_len} item(s)")
        return list(value)

    @overload
    def dict_(self, name: str, default: dict[str, Any]) -> dict[str, Any]: ...
    @overload
    def dict_(self, name: str, default: None = None) -> dict[str, Any] | None: ...

    def dict_(self, name: str, default: dict[str, Any] | None = None) -> dict[str, Any] | None:
        value = self.raw(name, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, Mapping):
            raise InvalidParameterError(self.path(name), f"Value '{_show(value)}' is not an object", f"write {name} as a mapping")
        return dict(value)

    def done(self) -> None:
        for name in self.data:
            close = difflib.get_close_matches(str(name), self.known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known fields: {', '.join(self.known)}"
            raise InvalidParameterError(self.path(str(name)), f"Unknown field '{name}'", hint)


def check_str(
    path: str,
    value: Any,
    *,
    min_len: int = 0,
    max_len: int | None = None,
    pattern: str | None = None,
    hint: str = "",
) -> str:
    if not isinstance(value, str):
        raise InvalidParameterError(path, f"Value '{_show(value)}' is not a string", hint or "quote the value")
    if max_len is not None and len(value) > max_len:
        raise shape_error(path, value, f"Member must have length less than or equal to {max_len}",
                          hint or f"at most {max_len} characters")
    if len(value) < min_len:
        raise shape_error(path, value, f"Member must have length greater than or equal to {min_len}",
                          hint or f"at least {min_len} character(s)")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise shape_error(path, value, f"Member must satisfy regular expression pattern: {pattern}", hint)
    return value
