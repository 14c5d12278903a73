"""Per-record decoding cost of each schema kind, in one thread, with the schema cached: Avro, Protobuf from a
serialized descriptor (Confluent), Protobuf from ``.proto`` text (Glue), JSON Schema alone and with a ``$ref`` to
another subject; and the one-time cost of compiling ``.proto`` text with protoc.

    .venv/bin/python bench/schema_decode.py                 # 50,000 records per kind, best of 3

No broker or registry: the decoders are built from the schema texts a registry would give. Each timing is
``decode(payload)`` plus the JSON text of EventRecordFormat JSON, for the same ~1 KB reading in each format.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import time
from typing import Any

import fastavro
from google.protobuf import message_factory

from triggerfish.schemas.formats import decoder_for, to_json
from triggerfish.schemas.protobuf import file_descriptors, message_pool
from triggerfish.schemas.text import AVRO, CONFLUENT, GLUE, JSON, PROTOBUF, SchemaText

AVRO_SCHEMA = {"type": "record", "name": "Reading", "namespace": "bench", "fields": [
    {"name": "device", "type": "string"}, {"name": "seq", "type": "long"}, {"name": "celsius", "type": "double"},
    {"name": "ok", "type": "boolean"}, {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "note", "type": "string"}]}
PROTO = """syntax = "proto3";
package bench;
message Reading { string device = 1; int64 seq = 2; double celsius = 3; bool ok = 4; repeated string tags = 5;
                  string note = 6; }
"""
JSON_MAIN = json.dumps({"type": "object", "properties": {"reading": {"$ref": "reading.json"}}, "required": ["reading"]})
JSON_REF = json.dumps({"type": "object", "properties": {
    "device": {"type": "string"}, "seq": {"type": "integer"}, "celsius": {"type": "number"}, "ok": {"type": "boolean"},
    "tags": {"type": "array", "items": {"type": "string"}}, "note": {"type": "string"}},
    "required": ["device", "seq"]})
READING: dict[str, Any] = {"device": "dev-0001", "seq": 1, "celsius": 21.5, "ok": True,
                           "tags": [f"tag-{j}" for j in range(8)], "note": "n" * 860}


def per_record_us(schema: SchemaText, payload: bytes, records: int) -> float:
    decode = decoder_for(schema)
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(records):
            to_json(decode(payload))
        runs.append((time.perf_counter() - started) / records * 1e6)
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args()

    compiles = []
    for _ in range(10):
        started = time.perf_counter()
        main_fd, files = file_descriptors(PROTO)
        compiles.append((time.perf_counter() - started) * 1000)
    cls = message_factory.GetMessageClass(message_pool(files).FindMessageTypeByName("bench.Reading"))
    proto_body = cls(**READING).SerializeToString()
    avro = io.BytesIO()
    fastavro.schemaless_writer(avro, fastavro.parse_schema(AVRO_SCHEMA), READING)
    kinds = [
        ("Avro", SchemaText(AVRO, json.dumps(AVRO_SCHEMA)), avro.getvalue()),
        ("Protobuf, serialized (Confluent)", SchemaText(
            PROTOBUF, base64.b64encode(main_fd.SerializeToString()).decode(), framing=CONFLUENT), b"\x00" + proto_body),
        ("Protobuf, .proto text (Glue)", SchemaText(PROTOBUF, PROTO, framing=GLUE), b"\x00" + proto_body),
        ("JSON Schema, self-contained", SchemaText(JSON, JSON_REF), json.dumps(READING).encode()),
        ("JSON Schema, $ref to another subject", SchemaText(JSON, JSON_MAIN, (("reading.json", JSON_REF),)),
         json.dumps({"reading": READING}).encode()),
    ]
    print(f"protoc compile of .proto text: median {statistics.median(compiles):.0f} ms (10 runs)")
    print(f"{'schema':40} {'payload bytes':>13} {'decode + JSON per record':>26}")
    for name, schema, payload in kinds:
        print(f"{name:40} {len(payload):>13} {per_record_us(schema, payload, args.records):>23.1f} µs")


if __name__ == "__main__":
    main()
