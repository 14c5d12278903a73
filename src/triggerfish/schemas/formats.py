"""Turn a registered schema into a decoder for its records' payloads: Avro, Protobuf, JSON Schema.

Each decoder takes the payload after the registry's header and returns plain Python values; ``to_json``
writes them as Lambda's EventRecordFormat JSON does. A payload that does not fit its schema raises
RecordSchemaError(DESERIALIZATION_ERROR); a schema that cannot be used, SchemaFormatError. Schemas that
reference other subjects get them: Avro's named types, Protobuf's imports (:mod:`.protobuf`), and JSON
Schema's ``$ref``s, resolved through the ``referencing`` library (no ``$ref`` is fetched from the network).
"""

from __future__ import annotations

import datetime
import decimal
import io
import json
import uuid
from typing import Any
from urllib.parse import urljoin

from triggerfish.schemas import protobuf
from triggerfish.schemas.errors import DESERIALIZATION_ERROR, RecordSchemaError, require
from triggerfish.schemas.text import AVRO, FORMATS, JSON, PROTOBUF, Decode, SchemaFormatError, SchemaText

__all__ = ["AVRO", "FORMATS", "JSON", "PROTOBUF", "Decode", "SchemaFormatError", "SchemaText", "decoder_for", "to_json"]


def decoder_for(schema: SchemaText) -> Decode:
    """The decoder for payloads written with ``schema`` (AVRO, PROTOBUF or JSON)."""
    if schema.data_format == AVRO:
        return _avro(schema.text, schema.references)
    if schema.data_format == PROTOBUF:
        return protobuf.decoder(schema)
    if schema.data_format == JSON:
        return _json_schema(schema.text, schema.references)
    raise SchemaFormatError(f"unsupported schema format {schema.data_format!r} (AVRO, PROTOBUF or JSON)")


def _avro(schema: str, references: tuple[tuple[str, str], ...]) -> Decode:
    fastavro = require("fastavro")
    require("fastavro.schema")
    named: dict[str, Any] = {}
    try:
        for _, text in references:  # named types the schema uses by name
            fastavro.parse_schema(json.loads(text), named_schemas=named)
        parsed = fastavro.parse_schema(json.loads(schema), named_schemas=named)
    except (ValueError, fastavro.schema.SchemaParseException, fastavro.schema.UnknownType) as exc:
        raise SchemaFormatError(f"not an Avro schema: {exc}") from None
    reader = fastavro.schemaless_reader

    def decode(payload: bytes) -> Any:
        try:
            return reader(io.BytesIO(payload), parsed, None)
        except Exception as exc:  # noqa: BLE001 - fastavro raises whatever the bytes provoke (EOFError, ValueError, ...)
            raise RecordSchemaError(DESERIALIZATION_ERROR,
                                    f"the Avro payload does not match the schema ({type(exc).__name__}: {exc})") from None
    return decode


def _json_schema(schema: str, references: tuple[tuple[str, str], ...]) -> Decode:
    jsonschema = require("jsonschema")
    referencing = require("referencing")
    require("referencing.jsonschema")
    try:
        document = json.loads(schema)
        cls = jsonschema.validators.validator_for(document)
        cls.check_schema(document)
        registry = _references(document, cls, references, jsonschema, referencing)
    except (ValueError, jsonschema.SchemaError, referencing.exceptions.CannotDetermineSpecification) as exc:
        raise SchemaFormatError(f"not a JSON Schema: {exc}") from None
    validator = cls(document, registry=registry)
    names = ", ".join(name for name, _ in references) or "none"

    def decode(payload: bytes) -> Any:
        try:
            value = json.loads(payload)
        except ValueError as exc:
            raise RecordSchemaError(DESERIALIZATION_ERROR, f"the payload is not JSON ({exc})") from None
        try:
            error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        except referencing.exceptions.Unresolvable as exc:
            raise SchemaFormatError(f"its $ref {exc.ref!r} resolves to none of its references ({names}); register "
                                    "the schema with a reference named as the $ref") from None
        if error is not None:
            where = "/".join(map(str, error.absolute_path)) or "the document"
            raise RecordSchemaError(DESERIALIZATION_ERROR,
                                    f"the JSON payload does not match the schema at {where}: {error.message}")
        return value
    return decode


def _references(document: Any, cls: Any, references: tuple[tuple[str, str], ...], jsonschema: Any,
                referencing: Any) -> Any:
    """A ``referencing.Registry`` holding each referenced schema under its reference name (what ``$ref`` says,
    as confluent-kafka's JSON deserializer registers them), that name resolved against the schema's ``$id``,
    and its own ``$id``."""
    spec = referencing.jsonschema.specification_with(cls.META_SCHEMA.get("$schema", ""),
                                                     default=referencing.jsonschema.DRAFT202012)
    base = document.get("$id", "") if isinstance(document, dict) else ""
    resources = []
    for name, text in references:
        contents = json.loads(text)
        jsonschema.validators.validator_for(contents, default=cls).check_schema(contents)
        resource = referencing.Resource.from_contents(contents, default_specification=spec)
        resources += [(name, resource)] + ([(urljoin(base, name), resource)] if base else [])
    return referencing.Registry().with_resources(resources).crawl()


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("latin-1")  # Avro's JSON encoding of bytes: one char per byte
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_plain).encode


def to_json(value: Any) -> bytes:
    """A decoded value as compact JSON text."""
    return _encode(value).encode()
