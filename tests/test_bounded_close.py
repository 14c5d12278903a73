"""Closing a librdkafka client holds its caller up for a bounded time (librdkafka's close can hang in its
teardown after seeks or pauses, librdkafka #1928/#4362): the helper, and the engine's consumer through it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest

from triggerfish.bounded_close import close_within
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


@pytest.mark.kafka
def test_the_engines_consumer_close_returns_while_librdkafkas_close_still_runs(
        kafka: KafkaEnv, make_topic: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    topic = make_topic()
    mapping = MappingConfig.from_dict({
        "FunctionName": "f", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.bootstrap]}}})
    assigned: list[tuple[str, int]] = []
    revoke_started, release, revoke_done = threading.Event(), threading.Event(), threading.Event()

    def on_revoke(tps: list[tuple[str, int]]) -> None:  # close revokes the partition: hold it there
        revoke_started.set()
        release.wait(30)
        revoke_done.set()

    settings = consumer_settings(kafka.plaintext(), mapping, f"{topic}-group", "bounded-close-test")
    source = KafkaSource(settings, mapping, on_assign=lambda tps, committed: assigned.extend(tps), on_revoke=on_revoke)
    deadline = time.monotonic() + 30
    while not assigned and time.monotonic() < deadline:
        source.poll(10, 0.1)
    assert assigned == [(topic, 0)]
    monkeypatch.setattr(consumer_module, "CLOSE_WAIT_S", 0.5)
    source.close()
    assert revoke_started.is_set() and not revoke_done.is_set()  # returned while librdkafka's close still ran
    release.set()
    assert revoke_done.wait(10)
