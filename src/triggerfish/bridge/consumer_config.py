"""The librdkafka settings of a new consumer instance: the bridge's ``kafka.consumer.*`` and the create body's.

The create body's keys (``auto.offset.reset``, ``isolation.level``, ...) are checked with the Java
client's messages, which Strimzi passes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from triggerfish.errors import UnprocessableError

_CONSUMER_KEYS = {"auto.offset.reset", "enable.auto.commit", "fetch.min.bytes", "consumer.request.timeout.ms", "isolation.level"}
_RESET = {"earliest", "latest", "none"}
_ISOLATION = {"read_committed", "read_uncommitted"}


def consumer_conf(base: Mapping[str, str], group: str, name: str, body: Mapping[str, Any]) -> dict[str, str]:
    """``base`` with the instance's group and client id and the create body's settings."""
    conf = dict(base)
    # librdkafka prefetches up to 64 MB per consumer by default; an HTTP poll returns far less,
    # and a sidecar's memory matters more than prefetch depth (users can still set it)
    conf.setdefault("queued.max.messages.kbytes", "16384")
    # once that queue is full librdkafka postpones the partition's next fetch by fetch.queue.backoff.ms
    # (1 s by default): a client polling faster than that drained it and then waited ~0.6 s, twice per
    # 200,000 records (BENCHMARKS.md)
    conf.setdefault("fetch.queue.backoff.ms", "10")
    conf.update({"group.id": group, "client.id": name})
    # offsets are stored when a poll's answer is handed over (Registry.hand_over), not when librdkafka
    # returns them: a batch read ahead, or refused, is never committed
    conf["enable.auto.offset.store"] = "false"
    for key in _CONSUMER_KEYS & body.keys():
        value = body[key]
        if key == "auto.offset.reset":
            if value not in _RESET:
                # the Java client's text, which Strimzi passes on (librdkafka has no by_duration: either)
                raise UnprocessableError(
                    f"Invalid value {value} for configuration auto.offset.reset: Invalid value `{value}` for "
                    "configuration auto.offset.reset. The value must be either 'earliest', 'latest', 'none' "
                    "or of the format 'by_duration:<PnDTnHnMn.nS.>'.")
            conf[key] = "error" if value == "none" else value
        elif key == "isolation.level":
            if value not in _ISOLATION:
                raise UnprocessableError(f"Invalid value {value} for configuration isolation.level: "
                                  "String must be one of: read_committed, read_uncommitted")
            conf[key] = value
        elif key == "enable.auto.commit":
            conf[key] = "true" if value else "false"
        elif key == "consumer.request.timeout.ms":
            if value < 10:
                raise UnprocessableError(f"Invalid value {value} for configuration consumer.request.timeout.ms: "
                                  "must be at least 10")
            conf["socket.timeout.ms"] = str(value)
        elif key == "fetch.min.bytes":
            if not 1 <= value <= 100_000_000:
                raise UnprocessableError(f"Invalid value {value} for configuration fetch.min.bytes: "
                                  "must be between 1 and 100000000")
            conf[key] = str(value)
    return conf
