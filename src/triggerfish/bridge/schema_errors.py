"""The errors of the schema-registry formats, with the ``error_code`` Confluent's REST proxy gives them.

Strimzi's error body is ``{"error_code": <HTTP status>, "message"}``; Confluent REST clients of the
avro/protobuf/jsonschema formats also read Confluent's finer codes (42201 key schema missing, 42202
value schema missing, 42203 JSON conversion failed, 42205 invalid schema, 40403 schema not found), so
these errors carry one; ``bridge.errors.body_of`` writes it. Messages name the registry by its URL
without credentials.
"""

from __future__ import annotations

from triggerfish.errors import NotAcceptableError, NotFoundError, UnavailableError, UnprocessableError

KEY_SCHEMA_MISSING = 42201
VALUE_SCHEMA_MISSING = 42202
JSON_CONVERSION = 42203
INVALID_SCHEMA = 42205
SCHEMA_NOT_FOUND = 40403


class SchemaMissing(UnprocessableError):
    """Records have keys or values but the request names no schema for them (42201 / 42202)."""

    def __init__(self, message: str, error_code: int) -> None:
        super().__init__(message)
        self.error_code = error_code


class SchemaConversionError(UnprocessableError):
    """A record's JSON does not fit its schema (42203), or the schema itself is invalid (42205)."""

    def __init__(self, message: str, error_code: int = JSON_CONVERSION) -> None:
        super().__init__(message)
        self.error_code = error_code


class SchemaNotFound(NotFoundError):
    """The registry has no schema with that id or subject (40403)."""

    error_code = SCHEMA_NOT_FOUND

    def __init__(self, message: str, what: str) -> None:
        super().__init__(message, what)


class RegistryUnavailable(UnavailableError):
    """The registry cannot be reached, or refuses the bridge's own credentials: a 503 naming it."""


class RecordNotDecodable(NotAcceptableError):
    """A polled record is not framed for a registry, or does not decode with its writer schema (406)."""
