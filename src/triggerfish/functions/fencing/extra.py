"""The third-party packages the site-fencing function needs, checked before any fencing module imports them.

They are installed with ``pip install 'triggerfish[fencing]'``. Today the core already depends on every
one of them, but a core that stops needing one must not break fencing with a bare ImportError: the
check names the missing package and the command that installs it.
"""

from __future__ import annotations

import importlib.util

from triggerfish.errors import ConfigError

#: Imported by fencing: httpx (Infinispan's REST API), boto3 (Global Accelerator, Route 53, ELBv2).
_REQUIRES = ("httpx", "boto3")
_INSTALL = "pip install 'triggerfish[fencing]'"


def _missing(names: tuple[str, ...] = _REQUIRES) -> list[str]:
    """The packages of ``names`` that cannot be imported."""
    out = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except ValueError:  # sys.modules[name] is None: the import is blocked
            found = False
        if not found:
            out.append(name)
    return out


def _require(names: tuple[str, ...] = _REQUIRES) -> None:
    """Raise ``ConfigError`` naming the missing packages and how to install them."""
    absent = _missing(names)
    if absent:
        raise ConfigError(
            "triggerfish.functions.fencing",
            f"needs {', '.join(absent)}, which {'is' if len(absent) == 1 else 'are'} not installed; run {_INSTALL}",
        )


_require()
