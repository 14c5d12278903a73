"""The confluent-kafka consumer of one mapping: group membership, starting position, commits.

Kafka settings owned by the engine are set here: the group id (mapping UUID or ConsumerGroupId),
``enable.auto.commit=false`` (offsets are committed explicitly, only after success), and
``auto.offset.reset`` from StartingPosition. StartingPosition only matters for partitions without
a committed offset; for ``AT_TIMESTAMP`` those are positioned with ``offsets_for_times`` when the
partitions are assigned.

``RecordSource`` and ``SourceFactory`` say what the runner needs of a consumer; ``KafkaSource`` is the
real one (tests of the runner pass a fake factory). ``records_of`` turns what a poll returned into records.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from confluent_kafka import OFFSET_END, OFFSET_INVALID, Consumer, KafkaException, Message, TopicPartition

from triggerfish.bounded_close import CLOSE_WAIT_S, close_within, leave_group
from triggerfish.esm.block import Polled, blocks_of
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.event import Record
from triggerfish.esm.partitions import filtered_record

_log = logging.getLogger("triggerfish.esm")

TP = tuple[str, int]
_RESET = {"TRIM_HORIZON": "earliest", "LATEST": "latest", "AT_TIMESTAMP": "latest"}
QUERY_TIMEOUT_S = 10.0


def consumer_settings(client_config: dict[str, Any], mapping: MappingConfig, group_id: str, client_id: str) -> dict[str, Any]:
    """librdkafka settings: the mapping's connection settings plus the engine's own."""
    settings = dict(client_config)
    settings.update(
        {
            "group.id": group_id,
            "client.id": client_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": _RESET[mapping.starting_position],
            "enable.partition.eof": False,
            # Incremental rebalancing: partitions that stay with this instance are not revoked and
            # re-assigned, so their in-flight batches are not disturbed when another instance joins.
            "partition.assignment.strategy": "cooperative-sticky",
            # A killed instance's partitions move to the survivors within seconds, not 45.
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 2000,
            # How long the broker may hold an empty fetch. A record arriving answers a held fetch at once
            # (fetch.min.bytes 1), so this bounds only when a partition that was not in the held fetch
            # (just resumed or assigned) is fetched; shorter costs an idle consumer a fetch per wait
            # (10 ms: 100 fetches/s per mapping, most of an idle engine's CPU).
            "fetch.wait.max.ms": 500,
            # After a partition was paused for backpressure, fetch again promptly (librdkafka's default
            # waits up to 1 s before refetching a partition whose queue was over its thresholds).
            "fetch.queue.backoff.ms": 10,
        }
    )
    return settings


def records_of(
    messages: Sequence[Any], accept: Callable[[bytes | None], bool] | None, on_error: Callable[[Any], None]
) -> tuple[Polled, int]:
    """Polled messages as records (one ``Block`` per partition run on the hot path), and how many
    FilterCriteria rejected (those stay as offset-only placeholders, committed with the records around them);
    messages carrying an error go to ``on_error``."""
    if accept is None:  # the hot path: no filter, errors are rare
        if messages and any(map(type(messages[0]).error, messages)):  # (map: C calls, no Python per message)
            for msg in messages:
                err = msg.error()
                if err is not None:
                    on_error(err)
            messages = [msg for msg in messages if msg.error() is None]
        blocks = blocks_of(messages)  # computes each record's JSON size too
        if blocks is not None:
            return blocks, 0
        return [Record.from_message(m) for m in messages], 0  # headers, or several topics
    from_message = Record.from_message
    records, filtered = [], 0
    for msg in messages:
        err = msg.error()
        if err is not None:
            on_error(err)
        elif accept(msg.value()):
            records.append(from_message(msg))
        else:
            records.append(filtered_record(msg.topic(), msg.partition(), msg.offset()))
            filtered += 1
    return records, filtered


class RecordSource(Protocol):
    """A mapping's consumer as the runner uses it, from its poll thread only."""

    def poll(self, max_records: int, timeout: float) -> Sequence[Any]: ...  # confluent_kafka.Message-like

    def commit(self, offsets: dict[TP, int], *, asynchronous: bool) -> Any: ...

    def pause(self, tps: list[TP]) -> None: ...

    def resume(self, tps: list[TP]) -> None: ...

    def watermarks(self, tp: TP) -> tuple[int, int] | None: ...

    def close(self) -> None: ...


class SourceFactory(Protocol):
    """Builds a mapping's consumer; the callbacks run inside ``poll`` (``on_commit`` for asynchronous commits)."""

    def __call__(
        self,
        settings: dict[str, Any],
        mapping: MappingConfig,
        *,
        on_assign: Callable[[list[TP], dict[TP, int]], None],
        on_revoke: Callable[[list[TP]], None],
        on_commit: Callable[[Any, list[Any]], None] | None = None,
        on_error: Callable[[Any], None] | None = None,
    ) -> RecordSource: ...


class KafkaSource:
    """Owns one ``confluent_kafka.Consumer``; used from the mapping's poll thread only."""

    def __init__(
        self,
        settings: dict[str, Any],
        mapping: MappingConfig,
        *,
        on_assign: Callable[[list[TP], dict[TP, int]], None],
        on_revoke: Callable[[list[TP]], None],
        on_commit: Callable[[Any, list[TopicPartition]], None] | None = None,
        on_error: Callable[[Any], None] | None = None,
    ) -> None:
        self.mapping = mapping
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        settings = dict(settings)
        if on_commit is not None:
            settings["on_commit"] = on_commit
        if on_error is not None:
            settings["error_cb"] = on_error
        self.consumer = Consumer(settings, logger=_log)
        #: The partitions paused for backpressure, and each assigned one's leader (``resume``).
        self._paused: set[TP] = set()
        self._leaders: dict[TP, int] = {}
        #: Assigned partitions whose leaders are still to be read (after the poll that assigned them).
        self._unled: list[TP] = []
        self.consumer.subscribe(list(mapping.topics), on_assign=self._assigned, on_revoke=self._revoked,
                                on_lost=self._revoked)

    # -- rebalance callbacks (run inside poll) ---------------------------------------------------
    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed: dict[TP, int] = {}
        try:
            for tp in consumer.committed(partitions, timeout=QUERY_TIMEOUT_S):
                committed[(tp.topic, tp.partition)] = tp.offset
        except KafkaException as exc:
            _log.warning("could not read committed offsets (%s); librdkafka will fetch them", exc)
        if self.mapping.starting_position == "AT_TIMESTAMP" and self.mapping.starting_position_timestamp is not None:
            fresh = [tp for tp in partitions if committed.get((tp.topic, tp.partition), OFFSET_INVALID) < 0]
            if fresh:
                ms = int(self.mapping.starting_position_timestamp * 1000)
                query = [TopicPartition(tp.topic, tp.partition, ms) for tp in fresh]
                found = {(tp.topic, tp.partition): tp.offset
                         for tp in consumer.offsets_for_times(query, timeout=QUERY_TIMEOUT_S)}
                for tp in fresh:
                    offset = found.get((tp.topic, tp.partition), -1)
                    # No record at or after the timestamp: start at the end, like LATEST.
                    tp.offset = offset if offset >= 0 else OFFSET_END
        consumer.incremental_assign(partitions)  # cooperative-sticky: only the added partitions
        tps = [(tp.topic, tp.partition) for tp in partitions]
        # Their leaders are read once this poll returns, not here: confluent-kafka's list_topics inside a
        # callback clears the state the poll's later callbacks need, and the process aborts at the next one
        # (an on_commit or a statistics report in the same poll: "CallState_get: Assertion `cs != NULL'").
        self._unled.extend(tps)
        self._on_assign(tps, committed)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        tps = [(tp.topic, tp.partition) for tp in partitions]
        self._paused.difference_update(tps)
        for tp in tps:
            self._leaders.pop(tp, None)
        self._unled = [tp for tp in self._unled if tp not in tps]
        self._on_revoke(tps)

    # -- polling ---------------------------------------------------------------------------------
    def poll(self, max_records: int, timeout: float) -> list[Message]:
        """Wait up to ``timeout`` for the first record, then take whatever else is already fetched."""
        messages = self._poll(max_records, timeout)
        if self._unled:  # partitions assigned during that poll: one metadata request, with no callback running
            unled, self._unled = self._unled, []
            self._leaders.update(_leaders(self.consumer, unled))
        return messages

    def _poll(self, max_records: int, timeout: float) -> list[Message]:
        if max_records > 1:
            # Under load the records are there already: one call, one release and retake of the GIL (the poll
            # thread's waits for it bound the engine's throughput) instead of two.
            ready = self.consumer.consume(max_records, 0)
            if ready:
                return ready
        first = self.consumer.poll(timeout)
        if first is None:
            return []
        if max_records <= 1:
            return [first]
        return [first, *self.consumer.consume(max_records - 1, 0)]

    def commit(self, offsets: dict[TP, int], *, asynchronous: bool) -> list[TopicPartition] | None:
        tps = [TopicPartition(t, p, off) for (t, p), off in offsets.items()]
        if not tps:
            return []
        if asynchronous:
            self.consumer.commit(offsets=tps, asynchronous=True)
            return None
        return self.consumer.commit(offsets=tps, asynchronous=False)

    def pause(self, tps: list[TP]) -> None:
        self.consumer.pause([TopicPartition(t, p) for t, p in tps])
        self._paused.update(tps)

    def resume(self, tps: list[TP]) -> None:
        self.consumer.resume([TopicPartition(t, p) for t, p in tps])
        self._paused.difference_update(tps)
        # With every partition of a broker paused, librdkafka's fetcher for it sleeps up to 1 s, and a resume
        # does not wake it (measured: 0.85-0.95 s from resume to the next record); a seek to the position the
        # partition already has does: the next fetch goes out at once (3-5 ms), from the same offset. While the
        # broker's other partitions are fetched, the resumed one joins the next fetch (within fetch.wait.max.ms
        # when the broker holds a fetch for partitions that are caught up: ~0.49 s), and a seek would make it
        # miss that one too (~1 s): only the partitions of otherwise idle brokers are sought (``to_wake``).
        wake = tps
        try:
            assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
            wake = to_wake(tps, self._paused, assigned, self._leaders)
            if wake:
                for tp in self.consumer.position([TopicPartition(t, p) for t, p in wake]):
                    if tp.offset >= 0:
                        self.consumer.seek(tp)
        except KafkaException as exc:  # not assigned any more (a revoke meanwhile): nothing to fetch
            _log.debug("no seek after resuming %s: %s", wake, exc)

    def watermarks(self, tp: TP) -> tuple[int, int] | None:
        """(low, high) as last seen in fetch responses; None before the first fetch."""
        try:
            low, high = self.consumer.get_watermark_offsets(TopicPartition(*tp), cached=True)
        except KafkaException:
            return None
        return None if high < 0 else (low, high)

    def end_offsets(self, tps: list[TP]) -> dict[TP, int] | None:
        """Each partition's end offset, asked of its leader now (not what the last fetch said); None on an error.
        Under read_committed (the default) the end is the last stable offset: a partition's next record to read."""
        ends: dict[TP, int] = {}
        try:
            for t, p in tps:
                ends[(t, p)] = self.consumer.get_watermark_offsets(TopicPartition(t, p), QUERY_TIMEOUT_S, cached=False)[1]
        except KafkaException as exc:
            _log.debug("no end offsets for %s: %s", tps, exc)
            return None
        return ends

    def partitions(self) -> list[TP] | None:
        """Every partition of the mapping's topics, from fresh metadata; None on an error."""
        try:
            metadata = self.consumer.list_topics(timeout=QUERY_TIMEOUT_S)
        except KafkaException as exc:
            _log.debug("no metadata for %s: %s", self.mapping.topics, exc)
            return None
        return [(t, p) for t in self.mapping.topics if t in metadata.topics for p in metadata.topics[t].partitions]

    def reachable(self, timeout: float) -> bool:
        """Whether a broker answers a metadata request within ``timeout`` (librdkafka sends it only over a
        connection that is up): while the statistics say nothing, how the runner notices a broker is back."""
        try:
            self.consumer.list_topics(self.mapping.topics[0], timeout=timeout)
        except KafkaException:
            return False
        return True

    def close(self) -> None:
        """Leave the group (revoking what is assigned) and release the client; waits ``CLOSE_WAIT_S`` at most.

        librdkafka's close can hang in its teardown after seeks (``resume`` seeks) or pauses (librdkafka
        #1928, #4362): a mapping's stop or restart must not hang with it. The revoke callback runs in the
        closing thread, as the runner's poll thread waits for it (one user of the consumer at a time); it runs
        in polls before the close (``leave_group``), where it cannot hang the process."""
        leave_group(self.consumer, log=_log)
        close_within(self.consumer.close, CLOSE_WAIT_S, name=f"consumer of mapping {self.mapping.uuid}", log=_log)


def to_wake(resumed: list[TP], paused: set[TP], assigned: set[TP], leaders: dict[TP, int]) -> list[TP]:
    """Of the ``resumed`` partitions, those whose leader fetches no other partition of the consumer (every other
    one it leads is ``paused``), or whose leader is not known: the ones a seek must wake (``KafkaSource.resume``)."""
    busy = {leaders.get(tp) for tp in assigned - paused - set(resumed)}
    return [tp for tp in resumed if tp not in leaders or leaders[tp] not in busy]


def _leaders(consumer: Consumer, tps: list[TP]) -> dict[TP, int]:
    """Each partition's leader, from a metadata request; none for a topic the request failed for (they are then
    sought on every resume, as before leaders were known)."""
    leaders: dict[TP, int] = {}
    for topic in {t for t, _ in tps}:
        try:
            partitions = consumer.list_topics(topic, timeout=QUERY_TIMEOUT_S).topics[topic].partitions
        except (KafkaException, KeyError) as exc:
            _log.debug("no leaders for %s: %s", topic, exc)
            continue
        for t, p in tps:
            if t == topic and p in partitions and partitions[p].leader >= 0:
                leaders[(t, p)] = partitions[p].leader
    return leaders
