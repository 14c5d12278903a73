"""Reading ahead for a consumer draining a backlog never commits, skips or reorders a record.

A poll that fills ``max.poll.records`` (5 here) has the next batch read at once; these check that a
commit (explicit or automatic, and the one at close) covers only the records answers held, and that
a seek, an assignment or a new subscription after a read-ahead gives its records back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from test_bridge_api import JSON, V2, Bridge, new_consumer
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

BATCH = 5


@pytest.fixture(scope="module")
def bridge(kafka: KafkaEnv) -> Iterator[Bridge]:
    b = Bridge({"kafka.bootstrap.servers": kafka.bootstrap, "kafka.consumer.auto.offset.reset": "earliest",
                "kafka.consumer.max.poll.records": str(BATCH), "kafka.consumer.auto.commit.interval.ms": "100"})
    yield b
    b.close()


def fill(kafka: KafkaEnv, topic: str, n: int) -> None:
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    for i in range(n):
        producer.produce(topic, f'{{"i":{i}}}'.encode(), partition=0)
    assert producer.flush(30) == 0


def poll(b: Bridge, group: str, name: str = "c", timeout: int = 3000) -> list[int]:
    r = b.http.get(f"/consumers/{group}/instances/{name}/records", params={"timeout": timeout}, headers={"accept": JSON})
    assert r.status_code == 200, r.text
    return [rec["value"]["i"] for rec in r.json()]


def start(b: Bridge, group: str, topic: str, **body: Any) -> str:
    base = f"/consumers/{group}/instances/" + new_consumer(b, group, name="c", format="json", **body)
    assert b.http.post(base + "/subscription", json={"topics": [topic]}, headers={"content-type": V2}).status_code == 204
    return base


def committed(kafka: KafkaEnv, group: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": group})
    try:
        return int(c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset)
    finally:
        c.close()


def test_a_commit_covers_only_answered_records(bridge: Bridge, kafka: KafkaEnv, make_topic: Callable[..., str],
                                               unique_name: Callable[[str], str]) -> None:
    topic, group = make_topic(partitions=1), unique_name("g")
    fill(kafka, topic, 4 * BATCH)
    base = start(bridge, group, topic, **{"enable.auto.commit": False})
    assert poll(bridge, group) == list(range(BATCH))  # full: the next batch is read ahead
    time.sleep(0.5)
    assert bridge.http.post(base + "/offsets").status_code == 204
    assert committed(kafka, group, topic) == BATCH
    assert poll(bridge, group) == list(range(BATCH, 2 * BATCH))  # the read-ahead batch, in order
    assert bridge.http.delete(base).status_code == 204
    # the group resumes where the commit left it: nothing read ahead was lost
    start(bridge, group, topic, **{"enable.auto.commit": False})
    assert poll(bridge, group) == list(range(BATCH, 2 * BATCH))


def test_auto_commit_and_close_never_cover_a_read_ahead_batch(bridge: Bridge, kafka: KafkaEnv,
                                                              make_topic: Callable[..., str],
                                                              unique_name: Callable[[str], str]) -> None:
    topic, group = make_topic(partitions=1), unique_name("g")
    fill(kafka, topic, 4 * BATCH)
    base = start(bridge, group, topic)  # auto-commit on, every 100 ms
    assert poll(bridge, group) == list(range(BATCH))
    assert poll(bridge, group) == list(range(BATCH, 2 * BATCH))
    time.sleep(1.0)  # several auto-commits while the third batch waits, read ahead
    assert committed(kafka, group, topic) == 2 * BATCH
    assert bridge.http.delete(base).status_code == 204  # closing commits too
    assert committed(kafka, group, topic) == 2 * BATCH
    start(bridge, group, topic)
    assert poll(bridge, group) == list(range(2 * BATCH, 3 * BATCH))


def test_a_seek_after_a_read_ahead_is_where_the_next_poll_starts(bridge: Bridge, kafka: KafkaEnv,
                                                                 make_topic: Callable[..., str],
                                                                 unique_name: Callable[[str], str]) -> None:
    topic, group = make_topic(partitions=1), unique_name("g")
    fill(kafka, topic, 4 * BATCH)
    base = start(bridge, group, topic, **{"enable.auto.commit": False})
    assert poll(bridge, group) == list(range(BATCH))
    seek = {"offsets": [{"topic": topic, "partition": 0, "offset": 2}]}
    assert bridge.http.post(base + "/positions", json=seek, headers={"content-type": V2}).status_code == 204
    assert poll(bridge, group) == list(range(2, 2 + BATCH))
    end = {"partitions": [{"topic": topic, "partition": 0}]}
    assert bridge.http.post(base + "/positions/beginning", json=end, headers={"content-type": V2}).status_code == 204
    assert poll(bridge, group) == list(range(BATCH))


def test_an_assignment_after_a_read_ahead_gets_its_records_back(bridge: Bridge, kafka: KafkaEnv,
                                                                make_topic: Callable[..., str],
                                                                unique_name: Callable[[str], str]) -> None:
    topic, group = make_topic(partitions=1), unique_name("g")
    fill(kafka, topic, 4 * BATCH)
    base = new_consumer(bridge, group, name="c", format="json", **{"enable.auto.commit": False})
    path = f"/consumers/{group}/instances/{base}"
    assign = {"partitions": [{"topic": topic, "partition": 0}]}
    assert bridge.http.post(path + "/assignments", json=assign, headers={"content-type": V2}).status_code == 204
    assert poll(bridge, group) == list(range(BATCH))
    assert poll(bridge, group) == list(range(BATCH, 2 * BATCH))
    # the third batch is read ahead now; a seek to where the consumer is gives it back unchanged
    here = {"offsets": [{"topic": topic, "partition": 0, "offset": 2 * BATCH}]}
    assert bridge.http.post(path + "/positions", json=here, headers={"content-type": V2}).status_code == 204
    assert poll(bridge, group) == list(range(2 * BATCH, 3 * BATCH))
    assert poll(bridge, group) == list(range(3 * BATCH, 4 * BATCH))
    assert poll(bridge, group, timeout=500) == []
