"""The avro, protobuf and jsonschema embedded formats: records' JSON to registry-framed bytes and back.

Produce bodies are Confluent REST proxy v2's: ``records`` plus ``value_schema`` (registered under the
subject ``<topic>-value``, TopicNameStrategy) or ``value_schema_id``, and the same for keys. Bytes
are written by confluent-kafka's own serializers and read by its deserializers, so the wire format is
exactly theirs (magic byte 0, a 4-byte schema id, for Protobuf the message indexes). Protobuf records
are framed and read with confluent-kafka's frame code (``SchemaId``) and the writer's schema, since its
serializer and deserializer need a generated message class and a schema in serialized form. Avro goes
through Avro's JSON encoding (:mod:`.avro_json`). A Protobuf ``value_schema`` / ``key_schema`` is
``.proto`` text (as Confluent's REST proxy takes it; compiled with protoc, :mod:`triggerfish.schemas.protoc`)
or the registry's serialized form (a base64 ``FileDescriptorProto``, what confluent-kafka registers);
records are written with its first message, as the REST proxy does. Registered Protobuf schemas that
import other subjects (``references``) get those files in their pool.
Everything here blocks on the registry and runs in a worker thread.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from confluent_kafka.serialization import MessageField, SerializationContext

from triggerfish.bridge import avro_json
from triggerfish.bridge.formats import Format, dumps
from triggerfish.bridge.produce_body import OutRecord, records_of
from triggerfish.bridge.schema_errors import (
    INVALID_SCHEMA,
    KEY_SCHEMA_MISSING,
    VALUE_SCHEMA_MISSING,
    RecordNotDecodable,
    SchemaConversionError,
    SchemaMissing,
)
from triggerfish.bridge.schema_registry import SchemaRegistry, registry_failures
from triggerfish.errors import TriggerfishError
from triggerfish.schemas.protobuf import confluent_message_name, file_descriptors, message_pool
from triggerfish.schemas.text import SchemaFormatError

# The schemas extra (SchemaRegistry refuses to start without it) is imported where it is used: only a
# bridge with a registry configured pays its memory (a third of an idle bridge's).
if TYPE_CHECKING:
    from confluent_kafka.schema_registry import Schema
    from google.protobuf.message import Message  # type: ignore[import-untyped, unused-ignore]

_FIELDS = {"key": MessageField.KEY, "value": MessageField.VALUE}
_Serialize = Callable[[Any, SerializationContext], bytes | None]
#: Given a polled record's topic, partition and offset: the decoder of its key and value.
RecordDecoders = Callable[[str, int, int], Callable[[bytes, str], Any]]


@dataclass(frozen=True)
class Produced:
    """A produce body in a registry format, serialized: the records and the schema ids they were written with."""

    records: list[OutRecord]
    key_schema_id: int | None
    value_schema_id: int | None


class SchemaCodec:
    """Serializers and deserializers of the three formats over one registry, cached by schema id."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry
        self._serializers: dict[tuple[Format, int], _Serialize] = {}
        self._deserializers: dict[Format, Callable[[bytes, SerializationContext], Any]] = {}
        self._message_classes: dict[tuple[int, tuple[int, ...]], type[Message]] = {}
        self._avro_schemas: dict[int, Any] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------ producing

    def produce_body(self, doc: dict[str, Any], fmt: Format, topic: str, to_partition: bool) -> Produced:
        """Serialize a produce body (already parsed by ``produce_body.parse_record_list``)."""
        ids: dict[str, int | None] = {}
        for what in ("key", "value"):
            ids[what] = self._schema_id(doc, fmt, topic, what)

        def encode(obj: Any, what: str, index: int) -> bytes | None:
            if obj is None:
                return None
            schema_id = ids[what]
            if schema_id is None:
                code = KEY_SCHEMA_MISSING if what == "key" else VALUE_SCHEMA_MISSING
                raise SchemaMissing(f"Request includes {what}s and uses the {fmt.value} format, which needs a schema, "
                                    f"but has neither {what}_schema nor {what}_schema_id; add one of them", code)
            return self._serialize(fmt, schema_id, topic, what, obj, index)

        records = records_of(doc, encode, to_partition, any_json=True)
        return Produced(records, ids["key"], ids["value"])

    def _schema_id(self, doc: dict[str, Any], fmt: Format, topic: str, what: str) -> int | None:
        text, schema_id = doc.get(f"{what}_schema"), doc.get(f"{what}_schema_id")
        if text is not None and schema_id is not None:
            raise SchemaConversionError(f"Give {what}_schema or {what}_schema_id, not both", INVALID_SCHEMA)
        if schema_id is not None:
            if isinstance(schema_id, bool) or not isinstance(schema_id, int) or schema_id < 0:
                raise SchemaConversionError(f"{what}_schema_id must be a schema id (a whole number), not {schema_id!r}",
                                            INVALID_SCHEMA)
            self.registry.schema(schema_id, fmt.value, f"{what}_schema_id")  # it exists and is of this format
            return schema_id
        if text is None:
            return None
        if not isinstance(text, str):
            text = json_text(text, fmt, what)
        if fmt is Format.PROTOBUF:
            _descriptors(text, f"{what}_schema")  # compiles, or the request is refused before anything is registered
        subject = f"{topic}-{what}"
        return self.registry.register(subject, text, fmt.value, f"{what}_schema")

    def _serialize(self, fmt: Format, schema_id: int, topic: str, what: str, obj: Any, index: int) -> bytes | None:
        serialize = self._serializer(fmt, schema_id)
        ctx = SerializationContext(topic, _FIELDS[what])
        with self.registry.errors(f"schema id {schema_id}", f"/records/{index}/{what}"):
            try:
                if fmt is Format.PROTOBUF:
                    from google.protobuf import json_format  # type: ignore[import-untyped, unused-ignore]

                    msg_class = self._message_classes[(schema_id, (0,))]
                    obj = json_format.ParseDict(obj, msg_class())
                elif fmt is Format.AVRO:
                    obj = avro_json.from_json(obj, self._avro_schema(schema_id))
                return serialize(obj, ctx)
            except TriggerfishError:
                raise
            except registry_failures():
                raise
            except Exception as exc:  # each serializer has its own error types; all mean "does not fit"
                raise SchemaConversionError(
                    f"Conversion of JSON to {fmt.value} failed for /records/{index}/{what}: it does not match schema "
                    f"id {schema_id} (subject {topic}-{what}) in {self.registry.url}: {_reason(exc)}. Fix the record, "
                    "or send a schema that describes it.") from None
        raise AssertionError("unreachable")

    def _serializer(self, fmt: Format, schema_id: int) -> _Serialize:
        with self._lock:
            cached = self._serializers.get((fmt, schema_id))
        if cached is not None:
            return cached
        schema = self.registry.schema(schema_id, fmt.value, f"schema id {schema_id}")
        conf = {"auto.register.schemas": False, "use.schema.id": schema_id}
        client = self.registry.client
        serializer: _Serialize
        if fmt is Format.AVRO:
            from confluent_kafka.schema_registry.avro import AvroSerializer

            serializer = AvroSerializer(client, schema, conf=conf)
        elif fmt is Format.JSONSCHEMA:
            from confluent_kafka.schema_registry.json_schema import JSONSerializer

            serializer = JSONSerializer(schema, client, conf=conf)
        else:
            from confluent_kafka.schema_registry.common.serde import SchemaId

            self._message_classes[(schema_id, (0,))] = self._message_class(schema, f"schema id {schema_id}")
            frame = SchemaId("PROTOBUF", schema_id, None, [0]).id_to_bytes()  # magic byte, id, message index [0]
            serializer = lambda msg, ctx: frame + msg.SerializeToString()  # noqa: E731
        with self._lock:
            self._serializers[(fmt, schema_id)] = serializer
        return serializer

    # ------------------------------------------------------------ consuming

    def decoder(self, fmt: Format) -> RecordDecoders:
        """For a consumer of ``fmt``: given a record's topic, partition and offset, its key/value decoder."""
        deserialize = self._deserializer(fmt)

        def for_record(topic: str, partition: int, offset: int) -> Callable[[bytes, str], Any]:
            def decode(data: bytes, what: str) -> Any:
                where = f"the {what} of {topic}-{partition}@{offset}"
                if len(data) < 5 or data[0] != 0:
                    raise RecordNotDecodable(
                        f"Cannot decode {where}: it is not framed for a schema registry (magic byte 0 and a schema id); "
                        f"it was not written by a registry serializer. Consume it with the binary format instead of "
                        f"{fmt.value}.")
                schema_id = int.from_bytes(data[1:5], "big")
                with self.registry.errors(f"schema id {schema_id}", where):
                    try:
                        return deserialize(data, SerializationContext(topic, _FIELDS[what]))
                    except SchemaConversionError as exc:  # the writer's schema is unusable (a .proto that does not compile)
                        raise RecordNotDecodable(f"Cannot decode {where}: {exc} Consume it with the binary format "
                                                 "to see its bytes.") from None
                    except TriggerfishError:
                        raise
                    except registry_failures():
                        raise
                    except Exception as exc:  # each deserializer has its own error types
                        raise RecordNotDecodable(
                            f"Cannot decode {where} with schema id {schema_id} from {self.registry.url}: "
                            f"{_reason(exc)}. Consume it with the binary format to see its bytes.") from None
                raise AssertionError("unreachable")
            return decode
        return for_record

    def _deserializer(self, fmt: Format) -> Callable[[bytes, SerializationContext], Any]:
        with self._lock:
            cached = self._deserializers.get(fmt)
            if cached is not None:
                return cached
            client = self.registry.client
            deserializer: Callable[[bytes, SerializationContext], Any]
            if fmt is Format.AVRO:
                from confluent_kafka.schema_registry.avro import AvroDeserializer

                avro = AvroDeserializer(client)
                deserializer = lambda data, ctx: avro_json.to_json(  # noqa: E731
                    avro(data, ctx), self._avro_schema(int.from_bytes(data[1:5], "big")))
            elif fmt is Format.JSONSCHEMA:
                from confluent_kafka.schema_registry.json_schema import JSONDeserializer

                deserializer = JSONDeserializer(None, schema_registry_client=client)
            else:
                deserializer = self._protobuf_json
            self._deserializers[fmt] = deserializer
            return deserializer

    def _avro_schema(self, schema_id: int) -> Any:
        parsed = self._avro_schemas.get(schema_id)
        if parsed is None:
            schema = self.registry.schema(schema_id, "avro", f"schema id {schema_id}")
            parsed = self._avro_schemas[schema_id] = avro_json.parse(schema.schema_str or "")
        return parsed

    def _protobuf_json(self, data: bytes, ctx: SerializationContext) -> Any:
        # confluent-kafka's ProtobufDeserializer parses with the message class it was built with, and the
        # bridge has none: the writer's schema (by id) and message indexes of the frame give the class
        from confluent_kafka.schema_registry.common.serde import SchemaId
        from google.protobuf import json_format

        frame = SchemaId("PROTOBUF")
        payload = frame.from_bytes(io.BytesIO(data))
        schema_id, indexes = frame.id or 0, tuple(frame.message_indexes or [0])
        key = (schema_id, indexes)
        msg_class = self._message_classes.get(key)
        if msg_class is None:
            schema = self.registry.schema(schema_id, "protobuf", f"schema id {schema_id}")
            msg_class = self._message_classes[key] = self._message_class(schema, f"schema id {schema_id}", indexes)
        return json_format.MessageToDict(msg_class.FromString(payload.read()), preserving_proto_field_name=True)


    def _message_class(self, schema: Schema, what: str, indexes: tuple[int, ...] = (0,)) -> type[Message]:
        """The class of a Protobuf schema's message at ``indexes`` (top-level, then nested; producing uses the first),
        with the files it imports from other subjects (``references``) in its pool."""
        fd, files = _descriptors(schema.schema_str or "", what, self.registry.references(schema, what))
        if not fd.message_type:
            raise SchemaConversionError(f"Protobuf {what} defines no message", INVALID_SCHEMA)
        try:
            pool = message_pool(files)
        except SchemaFormatError as exc:
            raise SchemaConversionError(f"Protobuf {what}: {exc}", INVALID_SCHEMA) from None
        name = confluent_message_name(fd, indexes)
        if name is None:
            raise RecordNotDecodable(f"Protobuf {what} has no message at index path {list(indexes)}")
        from google.protobuf.message_factory import GetMessageClass  # type: ignore[import-untyped, unused-ignore]

        cls: type[Message] = GetMessageClass(pool.FindMessageTypeByName(name))
        return cls


def json_text(schema: Any, fmt: Format, what: str) -> str:
    """A schema sent as a JSON object (not a string): Avro and JSON Schema allow it; Protobuf does not."""
    if fmt is Format.PROTOBUF:
        raise SchemaConversionError(f"{what}_schema must be a string for protobuf", INVALID_SCHEMA)
    return dumps(schema).decode()


def _descriptors(text: str, what: str, references: list[tuple[str, str]] | None = None) -> tuple[Any, list[Any]]:
    """The schema's FileDescriptorProto and the files of a pool for it, from .proto text or the serialized form."""
    try:
        return file_descriptors(text, references or ())
    except SchemaFormatError as exc:
        raise SchemaConversionError(f"{what} is not a usable Protobuf schema: {exc}. It must be .proto text that protoc "
                                    "compiles (importing Google's well-known types or its registered references), or "
                                    "the registry's serialized form (a base64 FileDescriptorProto).",
                                    INVALID_SCHEMA) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
