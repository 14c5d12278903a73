"""Resuming a partition paused for backpressure (``KafkaSource.resume``): which partitions a seek must wake
(``to_wake``: those of a broker that fetches nothing else for this consumer), and, against the real broker, that
a resumed partition goes on from where it was, each record once, whether the broker's other partitions were
being fetched or paused too. How long the wait is lives in ``bench/engine_resume.py``."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient
from tests.esm_helpers import produce

from triggerfish.esm.config import MappingConfig
from triggerfish.esm.consumer import KafkaSource, consumer_settings, to_wake
from triggerfish.localkafka import KafkaEnv

A0, A1, A2, B0 = ("a", 0), ("a", 1), ("a", 2), ("b", 0)


def test_a_partition_is_not_sought_while_its_broker_fetches_others() -> None:
    # a seek would make it miss the fetch the broker holds for the others: ~1 s instead of ~0.5 s
    assert to_wake([A0], paused=set(), assigned={A0, A1}, leaders={A0: 1, A1: 1}) == []


def test_a_partition_is_sought_when_every_other_one_of_its_broker_is_paused() -> None:
    # librdkafka's fetcher for that broker sleeps up to a second, and a resume alone does not wake it
    assert to_wake([A0], paused={A1, A2}, assigned={A0, A1, A2}, leaders={A0: 1, A1: 1, A2: 1}) == [A0]
    assert to_wake([A0], paused=set(), assigned={A0}, leaders={A0: 1}) == [A0]


def test_only_the_partitions_of_the_broker_that_sleeps_are_sought() -> None:
    leaders = {A0: 1, A1: 2, B0: 2}
    assert to_wake([A0, A1], paused={B0}, assigned={A0, A1, B0}, leaders=leaders) == [A0, A1]
    assert to_wake([A0, A1], paused=set(), assigned={A0, A1, B0}, leaders=leaders) == [A0]


def test_a_partition_whose_leader_is_unknown_is_sought() -> None:
    assert to_wake([A0], paused=set(), assigned={A0, A1}, leaders={A1: 1}) == [A0]


def _source(kafka: KafkaEnv, topic: str) -> tuple[KafkaSource, list[tuple[str, int]]]:
    mapping = MappingConfig.from_dict({
        "FunctionName": "f", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap]}}})
    assigned: list[tuple[str, int]] = []
    settings = consumer_settings(kafka.plaintext(), mapping, f"{topic}-group", "resume-test")
    source = KafkaSource(settings, mapping, on_assign=lambda tps, committed: assigned.extend(tps),
                         on_revoke=lambda tps: None)
    return source, assigned


@pytest.mark.parametrize("pause_all", [False, True], ids=["others-fetched", "all-paused"])
def test_a_resumed_partition_goes_on_from_where_it_was(
        kafka: KafkaEnv, admin: AdminClient, make_topic: Callable[..., str], pause_all: bool) -> None:
    topic = make_topic(partitions=2)
    for partition in (0, 1):
        produce(kafka.bootstrap, topic, [f"{partition}-{i}".encode() for i in range(3000)], partition=partition)
    source, assigned = _source(kafka, topic)
    seen: dict[int, list[int]] = {0: [], 1: []}
    try:
        deadline = time.monotonic() + 60
        while not seen[0]:  # some of partition 0 first, then it is paused mid-way
            assert time.monotonic() < deadline
            for m in source.poll(100, 0.5):
                seen[m.partition()].append(m.offset())
        leader = admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader
        assert source._leaders == {(topic, 0): leader, (topic, 1): leader}  # read when assigned
        source.pause([(topic, 0), (topic, 1)] if pause_all else [(topic, 0)])
        for _ in range(5):
            for m in source.poll(100, 0.1):  # what was fetched before the pause may still come: kept
                seen[m.partition()].append(m.offset())
        source.resume([(topic, 0)])
        if pause_all:
            source.resume([(topic, 1)])
        while len(seen[0]) < 3000 or len(seen[1]) < 3000:
            assert time.monotonic() < deadline, {p: len(o) for p, o in seen.items()}
            for m in source.poll(500, 0.5):
                seen[m.partition()].append(m.offset())
    finally:
        source.close()
    assert sorted(assigned) == [(topic, 0), (topic, 1)]
    assert seen[0] == list(range(3000)) and seen[1] == list(range(3000))  # in order, each once, none lost
