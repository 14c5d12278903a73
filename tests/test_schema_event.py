"""A schema-decoded record is the same event whether built as JSON (HTTP functions, destinations) or packed
for a Python handler's worker, with keySchemaMetadata / valueSchemaMetadata; and its computed size is exact."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from triggerfish.esm.event import EventBuilder, Record, SchemaRecord
from triggerfish.functions.batch import pack_records, unpack_event
from triggerfish.schemas import SCHEMA_NOT_FOUND, RecordSchemaError, SchemaDecoder
from triggerfish.schemas.errors import safe_url
from triggerfish.schemas.wire import confluent, glue, glue_frame, message_indexes


def test_json_and_packed_events_agree_and_sizes_are_exact() -> None:
    base = Record("orders", 3, 15, 1545084650987, "CREATE_TIME", b"k", b"\x00\x00\x00\x00\x01raw", [("h", b"v")])
    meta = {"dataFormat": "AVRO", "schemaId": "1"}
    records = [
        SchemaRecord(base, b"k", b'{"id":"a"}', {"valueSchemaMetadata": meta}),
        SchemaRecord(base, b"\x02", None, {"keySchemaMetadata": meta}),
        SchemaRecord(base, None, b"x", {}),
    ]
    builder = EventBuilder("SelfManagedKafka", ["h:9092"])
    built = builder.build(records)
    assert json.loads(built) == unpack_event(pack_records(builder.envelope, records))
    assert builder.size(records) == len(built)
    first = json.loads(built)["records"]["orders-3"][0]
    assert first["valueSchemaMetadata"] == meta and "keySchemaMetadata" not in first


def test_wire_formats_and_safe_urls() -> None:
    framed = confluent(b"\x00\x00\x00\x01\x00payload")
    assert (framed.schema_id, framed.payload) == (str(256), b"payload")
    version = "8a3f8ad6-1f4d-4b7e-9a2a-0f9c1d2e3b4c"
    for compress in (False, True):
        assert glue(glue_frame(version, b"body", compress=compress)) == glue(glue_frame(version, b"body"))
        assert glue(glue_frame(version, b"body", compress=compress)).schema_id == version
    assert message_indexes(b"\x00rest") == ([0], 1)
    assert message_indexes(b"\x04\x02\x06rest") == ([1, 3], 3)  # zigzag: count 2, then 1 and 3
    assert safe_url("https://user:secret@sr.example:8081/x") == "https://sr.example:8081/x"


class _CountingRegistry:
    """A registry that knows no schema and counts how often it is asked."""

    url = "http://registry.example/apis/ccompat/v7"

    def __init__(self) -> None:
        self.fetches = 0

    def frame(self, data: bytes) -> Any:
        return confluent(data)

    def fetch(self, schema_id: str) -> Any:
        self.fetches += 1
        raise RecordSchemaError(SCHEMA_NOT_FOUND, f"schema registry {self.url}: schema id {schema_id} not found")

    def subjects(self) -> list[str]:
        return []

    def close(self) -> None:
        pass


def test_an_unknown_schema_id_is_asked_for_once_not_per_record() -> None:
    registry = _CountingRegistry()
    decoder = SchemaDecoder(registry)
    for _ in range(100):
        with pytest.raises(RecordSchemaError, match="schema id 9 not found"):
            decoder.decode(b"\x00\x00\x00\x00\x09payload")
    assert registry.fetches == 1


def test_the_engine_imports_no_schema_library_until_a_mapping_needs_one() -> None:
    """Mappings without a SchemaRegistryConfig pay nothing: not even the imports (the extra may be absent)."""
    code = ("import sys, triggerfish.esm.runner, triggerfish.doctor.kafka; "
            "print([m for m in ('fastavro', 'jsonschema', 'google.protobuf', 'confluent_kafka.schema_registry', "
            "'boto3') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
