"""One confluent-kafka Producer shared by every HTTP request (Strimzi opens one per connection).

``send`` hands a request's records to librdkafka without blocking the event loop and resolves when the
last delivery report for that request arrives; a background thread serves delivery reports. Topic
existence is checked once and cached, so a send to a missing topic is a prompt 404 rather than a
per-record failure after ``max.block.ms``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from triggerfish.bridge.errors import Identity, body_of, from_kafka
from triggerfish.bridge.produce_body import OutRecord, PlainRecords
from triggerfish.errors import UnprocessableError

_log = logging.getLogger("triggerfish.bridge.producer")

_Result = dict[str, Any]
#: Told, once the last record of a request is reported: (topic, records sent, records failed).
_OnResult = Callable[[str, int, int], None]
_TOPIC_TTL = 30.0
# An HTTP request is already a batch and its client waits for the acks: lingering for more records
# only delays the reply (5 ms -> 1 ms: +45% records/s for a single client). Users' settings win.
_DEFAULTS = {"linger.ms": "1"}
_JAVA_MAX_BLOCK_MS = "60000"
# how long a topic the broker is creating (auto-creation) is waited for before a request fails
_LEADER_WAIT_S = 10.0


class SharedProducer:
    """A thread-safe producer with an asyncio-friendly ``send``."""

    def __init__(self, conf: dict[str, str], identity: Identity, on_result: _OnResult | None = None) -> None:
        self._producer = Producer({**_DEFAULTS, **conf})
        # the Java client's max.block.ms (translated to this key), named in "not present in metadata" errors
        self._max_block_ms = int(conf.get("topic.metadata.propagation.max.ms", _JAVA_MAX_BLOCK_MS))
        self._identity = identity
        self._on_result: _OnResult = on_result or (lambda topic, ok, failed: None)
        self._topics: dict[str, tuple[float, int]] = {}  # name -> (checked at, partition count)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="bridge-producer-poll", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closing.is_set():
            self._producer.poll(0.05)

    def close(self, timeout: float = 10.0) -> None:
        self._closing.set()
        self._thread.join(timeout)
        self._producer.flush(timeout)

    # ------------------------------------------------------------ topic metadata

    def partitions(self, topic: str, timeout: float = 10.0, attempts: int = 2) -> int:
        """Partition count of ``topic``, refreshed; NotFoundError, AccessDeniedError, ... when it cannot be used. Blocking.

        A topic created a moment ago may not be in every broker's metadata yet, so "unknown" is
        asked again a couple of times before it becomes a 404. "Leader not available" is a topic
        that exists (the broker creating it for this very request, with auto-creation on): it is
        waited for, up to ``_LEADER_WAIT_S``, as the Java client waits for a new topic's metadata.
        """
        deadline = time.monotonic() + _LEADER_WAIT_S
        attempt = 0
        while True:
            try:
                md = self._producer.list_topics(topic, timeout=timeout)
            except KafkaException as exc:
                raise from_kafka(exc, self._identity, "Describe", topic) from None
            tm = md.topics.get(topic)
            err = tm.error if tm is not None else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
            if err is None:
                self._topics[topic] = (time.monotonic(), len(tm.partitions))
                return len(tm.partitions)
            if err.code() == KafkaError.TOPIC_EXCEPTION:
                raise UnprocessableError(f"Invalid topic name {topic!r}: {err.str()}")
            attempt += 1
            creating = err.code() == KafkaError.LEADER_NOT_AVAILABLE and time.monotonic() < deadline
            if not creating and (err.code() != KafkaError.UNKNOWN_TOPIC_OR_PART or attempt >= attempts):
                raise from_kafka(err, self._identity, "Describe", topic)
            time.sleep(0.1)

    def known(self, topic: str) -> int | None:
        cached = self._topics.get(topic)
        if cached and time.monotonic() - cached[0] < _TOPIC_TTL:
            return cached[1]
        return None

    # ------------------------------------------------------------ sending

    async def send(self, topic: str, records: Sequence[OutRecord], partition: int | None = None,
                   wait: bool = True, partition_count: int | None = None) -> list[_Result]:
        """Produce ``records``; with ``wait`` return one offset-or-error dict per record, in order.

        A record for a partition at or beyond ``partition_count`` is not sent: its result is the Java
        client's 404 (what Strimzi answers), the others are sent.
        """
        if not records:
            return []
        loop = asyncio.get_running_loop()
        done = loop.create_future() if wait else None
        delivery = _Delivery(topic, len(records), self._identity, self._on_result, loop, done)
        report = delivery.report
        produce = self._producer.produce
        if isinstance(records, PlainRecords):
            # the usual body: no partition, timestamp or headers of its own, nothing to look at per record
            if partition is not None and partition_count is not None and partition >= partition_count:
                for i in range(len(records)):
                    delivery.fail(i, self._missing(topic, partition, partition_count))
            else:
                p = _ANY_PARTITION if partition is None else partition
                keys = records.keys
                for i, value in enumerate(records.values):
                    try:
                        produce(topic, value, keys[i], p, functools.partial(report, i))
                    except (BufferError, KafkaException):
                        await self._enqueue(topic, i, value, keys[i], p, {}, report)
        else:
            for i, rec in enumerate(records):
                q = partition if partition is not None else rec.partition
                if q is not None and partition_count is not None and q >= partition_count:
                    delivery.fail(i, self._missing(topic, q, partition_count))
                    continue
                extra: dict[str, Any] = {}
                if rec.timestamp is not None or rec.headers:
                    extra = {"timestamp": rec.timestamp or 0, "headers": rec.headers or None}
                await self._enqueue(topic, i, rec.value, rec.key, _ANY_PARTITION if q is None else q, extra, report)
        if done is None:
            return []
        await done
        return delivery.answers()

    async def _enqueue(self, topic: str, i: int, value: bytes | None, key: bytes | None, partition: int,
                       extra: dict[str, Any], report: Callable[[int, KafkaError | None, Message | None], None]) -> None:
        """Queue record ``i``, waiting while librdkafka's queue is full; one it refuses is reported failed."""
        while True:
            try:
                self._producer.produce(topic, value, key, partition, functools.partial(report, i), **extra)
                return
            except BufferError:
                # librdkafka's queue is full: let deliveries drain without blocking the loop
                await asyncio.sleep(0.005)
            except KafkaException as exc:
                report(i, exc.args[0] if exc.args else KafkaError(KafkaError._FAIL), None)
                return

    def _missing(self, topic: str, partition: int, count: int) -> _Result:
        """The Java client's answer for a record to a partition the topic does not have (Strimzi's 404)."""
        return {"error_code": 404, "message": (f"Partition {partition} of topic {topic} with partition count {count} "
                                               f"is not present in metadata after {self._max_block_ms} ms.")}


#: librdkafka's RD_KAFKA_PARTITION_UA: the partitioner chooses
_ANY_PARTITION = -1


class _Delivery:
    """The delivery reports of one request's records: each record's result, in order, and the future the last
    one resolves. Reports come from the poll thread (and, for records that never left, the event loop)."""

    __slots__ = ("_done", "_failed", "_identity", "_lock", "_loop", "_on_result", "_remaining", "_topic", "results")

    def __init__(self, topic: str, count: int, identity: Identity, on_result: _OnResult,
                 loop: asyncio.AbstractEventLoop, done: asyncio.Future[None] | None) -> None:
        self.results: list[_Result | None] = [None] * count
        self._topic, self._identity, self._on_result, self._loop, self._done = topic, identity, on_result, loop, done
        self._remaining = count
        self._failed = 0
        self._lock = threading.Lock()

    def report(self, i: int, err: KafkaError | None, msg: Message | None) -> None:
        """Record ``i``'s delivery report (``msg`` is ``None`` for a record librdkafka refused to queue)."""
        if err is None and msg is not None:
            self.results[i] = {"partition": msg.partition(), "offset": msg.offset()}
            self._count_down(False)
            return
        e = from_kafka(err if err is not None else KafkaError(KafkaError._FAIL), self._identity, "Write", self._topic)
        if self._done is None:
            _log.warning("async send to %s failed: %s", self._topic, e)
        self.fail(i, body_of(e))

    def fail(self, i: int, result: _Result) -> None:
        self.results[i] = result
        self._count_down(True)

    def _count_down(self, failed: bool) -> None:
        with self._lock:
            self._remaining -= 1
            self._failed += failed
            last = self._remaining == 0
        if last:
            # metrics once a request, not once a record
            self._on_result(self._topic, len(self.results) - self._failed, self._failed)
            if self._done is not None:
                self._loop.call_soon_threadsafe(_resolve, self._done)

    def answers(self) -> list[_Result]:
        return [r if r is not None else {"error_code": 500, "message": "no delivery report"} for r in self.results]


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
