"""Consumer instances: the registry keyed by (group, name), their Kafka consumers, and idle expiry.

Every method that touches a confluent-kafka Consumer is blocking and meant to run in a worker thread;
a per-instance lock serialises calls on one consumer (librdkafka consumers are not re-entrant for
poll/commit/seek from several threads at once). Wire formats live in ``formats``; this module deals
in Kafka objects and plain Python values.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from triggerfish.bounded_close import close_within, leave_group
from triggerfish.bridge.batches import Batch, answer
from triggerfish.bridge.consumer_config import consumer_conf
from triggerfish.bridge.errors import Identity, StrimziServerError, from_kafka
from triggerfish.bridge.formats import Format
from triggerfish.bridge.instance import Instance, first_topic
from triggerfish.bridge.patterns import posix_regex
from triggerfish.bridge.schema_formats import SchemaCodec
from triggerfish.errors import (
    ConflictError,
    ConsumerExists,
    ConsumerNotFound,
    KafkaClientError,
    NotFoundError,
    TriggerfishError,
    UnprocessableError,
)

_log = logging.getLogger("triggerfish.bridge.consumers")

_GRACE_S = 0.1


class Registry:
    """All live consumer instances; ``reap`` closes the ones idle for longer than ``timeout_seconds``."""

    def __init__(self, base_conf: dict[str, str], identity: Identity, bridge_id: str | None,
                 timeout_seconds: int, max_poll_records: int, codec: SchemaCodec | None = None) -> None:
        self._base = base_conf
        self._codec = codec
        self._identity = identity
        self._bridge_id = bridge_id
        self.timeout_seconds = timeout_seconds
        self._max_poll = max_poll_records
        self._instances: dict[tuple[str, str], Instance] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._instances)

    def live(self) -> list[Instance]:
        """The instances that are open now."""
        return [inst for inst in list(self._instances.values()) if not inst.closed]

    # ------------------------------------------------------------ lifecycle

    def create(self, group: str, body: dict[str, Any]) -> Instance:
        """Create a consumer instance (blocking: builds the librdkafka client)."""
        name = body.get("name") or f"{self._bridge_id or 'kafka-bridge-consumer'}-{uuid.uuid4()}"
        fmt_name = body.get("format", "binary")
        try:
            fmt = Format(fmt_name)
        except ValueError:
            raise UnprocessableError("Invalid format type.") from None
        if fmt.uses_registry and self._codec is None:
            # Strimzi's answer; the bridge serves these formats only with schema.registry.url set
            raise UnprocessableError("Invalid format type.")
        if not group:
            raise UnprocessableError("group.id must not be empty")
        conf = consumer_conf(self._base, group, name, body)
        with self._lock:
            if (group, name) in self._instances:
                raise ConsumerExists(group, name)
            # reserve the name before the (slow) client construction
            placeholder = Instance(group, name, fmt, None)  # type: ignore[arg-type]
            placeholder.closed = True
            self._instances[(group, name)] = placeholder
        try:
            consumer = Consumer(conf)
        except KafkaException as exc:
            with self._lock:
                self._instances.pop((group, name), None)
            raise UnprocessableError(f"Invalid consumer configuration: {exc.args[0].str() if exc.args else exc}") from None
        inst = Instance(group, name, fmt, consumer)
        if fmt.uses_registry and self._codec is not None:
            inst.decoders = self._codec.decoder(fmt)
        with self._lock:
            self._instances[(group, name)] = inst
        return inst

    def holds(self, group: str, name: str) -> bool:
        """Whether this bridge has (or is creating) the instance; never blocks."""
        return (group, name) in self._instances

    def find(self, group: str, name: str) -> Instance | None:
        """The open instance, if this bridge has it (not touched: idle expiry is not postponed)."""
        inst = self._instances.get((group, name))
        return None if inst is None or inst.closed else inst

    def get(self, group: str, name: str) -> Instance:
        inst = self._instances.get((group, name))
        if inst is None or inst.closed:
            raise ConsumerNotFound(group, name)
        inst.touch()
        return inst

    def delete(self, group: str, name: str) -> None:
        with self._lock:
            inst = self._instances.get((group, name))
            if inst is None or inst.closed:
                raise ConsumerNotFound(group, name)
            del self._instances[(group, name)]
        inst.closing = True
        self._close(inst)

    def _close(self, inst: Instance) -> None:
        with inst.lock:
            if inst.closed:
                return
            inst.closed = True
            # The group's rebalances in polls here, not inside close (bounded_close): of a subscription, or of one
            # that was dropped since (its assignment and revoke may still wait in the queue).
            leave_group(inst.consumer, manual=bool(inst.assigned), log=_log)
            # librdkafka's close can hang after seeks or pauses: a delete or the shutdown waits 10 s at most
            close_within(inst.consumer.close, name=f"consumer {inst.group}/{inst.name}", log=_log)

    def reap(self, now: float | None = None) -> list[tuple[str, str]]:
        """Close instances idle longer than ``timeout_seconds``; returns their (group, name)."""
        if self.timeout_seconds < 0:
            return []
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [k for k, i in self._instances.items()
                    if not i.closed and now - i.last_used > self.timeout_seconds and not i.lock.locked()]
            gone = [self._instances.pop(k) for k in idle]
        for inst in gone:
            _log.info("consumer %s/%s expired after %ss idle", inst.group, inst.name, self.timeout_seconds)
            self._close(inst)
        return idle

    def close_all(self) -> None:
        with self._lock:
            gone = list(self._instances.values())
            self._instances.clear()
        for inst in gone:
            self._close(inst)

    # ------------------------------------------------------------ subscription / assignment

    def subscribe(self, inst: Instance, topics: list[str] | None, pattern: str | None) -> None:
        if topics is not None and pattern is not None:
            raise ConflictError("Subscriptions to topics, partitions, and patterns are mutually exclusive.")
        if topics is None and pattern is None:
            raise UnprocessableError("A list (of Topics type) or a topic_pattern must be specified.")
        if topics is not None and not topics:
            # the Java client's subscribe(emptyList) is an unsubscribe, and Strimzi answers 204
            self.unsubscribe(inst)
            return
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise UnprocessableError(f"Invalid topic_pattern {pattern!r}: {exc}") from None
        with inst.lock:
            if inst.assigned:
                raise ConflictError("Subscriptions to topics, partitions, and patterns are mutually exclusive.")
            # Java's subscribe(Pattern) matches whole names; librdkafka takes regexes that start with '^'
            names = [f"^({posix_regex(pattern)})$"] if pattern is not None else list(dict.fromkeys(topics or []))
            self._kafka(inst, "Read", lambda: inst.consumer.subscribe(names), names[0])
            inst.topics = [] if pattern is not None else names
            inst.pattern = pattern

    def unsubscribe(self, inst: Instance) -> None:
        with inst.lock:
            if inst.assigned:
                self._kafka(inst, "Read", inst.consumer.unassign)
            else:
                self._kafka(inst, "Read", inst.consumer.unsubscribe)
            inst.topics, inst.pattern, inst.assigned = [], None, []

    def assign(self, inst: Instance, partitions: list[dict[str, Any]]) -> None:
        tps = [_tp(p) for p in partitions]
        with inst.lock:
            if inst.subscribed:
                raise ConflictError("Subscriptions to topics, partitions, and patterns are mutually exclusive.")
            self._kafka(inst, "Read", lambda: inst.consumer.assign(tps), tps[0].topic if tps else "")
            inst.assigned = tps

    def subscription(self, inst: Instance) -> dict[str, Any]:
        with inst.lock:
            if not inst.subscribed and not inst.assigned:
                # librdkafka revokes an unsubscribed assignment a moment later; the Java client at once
                return {"topics": [], "partitions": []}
            assignment = self._kafka(inst, "Read", inst.consumer.assignment)
        by_topic: dict[str, list[int]] = {}
        for tp in assignment:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        topics = list(dict.fromkeys([*inst.topics, *by_topic]))
        return {"topics": topics, "partitions": [{t: sorted(ps)} for t, ps in by_topic.items()]}

    # ------------------------------------------------------------ records

    def fetch(self, inst: Instance, timeout_ms: int, max_bytes: int | None, start: Batch | None = None) -> Batch:
        """Poll once (topping up ``start``, a read-ahead batch that was not full); the batch to hand over.

        A batch that cannot be the answer (a Kafka error, a record the format refuses, over ``max_bytes``)
        is given back, so its records are delivered again, not skipped, and its problem raised.
        """
        with inst.lock:
            if not inst.subscribed and not inst.assigned:
                # Strimzi's 500 (the Java client's IllegalStateException), which its clients expect
                raise StrimziServerError("Consumer is not subscribed to any topics or assigned any partitions")
            msgs = self._consume(inst, max(0, timeout_ms) / 1000.0, [] if start is None else start.msgs)
            batch, problem = answer(inst.format, inst.decoders, msgs, len(msgs) >= self._max_poll,
                                    partial(self._problem, inst), max_bytes)
            if problem is not None:
                self._rewind(inst, batch)
                raise problem
            return batch

    def ready(self, inst: Instance) -> Batch | None:
        """The records librdkafka already holds for the instance's next poll, answer included; ``None`` if
        there are none, or they cannot be taken without waiting.

        Never blocks, so it runs on the event loop: no thread hand-off for a poll that finds records
        waiting. Not for registry formats (a decoder may ask the registry) nor while another call holds
        the instance.
        """
        if inst.decoders is not None or not inst.lock.acquire(blocking=False):
            return None
        try:
            if inst.closed or not (inst.subscribed or inst.assigned):
                return None
            msgs = self._kafka(inst, "Read", partial(inst.consumer.consume, self._max_poll, 0), first_topic(inst))
            if not msgs:
                return None
            batch, problem = answer(inst.format, None, msgs, len(msgs) >= self._max_poll, partial(self._problem, inst))
            if problem is not None:  # a poll in a worker thread meets it again and answers it
                self._rewind(inst, batch)
                return None
            return batch
        finally:
            inst.lock.release()

    def hand_over(self, inst: Instance, batch: Batch) -> None:
        """The batch is the answer: store its offsets (what auto-commit and a commit without offsets commit).

        Never blocks: librdkafka's offset store takes its own locks, so this runs on the event loop.
        """
        if batch.count:
            try:
                inst.consumer.store_offsets(offsets=batch.stores)
            except KafkaException as exc:
                # a partition revoked meanwhile: its new owner reads from the last commit, as with Java
                _log.info("storing offsets of %s/%s: %s", inst.group, inst.name, exc)
            except RuntimeError:  # "Consumer closed": deleted meanwhile; nothing to commit any more
                pass
            inst.consumed += batch.count
        inst.last_poll = time.monotonic()

    def give_back(self, inst: Instance, batch: Batch) -> None:
        """A read-ahead batch not answered: rewind so that its records are polled again."""
        with inst.lock:
            if not inst.closed:
                self._rewind(inst, batch)

    def _rewind(self, inst: Instance, batch: Batch) -> None:
        for tp in batch.firsts():
            try:
                inst.consumer.seek(tp)
            except KafkaException as exc:
                _log.warning("rewinding %s[%d] to %d: %s", tp.topic, tp.partition, tp.offset, exc)

    def _problem(self, inst: Instance, err: KafkaError, topic: str) -> TriggerfishError:
        return from_kafka(err, self._identity, "Read", topic or first_topic(inst), inst.group)

    def _consume(self, inst: Instance, timeout: float, start: list[Any]) -> list[Any]:
        # in slices, so a DELETE of this instance does not wait out a long poll timeout
        deadline = time.monotonic() + timeout
        msgs = list(start)
        while True:
            left = deadline - time.monotonic()
            wait = max(0.0, min(left, 0.5))
            if not msgs:
                msgs = self._kafka(inst, "Read", partial(inst.consumer.consume, self._max_poll, wait), first_topic(inst))
            if msgs and len(msgs) < self._max_poll and left > wait:
                # a partial batch: give the other partitions' fetches (one broker answers them a moment
                # apart) a short grace, so a poll returns what the Java client's would
                grace = min(_GRACE_S, left - wait)
                msgs += self._kafka(inst, "Read", partial(inst.consumer.consume, self._max_poll - len(msgs), grace),
                                    first_topic(inst))
            if msgs or left <= 0.5 or inst.closing:
                inst.touch()
                return msgs

    def commit(self, inst: Instance, offsets: list[dict[str, Any]] | None) -> None:
        with inst.lock:
            if inst.closed:
                raise ConsumerNotFound(inst.group, inst.name)
            start = time.monotonic()
            try:
                if offsets:
                    tps = [TopicPartition(o["topic"], o["partition"], o["offset"]) for o in offsets]
                    inst.consumer.commit(offsets=tps, asynchronous=False)
                else:
                    inst.consumer.commit(asynchronous=False)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if not (isinstance(err, KafkaError) and err.code() == KafkaError._NO_OFFSET):
                    raise from_kafka(exc, self._identity, "Read", first_topic(inst), inst.group) from None
                # nothing consumed since the last commit: a commit all the same, as the Java client counts it
            took = time.monotonic() - start
            count, total, longest = inst.commits
            inst.commits = (count + 1, total + took, max(longest, took))

    def seek(self, inst: Instance, offsets: list[tuple[str, int, int]]) -> None:
        with inst.lock:
            assigned = {(tp.topic, tp.partition) for tp in self._kafka(inst, "Read", inst.consumer.assignment)}
            for topic, partition, _ in offsets:
                if (topic, partition) not in assigned:
                    raise NotFoundError(f"No current assignment for partition {topic}-{partition}", f"{topic}-{partition}")
            for topic, partition, offset in offsets:
                tp = TopicPartition(topic, partition, offset)
                try:
                    inst.consumer.seek(tp)
                except KafkaException as exc:
                    # not fetching yet (no poll since assignment): start there instead
                    if inst.assigned:
                        inst.assigned = [tp if (a.topic, a.partition) == (topic, partition) else a for a in inst.assigned]
                        self._kafka(inst, "Read", lambda: inst.consumer.assign(inst.assigned), topic)
                    else:
                        raise from_kafka(exc, self._identity, "Read", topic, inst.group) from None

    def seek_to(self, inst: Instance, partitions: list[dict[str, Any]], beginning: bool) -> None:
        where = OFFSET_BEGINNING if beginning else OFFSET_END
        self.seek(inst, [(p.get("topic", ""), p.get("partition", -1), where) for p in partitions])

    def _kafka(self, inst: Instance, operation: str, call: Callable[[], Any], topic: str = "") -> Any:
        if inst.closed:
            raise ConsumerNotFound(inst.group, inst.name)
        try:
            return call()
        except KafkaException as exc:
            raise from_kafka(exc, self._identity, operation, topic, inst.group) from None
        except RuntimeError as exc:  # "Consumer closed"
            if inst.closed:
                raise ConsumerNotFound(inst.group, inst.name) from None
            raise KafkaClientError(str(exc)) from None


def _tp(p: dict[str, Any]) -> TopicPartition:
    if "topic" not in p or "partition" not in p:
        raise UnprocessableError("Each partition needs a topic and a partition number")
    if p["partition"] < 0:
        raise UnprocessableError(f"Partition {p['partition']} of topic {p['topic']} is negative")
    return TopicPartition(p["topic"], p["partition"])
