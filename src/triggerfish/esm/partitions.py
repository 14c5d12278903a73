"""The partitions a mapping owns and what each holds: buffered records, read position, a batch in flight.

Bookkeeping only, shared by the runner's poll thread and its pool threads; no Kafka objects here.

    assign -> accept(records) -> dispatch(now) -> Lease: take -> (the batch's life) -> finish -> release
    revoke: mark revoking -> wait_idle -> remove

Each assignment of a partition gets a new generation. A batch run (a ``Lease``) remembers the generation
it started under and may commit only while the partition still has it, so a batch that outlives a revoke
(or a revoke and a new assignment of the same partition) can no longer move its offsets.

Flow control: a partition whose buffer holds ``PAUSE_BATCHES`` batches (count or bytes) is paused and
resumed below a quarter of that, so full batches are still buffered while fetching restarts (a pause drops
what librdkafka prefetched for the partition: pausing often costs throughput). The count has a floor of
``PAUSE_MIN_RECORDS``: at BatchSize 1 eight batches are eight records, and pausing every few records
halved the invocation rate; the byte bound (eight 6 MB payloads) still caps what a partition holds.
A partition that drains fast is resumed while what it holds still lasts ``RESUME_LEAD_S`` at its drain
rate, and paused at twice that (at most ``PAUSE_MAX_RECORDS``): a resumed partition's first fetch may
wait up to fetch.wait.max.ms (500 ms) for the broker to answer a fetch it holds for partitions that are
caught up, and at BatchSize 1 a partition resumed at a quarter of the floor ran dry for 230 ms (median)
per resume. The drain rate counts the time between batches of one run only (a wait for records or for
the commit gate is not draining) and is the recent peak (it decays by ``_RATE_DECAY`` a window): a
partition drains faster while others wait, and estimates that lagged it still ran partitions dry.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter, countOf
from typing import cast

from triggerfish.esm.batcher import Cut, PartitionBuffer, known_size
from triggerfish.esm.block import Block, Polled, last_offset
from triggerfish.esm.committer import Committer
from triggerfish.esm.config import MAX_PAYLOAD_BYTES
from triggerfish.esm.event import Record
from triggerfish.esm.pollers import Pollers

_TP = tuple[str, int]
PAUSE_BATCHES = 8
#: The fewest buffered records that pause a partition, whatever its BatchSize.
PAUSE_MIN_RECORDS = 1000
#: How long what a resumed partition holds should last at its drain rate (more than a held fetch takes).
RESUME_LEAD_S = 2.0
#: The most records the drain rate alone may make a partition buffer before it is paused.
PAUSE_MAX_RECORDS = 10_000
#: How often (seconds of draining, by the callers' clock) a partition's drain rate is measured.
_RATE_WINDOW_S = 0.25
_RATE_DECAY = 0.75
#: The first estimate comes after this many records (a partition's first fetch may pause it within 0.1 s).
_RATE_FIRST_RECORDS = 100
#: A filtered-out record's stand-in: only its offset matters (committed with the records around it).
_FILTERED = b"-"
_TOPIC_PARTITION, _TOPIC, _PARTITION = attrgetter("topic", "partition"), attrgetter("topic"), attrgetter("partition")


def filtered_record(topic: str, partition: int, offset: int) -> Record:
    """The placeholder ``accept`` takes for a record FilterCriteria dropped."""
    record = Record(topic, partition, offset, 0, "", None, None)
    record.encoded = _FILTERED
    return record


def is_filtered(record: Record) -> bool:
    """``record`` is a placeholder of ``filtered_record`` (FilterCriteria or a schema failure dropped it)."""
    return record.encoded == _FILTERED


@dataclass
class Partition:
    tp: _TP
    buffer: PartitionBuffer
    generation: int
    #: Next offset after the last record seen (filtered ones included); -1 before the first.
    position: int = -1
    in_flight: bool = False
    revoking: bool = False
    paused: bool = False
    #: When the partition was last dispatched (a counter): with a poller limit, the longest-waiting goes first.
    served: int = 0
    #: Records drained per second (a recent peak of whole ``_RATE_WINDOW_S`` windows), and the window being counted.
    rate: float = 0.0
    rate_busy: float = 0.0
    rate_taken: int = 0
    done: threading.Condition = field(default_factory=threading.Condition)


class Lease:
    """One pool thread's run of batches on a partition, current until revoked, reassigned or stopped."""

    def __init__(self, owner: Partitions, partition: Partition, generation: int) -> None:
        self._owner = owner
        self.partition = partition
        self.generation = generation
        #: When this run took its previous batch, and how many records it held (the drain rate's measure).
        self._last: tuple[float, int] | None = None

    def current(self) -> bool:
        p = self.partition
        return p.generation == self.generation and not p.revoking and not self._owner.stopping()

    def take(self, now: float) -> tuple[Cut, int] | None:
        """The next batch and the offset to commit once it is done; None when there is none or the run ended."""
        p = self.partition
        with self._owner.lock:
            if not self.current() or not self._owner.startable(p, now):
                return None
            cut = p.buffer.take(now)
            if self._last is not None:
                _count_drained(p, self._last[1], now - self._last[0])
            self._last = now, len(cut.records)
            commit_to = last_offset(cut.records) + 1
            if not len(p.buffer):  # filtered records after the batch are done too
                commit_to = max(commit_to, p.position)
            return cut, commit_to

    def advance(self, positions: Mapping[_TP, int]) -> None:
        """Commit past finished records of a batch still in progress (a partial batch response)."""
        with self._owner.lock:
            if self.current():
                for tp, offset in positions.items():
                    self._owner.committer.advance(tp, offset)

    def finish(self, commit_to: int) -> bool:
        """The batch is done: commit past it unless the partition was revoked and removed meanwhile.

        A batch that finishes while its partition is being revoked still commits: the revoke waits
        for it and commits what finished before another member takes the partition.
        """
        p = self.partition
        with self._owner.lock:
            if p.generation != self.generation:
                return False
            self._owner.committer.advance(p.tp, commit_to)
            return True

    def release(self) -> None:
        """The run is over (no batch ready, abandoned or failed): the partition may be dispatched again."""
        p = self.partition
        with p.done:
            p.in_flight = False
            p.done.notify_all()


def _count_drained(p: Partition, records: int, seconds: float) -> None:
    """``records`` of ``p`` were done in ``seconds`` (flow control resumes a fast partition early)."""
    p.rate_taken += records
    p.rate_busy += seconds
    busy = p.rate_busy
    if busy >= _RATE_WINDOW_S or (not p.rate and p.rate_taken >= _RATE_FIRST_RECORDS and busy > 0):
        p.rate = max(p.rate_taken / busy, p.rate * _RATE_DECAY)
        p.rate_busy, p.rate_taken = 0.0, 0


def _levels(p: Partition, floor: int) -> tuple[int, int]:
    """How many buffered records pause ``p`` and below how many it is resumed: ``floor`` and a quarter of it,
    or for a partition that drains fast twice and once what lasts ``RESUME_LEAD_S`` at its rate."""
    lead = min(int(RESUME_LEAD_S * p.rate), PAUSE_MAX_RECORDS // 2)
    return max(floor, 2 * lead), max(floor // 4, lead)


class Partitions:
    """The assigned partitions of one mapping; thread-safe (``lock`` guards every partition's state)."""

    def __init__(
        self,
        committer: Committer,
        batch_size: int,
        window_s: float,
        *,
        max_bytes: int = MAX_PAYLOAD_BYTES,
        stopping: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lock = threading.Lock()
        self.committer = committer
        self.batch_size = batch_size
        self.window_s = window_s
        self.max_bytes = max_bytes
        self.stopping = stopping
        self._clock = clock
        self._parts: dict[_TP, Partition] = {}
        self._generation = 0
        self._served = 0
        #: Provisioned mode (ProvisionedPollerConfig): how many partitions may have a batch in flight at once.
        self.pollers: Pollers | None = None
        #: Partitions paused so far (the benchmark reports it).
        self.pauses = 0

    def __len__(self) -> int:
        return len(self._parts)

    def __contains__(self, tp: object) -> bool:
        return tp in self._parts

    def get(self, tp: _TP) -> Partition | None:
        return self._parts.get(tp)

    def tps(self) -> list[_TP]:
        with self.lock:
            return list(self._parts)

    # -- rebalances ----------------------------------------------------------------------------
    def assign(self, tps: Iterable[_TP], committed: Mapping[_TP, int], envelope: Callable[[str, int], int]) -> None:
        """Own ``tps`` (new generations, empty buffers); ``committed`` is the group's offsets (-1 = none)."""
        tps = list(tps)
        with self.lock:
            for tp in tps:
                self._generation += 1
                buffer = PartitionBuffer(self.batch_size, self.window_s, envelope(*tp), self.max_bytes)
                self._parts[tp] = Partition(tp, buffer, self._generation)
            self.committer.own(tps, dict(committed))

    def start_revoke(self, tps: Iterable[_TP]) -> list[Partition]:
        """Mark ``tps`` revoking: nothing new is accepted or dispatched, running batches stop retrying."""
        with self.lock:
            parts = [self._parts[tp] for tp in tps if tp in self._parts]
            for p in parts:
                p.revoking = True
        return parts

    def wait_idle(self, parts: Iterable[Partition], deadline: float | None = None) -> None:
        """Wait until no batch of ``parts`` is in flight (or ``deadline``, monotonic seconds, passes)."""
        for p in parts:
            with p.done:
                while p.in_flight and (deadline is None or self._clock() < deadline):
                    p.done.wait(0.1)

    def remove(self, parts: Iterable[Partition], tps: list[_TP]) -> None:
        """Drop revoked partitions; a batch still running on one of them can no longer commit."""
        with self.lock:
            for p in parts:
                p.generation = -1
                self._parts.pop(p.tp, None)
            self.committer.forget(tps)

    # -- the poll thread's side ------------------------------------------------------------------
    def accept(self, polled: Polled, now: float) -> None:
        """Buffer polled records (filtered ones only move the read position); skip what is not ours."""
        with self.lock:
            if polled and isinstance(polled[0], Block):  # the hot path: a block per partition run
                for b in polled:
                    self._accept_run((b.topic, b.partition), b, now)
                return
            # A poll holds runs of records per partition, each in offset order: taken a run at a time (C loops).
            # A mapping reads one topic: grouped by partition (int keys) and the topic checked once per run.
            for partition, group in groupby(cast(list[Record], polled), _PARTITION):
                run = list(group)
                topic = run[0].topic
                if countOf(map(_TOPIC, run), topic) == len(run):
                    self._accept_run((topic, partition), run, now)
                else:
                    for tp, part in groupby(run, _TOPIC_PARTITION):
                        self._accept_run(tp, list(part), now)

    def _accept_run(self, tp: _TP, run: Sequence[Record], now: float) -> None:
        p = self._parts.get(tp)
        if p is None or p.revoking:
            return  # not ours (any more)
        first, last = (run.offsets[0], run.offsets[-1]) if isinstance(run, Block) else (run[0].offset, run[-1].offset)
        if first < p.position or last - first < len(run) - 1:  # refetched after a pause, or not in order
            run = self._unseen(p, run)
        else:
            if p.position < 0:
                self.committer.start(p.tp, first)  # CommittedEventCount's base
            p.position = last + 1
        if isinstance(run, Block):
            p.buffer.extend(run, now, run.size)
        elif (size := known_size(run)) is not None:  # no filtered placeholder among them (those have no size)
            p.buffer.extend(run, now, size)
        else:
            p.buffer.extend([r for r in run if r.encoded != _FILTERED], now)

    def _unseen(self, p: Partition, run: Sequence[Record]) -> Sequence[Record]:
        """``accept`` of what is at or past the read position: what is below it was buffered before a pause."""
        if isinstance(run, Block) and run.offsets == sorted(run.offsets):
            kept = run[bisect_left(run.offsets, p.position):]
            if kept:
                if p.position < 0:
                    self.committer.start(p.tp, kept.offsets[0])
                p.position = kept.offsets[-1] + 1
            return kept
        records = []
        for record in run:  # record by record
            if record.offset < p.position:
                continue
            if p.position < 0:
                self.committer.start(p.tp, record.offset)  # CommittedEventCount's base
            p.position = record.offset + 1
            records.append(record)
        return records

    def dispatch(self, now: float) -> list[Lease]:
        """Leases for the partitions with a batch ready (marked in flight: one run per partition at a time).

        With ``pollers``, at most that many partitions are in flight; the longest-waiting go first.
        """
        limit = self._limit()
        ready: list[Partition] = []
        with self.lock:
            for p in self._parts.values():
                if p.in_flight or p.revoking:
                    continue
                if self.startable(p, now):
                    ready.append(p)
                elif not len(p.buffer) and p.position > self.committer.position(p.tp):
                    # Everything since the last batch was filtered out: nothing to invoke, commit past it.
                    self.committer.advance(p.tp, p.position)
            if limit is not None:
                ready.sort(key=lambda p: p.served)
                del ready[max(0, limit - self._in_flight()):]
            for p in ready:
                self._served += 1
                p.in_flight, p.served = True, self._served
        return [Lease(self, p, p.generation) for p in ready]

    def startable(self, p: Partition, now: float) -> bool:
        """``p`` has a batch ready at ``now`` and the commit gate lets it start (it is not too far past its last
        confirmed commit, esm/committer.py); call with ``lock`` held."""
        return p.buffer.ready(now) and self.committer.may_start(p.tp)

    def running(self) -> bool:
        """Some partition has a batch run in progress (the poll thread then polls in shorter steps)."""
        with self.lock:
            return self._in_flight() > 0

    def _in_flight(self) -> int:
        return sum(p.in_flight for p in self._parts.values())

    def _limit(self) -> int | None:
        return self.pollers.current if self.pollers is not None else None

    def yields(self, now: float) -> bool:
        """With pollers, a run gives its slot up after a batch when another partition has one ready and no run."""
        if self.pollers is None:  # asked after every batch: no lock without pollers
            return False
        with self.lock:
            return any(not p.in_flight and not p.revoking and self.startable(p, now) for p in self._parts.values())

    def scale(self, lagging: set[_TP]) -> None:
        """Provisioned mode: pollers for the partitions with lag, records buffered or a batch in flight."""
        with self.lock:
            busy = lagging | {p.tp for p in self._parts.values() if p.in_flight or len(p.buffer)}
            if self.pollers is not None:
                self.pollers.scale(len(busy & set(self._parts)), len(self._parts))

    def poll_timeout(self, now: float, longest: float) -> float:
        """How long the next poll may wait: ``longest``, or less when a batching window closes sooner
        (and a poller is free to take its batch)."""
        timeout = longest
        with self.lock:
            limit = self._limit()
            if limit is not None and self._in_flight() >= limit:
                return timeout
            for p in self._parts.values():
                if not p.in_flight and self.startable(p, math.inf):  # records buffered, whenever their window closes
                    deadline = p.buffer.deadline()
                    if deadline is not None:
                        timeout = min(timeout, max(0.0, deadline - now))
        return timeout

    def flow(self) -> tuple[list[_TP], list[_TP]]:
        """The partitions to pause (backlog too large) and to resume (backlog drained), in that order."""
        floor, high_bytes = max(PAUSE_BATCHES * self.batch_size, PAUSE_MIN_RECORDS), PAUSE_BATCHES * self.max_bytes
        pause: list[_TP] = []
        resume: list[_TP] = []
        with self.lock:
            for p in self._parts.values():
                high_count, low_count = _levels(p, floor)
                big = len(p.buffer) >= high_count or p.buffer.bytes >= high_bytes
                if big and not p.paused:
                    p.paused = True
                    pause.append(p.tp)
                    self.pauses += 1
                elif p.paused and len(p.buffer) < low_count and p.buffer.bytes < high_bytes // 4:
                    p.paused = False
                    resume.append(p.tp)
        return pause, resume

    def drain(self) -> None:
        """Wait for in-flight batches (they finish their current invoke; retries stop)."""
        with self.lock:
            parts = list(self._parts.values())
        self.wait_idle(parts)
