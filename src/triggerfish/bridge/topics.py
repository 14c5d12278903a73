"""Topic metadata, partition offsets and topic creation through one shared AdminClient.

All functions block (they wait on Admin futures) and are meant for a worker thread. They return
plain dicts shaped like Strimzi's ``TopicMetadata``, ``PartitionMetadata`` and ``OffsetsSummary``.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, OffsetSpec  # type: ignore[attr-defined]

from triggerfish.bridge.errors import Identity, from_kafka
from triggerfish.errors import NotFoundError, UnprocessableError

_TIMEOUT = 15.0


class Topics:
    def __init__(self, admin: AdminClient, identity: Identity) -> None:
        self._admin = admin
        self._identity = identity

    def names(self) -> list[str]:
        try:
            md = self._admin.list_topics(timeout=_TIMEOUT)
        except KafkaException as exc:
            raise from_kafka(exc, self._identity, "Describe") from None
        return sorted(t for t in md.topics if not t.startswith("__"))

    def _describe(self, topic: str) -> Any:
        try:
            fut = self._admin.describe_topics(TopicCollection([topic]), request_timeout=_TIMEOUT)[topic]
            return fut.result(timeout=_TIMEOUT)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.TOPIC_EXCEPTION,
                                                               KafkaError._INVALID_ARG):
                raise NotFoundError("The specified topic was not found.", topic) from None
            raise from_kafka(exc, self._identity, "Describe", topic) from None
        except ValueError:  # names librdkafka refuses before asking the broker
            raise NotFoundError("The specified topic was not found.", topic) from None

    def metadata(self, topic: str) -> dict[str, Any]:
        desc = self._describe(topic)
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        try:
            entries = self._admin.describe_configs([resource], request_timeout=_TIMEOUT)[resource].result(timeout=_TIMEOUT)
        except KafkaException as exc:
            raise from_kafka(exc, self._identity, "DescribeConfigs", topic) from None
        configs = {name: ("" if e.value is None else str(e.value)) for name, e in entries.items()}
        return {"name": topic, "configs": configs, "partitions": [_partition(p) for p in desc.partitions]}

    def partitions(self, topic: str) -> list[dict[str, Any]]:
        return [_partition(p) for p in self._describe(topic).partitions]

    def partition(self, topic: str, partition: int) -> dict[str, Any]:
        for p in self._describe(topic).partitions:
            if p.id == partition:
                return _partition(p)
        raise NotFoundError("Specified partition does not exist.", f"{topic}-{partition}")

    def offsets(self, topic: str, partition: int) -> dict[str, int]:
        if not any(p.id == partition for p in self._describe(topic).partitions):
            raise NotFoundError(f"Topic '{topic}' does not have partition with id {partition}", f"{topic}-{partition}")
        tp = TopicPartition(topic, partition)
        out = {}
        specs = (("beginning_offset", OffsetSpec.earliest()), ("end_offset", OffsetSpec.latest()))  # type: ignore[no-untyped-call]
        for field, spec in specs:
            try:
                res = self._admin.list_offsets({tp: spec}, request_timeout=_TIMEOUT)[tp].result(timeout=_TIMEOUT)
            except KafkaException as exc:
                raise from_kafka(exc, self._identity, "Describe", topic) from None
            out[field] = res.offset
        return out

    def create(self, name: str, partitions: int | None, replication: int | None) -> None:
        if partitions is not None and not 1 <= partitions <= 2**31 - 1:
            raise UnprocessableError(f"partitions_count must be between 1 and {2**31 - 1} (or null for the broker default)")
        if replication is not None and not 1 <= replication <= 2**15 - 1:
            raise UnprocessableError(f"replication_factor must be between 1 and {2**15 - 1} (or null for the broker default)")
        new = NewTopic(name, num_partitions=-1 if partitions is None else partitions,
                       replication_factor=-1 if replication is None else replication)
        try:
            self._admin.create_topics([new], request_timeout=_TIMEOUT)[name].result(timeout=_TIMEOUT)
        except KafkaException as exc:
            raise from_kafka(exc, self._identity, "Create", name) from None
        except (ValueError, TypeError) as exc:
            raise UnprocessableError(str(exc)) from None


def _partition(p: Any) -> dict[str, Any]:
    leader = p.leader.id if p.leader is not None else -1
    isr = {n.id for n in p.isr}
    return {
        "partition": p.id,
        "leader": leader,
        "replicas": [{"broker": r.id, "leader": r.id == leader, "in_sync": r.id in isr} for r in p.replicas],
    }
