"""The share-group consumer of a Queue-mode mapping (Kafka's KIP-932, confluent-kafka's ``ShareConsumer``).

A share group hands records of any partition to any member; each record is *acquired* by one member for
the group's lock duration (``share.record.lock.duration.ms``, 30 s by default) and acknowledged one by one:

    ACCEPT   processed; never delivered again
    RELEASE  delivered again (to any member) until its delivery count reaches the limit, then archived
    REJECT   archived now (unprocessable)

The consumer runs in explicit acknowledgement mode: every record a poll returned must be acknowledged
before the next poll. The delivery limit is the group's ``share.delivery.count.limit`` (or the broker's
``group.share.delivery.count.limit``, 5 by default); ``delivery_limit`` reads it so the engine knows a
record's last delivery and can send it to the on-failure destination instead of letting it vanish.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from confluent_kafka import AcknowledgeType, KafkaException, Message, ShareConsumer
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # type: ignore[attr-defined]

_log = logging.getLogger("triggerfish.esm")

#: A record's place: (topic, partition, offset).
Coord = tuple[str, int, int]
ACCEPT, RELEASE, REJECT = AcknowledgeType.ACCEPT, AcknowledgeType.RELEASE, AcknowledgeType.REJECT
#: Kafka's default of ``group.share.delivery.count.limit``.
DEFAULT_DELIVERY_LIMIT = 5
_GROUP_LIMIT = "share.delivery.count.limit"
_QUERY_TIMEOUT_S = 10.0


def share_settings(client_config: Mapping[str, Any], group_id: str, client_id: str, max_records: int) -> dict[str, Any]:
    """librdkafka settings of a share consumer: the mapping's connection settings plus the engine's own.

    ``max_records``: at most this many records per poll. Records a poll returns are locked to this member
    until acknowledged, so a poll takes what one round of parallel batches invokes, no more; the rest
    stays with the group for the other members. A share group's session, heartbeat and starting point are
    the broker's (group configs), not the client's.
    """
    settings = dict(client_config)
    settings.update({"group.id": group_id, "client.id": client_id, "share.acknowledgement.mode": "explicit",
                     "max.poll.records": max_records})
    return settings


def delivery_limit(client_config: Mapping[str, Any], group_id: str, timeout: float = _QUERY_TIMEOUT_S) -> int:
    """How often the broker delivers a record of ``group_id`` before archiving it (the group's config, which
    shows the broker's default when the group has none); Kafka's default when it cannot be read."""
    admin = AdminClient({k: v for k, v in client_config.items()
                         if not callable(v) and k != "statistics.interval.ms"})  # the consumer's callbacks
    try:
        futures = admin.describe_configs([ConfigResource(ResourceType.GROUP, group_id)], request_timeout=timeout)
        for future in futures.values():
            entry = future.result(timeout=timeout + 1).get(_GROUP_LIMIT)
            if entry is not None and str(entry.value).isdigit():
                return int(entry.value)
    except Exception as exc:  # noqa: BLE001 - DescribeConfigs on the group may be denied: assume Kafka's default
        _log.warning("group %s: could not read %s (%s); assuming %d", group_id, _GROUP_LIMIT, exc,
                     DEFAULT_DELIVERY_LIMIT)
    return DEFAULT_DELIVERY_LIMIT


class ShareSourceLike(Protocol):
    """A Queue-mode mapping's consumer as its loop uses it, from the poll thread only."""

    def poll(self, timeout: float) -> Sequence[Any]: ...  # confluent_kafka.Message-like, with delivery_count()

    def acknowledge(self, verdicts: Mapping[Coord, AcknowledgeType]) -> None: ...

    def commit(self, *, sync: bool = False) -> None: ...

    def close(self) -> None: ...


class ShareSourceFactory(Protocol):
    def __call__(self, settings: dict[str, Any], topics: Sequence[str], *,
                 on_error: Callable[[Any], None] | None = None,
                 on_acknowledged: Callable[[int, Any], None] | None = None) -> ShareSourceLike: ...


class ShareSource:
    """Owns one ``confluent_kafka.ShareConsumer`` in explicit acknowledgement mode."""

    def __init__(self, settings: dict[str, Any], topics: Sequence[str], *,
                 on_error: Callable[[Any], None] | None = None,
                 on_acknowledged: Callable[[int, Any], None] | None = None) -> None:
        settings = dict(settings)
        if on_error is not None:
            settings["error_cb"] = on_error
        self.consumer = ShareConsumer(settings)
        self._on_acknowledged = on_acknowledged
        if on_acknowledged is not None:
            self.consumer.set_acknowledgement_commit_callback(self._acknowledged)
        self.consumer.subscribe(list(topics))

    def _acknowledged(self, offsets: dict[Any, set[int]], error: KafkaException | None) -> None:
        assert self._on_acknowledged is not None
        self._on_acknowledged(sum(len(o) for o in offsets.values()), error)

    def poll(self, timeout: float) -> list[Message]:
        return list(self.consumer.poll(timeout))

    def acknowledge(self, verdicts: Mapping[Coord, AcknowledgeType]) -> None:
        """Record how the broker is to treat each record; sent with the next commit or poll."""
        for (topic, partition, offset), kind in verdicts.items():
            self.consumer.acknowledge_offset(topic, partition, offset, kind)

    def commit(self, *, sync: bool = False) -> None:
        if sync:
            self.consumer.commit_sync(_QUERY_TIMEOUT_S)
        else:
            self.consumer.commit_async()

    def close(self) -> None:
        """Send what is acknowledged and leave the group (records still acquired go back to it)."""
        self.consumer.close()
