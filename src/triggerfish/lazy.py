"""Names a package exports but imports on first use (PEP 562), so that importing the package stays cheap.

    if not TYPE_CHECKING:
        __getattr__ = lazy_attributes(__name__, {"App": ("triggerfish.app", "App")}, globals())
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, table: dict[str, tuple[str, str]],
                    namespace: dict[str, Any]) -> Callable[[str], object]:
    """A module ``__getattr__`` importing ``table``'s names (name -> (module, attribute)) when first used."""

    def __getattr__(name: str) -> object:
        try:
            module, attribute = table[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(import_module(module), attribute)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    return __getattr__
