"""AWS Glue schema registries (by ARN) against a real moto server: records in Glue's wire format (header
version 3, compression 0 or 5, the schema version UUID) decoded by the engine, against the real broker."""

from __future__ import annotations

import base64
import io
import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import fastavro
import pytest
from prometheus_client import REGISTRY

from esm_helpers import RECORDER, function_config, mapping_config, produce, read_invocations, wait_until, write_handler
from test_schema_registry_engine import AVRO_SCHEMA, JSON_SCHEMA
from triggerfish.schemas import SCHEMA_NOT_FOUND, RecordSchemaError, SchemaDecoder, open_registry
from triggerfish.schemas.wire import glue_frame

pytestmark = pytest.mark.kafka


def glue_schema(name: str, data_format: str, definition: str) -> tuple[str, str]:
    """(registry ARN, schema version id) of a new Glue registry holding one schema."""
    glue = boto3.client("glue", region_name="us-east-1")
    arn = glue.create_registry(RegistryName=name)["RegistryArn"]
    version = glue.create_schema(RegistryId={"RegistryName": name}, SchemaName="orders", DataFormat=data_format,
                                 Compatibility="NONE", SchemaDefinition=definition)["SchemaVersionId"]
    return arn, version


def avro_bytes(value: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(json.loads(AVRO_SCHEMA)), value)
    return buf.getvalue()


def test_decoder_reads_glue_framed_avro_and_names_an_unknown_version(moto_server: str) -> None:
    arn, version = glue_schema(f"reg-{uuid.uuid4().hex[:8]}", "AVRO", AVRO_SCHEMA)
    decoder = SchemaDecoder(open_registry(arn))
    order = {"id": "a-1", "qty": 1, "note": "n"}
    for compress in (False, True):
        decoded = decoder.decode(glue_frame(version, avro_bytes(order), compress=compress))
        assert (decoded.value, decoded.data_format, decoded.schema_id) == (order, "AVRO", version)
    missing = str(uuid.uuid4())
    with pytest.raises(RecordSchemaError, match=f"{arn}: schema version {missing} not found") as caught:
        decoder.decode(glue_frame(missing, avro_bytes(order)))
    assert caught.value.condition == SCHEMA_NOT_FOUND


def test_engine_decodes_glue_records_as_json(
        moto_server: str, kafka: Any, make_topic: Any, running_engine: Any, tmp_path: Path) -> None:
    name = f"reg-{uuid.uuid4().hex[:8]}"
    arn, avro_version = glue_schema(name, "AVRO", AVRO_SCHEMA)
    json_version = boto3.client("glue", region_name="us-east-1").create_schema(
        RegistryId={"RegistryName": name}, SchemaName="orders-json", DataFormat="JSON", Compatibility="NONE",
        SchemaDefinition=JSON_SCHEMA)["SchemaVersionId"]
    topic = make_topic(prefix="sr-glue")
    produce(kafka.bootstrap, topic, [
        glue_frame(avro_version, avro_bytes({"id": "a-1", "qty": 1, "note": None})),
        glue_frame(avro_version, avro_bytes({"id": "a-2", "qty": 2, "note": None}), compress=True),
        glue_frame(json_version, json.dumps({"id": "j-3", "qty": 3}).encode()),
        glue_frame(json_version, json.dumps({"id": "j-4"}).encode()),  # qty is required: DESERIALIZATION_ERROR
    ])
    out = tmp_path / "out.jsonl"
    fn = function_config(write_handler(tmp_path, "rec", RECORDER), Environment={"Variables": {"OUT": str(out)}})
    mapping = mapping_config(topic, kafka.bootstrap, SelfManagedKafkaEventSourceConfig={"SchemaRegistryConfig": {
        "SchemaRegistryURI": arn, "EventRecordFormat": "JSON", "SchemaValidationConfigs": [{"Attribute": "VALUE"}]}})
    engine = running_engine([fn], [mapping])

    def records() -> list[dict[str, Any]]:
        return [r for inv in read_invocations(out) for rs in inv["event"]["records"].values() for r in rs]

    got = wait_until(lambda: len(rs := records()) >= 3 and rs, message="3 decoded Glue records")
    assert [json.loads(base64.b64decode(r["value"]))["id"] for r in got] == ["a-1", "a-2", "j-3"]
    assert [r["valueSchemaMetadata"] for r in got] == [
        {"dataFormat": "AVRO", "schemaId": avro_version}, {"dataFormat": "AVRO", "schemaId": avro_version},
        {"dataFormat": "JSON", "schemaId": json_version}]
    wait_until(lambda: REGISTRY.get_sample_value("triggerfish_esm_schema_registry_errors_total",
                                                 {"uuid": engine.uuids[0], "function": "f"}) == 1,
               message="the record missing qty counted")
