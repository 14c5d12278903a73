"""Turn a registered schema into a decoder for its records' payloads: Avro, Protobuf, JSON Schema.

Each decoder takes the payload after the registry's header and returns plain Python values; ``to_json``
writes them as Lambda's EventRecordFormat JSON does. A payload that does not fit its schema raises
RecordSchemaError(DESERIALIZATION_ERROR).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from triggerfish.schemas.errors import DESERIALIZATION_ERROR, RecordSchemaError, require
from triggerfish.schemas.wire import message_indexes

AVRO, PROTOBUF, JSON = "AVRO", "PROTOBUF", "JSON"
FORMATS = (AVRO, PROTOBUF, JSON)

#: A payload decoder: payload bytes -> the record's value as plain Python data.
Decode = Callable[[bytes], Any]


class SchemaFormatError(ValueError):
    """The registry's schema text cannot be used (not Avro/JSON, not a FileDescriptorProto)."""


@dataclass(frozen=True)
class SchemaText:
    """A schema as a registry gives it: its format, its text, and the schemas it references (Confluent's
    ``references``: (name, text) pairs, each after the ones it references itself)."""

    data_format: str
    text: str
    references: tuple[tuple[str, str], ...] = ()


def decoder_for(schema: SchemaText) -> Decode:
    """The decoder for payloads written with ``schema`` (AVRO, PROTOBUF or JSON)."""
    if schema.data_format == AVRO:
        return _avro(schema.text, schema.references)
    if schema.data_format == PROTOBUF:
        return _protobuf(schema.text, schema.references)
    if schema.data_format == JSON:
        return _json_schema(schema.text)
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


def _file_descriptor(text: str) -> Any:
    descriptor_pb2 = require("google.protobuf.descriptor_pb2")
    DecodeError = require("google.protobuf.message").DecodeError  # noqa: N806 - the library's class
    try:
        return descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(text, validate=True))
    except (binascii.Error, DecodeError, ValueError):
        raise SchemaFormatError("the Protobuf schema is not a base64 FileDescriptorProto (ask the registry for "
                                "format=serialized)") from None


def _protobuf(schema: str, references: tuple[tuple[str, str], ...]) -> Decode:
    descriptor_pb2 = require("google.protobuf.descriptor_pb2")
    descriptor_pool = require("google.protobuf.descriptor_pool")
    message_factory = require("google.protobuf.message_factory")
    json_format = require("google.protobuf.json_format")
    DecodeError = require("google.protobuf.message").DecodeError  # noqa: N806 - the library's class
    fd = _file_descriptor(schema)
    pool = descriptor_pool.DescriptorPool()
    default = descriptor_pool.Default()
    files = [fd]
    for name, text in references:  # the imports other subjects hold, registered under their import path
        ref = _file_descriptor(text)
        ref.name = name
        files.insert(len(files) - 1, ref)
    known = {f.name for f in files}
    added: set[str] = set()
    for f in files:
        for dep in f.dependency:
            if dep in known or dep in added:
                continue
            try:
                dep_fd = descriptor_pb2.FileDescriptorProto()
                default.FindFileByName(dep).CopyToProto(dep_fd)
            except KeyError:
                raise SchemaFormatError(f"the Protobuf schema imports {dep}: neither a reference nor a well-known "
                                        "type") from None
            pool.Add(dep_fd)
            added.add(dep)
    if not fd.name:
        fd.name = "registry.proto"
    for f in files:
        pool.Add(f)
    classes: dict[tuple[int, ...], Any] = {}

    def message_class(indexes: list[int]) -> Any:
        key = tuple(indexes)
        cls = classes.get(key)
        if cls is None:
            name, messages = fd.package, fd.message_type
            for i in indexes:
                if not 0 <= i < len(messages):
                    raise RecordSchemaError(DESERIALIZATION_ERROR, f"message index {indexes} is not in the schema")
                name = f"{name}.{messages[i].name}" if name else messages[i].name
                messages = messages[i].nested_type
            cls = classes[key] = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        return cls

    def decode(payload: bytes) -> Any:
        indexes, start = message_indexes(payload)  # Confluent framing: the message-index array first
        msg = message_class(indexes)()
        try:
            msg.ParseFromString(payload[start:])
        except DecodeError as exc:
            raise RecordSchemaError(DESERIALIZATION_ERROR, f"the Protobuf payload does not match the schema ({exc})") from None
        return json_format.MessageToDict(msg, preserving_proto_field_name=True)
    return decode


def _json_schema(schema: str) -> Decode:
    jsonschema = require("jsonschema")
    try:
        document = json.loads(schema)
        cls = jsonschema.validators.validator_for(document)
        cls.check_schema(document)
    except (ValueError, jsonschema.SchemaError) as exc:
        raise SchemaFormatError(f"not a JSON Schema: {exc}") from None
    validator = cls(document)

    def decode(payload: bytes) -> Any:
        try:
            value = json.loads(payload)
        except ValueError as exc:
            raise RecordSchemaError(DESERIALIZATION_ERROR, f"the payload is not JSON ({exc})") from None
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            where = "/".join(map(str, error.absolute_path)) or "the document"
            raise RecordSchemaError(DESERIALIZATION_ERROR,
                                    f"the JSON payload does not match the schema at {where}: {error.message}")
        return value
    return decode


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
