"""Schema registry benchmark: records/s through the ESM engine for 1 KB Avro records decoded with
``EventRecordFormat: JSON``, next to raw 1 KB records in the same run, and the decoding cost per record.

    .venv/bin/python bench/schema_registry.py                    # 100,000 records per topic, 4 partitions
    .venv/bin/python bench/schema_registry.py --records 200000 --registry http://127.0.0.1:18085/apis/ccompat/v7

Starts the local broker and (unless --registry is given) the shared Apicurio registry
(``../shared/tools/schema-registry/start.sh``, found next to the clone like the tests find it). Two topics
get the same number of records of the same size: raw bytes, and Avro values framed by confluent-kafka's
``AvroSerializer``. The engine reads each with a no-op Python handler, BatchSize 1000, timed from the
first completed invoke to the last record. Decoding is also timed alone: ``SchemaDecoder.decode`` plus
the JSON text the event carries, per record, with the schema cached.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from triggerfish import localkafka
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.engine import Engine
from triggerfish.esm.store import Store
from triggerfish.functions.config import FunctionConfig
from triggerfish.functions.runtime import FunctionRuntime
from triggerfish.schemas import SchemaDecoder, open_registry
from triggerfish.schemas.formats import to_json

SCHEMA = json.dumps({"type": "record", "name": "Reading", "namespace": "bench", "fields": [
    {"name": "device", "type": "string"}, {"name": "seq", "type": "long"}, {"name": "celsius", "type": "double"},
    {"name": "ok", "type": "boolean"}, {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "note", "type": "string"}]})


def reading(i: int, size: int) -> dict[str, Any]:
    tags = [f"tag-{j}" for j in range(8)]
    base = {"device": f"dev-{i % 64:04d}", "seq": i, "celsius": 21.5 + i % 10, "ok": True, "tags": tags, "note": ""}
    return {**base, "note": "n" * max(0, size - 120)}  # ~size bytes encoded


def start_registry() -> tuple[str, Path, str]:
    here = Path(__file__).resolve().parent.parent
    tools = next((p / "shared/tools/schema-registry" for p in here.parents
                  if (p / "shared/tools/schema-registry/start.sh").exists()), None)
    if tools is None:
        sys.exit("no ../shared/tools/schema-registry next to the clone: give --registry URL")
    out = subprocess.run([str(tools / "start.sh"), "0"], capture_output=True, text=True, check=True)
    env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    return env["SCHEMA_REGISTRY_URL"], tools, env["SCHEMA_REGISTRY_PID_FILE"]


def produce(bootstrap: str, topic: str, values: list[bytes], records: int, partitions: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000,
                         "queue.buffering.max.kbytes": 1_048_576})
    for i in range(records):
        while True:
            try:
                producer.produce(topic, values[i % len(values)], key=str(i % 64).encode(), partition=i % partitions)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)


def engine_run(bootstrap: str, topic: str, records: int, code: Path, state: Path, partitions: int,
               registry: str | None) -> tuple[float, float]:
    """(records/s from the first completed invoke to the last record, engine CPU µs per record)."""
    runtime = FunctionRuntime([FunctionConfig.from_dict({"FunctionName": "noop", "CodeUri": str(code),
                                                         "Handler": "handlers.noop"})])
    engine = Engine(runtime, Store(state / f"{topic}.db"))
    fields: dict[str, Any] = {}
    if registry:
        fields["SelfManagedKafkaEventSourceConfig"] = {"SchemaRegistryConfig": {
            "SchemaRegistryURI": registry, "EventRecordFormat": "JSON", "SchemaValidationConfigs": [{"Attribute": "VALUE"}]}}
    mapping = MappingConfig.from_dict({
        "FunctionName": "noop", "Topics": [topic], "StartingPosition": "TRIM_HORIZON", "BatchSize": 1000,
        "MaximumBatchingWindowInSeconds": 1,
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}}, **fields})
    runtime.warm("noop", partitions)
    (view,) = engine.load([mapping])
    before = os.times()
    engine.start()
    status = lambda: engine._entries[view.uuid].status  # noqa: E731 - live counters
    while status().records == 0:
        time.sleep(0.002)
    first, base = time.perf_counter(), status().records
    while status().records < records:
        time.sleep(0.01)
    elapsed = time.perf_counter() - first
    after = os.times()
    engine.stop()
    runtime.close()
    cpu = (after.user + after.system - before.user - before.system) / records * 1e6
    return (records - base) / elapsed, cpu


def decode_cost(registry: str, framed: list[bytes], n: int) -> float:
    """µs per record for decode + JSON text, the schema already cached."""
    decoder = SchemaDecoder(open_registry(registry))
    decoder.decode(framed[0])
    started = time.perf_counter()
    for i in range(n):
        to_json(decoder.decode(framed[i % len(framed)]).value)
    return (time.perf_counter() - started) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--registry", default="", help="a running Confluent-compatible registry (default: start one)")
    args = parser.parse_args()
    env = localkafka.up()
    admin = AdminClient(env.plaintext())
    registry, tools, pid_file = (args.registry, None, "") if args.registry else start_registry()
    try:
        raw_topic, avro_topic = (f"bench-sr-{kind}-{uuid.uuid4().hex[:8]}" for kind in ("raw", "avro"))
        for t in (raw_topic, avro_topic):
            admin.create_topics([NewTopic(t, num_partitions=args.partitions, replication_factor=1)])[t].result(30)
        serializer = AvroSerializer(SchemaRegistryClient({"url": registry}), SCHEMA)
        ctx = SerializationContext(avro_topic, MessageField.VALUE)
        framed = [serializer(reading(i, args.size), ctx) for i in range(256)]
        size = len(framed[0])
        produce(env.bootstrap, raw_topic, [b"x" * size], args.records, args.partitions)
        produce(env.bootstrap, avro_topic, framed, args.records, args.partitions)
        with tempfile.TemporaryDirectory() as tmp:
            code = Path(tmp) / "code"
            code.mkdir()
            (code / "handlers.py").write_text(textwrap.dedent("def noop(event, context):\n    return None\n"))
            raw_rps, raw_cpu = engine_run(env.bootstrap, raw_topic, args.records, code, Path(tmp), args.partitions, None)
            avro_rps, avro_cpu = engine_run(env.bootstrap, avro_topic, args.records, code, Path(tmp), args.partitions,
                                            registry)
        cost = decode_cost(registry, framed, 50_000)
        print(json.dumps({
            "records": args.records, "partitions": args.partitions, "record_bytes": size,
            "json_value_bytes": len(to_json(SchemaDecoder(open_registry(registry)).decode(framed[0]).value)),
            "raw_records_per_s": round(raw_rps), "avro_json_records_per_s": round(avro_rps),
            "ratio": round(avro_rps / raw_rps, 2),
            "engine_cpu_us_per_record": {"raw": round(raw_cpu, 1), "avro_json": round(avro_cpu, 1)},
            "decode_us_per_record": round(cost, 1),
        }, indent=2))
        admin.delete_topics([raw_topic, avro_topic])
    finally:
        if tools is not None:
            subprocess.run([str(tools / "stop.sh"), pid_file], capture_output=True)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
