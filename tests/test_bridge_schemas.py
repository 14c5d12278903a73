"""The bridge's avro, protobuf and jsonschema embedded formats against the real broker and a real schema registry.

Records produced through the bridge are read back with confluent-kafka's own deserializers (so the
wire format is theirs), and records produced by confluent-kafka's serializers are consumed through
the bridge decoded.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool  # type: ignore[import-untyped, unused-ignore]
from google.protobuf.message_factory import GetMessageClass  # type: ignore[import-untyped, unused-ignore]

from registry_helpers import running_registry, stop_registry
from test_schema_references import protobuf_order_classes
from triggerfish.bridge.config import from_properties
from triggerfish.bridge.server import prepare
from triggerfish.errors import ConfigError
from triggerfish.localkafka import KafkaEnv
from triggerfish.schemas import SchemaDecoder, open_registry

V2 = "application/vnd.kafka.v2+json"
AVRO = "application/vnd.kafka.avro.v2+json"
PROTOBUF = "application/vnd.kafka.protobuf.v2+json"
JSONSCHEMA = "application/vnd.kafka.jsonschema.v2+json"
BINARY = "application/vnd.kafka.binary.v2+json"

USER_SCHEMA = json.dumps({"type": "record", "name": "User", "namespace": "t",
                          "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": ["null", "int"]}]})
KEY_SCHEMA = json.dumps({"type": "string"})
JSON_SCHEMA = json.dumps({"type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
                          "required": ["sku", "qty"], "additionalProperties": False})


class Bridge:
    def __init__(self, props: dict[str, str]) -> None:
        self.prepared = prepare(from_properties({"http.port": "0", "http.management.port": "-1", **props}, environ={}))
        self.thread = self.prepared.start_in_thread()
        host, port = self.prepared.addresses[0]
        self.http = httpx.Client(base_url=f"http://{host}:{port}", timeout=30)

    def close(self) -> None:
        self.http.close()
        self.prepared.stop(self.thread)

    def produce(self, topic: str, body: dict[str, Any], ctype: str) -> httpx.Response:
        return self.http.post(f"/topics/{topic}", json=body, headers={"content-type": ctype})

    def consumer(self, group: str, fmt: str) -> str:
        r = self.http.post(f"/consumers/{group}", json={"format": fmt, "auto.offset.reset": "earliest"},
                           headers={"content-type": V2})
        assert r.status_code == 200, r.text
        name: str = r.json()["instance_id"]
        r = self.http.post(f"/consumers/{group}/instances/{name}/subscription", json={"topics": [group]},
                           headers={"content-type": V2})
        assert r.status_code == 204, r.text
        return name

    def poll(self, group: str, name: str, accept: str, want: int) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        for _ in range(20):
            r = self.http.get(f"/consumers/{group}/instances/{name}/records", params={"timeout": 1000},
                              headers={"accept": accept})
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == accept
            got += r.json()
            if len(got) >= want:
                break
        return got

    def poll_error(self, group: str, name: str, accept: str) -> httpx.Response:
        for _ in range(20):
            r = self.http.get(f"/consumers/{group}/instances/{name}/records", params={"timeout": 1000},
                              headers={"accept": accept})
            if r.status_code != 200 or r.json():
                return r
        raise AssertionError("no record and no error after 20 polls")


@pytest.fixture(scope="module")
def bridge(kafka: KafkaEnv, schema_registry: str) -> Iterator[Bridge]:
    b = Bridge({"kafka.bootstrap.servers": kafka.bootstrap, "schema.registry.url": schema_registry})
    yield b
    b.close()


@pytest.fixture
def client(schema_registry: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": schema_registry})


def read_back(bootstrap: str, topic: str, count: int) -> list[tuple[bytes | None, bytes | None]]:
    """The raw key and value bytes of the first ``count`` records, read with a plain confluent-kafka consumer."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"rb-{uuid.uuid4()}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    out: list[tuple[bytes | None, bytes | None]] = []
    try:
        for _ in range(60):
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                out.append((m.key(), m.value()))
            if len(out) >= count:
                break
    finally:
        c.close()
    return out


def order_message() -> tuple[type[Any], str]:
    """A Protobuf message class built at run time, and its schema in the registry's serialized form."""
    fd = descriptor_pb2.FileDescriptorProto(name=f"order_{uuid.uuid4().hex}.proto", package="shop", syntax="proto3")
    msg = fd.message_type.add(name="Order")
    msg.field.add(name="sku", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    msg.field.add(name="qty", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    cls: type[Any] = GetMessageClass(pool.FindMessageTypeByName("shop.Order"))
    return cls, base64.b64encode(fd.SerializeToString()).decode()


# ---------------------------------------------------------------- produce and consume, each format


@pytest.mark.kafka
def test_avro_produce_with_schema_then_id_reads_back_with_confluent_and_consumes_decoded(
        bridge: Bridge, kafka: KafkaEnv, make_topic: Callable[..., str], client: SchemaRegistryClient) -> None:
    topic = make_topic()
    r = bridge.produce(topic, {"key_schema": KEY_SCHEMA, "value_schema": USER_SCHEMA,
                               "records": [{"key": "u1", "value": {"name": "ann", "age": 31}},
                                           {"key": "u2", "value": {"name": "bob", "age": None}}]}, AVRO)
    assert r.status_code == 200, r.text
    body = r.json()
    value_id, key_id = body["value_schema_id"], body["key_schema_id"]
    assert isinstance(value_id, int) and isinstance(key_id, int) and value_id != key_id
    assert [o["offset"] for o in body["offsets"]] == [0, 1]
    assert client.get_latest_version(f"{topic}-value").schema_id == value_id

    # Avro's JSON encoding (a union as {"int": 7}), as Confluent's REST proxy takes it
    r = bridge.produce(topic, {"value_schema_id": value_id, "records": [{"value": {"name": "cy", "age": {"int": 7}}}]}, AVRO)
    assert r.status_code == 200, r.text
    assert r.json()["value_schema_id"] == value_id and r.json()["key_schema_id"] is None

    raw = read_back(kafka.bootstrap, topic, 3)
    # a record written by confluent-kafka's own serializer, consumed through the bridge below
    p = Producer({"bootstrap.servers": kafka.bootstrap})
    p.produce(topic, AvroSerializer(client, USER_SCHEMA)({"name": "dee", "age": None},
                                                         SerializationContext(topic, MessageField.VALUE)))
    p.flush(10)
    values, keys = AvroDeserializer(client), AvroDeserializer(client)
    assert [values(v, SerializationContext(topic, MessageField.VALUE)) for _, v in raw] == [
        {"name": "ann", "age": 31}, {"name": "bob", "age": None}, {"name": "cy", "age": 7}]
    assert [keys(k, SerializationContext(topic, MessageField.KEY)) if k else None for k, _ in raw] == ["u1", "u2", None]
    assert all(v is not None and v[0] == 0 and int.from_bytes(v[1:5], "big") == value_id for _, v in raw)

    name = bridge.consumer(topic, "avro")
    got = bridge.poll(topic, name, AVRO, 4)
    # answered in Avro's JSON encoding, as Confluent's REST proxy does
    assert [(g["key"], g["value"], g["offset"]) for g in got] == [("u1", {"name": "ann", "age": {"int": 31}}, 0),
                                                                  ("u2", {"name": "bob", "age": None}, 1),
                                                                  (None, {"name": "cy", "age": {"int": 7}}, 2),
                                                                  (None, {"name": "dee", "age": None}, 3)]


@pytest.mark.kafka
def test_protobuf_produce_reads_back_with_confluent_and_records_from_confluent_consume_decoded(
        bridge: Bridge, kafka: KafkaEnv, make_topic: Callable[..., str], client: SchemaRegistryClient) -> None:
    topic = make_topic()
    order, schema = order_message()
    r = bridge.produce(topic, {"value_schema": schema, "records": [{"value": {"sku": "a-1", "qty": 3}}]}, PROTOBUF)
    assert r.status_code == 200, r.text
    value_id = r.json()["value_schema_id"]
    r = bridge.produce(topic, {"value_schema_id": value_id, "records": [{"value": {"sku": "b-2", "qty": 5}}]}, PROTOBUF)
    assert r.status_code == 200, r.text

    # a record written by confluent-kafka's own serializer, consumed through the bridge below
    serialize = ProtobufSerializer(order, client, {"use.deprecated.format": False})
    p = Producer({"bootstrap.servers": kafka.bootstrap})
    p.produce(topic, serialize(order(sku="c-3", qty=9), SerializationContext(topic, MessageField.VALUE)))
    p.flush(10)

    deserialize = ProtobufDeserializer(order, {"use.deprecated.format": False})
    decoded = [deserialize(v, SerializationContext(topic, MessageField.VALUE)) for _, v in read_back(kafka.bootstrap, topic, 3)]
    assert [(m.sku, m.qty) for m in decoded] == [("a-1", 3), ("b-2", 5), ("c-3", 9)]

    name = bridge.consumer(topic, "protobuf")
    got = bridge.poll(topic, name, PROTOBUF, 3)
    assert [g["value"] for g in got] == [{"sku": "a-1", "qty": 3}, {"sku": "b-2", "qty": 5}, {"sku": "c-3", "qty": 9}]


ORDER_PROTO = """syntax = "proto3";
package shop;

message Order {
  string sku = 1;
  int32 qty = 2;
}

message Unused {
  bool flag = 1;
}
"""


@pytest.mark.kafka
def test_protobuf_produce_with_proto_text_registers_it_compiles_it_and_writes_its_first_message(
        bridge: Bridge, kafka: KafkaEnv, make_topic: Callable[..., str], client: SchemaRegistryClient,
        schema_registry: str) -> None:
    """Confluent's REST proxy takes .proto text as value_schema; so does the bridge (compiled with protoc)."""
    topic = make_topic()
    order, _ = order_message()  # the same message, built by hand: what a consumer with generated code has
    r = bridge.produce(topic, {"value_schema": ORDER_PROTO, "records": [{"value": {"sku": "a-1", "qty": 3}}]}, PROTOBUF)
    assert r.status_code == 200, r.text
    value_id = r.json()["value_schema_id"]
    registered = client.get_latest_version(f"{topic}-value")
    assert registered.schema_id == value_id and registered.schema.schema_str == ORDER_PROTO  # the text, as sent
    r = bridge.produce(topic, {"value_schema_id": value_id, "records": [{"value": {"sku": "b-2"}}]}, PROTOBUF)
    assert r.status_code == 200, r.text
    r = bridge.produce(topic, {"value_schema_id": value_id, "records": [{"value": {"flag": True}}]}, PROTOBUF)
    assert r.status_code == 422 and r.json()["error_code"] == 42203 and "/records/0/value" in r.json()["message"]

    raw = [v for _, v in read_back(kafka.bootstrap, topic, 2)]
    assert all(v is not None and v[:6] == b"\x00" + value_id.to_bytes(4, "big") + b"\x00" for v in raw)
    deserialize = ProtobufDeserializer(order, {"use.deprecated.format": False})
    decoded = [deserialize(v, SerializationContext(topic, MessageField.VALUE)) for v in raw]
    assert [(m.sku, m.qty) for m in decoded] == [("a-1", 3), ("b-2", 0)]
    engine = SchemaDecoder(open_registry(schema_registry))  # the engine reads them with the same compiled schema
    assert [engine.decode(v).value for v in raw if v is not None] == [{"sku": "a-1", "qty": 3}, {"sku": "b-2"}]

    name = bridge.consumer(topic, "protobuf")
    assert [g["value"] for g in bridge.poll(topic, name, PROTOBUF, 2)] == [{"sku": "a-1", "qty": 3}, {"sku": "b-2"}]


@pytest.mark.kafka
def test_protobuf_schema_importing_another_subject_produces_and_consumes(
        bridge: Bridge, kafka: KafkaEnv, make_topic: Callable[..., str], client: SchemaRegistryClient) -> None:
    """A schema whose import is registered as its own subject (a reference), as confluent-kafka registers it."""
    topic = make_topic()
    tag = uuid.uuid4().hex[:8]
    order_cls, money_cls = protobuf_order_classes(tag)
    serialize = ProtobufSerializer(order_cls, client, {"use.deprecated.format": False})
    p = Producer({"bootstrap.servers": kafka.bootstrap})
    p.produce(topic, serialize(order_cls(id="o-1", total=money_cls(cents=5)), SerializationContext(topic, MessageField.VALUE)))
    p.flush(10)
    registered = client.get_latest_version(f"{topic}-value")
    assert [r.name for r in registered.schema.references or []] == [f"money{tag}.proto"]
    r = bridge.produce(topic, {"value_schema_id": registered.schema_id,
                               "records": [{"value": {"id": "o-2", "total": {"cents": "7"}}}]}, PROTOBUF)
    assert r.status_code == 200, r.text
    deserialize = ProtobufDeserializer(order_cls, {"use.deprecated.format": False})
    raw = [v for _, v in read_back(kafka.bootstrap, topic, 2)]
    assert [(m.id, m.total.cents) for m in (deserialize(v, SerializationContext(topic, MessageField.VALUE))
                                           for v in raw)] == [("o-1", 5), ("o-2", 7)]
    name = bridge.consumer(topic, "protobuf")
    assert [g["value"] for g in bridge.poll(topic, name, PROTOBUF, 2)] == [
        {"id": "o-1", "total": {"cents": "5"}}, {"id": "o-2", "total": {"cents": "7"}}]


@pytest.mark.kafka
def test_jsonschema_produce_reads_back_with_confluent_and_consumes_decoded(
        bridge: Bridge, kafka: KafkaEnv, make_topic: Callable[..., str], client: SchemaRegistryClient) -> None:
    topic = make_topic()
    r = bridge.produce(topic, {"value_schema": JSON_SCHEMA, "records": [{"value": {"sku": "x", "qty": 1}},
                                                                      {"value": {"sku": "y", "qty": 2}}]}, JSONSCHEMA)
    assert r.status_code == 200, r.text
    value_id = r.json()["value_schema_id"]
    r = bridge.http.post(f"/topics/{topic}/partitions/0", headers={"content-type": JSONSCHEMA},
                         json={"value_schema_id": value_id, "records": [{"value": {"sku": "z", "qty": 3}}]})
    assert r.status_code == 200 and r.json()["offsets"] == [{"partition": 0, "offset": 2}], r.text
    raw = read_back(kafka.bootstrap, topic, 3)
    deserialize = JSONDeserializer(None, schema_registry_client=client)
    assert [deserialize(v, SerializationContext(topic, MessageField.VALUE)) for _, v in raw] == [
        {"sku": "x", "qty": 1}, {"sku": "y", "qty": 2}, {"sku": "z", "qty": 3}]
    assert all(v is not None and int.from_bytes(v[1:5], "big") == value_id for _, v in raw)

    name = bridge.consumer(topic, "jsonschema")
    assert [g["value"] for g in bridge.poll(topic, name, JSONSCHEMA, 3)] == [
        {"sku": "x", "qty": 1}, {"sku": "y", "qty": 2}, {"sku": "z", "qty": 3}]
    r = bridge.http.get(f"/consumers/{topic}/instances/{name}/records", headers={"accept": AVRO})
    assert r.status_code == 406


# ---------------------------------------------------------------- errors


@pytest.mark.kafka
def test_record_not_matching_schema_is_42203_naming_record_subject_and_registry(
        bridge: Bridge, make_topic: Callable[..., str], schema_registry: str) -> None:
    topic = make_topic()
    r = bridge.produce(topic, {"value_schema": USER_SCHEMA, "records": [{"value": {"name": "ok", "age": 1}},
                                                                      {"value": {"name": 5}}]}, AVRO)
    assert r.status_code == 422 and r.json()["error_code"] == 42203, r.text
    message = r.json()["message"]
    assert "/records/1/value" in message and f"{topic}-value" in message and schema_registry in message
    r = bridge.produce(topic, {"value_schema": JSON_SCHEMA, "records": [{"value": {"sku": "x"}}]}, JSONSCHEMA)
    assert r.status_code == 422 and r.json()["error_code"] == 42203, r.text
    r = bridge.produce(topic, {"value_schema": "not a schema {", "records": [{"value": {"sku": "x"}}]}, AVRO)
    assert r.status_code == 422 and r.json()["error_code"] in (42203, 42205), r.text


@pytest.mark.kafka
def test_missing_schemas_unknown_id_and_broken_protobuf_text_are_refused(bridge: Bridge, make_topic: Callable[..., str]) -> None:
    topic = make_topic()
    r = bridge.produce(topic, {"records": [{"value": {"name": "a"}}]}, AVRO)
    assert r.status_code == 422 and r.json()["error_code"] == 42202 and "value_schema" in r.json()["message"]
    r = bridge.produce(topic, {"value_schema": USER_SCHEMA, "records": [{"key": "k", "value": {"name": "a", "age": 1}}]}, AVRO)
    assert r.status_code == 422 and r.json()["error_code"] == 42201 and "key_schema" in r.json()["message"]
    r = bridge.produce(topic, {"value_schema_id": 987654, "records": [{"value": {"name": "a"}}]}, AVRO)
    assert r.status_code == 404 and r.json()["error_code"] == 40403 and "987654" in r.json()["message"], r.text
    r = bridge.produce(topic, {"value_schema": 'syntax = "proto3";\nmessage M { strin a = 1; }',
                               "records": [{"value": {"a": "x"}}]}, PROTOBUF)
    assert r.status_code == 422 and r.json()["error_code"] == 42205, r.text
    assert "value_schema is not a usable Protobuf schema: the Protobuf schema does not compile: line 2" in r.json()["message"]
    r = bridge.produce(topic, {"value_schema": JSON_SCHEMA, "records": [{"value": {"sku": "x", "qty": 1}}]}, JSONSCHEMA)
    json_id = r.json()["value_schema_id"]
    r = bridge.produce(topic, {"value_schema_id": json_id, "records": [{"value": {"name": "a"}}]}, AVRO)
    assert r.status_code == 422 and "JSON schema, not AVRO" in r.json()["message"], r.text


@pytest.mark.kafka
def test_unframed_record_is_406_naming_topic_partition_offset_and_not_skipped(
        bridge: Bridge, make_topic: Callable[..., str]) -> None:
    topic = make_topic()
    r = bridge.produce(topic, {"records": [{"value": base64.b64encode(b"plain bytes").decode()}]}, BINARY)
    assert r.status_code == 200, r.text
    name = bridge.consumer(topic, "avro")
    for _ in range(2):  # refused records are delivered again, not skipped
        r = bridge.poll_error(topic, name, AVRO)
        assert r.status_code == 406, r.text
        assert f"{topic}-0@0" in r.json()["message"] and "binary format" in r.json()["message"]


@pytest.mark.kafka
def test_record_whose_proto_text_does_not_compile_is_406_naming_record_and_protoc_line(
        bridge: Bridge, kafka: KafkaEnv, make_topic: Callable[..., str], client: SchemaRegistryClient) -> None:
    topic = make_topic()
    # registered by another client as text (the registry does not compile it)
    schema_id = client.register_schema(f"{topic}-value", Schema('syntax = "proto3";\nmessage M {\n  strin a = 1;\n}\n',
                                                               "PROTOBUF"))
    p = Producer({"bootstrap.servers": kafka.bootstrap})
    p.produce(topic, b"\x00" + schema_id.to_bytes(4, "big") + b"\x00\x0a\x01x")
    p.flush(10)
    name = bridge.consumer(topic, "protobuf")
    r = bridge.poll_error(topic, name, PROTOBUF)
    assert r.status_code == 406, r.text
    message = r.json()["message"]
    assert f"{topic}-0@0" in message and "does not compile: line 3" in message and "\n" not in message


@pytest.mark.kafka
def test_unreachable_registry_is_503_naming_url_never_password(kafka: KafkaEnv, make_topic: Callable[..., str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    b = Bridge({"kafka.bootstrap.servers": kafka.bootstrap, "schema.registry.url": f"http://127.0.0.1:{port}",
                "schema.registry.basic.auth.user.info": "bridge:s3cret-pw"})
    try:
        r = b.produce(make_topic(), {"value_schema": USER_SCHEMA, "records": [{"value": {"name": "a", "age": 1}}]}, AVRO)
        assert r.status_code == 503, r.text
        assert f"http://127.0.0.1:{port}" in r.json()["message"] and "unreachable" in r.json()["message"]
        assert "s3cret" not in r.text
    finally:
        b.close()


@pytest.mark.kafka
def test_registry_outage_keeps_cached_schemas_working_and_new_ones_are_503(
        kafka: KafkaEnv, make_topic: Callable[..., str]) -> None:
    topic = make_topic()
    with running_registry() as own:
        b = Bridge({"kafka.bootstrap.servers": kafka.bootstrap, "schema.registry.url": own.url})
        try:
            r = b.produce(topic, {"value_schema": USER_SCHEMA, "records": [{"value": {"name": "a", "age": None}}]}, AVRO)
            assert r.status_code == 200, r.text
            value_id = r.json()["value_schema_id"]
            name = b.consumer(topic, "avro")
            assert len(b.poll(topic, name, AVRO, 1)) == 1

            stop_registry(own)
            r = b.produce(topic, {"value_schema_id": value_id, "records": [{"value": {"name": "b", "age": None}}]}, AVRO)
            assert r.status_code == 200, r.text
            assert [g["value"] for g in b.poll(topic, name, AVRO, 1)] == [{"name": "b", "age": None}]
            r = b.produce(topic, {"value_schema": JSON_SCHEMA, "records": [{"value": {"sku": "x", "qty": 1}}]}, JSONSCHEMA)
            assert r.status_code == 503 and "unreachable" in r.json()["message"] and own.url in r.json()["message"]
        finally:
            b.close()


class _Refusing(BaseHTTPRequestHandler):
    """A registry front that refuses every login, as Confluent's does with wrong basic-auth credentials."""

    def do_POST(self) -> None:
        self.send_response(401)
        self.send_header("content-type", "application/vnd.schemaregistry.v1+json")
        self.end_headers()
        self.wfile.write(b'{"error_code":401,"message":"Unauthorized"}')

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.kafka
def test_refused_registry_credentials_are_503_naming_the_key_to_fix(kafka: KafkaEnv, make_topic: Callable[..., str]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    b = Bridge({"kafka.bootstrap.servers": kafka.bootstrap, "schema.registry.url": url,
                "schema.registry.basic.auth.user.info": "bridge:wrong-pw"})
    try:
        r = b.produce(make_topic(), {"value_schema_id": 1, "records": [{"value": {"name": "a"}}]}, AVRO)
        assert r.status_code == 503, r.text
        message = r.json()["message"]
        assert url in message and "schema.registry.basic.auth.user.info" in message and "wrong-pw" not in r.text
    finally:
        b.close()
        server.shutdown()
        server.server_close()


@pytest.mark.kafka
def test_without_registry_the_formats_are_refused_and_strimzi_formats_unchanged(
        kafka: KafkaEnv, make_topic: Callable[..., str]) -> None:
    b = Bridge({"kafka.bootstrap.servers": kafka.bootstrap})
    try:
        topic = make_topic()
        r = b.produce(topic, {"value_schema": USER_SCHEMA, "records": [{"value": {"name": "a"}}]}, AVRO)
        assert r.status_code == 400 and "schema.registry.url" in r.json()["message"]
        r = b.http.post(f"/consumers/{topic}", json={"format": "protobuf"}, headers={"content-type": V2})
        assert r.status_code == 422 and r.json()["message"] == "Invalid format type."
        r = b.produce(topic, {"records": [{"value": {"n": 1}}]}, "application/vnd.kafka.json.v2+json")
        assert r.status_code == 200 and set(r.json()) == {"offsets"}
    finally:
        b.close()


# ---------------------------------------------------------------- configuration


def test_registry_properties_keep_credentials_out_of_url_and_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SR_PASSWORD", "pw-from-env")
    base = {"kafka.bootstrap.servers": "localhost:9092", "kafka.config.providers": "env",
            "kafka.config.providers.env.class": "io.strimzi.kafka.EnvVarConfigProvider"}
    c = from_properties({**base, "schema.registry.url": "https://sr.example:8081",
                         "schema.registry.basic.auth.user.info": "svc:${env:SR_PASSWORD}"}, environ={})
    assert c.registry is not None and c.registry.user_info == "svc:pw-from-env"
    assert "pw-from-env" not in repr(c)
    c = from_properties({**base, "schema.registry.url": "http://svc:pw@sr.example:8081/apis/ccompat/v7"}, environ={})
    assert c.registry is not None and c.registry.url == "http://sr.example:8081/apis/ccompat/v7"
    assert c.registry.user_info == "svc:pw" and "pw" not in c.registry.display_url
    assert from_properties(base, environ={}).registry is None


@pytest.mark.parametrize(("props", "key"), [
    ({"schema.registry.urls": "http://x"}, "schema.registry.urls"),
    ({"schema.registry.basic.auth.user.info": "a:b"}, "schema.registry.basic.auth.user.info"),
    ({"schema.registry.url": "registry:8081"}, "schema.registry.url"),
    ({"schema.registry.url": "http://x", "schema.registry.ssl.ca.location": "/nonexistent.pem"},
     "schema.registry.ssl.ca.location"),
    ({"schema.registry.url": "http://x", "schema.registry.basic.auth.user.info": "nocolon"},
     "schema.registry.basic.auth.user.info"),
])
def test_bad_registry_properties_name_the_key(props: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_properties({"kafka.bootstrap.servers": "localhost:9092", **props}, environ={})
    assert key in str(info.value)
    assert "nocolon" not in str(info.value)


def test_bridge_starts_without_the_schemas_extra_and_a_registry_url_then_names_the_extra() -> None:
    # a fresh interpreter in which the schemas extra's libraries cannot be imported
    code = """
import sys
for name in ("confluent_kafka.schema_registry", "fastavro", "google.protobuf", "authlib"):
    sys.modules[name] = None
from triggerfish.bridge.config import from_properties
from triggerfish.bridge.services import Services
from triggerfish.errors import ConfigError
from_properties({"kafka.bootstrap.servers": "127.0.0.1:1"}, environ={})
try:
    Services.build(from_properties({"kafka.bootstrap.servers": "127.0.0.1:1", "schema.registry.url": "http://r:8081"},
                                   environ={}))
except ConfigError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "schema.registry.url" in done.stdout and "triggerfish[schemas]" in done.stdout


def test_a_bridge_without_a_registry_does_not_load_the_registry_libraries() -> None:
    # they are a third of an idle bridge's memory; only a configured registry pays for them
    code = """
import sys
from triggerfish.bridge.config import from_properties
from triggerfish.bridge.server import prepare
prepared = prepare(from_properties({"kafka.bootstrap.servers": "127.0.0.1:1", "http.port": "0"}, environ={}))
prepared.services.close()
print(sorted(m for m in ("confluent_kafka.schema_registry", "fastavro", "google.protobuf", "authlib") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
