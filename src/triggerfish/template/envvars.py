"""``--env-vars env.json``: ``sam local``'s environment-variable overrides, same file, same meaning.

The file maps a function's logical id (or its name) to variables, and ``Parameters`` to variables for
every function; a function's own entry wins over ``Parameters``. As under ``sam local``, only variables
the template declares for that function (``Environment.Variables``, Globals included) are replaced;
others in the file are ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from triggerfish.errors import ConfigError

EnvVars = dict[str, dict[str, Any]]


def read(path: Path | None) -> EnvVars:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError("--env-vars", f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError("--env-vars", f"{path} line {exc.lineno}: {exc.msg} (not valid JSON)") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError("--env-vars", f"{path} must be a JSON object of objects: "
                                        '{"FunctionLogicalId": {"VAR": "value"}, "Parameters": {"VAR": "value"}}')
    return data


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def apply(env_vars: EnvVars, declared: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``declared`` with the file's values for ``Parameters``, then for each of ``names`` (logical id, name)."""
    out = dict(declared)
    for scope in ("Parameters", *names):
        for key, value in env_vars.get(scope, {}).items():
            if key in declared:
                out[key] = _text(value)
    return out
