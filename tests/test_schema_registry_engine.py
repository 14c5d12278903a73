"""The engine with a SchemaRegistryConfig against the real broker and a real registry (Apicurio):
records produced with confluent-kafka's own serializers reach the handler decoded, as Lambda delivers them."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from esm_helpers import RECORDER, function_config, mapping_config, produce, read_invocations, wait_until, write_handler

pytestmark = pytest.mark.kafka

AVRO_SCHEMA = json.dumps({"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "string"}, {"name": "qty", "type": "int"}, {"name": "note", "type": ["null", "string"],
                                                                         "default": None}]})
JSON_SCHEMA = json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "title": "Order", "type": "object",
                          "properties": {"id": {"type": "string"}, "qty": {"type": "integer"}},
                          "required": ["id", "qty"]})
ORDERS = [{"id": "a-1", "qty": 1, "note": None}, {"id": "b-2", "qty": 2, "note": "gift"}, {"id": "a-3", "qty": 3,
                                                                                          "note": None}]


def order_class() -> Any:
    """A Protobuf message class ``shop.Order {string id = 1; int32 qty = 2;}`` built at run time."""
    fd = descriptor_pb2.FileDescriptorProto(name="order.proto", package="shop", syntax="proto3")
    msg = fd.message_type.add(name="Order")
    msg.field.add(name="id", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    msg.field.add(name="qty", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order")), fd


def serialize(registry: str, topic: str, fmt: str, orders: list[dict[str, Any]]) -> list[bytes]:
    client = SchemaRegistryClient({"url": registry})
    ctx = SerializationContext(topic, MessageField.VALUE)
    if fmt == "AVRO":
        avro = AvroSerializer(client, AVRO_SCHEMA)
        return [avro(o, ctx) for o in orders]
    if fmt == "JSON":
        js = JSONSerializer(JSON_SCHEMA, client)
        return [js({"id": o["id"], "qty": o["qty"]}, ctx) for o in orders]
    cls, _ = order_class()
    proto = ProtobufSerializer(cls, client, {"use.deprecated.format": False})
    return [proto(cls(id=o["id"], qty=o["qty"]), ctx) for o in orders]


def registry_mapping(topic: str, bootstrap: str, registry: str, fmt: str = "JSON", **fields: Any) -> Any:
    config = {"SchemaRegistryURI": registry, "EventRecordFormat": fmt,
              "SchemaValidationConfigs": [{"Attribute": "VALUE"}]}
    return mapping_config(topic, bootstrap, SelfManagedKafkaEventSourceConfig={"SchemaRegistryConfig": config},
                          **fields)


def records_of(out: Path) -> list[dict[str, Any]]:
    return [r for inv in read_invocations(out) for rs in inv["event"]["records"].values() for r in rs]


def schema_id(framed: bytes) -> str:
    return str(int.from_bytes(framed[1:5], "big"))


@pytest.mark.parametrize("fmt", ["AVRO", "PROTOBUF", "JSON"])
def test_json_format_delivers_decoded_values_filtered_on_decoded_fields(
        fmt: str, kafka: Any, make_topic: Any, schema_registry: str, running_engine: Any, tmp_path: Path) -> None:
    topic = make_topic(prefix=f"sr-json-{fmt.lower()}")
    framed = serialize(schema_registry, topic, fmt, ORDERS)
    produce(kafka.bootstrap, topic, framed, keys=[b"k1", b"k2", b"k3"])
    out = tmp_path / "out.jsonl"
    code = write_handler(tmp_path, "rec", RECORDER)
    fn = function_config(code, Environment={"Variables": {"OUT": str(out)}})
    mapping = registry_mapping(topic, kafka.bootstrap, schema_registry, "JSON",
                               FilterCriteria={"Filters": [{"Pattern": json.dumps({"value": {"id": [{"prefix": "a-"}]}})}]})
    running_engine([fn], [mapping])
    records = wait_until(lambda: (rs := records_of(out)) and len(rs) >= 2 and rs, message="2 decoded records")
    values = [json.loads(base64.b64decode(r["value"])) for r in records]
    assert [v["id"] for v in values] == ["a-1", "a-3"]  # b-2 filtered out on the decoded value
    assert [v["qty"] for v in values] == [1, 3]
    assert [r["offset"] for r in records] == [0, 2]
    assert all(r["valueSchemaMetadata"] == {"dataFormat": fmt, "schemaId": schema_id(framed[0])} for r in records)
    assert all(base64.b64decode(r["key"]) in (b"k1", b"k3") and "keySchemaMetadata" not in r for r in records)


@pytest.mark.parametrize("fmt", ["AVRO", "PROTOBUF", "JSON"])
def test_source_format_strips_the_header_and_powertools_decodes_both_formats(
        fmt: str, kafka: Any, make_topic: Any, schema_registry: str, running_engine: Any, tmp_path: Path) -> None:
    """Powertools' kafka_consumer decodes the SOURCE events with the schema, and parses the JSON events."""
    topic = make_topic(prefix=f"sr-src-{fmt.lower()}")
    framed = serialize(schema_registry, topic, fmt, ORDERS[:2])
    produce(kafka.bootstrap, topic, framed)
    _, fd = order_class()
    handler = f'''
import base64, json, os
from aws_lambda_powertools.utilities.kafka import kafka_consumer, SchemaConfig
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

def _proto():
    fd = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode({base64.b64encode(fd.SerializeToString()).decode()!r}))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("shop.Order"))

FMT = os.environ["FORMAT"]
PARSE = False
if os.environ["RECORD_FORMAT"] == "JSON" and FMT != "JSON":
    # valueSchemaMetadata.dataFormat names the registry's format (AVRO/PROTOBUF): Powertools' JSON type would
    # refuse it, its default deserializer gives the JSON text
    config, PARSE = None, True
elif FMT == "AVRO":
    config = SchemaConfig(value_schema_type="AVRO", value_schema={AVRO_SCHEMA!r})
elif FMT == "PROTOBUF":
    config = SchemaConfig(value_schema_type="PROTOBUF", value_schema=_proto())
else:
    config = SchemaConfig(value_schema_type="JSON")

@kafka_consumer(schema_config=config)
def handler(event, context):
    values = [(json.loads(r.value) if PARSE else r.value, r) for r in event.records]
    rows = [{{"id": v["id"], "qty": int(v["qty"]), "meta": r.value_schema_metadata.data_format}} for v, r in values]
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(rows) + "\\n")
'''
    code = write_handler(tmp_path, "pt", handler)
    for record_format in ("SOURCE", "JSON"):
        out = tmp_path / f"{record_format}.jsonl"
        fn = function_config(code, "pt.handler", name=f"pt-{record_format.lower()}", Environment={"Variables": {
            "OUT": str(out), "FORMAT": fmt, "RECORD_FORMAT": record_format}})
        running_engine([fn], [registry_mapping(topic, kafka.bootstrap, schema_registry, record_format,
                                               FunctionName=f"pt-{record_format.lower()}")])
        rows = wait_until(lambda out=out: out.exists() and [r for line in out.read_text().splitlines()
                                                            for r in json.loads(line)], message=record_format)
        assert rows == [{"id": "a-1", "qty": 1, "meta": fmt}, {"id": "b-2", "qty": 2, "meta": fmt}], record_format


def test_key_and_value_in_source_format_lose_only_the_header(
        kafka: Any, make_topic: Any, schema_registry: str, running_engine: Any, tmp_path: Path) -> None:
    topic = make_topic(prefix="sr-key")
    client = SchemaRegistryClient({"url": schema_registry})
    key = AvroSerializer(client, json.dumps({"type": "string"}))("order-1", SerializationContext(topic, MessageField.KEY))
    value = serialize(schema_registry, topic, "AVRO", ORDERS[:1])[0]
    produce(kafka.bootstrap, topic, [value, None], keys=[key, key])  # a tombstone has no value metadata
    out = tmp_path / "out.jsonl"
    fn = function_config(write_handler(tmp_path, "rec", RECORDER), Environment={"Variables": {"OUT": str(out)}})
    config = {"SchemaRegistryURI": schema_registry, "EventRecordFormat": "SOURCE",
              "SchemaValidationConfigs": [{"Attribute": "KEY"}, {"Attribute": "VALUE"}]}
    running_engine([fn], [mapping_config(topic, kafka.bootstrap,
                                         SelfManagedKafkaEventSourceConfig={"SchemaRegistryConfig": config})])
    first, tombstone = wait_until(lambda: len(rs := records_of(out)) >= 2 and rs, message="2 records")
    assert base64.b64decode(first["key"]) == key[5:] and base64.b64decode(first["value"]) == value[5:]
    assert first["keySchemaMetadata"] == {"dataFormat": "AVRO", "schemaId": schema_id(key)}
    assert first["valueSchemaMetadata"] == {"dataFormat": "AVRO", "schemaId": schema_id(value)}
    assert tombstone["value"] is None and "valueSchemaMetadata" not in tombstone
    assert tombstone["keySchemaMetadata"] == first["keySchemaMetadata"]
