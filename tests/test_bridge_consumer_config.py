"""The librdkafka settings of a bridge consumer instance (``bridge.consumer_config.consumer_conf``)."""

from __future__ import annotations

import pytest

from triggerfish.bridge.consumer_config import consumer_conf
from triggerfish.errors import UnprocessableError


def test_defaults_bound_the_prefetch_without_stalling_a_fast_client() -> None:
    conf = consumer_conf({"bootstrap.servers": "127.0.0.1:9092"}, "g", "c", {})
    assert conf["group.id"] == "g" and conf["client.id"] == "c"
    assert conf["queued.max.messages.kbytes"] == "16384"
    # librdkafka's default (1000 ms) postponed the next fetch of a drained queue: 0.6 s stalls per 100k records
    assert conf["fetch.queue.backoff.ms"] == "10"
    assert conf["enable.auto.offset.store"] == "false"  # offsets stored when an answer is handed over


def test_the_bridge_configuration_overrides_the_defaults() -> None:
    base = {"queued.max.messages.kbytes": "65536", "fetch.queue.backoff.ms": "250"}
    conf = consumer_conf(base, "g", "c", {})
    assert conf["queued.max.messages.kbytes"] == "65536" and conf["fetch.queue.backoff.ms"] == "250"


def test_create_body_settings_are_applied_and_checked() -> None:
    conf = consumer_conf({}, "g", "c", {"auto.offset.reset": "none", "enable.auto.commit": False,
                                        "consumer.request.timeout.ms": 5000, "fetch.min.bytes": 10})
    assert (conf["auto.offset.reset"], conf["enable.auto.commit"]) == ("error", "false")
    assert (conf["socket.timeout.ms"], conf["fetch.min.bytes"]) == ("5000", "10")
    with pytest.raises(UnprocessableError, match="auto.offset.reset"):
        consumer_conf({}, "g", "c", {"auto.offset.reset": "sometimes"})
