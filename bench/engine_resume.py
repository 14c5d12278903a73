"""How long a partition paused for backpressure waits for its next record once resumed (``KafkaSource.resume``).

Two cases, each over a 4-partition topic holding 50,000 records of 1 KB per partition, read by the engine's own
consumer (``esm.consumer.KafkaSource``, the engine's librdkafka settings): partition 0 is paused for 0.1 s while
the poll loop reads on, then resumed, and the time from the resume to its next record is taken.

- ``others``: only partition 0 is paused. The other partitions are being fetched, and the broker holds a fetch
  for those that librdkafka has read to their end (``fetch.wait.max.ms``).
- ``all``: all four are paused and partition 0 alone is resumed: librdkafka's fetcher for the broker sleeps.

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/engine_resume.py --rounds 3
    KAFKA_BOOTSTRAP=127.0.0.1:9092 PYTHONPATH=/tmp/old/src .venv/bin/python bench/engine_resume.py --rounds 3

Each round pauses after 0.05 s and after 0.15 s of reading; the median and the spread are printed, in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from engine_throughput import produce  # (bench/ is on sys.path: this script's directory)
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.consumer import KafkaSource, consumer_settings

PARTITIONS, PER_PARTITION, SIZE = 4, 50_000, 1024


def fill(admin: AdminClient, bootstrap: str) -> str:
    topic = f"bench-resume-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result()
    produce(bootstrap, topic, PARTITIONS * PER_PARTITION, SIZE, PARTITIONS)
    return topic


def one_resume(bootstrap: str, topic: str, pause_all: bool, pause_after: float) -> float | None:
    """Seconds from resuming partition 0 to its next record (None: it was read to its end before the pause)."""
    mapping = MappingConfig.from_dict({"FunctionName": "f", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
                                       "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}}})
    group = f"bench-resume-{uuid.uuid4().hex[:8]}"
    settings = consumer_settings({"bootstrap.servers": bootstrap}, mapping, group, group)
    source = KafkaSource(settings, mapping, on_assign=lambda tps, committed: None, on_revoke=lambda tps: None)
    paused_at = resumed_at = None
    try:
        start = None
        while True:
            messages = source.poll(1000, 1.0)
            now = time.perf_counter()
            if messages and start is None:
                start = now
            if resumed_at is not None:
                if any(m.partition() == 0 for m in messages if m.error() is None):
                    return now - resumed_at
                if now - resumed_at > 5:
                    return None
            elif start is not None and paused_at is None and now - start >= pause_after:
                source.pause([(topic, p) for p in (range(PARTITIONS) if pause_all else [0])])
                paused_at = now
            elif paused_at is not None and now - paused_at >= 0.1:
                source.resume([(topic, 0)])
                resumed_at = time.perf_counter()
    finally:
        source.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    results: dict[str, list[float]] = {"others": [], "all": []}
    for _ in range(args.rounds):
        for case in results:
            for pause_after in (0.05, 0.15):
                topic = fill(admin, bootstrap)
                took = one_resume(bootstrap, topic, case == "all", pause_after)
                admin.delete_topics([topic])  # (400 MB a round on the broker's disk otherwise)
                if took is not None:
                    results[case].append(round(took * 1000, 1))
                print(case, pause_after, took, file=sys.stderr)
    print(json.dumps({case: {"median_ms": statistics.median(v) if v else None, "ms": v} for case, v in results.items()}))


if __name__ == "__main__":
    main()
