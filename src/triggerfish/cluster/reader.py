"""One topic of the state Kafka read from its beginning, record by record, on a thread of its own.

A consumer with ``isolation.level=read_committed`` assigned every partition (no group: each replica
reads everything), handing each record to ``apply`` in offset order. Its positions say how far it has
read: with read_committed librdkafka moves them past transaction markers too, so "position >= end
offset" means caught up. An idle reader wakes twice a second; every few seconds it asks the broker for
the end offsets, which is also how it knows it is connected. Only the reader thread touches the consumer
(a call on it while another thread polls blocks): end offsets come from an AdminClient, any thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin import OffsetSpec as _OffsetSpec  # type: ignore[attr-defined]  # no __all__

from triggerfish.cluster.clients import Health, error_of, log, refusal, settings, unavailable
from triggerfish.cluster.config import ClusterConfig
from triggerfish.errors import ClusterError, UnavailableError

_LATEST: Any = _OffsetSpec.latest()  # type: ignore[no-untyped-call]
POLL_S = 0.5
PROBE_S = 5.0


class LogReader:
    """Reads ``topic`` into ``apply`` from a daemon thread; ``start`` returns once caught up."""

    def __init__(self, cfg: ClusterConfig, topic: str, apply: Callable[[Message], None], *,
                 commands: Callable[[], list[str]] = list, transactional: bool = False) -> None:
        self.cfg = cfg
        self.topic = topic
        self._apply = apply
        self._commands = commands  # the fix for an authorization failure
        self._health = Health()
        self._cond = threading.Condition()
        self._positions: dict[int, int] = {}
        self._last: dict[int, int] = {}   # offset of the last record handed to apply, per partition
        self._transactional = transactional
        self._stop = threading.Event()
        self._consumer: Consumer | None = None
        self._admin: AdminClient | None = None
        self._thread: threading.Thread | None = None
        self._probed = 0.0          # monotonic time of the last successful end-offset query
        self._probe_failed = False  # the last one failed: Kafka is away (a lone error_cb may be a blip)
        self._behind_since: float | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float) -> None:
        """Assign every partition from the beginning, start the thread, return once at the end offsets."""
        deadline = time.monotonic() + timeout
        consumer = Consumer(settings(
            self.cfg, self._health, **{
                "group.id": f"triggerfish.{self.cfg.name}.reader",  # required by the client; never joined
                "isolation.level": "read_committed", "enable.auto.commit": False,
                "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
                # reaching the end wakes poll(): a commit marker alone moves the position but returns nothing
                "enable.partition.eof": True,
                "allow.auto.create.topics": False, "client.id": f"triggerfish-{self.cfg.replica_id}",
            }))
        self._consumer = consumer
        self._admin = AdminClient(settings(self.cfg, self._health))
        try:
            partitions = self._partitions(consumer, deadline)
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
            with self._cond:
                self._positions = {p: 0 for p in partitions}
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"triggerfish-cluster-{self.topic}", daemon=True)
            self._thread.start()
            end = self._first_end_offsets(deadline)
            if not self.wait_until(end, max(0.0, deadline - time.monotonic())):
                raise unavailable(self.cfg, f"cannot read {self.topic} to its end within {timeout:g} s",
                                  self._health.reason() or f"at {self.positions()} of {end}")
        except BaseException:
            self.stop()
            raise

    def _first_end_offsets(self, deadline: float) -> dict[int, int]:
        """The end offsets at start. The partitions were just found, so the broker answers; a topic created a
        moment ago may still be electing its leader (NOT_LEADER_FOR_PARTITION): ask again until the deadline."""
        while True:
            try:
                return self.end_offsets(max(0.5, deadline - time.monotonic()))
            except UnavailableError:
                if time.monotonic() + 0.5 > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the thread and close the consumer (idempotent)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=POLL_S * 4 + 5)
        elif self._consumer is not None:
            self._consumer.close()
        self._consumer = None
        self._admin = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ progress

    def positions(self) -> dict[int, int]:
        with self._cond:
            return dict(self._positions)

    def end_offsets(self, timeout: float) -> dict[int, int]:
        """Each partition's end offset now (the last stable offset under read_committed); UnavailableError."""
        admin = self._admin
        if admin is None:
            raise unavailable(self.cfg, f"{self.topic} is not being read", "the reader is stopped")
        deadline = time.monotonic() + timeout
        out: dict[int, int] = {}
        try:
            futures = admin.list_offsets({TopicPartition(self.topic, p): _LATEST for p in self.positions()},
                                         isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=timeout)
            for tp, future in futures.items():
                out[tp.partition] = future.result(timeout=max(0.1, deadline - time.monotonic())).offset
        except (KafkaException, TimeoutError) as exc:
            self._probe_failed = True
            # librdkafka's admin client keeps the leader epochs it saw before a broker restart and then
            # fails every list_offsets with FENCED_LEADER_EPOCH: a fresh client reads fresh metadata.
            if self._admin is admin:
                self._admin = AdminClient(settings(self.cfg, self._health))
            raise unavailable(self.cfg, f"cannot find the end of {self.topic}",
                              self._health.reason() or str(exc)) from None
        self._probed = time.monotonic()
        self._probe_failed = False
        self._health.clear()
        return out

    def wait_until(self, targets: Mapping[int, int], timeout: float) -> bool:
        """Block until every partition's position reached its target (records applied); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(self._reached(p, off) for p, off in targets.items()):
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    return False
                self._cond.wait(min(left, POLL_S))
            return True

    def _reached(self, partition: int, end: int) -> bool:  # with self._cond held
        position = self._positions.get(partition, 0)
        if position >= end:
            return True
        # Every transaction of the config writers holds one record, so its commit marker follows it at
        # once: with the record at end-2 applied, end-1 is its marker and nothing is left to apply. (The
        # position passes a marker only with the next fetch, and poll() wakes for records, not markers.)
        return self._transactional and position == end - 1 and self._last.get(partition) == end - 2

    def problem(self) -> str | None:
        """None while connected and caught up; else why not (for /readyz)."""
        if not self.running:
            return f"not reading {self.topic} (stopped)"
        if self._probe_failed or time.monotonic() - self._probed > PROBE_S * 3:
            return (f"cannot reach the cluster's Kafka ({self.cfg.bootstrap}) to read {self.topic}: "
                    f"{self._health.reason() or 'no answer'}")
        if self._behind_since is not None and time.monotonic() - self._behind_since > PROBE_S:
            return f"catching up on {self.topic}"
        return None

    # ------------------------------------------------------------------ the thread

    def _partitions(self, consumer: Consumer, deadline: float) -> list[int]:
        try:
            meta = consumer.list_topics(self.topic, timeout=max(0.5, deadline - time.monotonic()))
        except KafkaException as exc:
            raise unavailable(self.cfg, f"cannot read {self.topic}", self._health.reason() or str(exc)) from None
        topic = meta.topics.get(self.topic)
        if topic is not None and topic.error is not None:
            refused = refusal(self.cfg, "topics", topic.error, self._commands())
            if refused is not None:
                raise refused
        if topic is None or (topic.error is not None and topic.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
            raise ClusterError("topics", f"{self.topic} does not exist at {self.cfg.bootstrap}: no replica of "
                               f"cluster {self.cfg.name} has started there", "check the cluster name and bootstrap "
                               "servers (--cluster, --cluster-bootstrap or the Cluster: section)")
        if topic.error is not None or not topic.partitions:
            raise unavailable(self.cfg, f"cannot read {self.topic}",
                              str(topic.error) if topic.error else "the topic has no partitions")
        return sorted(topic.partitions)

    def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        tps = [TopicPartition(self.topic, p) for p in self.positions()]
        next_probe = time.monotonic() + PROBE_S
        try:
            while not self._stop.is_set():
                msg = consumer.poll(POLL_S)
                error = msg.error() if msg is not None else None
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        self._health.on_error(error)
                elif msg is not None:
                    with self._cond:
                        self._last[msg.partition() or 0] = msg.offset() or 0
                    try:
                        self._apply(msg)
                    except Exception:  # a bad record or a failing callback must not stop the replica's reading
                        log.exception("cluster %s: applying %s offset %s failed", self.cfg.name, self.topic, msg.offset())
                self._update(consumer, tps)
                if time.monotonic() >= next_probe:
                    next_probe = time.monotonic() + PROBE_S
                    self._probe()
        finally:
            consumer.close()
            with self._cond:
                self._cond.notify_all()

    def _update(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        try:
            now = {tp.partition: tp.offset for tp in consumer.position(tps) if tp.offset >= 0}
        except KafkaException as exc:
            err = error_of(exc)
            if err is not None:
                self._health.on_error(err)
            return
        with self._cond:
            if any(now.get(p, 0) > off for p, off in self._positions.items()):
                self._positions.update({p: max(off, self._positions.get(p, 0)) for p, off in now.items()})
                self._cond.notify_all()

    def _probe(self) -> None:
        try:
            end = self.end_offsets(2.0)
        except Exception:  # the reason is in Health; problem() reports it
            return
        with self._cond:
            behind = not all(self._reached(p, off) for p, off in end.items())
        if not behind:
            self._behind_since = None
        elif self._behind_since is None:
            self._behind_since = time.monotonic()
