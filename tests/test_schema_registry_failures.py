"""Records a registry cannot decode, and a registry that goes away, against the real broker and Apicurio:
SCHEMA_NOT_FOUND / DESERIALIZATION_ERROR records go to the on-failure destination or are dropped and
counted; cached schemas keep decoding through an outage and a new schema id waits for the registry."""

from __future__ import annotations

import base64
import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from prometheus_client import REGISTRY

from destination_support import failed_value
from esm_helpers import (
    RECORDER,
    committed_offsets,
    function_config,
    produce,
    read_invocations,
    wait_until,
    write_handler,
)
from registry_helpers import pipe
from test_schema_registry_engine import AVRO_SCHEMA, registry_mapping, serialize

pytestmark = pytest.mark.kafka

GOOD = {"id": "a-1", "qty": 1, "note": None}


def metric(name: str, uuid: str) -> float:
    return REGISTRY.get_sample_value(f"triggerfish_esm_{name}_total", {"uuid": uuid, "function": "f"}) or 0.0


def decoded_ids(out: Path) -> list[str]:
    return [json.loads(base64.b64decode(r["value"]))["id"]
            for inv in read_invocations(out) for rs in inv["event"]["records"].values() for r in rs]


def bad_records(registry: str, topic: str) -> list[bytes]:
    good = serialize(registry, topic, "AVRO", [GOOD])[0]
    unknown_id = b"\x00" + (987654).to_bytes(4, "big") + good[5:]
    truncated = good[:6]  # the right schema id, a payload cut short
    return [b"not framed at all", unknown_id, truncated]


def recorder(tmp_path: Path) -> tuple[Any, Path]:
    out = tmp_path / "out.jsonl"
    code = write_handler(tmp_path, "rec", RECORDER)
    return function_config(code, Environment={"Variables": {"OUT": str(out)}}), out


def test_undecodable_records_are_dropped_and_counted_without_a_destination(
        kafka: Any, make_topic: Any, schema_registry: str, running_engine: Any, tmp_path: Path) -> None:
    topic = make_topic(prefix="sr-drop")
    records = [serialize(schema_registry, topic, "AVRO", [GOOD])[0], *bad_records(schema_registry, topic),
               serialize(schema_registry, topic, "AVRO", [{"id": "z-9", "qty": 9, "note": None}])[0]]
    produce(kafka.bootstrap, topic, records)
    fn, out = recorder(tmp_path)
    engine = running_engine([fn], [registry_mapping(topic, kafka.bootstrap, schema_registry)])
    uuid = engine.uuids[0]
    wait_until(lambda: len(decoded_ids(out)) >= 2, message="the two good records")
    assert decoded_ids(out) == ["a-1", "z-9"]
    wait_until(lambda: metric("schema_registry_errors", uuid) == 3, message="SchemaRegistryErrorCount 3")
    assert metric("dropped_events", uuid) == 3
    wait_until(lambda: committed_offsets(kafka.bootstrap, uuid, topic, 1)[0] == 5, message="committed past all 5")


def test_undecodable_records_go_to_the_on_failure_destination_with_their_condition(
        kafka: Any, make_topic: Any, schema_registry: str, running_engine: Any, tmp_path: Path) -> None:
    topic, dlq = make_topic(prefix="sr-dest"), make_topic(prefix="sr-dlq")
    produce(kafka.bootstrap, topic, bad_records(schema_registry, topic))
    fn, _ = recorder(tmp_path)
    mapping = registry_mapping(topic, kafka.bootstrap, schema_registry,
                               DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlq}"}},
                               ProvisionedPollerConfig={"MinimumPollers": 1, "MaximumPollers": 1})
    engine = running_engine([fn], [mapping])
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": f"{dlq}-reader",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([dlq])
    got: list[Any] = []
    try:
        wait_until(lambda: (m := consumer.poll(0.5)) is not None and not m.error() and got.append(m) is None
                   and len(got) == 3, message="3 records on the destination topic")
    finally:
        consumer.close()
    conditions = [dict(m.headers())["triggerfish.failure.condition"].decode() for m in got]
    assert conditions == ["DESERIALIZATION_ERROR", "SCHEMA_NOT_FOUND", "DESERIALIZATION_ERROR"]
    messages = [dict(m.headers())["triggerfish.failure.error-message"].decode() for m in got]
    for message in messages:  # each names the record, the registry and the fix
        assert f"{topic}-0@" in message and f"schema registry {schema_registry}" in message and "; " in message
    assert f"{topic}-0@0" in messages[0] and "not framed" in messages[0] and "serializer of this registry" in messages[0]
    assert "schema id 987654 not found" in messages[1] and f"{topic}-0@1" in messages[1]
    assert "does not match the schema" in messages[2] and "schema id" in messages[2] and "fix the producer" in messages[2]
    assert [failed_value(m) for m in got] == bad_records(schema_registry, topic)  # the original bytes
    assert metric("on_failure_destination_delivered_events", engine.uuids[0]) == 3


class Gate:
    """A TCP forwarder to the registry that can be closed (an outage) and opened again on the same port."""

    def __init__(self, target: str) -> None:
        host, port = target.split("//", 1)[1].split("/", 1)[0].split(":")
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.live: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and cut the open ones (the client keeps HTTP connections alive)."""
        self.open = False
        for s in self.live:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.live += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.listener.close()


def test_an_outage_keeps_cached_schemas_decoding_and_retries_a_new_schema_id(
        kafka: Any, make_topic: Any, schema_registry: str, running_engine: Any, tmp_path: Path) -> None:
    topic = make_topic(prefix="sr-outage")
    gate = Gate(schema_registry)
    url = f"http://127.0.0.1:{gate.port}/apis/ccompat/v7"
    try:
        produce(kafka.bootstrap, topic, serialize(schema_registry, topic, "AVRO", [GOOD]))
        fn, out = recorder(tmp_path)
        engine = running_engine([fn], [registry_mapping(topic, kafka.bootstrap, url)])
        wait_until(lambda: decoded_ids(out) == ["a-1"], message="the first record")
        gate.down()  # the registry is down from here on
        produce(kafka.bootstrap, topic, serialize(schema_registry, topic, "AVRO", [{"id": "b-2", "qty": 2, "note": None}]))
        wait_until(lambda: decoded_ids(out) == ["a-1", "b-2"], message="a record whose schema is cached")
        # a new schema (a new id) while the registry is down: the record waits, it is not dropped
        v2 = json.loads(AVRO_SCHEMA)
        v2["fields"].append({"name": "extra", "type": "string", "default": ""})
        new = AvroSerializer(SchemaRegistryClient({"url": schema_registry}), json.dumps(v2))(
            {"id": "c-3", "qty": 3, "note": None, "extra": "x"}, SerializationContext(topic, MessageField.VALUE))
        produce(kafka.bootstrap, topic, [new])
        uuid = engine.uuids[0]
        wait_until(lambda: "Schema registry" in json.dumps(engine.status(uuid)), message=f"the registry problem {engine.status(uuid)}")
        status = json.dumps(engine.status(uuid))
        assert f"{topic}-0@2" in status and "schema id" in status and url in status
        assert decoded_ids(out) == ["a-1", "b-2"] and metric("dropped_events", uuid) == 0
        gate.open = True
        wait_until(lambda: decoded_ids(out) == ["a-1", "b-2", "c-3"], timeout=60, message="the record after the outage")
        assert metric("schema_registry_errors", uuid) == 0
    finally:
        gate.close()


def test_an_unreadable_registry_secret_waits_and_recovers_once_it_is_readable(
        kafka: Any, make_topic: Any, schema_registry: str, running_engine: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    topic = make_topic(prefix="sr-secret")
    produce(kafka.bootstrap, topic, serialize(schema_registry, topic, "AVRO", [GOOD]))
    name = f"TF_TEST_REGISTRY_{topic[-8:].upper()}"
    monkeypatch.delenv(name, raising=False)
    fn, out = recorder(tmp_path)
    mapping = registry_mapping(topic, kafka.bootstrap, schema_registry)
    mapping.kafka_event_source_config["SchemaRegistryConfig"]["AccessConfigs"] = [
        {"Type": "BASIC_AUTH", "URI": f"env:{name}"}]
    engine = running_engine([fn], [mapping])
    uuid = engine.uuids[0]
    wait_until(lambda: name in json.dumps(engine.status(uuid)), message="the secret problem")
    assert "Schema registry error" in json.dumps(engine.status(uuid)) and decoded_ids(out) == []
    monkeypatch.setenv(name, json.dumps({"username": "svc", "password": "pw"}))  # Apicurio here ignores it
    wait_until(lambda: decoded_ids(out) == ["a-1"], timeout=60, message="the record once the secret is readable")
    wait_until(lambda: engine.status(uuid)["Problem"] is None, message="the problem cleared")
