"""Decode framed records with their registry's schemas, cached by schema id.

A schema fetched once is kept for the life of the decoder, so records whose schemas are cached
decode while the registry is down; only a new id needs the registry (RegistryUnavailable then).
An id the registry does not have (or whose schema cannot be used) is remembered for ``MISSING_TTL_S``,
so a topic full of records with an unknown id does not ask the registry once per record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from triggerfish.schemas.errors import DESERIALIZATION_ERROR, RecordSchemaError
from triggerfish.schemas.formats import Decode, SchemaFormatError, decoder_for
from triggerfish.schemas.registries import Registry

MISSING_TTL_S = 30.0


@dataclass(frozen=True)
class Decoded:
    schema_id: str
    #: AVRO, PROTOBUF or JSON (Lambda's ``dataFormat``).
    data_format: str
    #: The bytes after the registry's header (EventRecordFormat SOURCE).
    payload: bytes
    #: The decoded value as plain Python data (EventRecordFormat JSON, FilterCriteria).
    value: Any


class SchemaDecoder:
    """Decodes records framed for one registry; one thread at a time (the poll thread)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._schemas: dict[str, tuple[str, Decode]] = {}
        self._missing: dict[str, tuple[float, RecordSchemaError]] = {}

    def cached(self, schema_id: str) -> bool:
        return schema_id in self._schemas

    def decode(self, data: bytes) -> Decoded:
        """RecordSchemaError for a record that cannot be decoded; RegistryUnavailable while a new id cannot be fetched."""
        try:
            framed = self.registry.frame(data)
        except RecordSchemaError as exc:
            raise RecordSchemaError(exc.condition, f"{self._label()}: {exc}; produce it with a serializer of this "
                                    "registry, or leave its attribute out of SchemaValidationConfigs") from None
        schema = self._schemas.get(framed.schema_id)
        if schema is None:
            schema = self._schemas[framed.schema_id] = self._load_once(framed.schema_id)
        data_format, decode = schema
        try:
            value = decode(framed.payload)
        except SchemaFormatError as exc:  # found while decoding: a JSON Schema $ref that resolves to nothing
            raise self._unusable(framed.schema_id, exc) from None
        except RecordSchemaError as exc:
            raise RecordSchemaError(exc.condition, f"{self._label()}: schema id {framed.schema_id} ({data_format}): "
                                    f"{exc}; the producer wrote it with another schema or corrupted it: fix the "
                                    "producer (the record itself cannot be read)") from None
        return Decoded(framed.schema_id, data_format, framed.payload, value)

    def _label(self) -> str:
        url = self.registry.url
        return f"Glue registry {url}" if url.startswith("arn:") else f"schema registry {url}"

    def _load_once(self, schema_id: str) -> tuple[str, Decode]:
        now = time.monotonic()
        missing = self._missing.get(schema_id)
        if missing is not None and now - missing[0] < MISSING_TTL_S:
            raise missing[1]
        try:
            return self._load(schema_id)
        except RecordSchemaError as exc:
            if len(self._missing) > 10_000:
                self._missing.clear()
            self._missing[schema_id] = (now, exc)
            raise

    def _load(self, schema_id: str) -> tuple[str, Decode]:
        schema = self.registry.fetch(schema_id)
        try:
            return schema.data_format, decoder_for(schema)
        except SchemaFormatError as exc:
            raise self._unusable(schema_id, exc) from None

    def _unusable(self, schema_id: str, exc: SchemaFormatError) -> RecordSchemaError:
        what = "schema version" if self.registry.url.startswith("arn:") else "schema id"
        return RecordSchemaError(DESERIALIZATION_ERROR, f"{self._label()}: {what} {schema_id}: {exc}; fix the schema "
                                 "in the registry (records written with it cannot be decoded until then)")
