"""Closing a librdkafka client holds its caller up for a bounded time (librdkafka's close can hang in its
teardown after seeks or pauses, librdkafka #1928/#4362), and a subscribed one leaves its group in polls first,
so that close runs no revoke (librdkafka #4041): the helpers, and the engine's consumer through them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from triggerfish.bounded_close import close_within, leave_group
from triggerfish.esm import consumer as consumer_module
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.consumer import KafkaSource, consumer_settings
from triggerfish.localkafka import KafkaEnv


def test_a_close_that_hangs_is_left_in_the_background_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    with caplog.at_level(logging.WARNING, logger="triggerfish"):
        assert close_within(release.wait, 0.2, name="consumer c1") is False
    assert not release.is_set()
    assert "consumer c1: librdkafka's close did not finish in 0 s" in caplog.text
    release.set()


def test_a_close_that_fails_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def fail() -> None:
        raise RuntimeError("handle already closed")

    with caplog.at_level(logging.WARNING, logger="triggerfish"):
        assert close_within(fail, 5.0, name="consumer c2") is True
    assert "closing consumer c2: handle already closed" in caplog.text


class _SlowClose:
    """A consumer whose close waits for ``release`` (librdkafka's teardown hanging); everything else is the real one."""

    def __init__(self, consumer: Consumer, release: threading.Event) -> None:
        self._consumer, self._release = consumer, release
        self.closed = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)

    def close(self) -> None:
        self._release.wait(30)
        self._consumer.close()
        self.closed.set()


@pytest.mark.kafka
def test_the_engines_consumer_leaves_its_group_then_returns_while_librdkafkas_close_still_runs(
        kafka: KafkaEnv, make_topic: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    topic = make_topic()
    mapping = MappingConfig.from_dict({
        "FunctionName": "f", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap]}}})
    assigned: list[tuple[str, int]] = []
    revoked: list[tuple[list[tuple[str, int]], str]] = []
    settings = consumer_settings(kafka.plaintext(), mapping, f"{topic}-group", "bounded-close-test")
    source = KafkaSource(settings, mapping, on_assign=lambda tps, committed: assigned.extend(tps),
                         on_revoke=lambda tps: revoked.append((tps, threading.current_thread().name)))
    deadline = time.monotonic() + 30
    while not assigned and time.monotonic() < deadline:
        source.poll(10, 0.1)
    assert assigned == [(topic, 0)]
    release = threading.Event()
    slow = _SlowClose(source.consumer, release)
    source.consumer = slow  # type: ignore[assignment]
    monkeypatch.setattr(consumer_module, "CLOSE_WAIT_S", 0.5)
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 5  # returned while librdkafka's close still ran
    assert not slow.closed.is_set()
    # the revoke ran in polls of the closing thread before the close, not inside it
    assert revoked == [([(topic, 0)], threading.current_thread().name)]
    release.set()
    assert slow.closed.wait(10)
    assert len(revoked) == 1  # close had nothing left to revoke


def _counting_consumer(kafka: KafkaEnv, topic: str, strategy: str, calls: list[str]) -> Consumer:
    """A consumer subscribed to ``topic`` whose rebalance callbacks append "assign" or "revoke" to ``calls``."""
    consumer = Consumer({**kafka.plaintext(), "group.id": f"{topic}-group", "enable.auto.offset.store": False,
                         "partition.assignment.strategy": strategy})
    consumer.subscribe([topic], on_assign=lambda c, p: calls.append("assign"), on_revoke=lambda c, p: calls.append("revoke"))
    return consumer


@pytest.mark.kafka
@pytest.mark.parametrize("strategy", ["range,roundrobin", "cooperative-sticky"])
@pytest.mark.parametrize("leave", [True, False], ids=["left first", "closed at once"])
def test_after_leaving_the_group_close_runs_no_rebalance(
        kafka: KafkaEnv, make_topic: Callable[..., str], strategy: str, leave: bool) -> None:
    # A revoke run inside close is where confluent-kafka holds the GIL while librdkafka may never answer
    # (librdkafka #4041): after leave_group, close must not run one. The closed-at-once case shows it would.
    calls: list[str] = []
    consumer = _counting_consumer(kafka, make_topic(partitions=3), strategy, calls)
    deadline = time.monotonic() + 30
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.1)
    assert calls == ["assign"]
    if leave:
        leave_group(consumer)
        assert calls == ["assign", "revoke"] and consumer.assignment() == []
    before_close = len(calls)
    assert close_within(consumer.close, 10.0, name="consumer c3")
    assert calls[before_close:] == ([] if leave else ["revoke"])


@pytest.mark.kafka
@pytest.mark.parametrize("strategy", ["range,roundrobin", "cooperative-sticky"])
def test_rebalances_queued_while_nobody_polled_are_served_before_close(
        kafka: KafkaEnv, make_topic: Callable[..., str], strategy: str) -> None:
    # A bridge consumer subscribed and unsubscribed with no poll in between: the group's assignment, and its
    # revoke, wait in the queue. close ran them itself and hung the process once (test_bridge_strimzi's teardown).
    calls: list[str] = []
    consumer = _counting_consumer(kafka, make_topic(partitions=2), strategy, calls)
    time.sleep(2.0)  # the group is joined meanwhile, in librdkafka's threads; nothing polls
    consumer.unsubscribe()
    time.sleep(0.5)
    assert calls == []
    leave_group(consumer)
    assert consumer.assignment() == []
    served = len(calls)
    assert close_within(consumer.close, 10.0, name="consumer c4")
    assert calls[served:] == []


@pytest.mark.kafka
def test_a_manual_assignment_is_dropped_not_waited_for(kafka: KafkaEnv, make_topic: Callable[..., str],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    # leaving the group never revokes an assign()'s partitions: without dropping them it would wait its 5 s out
    consumer = Consumer({**kafka.plaintext(), "group.id": "manual-assignment"})
    consumer.assign([TopicPartition(make_topic(), 0)])
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="triggerfish"):
        leave_group(consumer, manual=True)
    assert time.monotonic() - started < 2
    assert consumer.assignment() == [] and "not revoked" not in caplog.text
    assert close_within(consumer.close, 10.0, name="consumer c5")


def test_leaving_the_group_of_a_closed_consumer_is_not_an_error(kafka: KafkaEnv) -> None:
    consumer = Consumer({**kafka.plaintext(), "group.id": "left-after-close"})
    consumer.close()
    leave_group(consumer)  # a bridge delete racing the shutdown: close copes, so must this
