"""Protobuf schemas from a registry: their file descriptors, a pool of their messages, and which message a
record holds.

A registry gives each file (the schema and the files it imports, Confluent's ``references``) either as
a base64 ``FileDescriptorProto`` (Confluent's ``format=serialized``) or as ``.proto`` text (Glue, and
Apicurio for schemas registered as text), which :mod:`.protoc` compiles. A record names its message:

* Confluent: the message-index array (a path: top-level message, then nested ones), :mod:`.wire`.
* Glue: one unsigned varint, the index of the message among *all* the file's messages (nested and map
  entries included) sorted by full name: AWS's serializer (awslabs/aws-glue-schema-registry,
  serializer-deserializer/.../serializers/protobuf/MessageIndexFinder.java and ProtobufWireFormatEncoder.java,
  ``writeUInt32NoTag`` before the message bytes) writes it and its deserializer reads it the same way.
"""

from __future__ import annotations

import base64
import binascii
import importlib
from collections.abc import Callable, Sequence
from typing import Any

from triggerfish.schemas.errors import DESERIALIZATION_ERROR, RecordSchemaError, require
from triggerfish.schemas.protoc import ProtoCompileError, compile_proto
from triggerfish.schemas.text import GLUE, Decode, SchemaFormatError, SchemaText
from triggerfish.schemas.wire import glue_message_index, message_indexes

#: The name the schema's own file gets when the registry gives it none (references keep their import paths).
MAIN_NAME = "triggerfish_registry_schema.proto"


def serialized(text: str) -> Any | None:
    """The ``FileDescriptorProto`` of a base64 serialized schema, or None when ``text`` is not one (.proto text)."""
    descriptor_pb2 = require("google.protobuf.descriptor_pb2")
    DecodeError = require("google.protobuf.message").DecodeError  # noqa: N806 - the library's class
    try:
        return descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(text, validate=True))
    except (binascii.Error, DecodeError, ValueError):
        return None


def file_descriptors(text: str, references: Sequence[tuple[str, str]] = ()) -> tuple[Any, list[Any]]:
    """(the schema's FileDescriptorProto, every file to add to a pool, each after its imports)."""
    known: list[Any] = []
    texts: list[tuple[str, str]] = []
    names = {name for name, _ in references}
    main_name = MAIN_NAME if MAIN_NAME not in names else f"_{MAIN_NAME}"
    main: Any = None
    for name, body in [*references, ("", text)]:
        fd = serialized(body)
        if fd is None:
            texts.append((name or main_name, body))
            continue
        if name:
            fd.name = name  # registered under its import path, whatever name it was compiled with
        elif not fd.name or fd.name in names:
            fd.name = main_name
        known.append(fd)
        main = fd if not name else main
    if not texts:
        return main, known
    try:
        files = compile_proto(texts, known)
    except ProtoCompileError as exc:
        where = str(exc).replace(f"{main_name}:", "line ", 1)  # the schema's own file has no name of its own
        raise SchemaFormatError(f"the Protobuf schema does not compile: {where}") from None
    compiled = {f.name for f in files}
    files = [fd for fd in known if fd.name not in compiled] + files  # protoc's order: each after its imports
    if main is None:
        main = next(f for f in files if f.name == main_name)
    return main, files


def message_pool(files: Sequence[Any]) -> Any:
    """A DescriptorPool of ``files`` (each after its imports); imports that are none of them must be
    Google's well-known types, taken from the runtime's own pool."""
    descriptor_pb2 = require("google.protobuf.descriptor_pb2")
    descriptor_pool = require("google.protobuf.descriptor_pool")
    pool = descriptor_pool.DescriptorPool()
    default = descriptor_pool.Default()
    known = {f.name for f in files}
    added: set[str] = set()
    for f in files:
        for dep in f.dependency:
            if dep in known or dep in added:
                continue
            dep_fd = descriptor_pb2.FileDescriptorProto()
            try:
                if dep.startswith("google/protobuf/") and dep.endswith(".proto"):  # in the pool once imported
                    importlib.import_module(dep[:-len(".proto")].replace("/", ".") + "_pb2")
                default.FindFileByName(dep).CopyToProto(dep_fd)
            except (KeyError, ImportError):
                raise SchemaFormatError(f"the Protobuf schema imports {dep}: neither a reference nor a well-known "
                                        "type") from None
            pool.Add(dep_fd)
            added.add(dep)
    try:
        for f in files:
            pool.Add(f)
    except (TypeError, ValueError) as exc:  # a conflicting or incomplete file
        raise SchemaFormatError(f"the Protobuf schema cannot be loaded: {exc}") from None
    return pool


def confluent_message_name(fd: Any, indexes: Sequence[int]) -> str | None:
    """The full name of the message at a Confluent index path (top-level, then nested), None if there is none."""
    names = [fd.package] if fd.package else []
    messages = fd.message_type
    for i in indexes:
        if not 0 <= i < len(messages):
            return None
        names.append(messages[i].name)
        messages = messages[i].nested_type
    return ".".join(names)


def glue_message_names(fd: Any) -> list[str]:
    """The full names of all the file's messages, nested ones included, sorted: Glue's message indexes."""
    names: list[str] = []
    level = [(fd.package, m) for m in fd.message_type]
    while level:
        names += [f"{prefix}.{m.name}" if prefix else m.name for prefix, m in level]
        level = [(f"{prefix}.{m.name}" if prefix else m.name, n) for prefix, m in level for n in m.nested_type]
    return sorted(names)


def decoder(schema: SchemaText) -> Decode:
    """Decodes a record's payload (after the registry's header) to a dict, as protobuf's JSON mapping does."""
    message_factory = require("google.protobuf.message_factory")
    json_format = require("google.protobuf.json_format")
    DecodeError = require("google.protobuf.message").DecodeError  # noqa: N806 - the library's class
    main, files = file_descriptors(schema.text, schema.references)
    pool = message_pool(files)
    locate = _glue_locator(main) if schema.framing == GLUE else _confluent_locator(main)
    classes: dict[Any, Any] = {}

    def decode(payload: bytes) -> Any:
        key, name, start = locate(payload)
        cls = classes.get(key)
        if cls is None:
            cls = classes[key] = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        msg = cls()
        try:
            msg.ParseFromString(payload[start:])
        except DecodeError as exc:
            raise RecordSchemaError(DESERIALIZATION_ERROR, f"the Protobuf payload does not match the schema ({exc})") from None
        return json_format.MessageToDict(msg, preserving_proto_field_name=True)
    return decode


_Locate = Callable[[bytes], tuple[Any, str, int]]


def _confluent_locator(main: Any) -> _Locate:
    def locate(payload: bytes) -> tuple[Any, str, int]:
        indexes, start = message_indexes(payload)
        name = confluent_message_name(main, indexes)
        if name is None:
            raise RecordSchemaError(DESERIALIZATION_ERROR, f"message index {indexes} is not in the schema")
        return tuple(indexes), name, start
    return locate


def _glue_locator(main: Any) -> _Locate:
    names = glue_message_names(main)

    def locate(payload: bytes) -> tuple[Any, str, int]:
        index, start = glue_message_index(payload)
        if index >= len(names):
            raise RecordSchemaError(DESERIALIZATION_ERROR, f"message index {index} is not in the schema (it has "
                                    f"{len(names)} message types)")
        return index, names[index], start
    return locate
