"""What can go wrong between a framed record and its schema, as one-line messages with the fix.

``RecordSchemaError`` is the record's fault (Lambda's ``SCHEMA_NOT_FOUND`` / ``DESERIALIZATION_ERROR``:
the record goes to the on-failure destination or is dropped); ``RegistryUnavailable`` is the registry's
(unreachable, wrong credential): the record is retried, never dropped. Messages name the registry by
its URL without credentials.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from triggerfish.errors import TriggerfishError

SCHEMA_NOT_FOUND = "SCHEMA_NOT_FOUND"
DESERIALIZATION_ERROR = "DESERIALIZATION_ERROR"


def safe_url(url: str) -> str:
    """``url`` without a ``user:password@`` part."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class SchemaRegistryError(TriggerfishError):
    """Base of the schema registry errors."""


class RecordSchemaError(SchemaRegistryError):
    """A record that cannot be decoded: ``condition`` is SCHEMA_NOT_FOUND or DESERIALIZATION_ERROR."""

    def __init__(self, condition: str, message: str) -> None:
        super().__init__(message)
        self.condition = condition

    def at(self, where: str) -> RecordSchemaError:
        """The same error with the record's ``topic-partition@offset`` in its message."""
        return RecordSchemaError(self.condition, f"{where}: {self}")


class MissingExtra(SchemaRegistryError):
    """A library schema registries need is not installed (the ``schemas`` extra)."""

    def __init__(self, module: str) -> None:
        super().__init__(f"schema registries need the schemas extra, and {module} is missing: "
                         "pip install 'triggerfish[schemas]'")


def require(module: str) -> Any:
    """Import ``module`` when a mapping first needs it (mappings without a registry never pay for it)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(module) from None


class RegistryUnavailable(SchemaRegistryError):
    """The registry did not answer, or refused the credential: retry later, drop nothing."""

    def at(self, where: str) -> RegistryUnavailable:
        return RegistryUnavailable(f"{where}: {self}")
