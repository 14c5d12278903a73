"""Dormant mappings: a mapping quiet for a while closes its consumer until one shared watcher sees a record for it.

Every librdkafka client costs an idle engine its own timers (a main thread and a thread per broker, each waking
every second whatever the settings): 50 idle consumers cost ~1.4 % of a core on their own. A consumer-group
mapping with nothing buffered, in flight or to commit for ``DORMANT_AFTER_S`` makes the group's committed offsets
exact (``Dormancy.settle``), closes its consumer (leaving the group, as a stop does) and sleeps; one thread for
the engine (``WATCHER``) asks each cluster every ``CHECK_S`` for the end offsets of the sleeping mappings' topics
(one ListOffsets per cluster, over one AdminClient per distinct connection) and wakes a mapping once a partition
ends past what its group committed. The mapping then consumes again from the committed offsets, as after a
re-consume (setup is not run again; its State stays Enabled).

    quiet DORMANT_AFTER_S -> settle (commit exact offsets) -> close consumer -> sleep -> woken -> new consumer

No record is lost or read twice: before closing, every assigned partition's committed offset is the next offset
to read. A partition that has delivered nothing and has no committed offset (LATEST on a quiet topic: librdkafka
reads from the end it found when assigned, and a new consumer would start at a later end) gets its end offset E
committed, read fresh and then polled for ``SETTLE_S`` (two of the consumer's longest fetch waits and a margin):
the consumer reads from some F <= E, and a fetch sent after E was read answers at once with any record in
[F, E). None came, so F == E and E is exact; one came, and the mapping is not quiet after all.

A mapping wakes too when the watcher cannot answer (an error, a timeout: its own consumer then reports the
problem as it would have), when it is stopped (at once) or when ``wake`` says so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from triggerfish.esm.cluster_probe import settings_key
from triggerfish.esm.committer import Commits

_log = logging.getLogger("triggerfish.esm")

TP = tuple[str, int]
#: How long a mapping is quiet (nothing buffered, in flight or to commit) before its consumer closes.
DORMANT_AFTER_S = 30.0
#: How often the watcher asks for the end offsets of the dormant mappings' topics: most of a record's extra wait.
CHECK_S = 1.0
#: How long a partition with nothing committed is polled after its end offset was read (consumer.py's
#: fetch.wait.max.ms is 500 ms: two fetches and a margin).
SETTLE_S = 1.5
#: How often the group's committed offsets are read even though no end offset moved (another member's lag).
COMMITTED_EVERY_S = 30.0
#: How often the topics' partitions are read again (a partition added while dormant).
METADATA_EVERY_S = 10.0
#: The longest the watcher waits for one answer of a cluster.
REQUEST_TIMEOUT_S = 3.0
#: Settings of a mapping's client that are the consumer's callbacks, not the connection's.
_CONSUMER_CALLBACKS = ("stats_cb", "error_cb", "on_commit", "throttle_cb")


class Settleable(Protocol):
    """What ``settle`` needs of the mapping's consumer (``consumer.KafkaSource``)."""

    def poll(self, max_records: int, timeout: float) -> Sequence[Any]: ...

    def commit(self, offsets: dict[TP, int], *, asynchronous: bool) -> Any: ...

    def end_offsets(self, tps: list[TP]) -> dict[TP, int] | None: ...

    def partitions(self) -> list[TP] | None: ...


@dataclass(eq=False)
class _Sleeper:
    """One dormant mapping as the watcher sees it."""

    #: ``cluster_probe.settings_key`` of the connection: a callback (an OAuth token provider) counts by identity.
    cluster: Hashable
    group: str
    topics: tuple[str, ...]
    wake: Callable[[], bool]
    woken: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    #: End offsets, read as the consumer closed, of the partitions it did not own and the group never committed (what
    #: another member would read); a partition missing here and in the group's offsets is new: any record wakes.
    baseline: dict[TP, int] = field(default_factory=dict)
    ends: dict[TP, int] = field(default_factory=dict)
    committed: dict[TP, int] = field(default_factory=dict)
    committed_at: float = float("-inf")

    def rouse(self, reason: str) -> None:
        if not self.woken.is_set():
            self.reason = reason
            self.woken.set()


@dataclass
class _Cluster:
    admin: AdminClient
    partitions: dict[str, list[int]] = field(default_factory=dict)
    metadata_at: float = float("-inf")


class Watcher:
    """The engine's dormant mappings, checked every ``CHECK_S`` from one daemon thread started on demand."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._sleepers: list[_Sleeper] = []
        self._configs: dict[Hashable, dict[str, Any]] = {}
        self._clusters: dict[Hashable, _Cluster] = {}
        self._thread: threading.Thread | None = None

    @property
    def sleeping(self) -> int:
        with self._lock:
            return sum(not s.woken.is_set() for s in self._sleepers)

    @property
    def connections(self) -> int:
        """Distinct connections (settings and callbacks) of the dormant mappings: one client each when checked."""
        with self._lock:
            return len(self._configs)

    @property
    def clients(self) -> int:
        """AdminClients open (one per cluster with a dormant mapping)."""
        return len(self._clusters)

    def add(self, sleeper: _Sleeper, client_config: dict[str, Any]) -> None:
        with self._lock:
            self._configs.setdefault(sleeper.cluster, {k: v for k, v in client_config.items()
                                                       if k not in _CONSUMER_CALLBACKS})
            self._sleepers.append(sleeper)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="esm-dormancy", daemon=True)
                self._thread.start()
            self._lock.notify()

    def remove(self, sleeper: _Sleeper) -> None:
        with self._lock:
            if sleeper in self._sleepers:
                self._sleepers.remove(sleeper)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._sleepers:
                    self._drop_unused()
                    self._lock.wait()
                self._lock.wait(CHECK_S)
                sleepers = [s for s in self._sleepers if not s.woken.is_set()]
                self._drop_unused()
            for s in sleepers:
                if s.wake():
                    s.rouse("woken")
            by_cluster: dict[Hashable, list[_Sleeper]] = {}
            for s in sleepers:
                if not s.woken.is_set():
                    by_cluster.setdefault(s.cluster, []).append(s)
            for key, group in by_cluster.items():
                try:
                    self._check(key, group)
                except Exception as exc:  # noqa: BLE001 - the mappings' own consumers report what is wrong
                    _log.info("dormant mappings: cannot read offsets (%s); waking %d mapping(s)", exc, len(group))
                    self._clusters.pop(key, None)  # a fresh client next time
                    for s in group:
                        s.rouse(f"offsets unavailable: {exc}")

    def _drop_unused(self) -> None:
        """Close the clients no dormant mapping uses (with the lock held)."""
        used = {s.cluster for s in self._sleepers}
        for key in [k for k in self._clusters if k not in used]:
            del self._clusters[key]  # confluent-kafka destroys the client with its last reference
        for key in [k for k in self._configs if k not in used]:
            del self._configs[key]

    def _cluster(self, key: Hashable) -> _Cluster:
        cluster = self._clusters.get(key)
        if cluster is None:
            with self._lock:
                config = dict(self._configs[key])
            config.update({"client.id": "triggerfish-dormancy", "logger": _log})
            cluster = self._clusters[key] = _Cluster(AdminClient(config))
        return cluster

    def _check(self, key: Hashable, sleepers: list[_Sleeper]) -> None:
        """One ListOffsets for every partition of the sleepers' topics; wake whom a partition has records for.
        A topic the cluster cannot answer for (deleted, not authorized) wakes only the mappings reading it."""
        cluster, now = self._cluster(key), time.monotonic()
        topics = sorted({t for s in sleepers for t in s.topics})
        failed: dict[str, BaseException] = {}
        if now - cluster.metadata_at >= METADATA_EVERY_S or any(t not in cluster.partitions for t in topics):
            described = cluster.admin.describe_topics(TopicCollection(topics), request_timeout=REQUEST_TIMEOUT_S)
            cluster.partitions = {}
            for t, f in described.items():
                if (error := _failure(f)) is not None:
                    failed[t] = error
                else:
                    cluster.partitions[t] = sorted(p.id for p in f.result().partitions)
            cluster.metadata_at = now if not failed else float("-inf")
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        query = {TopicPartition(t, p): latest for t in topics for p in cluster.partitions.get(t, ())}
        futures = cluster.admin.list_offsets(query, isolation_level=IsolationLevel.READ_COMMITTED,
                                             request_timeout=REQUEST_TIMEOUT_S) if query else {}
        ends: dict[TP, int] = {}
        for tp, f in futures.items():
            if (error := _failure(f)) is not None:
                failed.setdefault(tp.topic, error)
            else:
                ends[(tp.topic, tp.partition)] = f.result().offset
        for s in sleepers:
            if unanswered := [t for t in s.topics if t in failed]:
                s.rouse(f"offsets of {unanswered[0]} unavailable: {failed[unanswered[0]]}")
                continue
            mine = {tp: off for tp, off in ends.items() if tp[0] in s.topics}
            if not s.ends or mine != s.ends or now - s.committed_at >= COMMITTED_EVERY_S:
                s.committed = self._committed(cluster.admin, s.group)
                s.committed_at = now
            s.ends = mine
            behind = [tp for tp, end in mine.items() if end > s.committed.get(tp, s.baseline.get(tp, 0))]
            if behind:
                s.rouse("records in " + ", ".join(f"{t}-{p}" for t, p in sorted(behind)[:5]))

    @staticmethod
    def _committed(admin: AdminClient, group: str) -> dict[TP, int]:
        future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                   request_timeout=REQUEST_TIMEOUT_S)[group]
        answer = future.result(REQUEST_TIMEOUT_S)
        return {(tp.topic, tp.partition): tp.offset for tp in answer.topic_partitions if tp.offset >= 0}


def _failure(future: Future[Any]) -> BaseException | None:
    """Why ``future`` has no answer within ``REQUEST_TIMEOUT_S`` (None: it has one)."""
    try:
        future.result(REQUEST_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - KafkaException, or a timeout: either way no answer
        return exc
    return None


#: The engine's one watcher.
WATCHER = Watcher()


class Dormancy:
    """One mapping's side: when to go dormant, making its offsets exact first, and sleeping until woken."""

    def __init__(self, name: str, watcher: Watcher = WATCHER) -> None:
        self.name = name
        self.watcher = watcher
        #: The consumer closed to sleep: the runner's loop sleeps before it consumes again.
        self.asleep = False
        #: How often this mapping went dormant (tests and the log).
        self.times = 0
        self._sleeper: _Sleeper | None = None
        self._baseline: dict[TP, int] = {}

    @staticmethod
    def due(quiet_for: float) -> bool:
        return quiet_for >= DORMANT_AFTER_S

    def settle(self, source: Settleable, tps: Callable[[], list[TP]], commits: Commits,
               max_records: int) -> Sequence[Any]:
        """Commit every assigned partition's next offset to read; sets ``asleep`` if that worked and nothing came.
        What a poll returned meanwhile is returned (the mapping is not quiet: it goes on with those records)."""
        assigned, committer = tps(), commits.committer
        # Quiet: nothing outstanding, so a partition with a committed offset has it exact (what it delivered last,
        # or, having delivered nothing, the group's offset it read from).
        unknown = [tp for tp in assigned if committer.committed(tp) is None]
        if unknown:
            ends = source.end_offsets(unknown)
            if ends is None:
                return []
            deadline = time.monotonic() + SETTLE_S
            while (left := deadline - time.monotonic()) > 0:
                messages = source.poll(max_records, left)
                if messages:
                    return messages
            if tps() != assigned:  # a rebalance meanwhile: not now
                return []
            for tp, end in ends.items():
                committer.advance(tp, end)
            commits.commit(source, time.monotonic(), sync=True)
            if committer.outstanding():  # the commit failed (logged): not now
                return []
        # The partitions this member does not own and the group never committed: their ends now, so that only what
        # comes after counts (read before the consumer closes: a record landing after it was read wakes the mapping).
        partitions = source.partitions()
        if partitions is None:
            return []
        others = [tp for tp in partitions if tp not in assigned]
        baseline = source.end_offsets(others) if others else {}
        if baseline is None:
            return []
        self._baseline = baseline
        self.asleep = True
        self.times += 1
        return []

    def sleep(self, client_config: dict[str, Any], bootstrap: list[str], group: str, topics: Iterable[str],
              wake: Callable[[], bool]) -> str:
        """Wait (without a consumer) until the watcher sees records for ``group``, ``wake()`` is true or ``rouse``
        is called; returns why. Mappings share the watcher's client as their setup stages share one
        (``cluster_probe.settings_key``)."""
        sleeper = _Sleeper(settings_key(bootstrap, client_config), group, tuple(topics), wake,
                           baseline=self._baseline)
        self._sleeper = sleeper  # before asking wake(): a stop either sees it or is seen
        try:
            if wake():
                return "woken"
            self.watcher.add(sleeper, client_config)
            _log.info("mapping %s: quiet for %.0f s: consumer closed until a record arrives (dormant)", self.name,
                      DORMANT_AFTER_S)
            sleeper.woken.wait()
            _log.info("mapping %s: no longer dormant: %s", self.name, sleeper.reason)
            return sleeper.reason
        finally:
            self.watcher.remove(sleeper)
            self._sleeper = None
            self.asleep = False

    def rouse(self, reason: str = "woken") -> None:
        """End a sleep now (a stop)."""
        sleeper = self._sleeper
        if sleeper is not None:
            sleeper.rouse(reason)

    @property
    def sleeping(self) -> bool:
        sleeper = self._sleeper
        return sleeper is not None and not sleeper.woken.is_set()
