"""Latency from the broker's append to the handler's start at a fixed rate (issue 23, deliverable 3).

    .venv/bin/python bench/engine_latency.py                              # 1,000 records/s for 20 s
    .venv/bin/python bench/engine_latency.py --before /tmp/base/src       # also the code in /tmp/base/src

The topic is created with ``message.timestamp.type=LogAppendTime``: the broker stamps every record with
its own clock when it appends it, so the record's timestamp in the event is the append time (same host,
same clock; millisecond resolution, truncated, so each figure carries up to +1 ms). A ``triggerfish run``
process (window 0, BatchSize 100) runs a Python handler that takes ``time.time_ns()`` as its first
statement and writes it next to each record's timestamp. The producer (``linger.ms=0``, acks=all) notes
when each record was sent and when the broker's acknowledgement came back. In the same run a bare
confluent-kafka consumer (``poll()`` loop, the engine's fetch settings) notes when it got each record,
which is what the broker and librdkafka take on their own.

Reported: append -> handler start (p50/p99/max), the producer's acknowledgement (send -> ack), the bare
consumer's append -> poll, and the deliverable: p99(append -> handler start) - p99(acknowledgement).
The first --warm-up seconds are not counted.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from engine_kill import Engine, add_side_arguments, sides_of  # bench/ is on sys.path

HANDLER = """
import os, time

def handler(event, context):
    start = time.time_ns()
    lines = [f"{r['offset']} {r['timestamp']} {start}" for records in event["records"].values() for r in records]
    fd = os.open(os.environ["OUT"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, ("\\n".join(lines) + "\\n").encode())
    os.close(fd)
"""


def quantiles(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=100)
    return {"p50": round(q[49], 2), "p99": round(q[98], 2), "max": round(max(values), 2)}


def bare_consumer(bootstrap: str, topic: str, stop: threading.Event, seen: dict[int, int]) -> None:
    """offset -> time.time_ns() when a plain poll() loop with the engine's fetch settings got it."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bare-{uuid.uuid4().hex}",
                         "auto.offset.reset": "latest", "enable.auto.commit": False, "fetch.wait.max.ms": 10})
    consumer.subscribe([topic])
    while not stop.is_set():
        msg = consumer.poll(0.1)
        offset = None if msg is None or msg.error() is not None else msg.offset()
        if offset is not None:
            seen[offset] = time.time_ns()
    consumer.close()


def run(args: argparse.Namespace, admin: AdminClient, root: Path, side: str, src: str | None) -> dict[str, Any]:
    topic = f"bench-lat-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, num_partitions=args.partitions, replication_factor=1,
                                  config={"message.timestamp.type": "LogAppendTime"})])[topic].result(30)
    directory = root / f"{side}-{topic}"
    (directory / "code").mkdir(parents=True)
    (directory / "code" / "lat.py").write_text(textwrap.dedent(HANDLER))
    out = directory / "out.txt"
    doc = {"Functions": [{"FunctionName": "lat", "CodeUri": str(directory / "code"), "Handler": "lat.handler",
                          "Environment": {"Variables": {"OUT": str(out)}}}],
           "EventSourceMappings": [{"FunctionName": "lat", "Topics": [topic], "StartingPosition": "LATEST",
                                    "BatchSize": 100, "MaximumBatchingWindowInSeconds": 0,
                                    "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [args.bootstrap]}}}]}
    (directory / "triggerfish.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    engine = Engine(directory, src)
    engine.start()
    stop, bare = threading.Event(), dict[int, int]()
    reader = threading.Thread(target=bare_consumer, args=(args.bootstrap, topic, stop, bare), daemon=True)
    reader.start()
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 0})
    deadline = time.monotonic() + 60
    while "assigned" not in (directory / "run.log").read_text():  # the group's assignment
        if time.monotonic() > deadline:
            raise SystemExit(f"{side}: the engine did not join: {(directory / 'run.log').read_text()[-2000:]}")
        time.sleep(0.05)
    time.sleep(1.0)
    acks: dict[int, tuple[int, int, int]] = {}  # offset -> (sent ns, append ms, ack ns)

    def delivered(err: Any, msg: Any, sent: int) -> None:
        if err is None:
            acks[msg.offset()] = (sent, msg.timestamp()[1], time.time_ns())

    total = int(args.rate * (args.seconds + args.warm_up))
    value = b"x" * args.size
    started = time.perf_counter()
    for i in range(total):
        delay = started + i / args.rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent = time.time_ns()
        producer.produce(topic, value, partition=i % args.partitions,
                         on_delivery=functools.partial(_on_delivery, delivered, sent))
        producer.poll(0)
    producer.flush(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if out.exists() and out.read_text().count("\n") >= total:
            break
        time.sleep(0.1)
    engine.stop()
    stop.set()
    reader.join(10)
    admin.delete_topics([topic])
    first_counted = min(a[1] for a in acks.values()) + int(args.warm_up * 1000)
    handler: list[float] = []
    for line in out.read_text().split("\n"):
        if line:
            offset, append_ms, start_ns = (int(x) for x in line.split())
            if append_ms >= first_counted:
                handler.append(start_ns / 1e6 - append_ms)
    counted = {o: a for o, a in acks.items() if a[1] >= first_counted}
    ack_ms = [(ack - sent) / 1e6 for sent, _, ack in counted.values()]
    bare_ms = [bare[o] / 1e6 - a[1] for o, a in counted.items() if o in bare] if args.partitions == 1 else []
    result: dict[str, Any] = {"records": len(handler), "append_to_handler_ms": quantiles(handler),
                              "producer_ack_ms": quantiles(ack_ms)}
    if bare_ms:
        result["bare_consumer_append_to_poll_ms"] = quantiles(bare_ms)
    result["p99_minus_ack_p99_ms"] = round(result["append_to_handler_ms"]["p99"] - result["producer_ack_ms"]["p99"], 2)
    return result


def _on_delivery(delivered: Any, sent: int, err: Any, msg: Any) -> None:
    delivered(err, msg, sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_side_arguments(parser)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warm-up", type=float, default=2.0)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=1)
    args = parser.parse_args()
    sides = sides_of(args)
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.pairs):
            for side, src in sides:
                result = run(args, admin, Path(tmp), f"{side}{n}", src)
                results.setdefault(side, []).append(result)
                print(side, json.dumps(result), file=sys.stderr)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
