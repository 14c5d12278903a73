"""Offset bookkeeping: what may be committed (only after success) and what Kafka has confirmed.

Offsets follow Kafka's convention: the value stored is the next offset to read (last processed + 1).
``advance`` never moves a partition backwards, so a late success of an older batch cannot undo a
newer one. ``forget`` drops revoked partitions so nothing is committed for them after a rebalance.
``on_commit`` hears how far each confirmed commit moved a partition (Lambda's CommittedEventCount),
counted from the previous commit, or from the first offset seen when the group had none.

The duplicates a crash may cause are bounded by a gate: a partition may start a batch only while what it
has processed past its last confirmed commit is at most ``ahead`` offsets (``gate_offsets``: the mapping's
BatchSize, and never fewer than ``GATE_MIN_OFFSETS``; ``may_start``; with full batches, batch N+2 starts
once batch N's commit is confirmed). After a SIGKILL the group's offsets are then at most two batches
behind what the handler has seen on each partition (BatchSize >= 100): the batch in flight and the one(s)
whose commit was in flight. Small batches (a low rate) run on while a commit is slow, as long as together
they stay within the gate.

``Commits`` sends them from the poll thread (a ``commit`` from another thread waits until the poll
thread's ``poll()`` returns: measured, confluent-kafka 2.16); its ``CommitPacer`` decides when: as soon as
a batch finished, asynchronous OffsetCommits carrying every partition's latest position, at most two on
their way at a time (so commits never queue up ahead of heartbeats), again when one was not answered
within ``stuck`` seconds, and ``backoff`` seconds after a commit failed. While offsets wait to
be committed or confirmed, the poll thread polls at most ``PROMPT_POLL_S`` at a time, so that a finished
batch's commit goes out, and its answer lets the partition go on, within milliseconds; while batches
run, at most a quarter of the usual time between two batches of a partition (``Committer.cadence``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("triggerfish.esm")

TP = tuple[str, int]
#: The longest poll while offsets wait for a commit or its answer.
PROMPT_POLL_S = 0.002
#: The fewest offsets the gate lets a partition run past its last confirmed commit. A gate of one BatchSize
#: at BatchSize 1 made every invocation wait for an OffsetCommit round trip: 2,176 against 5,265
#: invocations/s on 4 partitions (BENCHMARKS.md, issue 23); 100 records keep the commit off that path.
GATE_MIN_OFFSETS = 100


def gate_offsets(batch_size: int) -> int:
    """How far (in offsets) a partition of a mapping with ``batch_size`` may run past its last confirmed commit."""
    return max(batch_size, GATE_MIN_OFFSETS)


class Committer:
    def __init__(self, on_commit: Callable[[int], None] | None = None, clock: Callable[[], float] = time.monotonic,
                 *, ahead: int | None = None) -> None:
        self._lock = threading.Lock()
        self._ahead = ahead  # None: no gate
        self._clock = clock
        #: When each partition last advanced, and how far apart its advances (batches) are: an average.
        self._advanced: dict[TP, float] = {}
        self.cadence = 0.0
        self._pending: dict[TP, int] = {}
        self._committed: dict[TP, int] = {}
        self._owned: set[TP] = set()
        self._on_commit = on_commit
        #: Where commit deltas count from for a partition with no committed offset yet.
        self._start: dict[TP, int] = {}

    def start(self, tp: TP, offset: int) -> None:
        """The first offset read from a partition (the base of its first commit's delta)."""
        with self._lock:
            self._start.setdefault(tp, offset)

    def own(self, tps: list[TP], committed: dict[TP, int] | None = None) -> None:
        with self._lock:
            self._owned.update(tps)
            for tp, off in (committed or {}).items():
                if off >= 0:
                    self._committed[tp] = off

    def forget(self, tps: list[TP]) -> None:
        with self._lock:
            for tp in tps:
                self._owned.discard(tp)
                self._pending.pop(tp, None)
                self._committed.pop(tp, None)
                self._start.pop(tp, None)
                self._advanced.pop(tp, None)

    def owns(self, tp: TP) -> bool:
        with self._lock:
            return tp in self._owned

    def advance(self, tp: TP, next_offset: int) -> bool:
        """Record that everything before ``next_offset`` is processed; False if tp is not ours."""
        with self._lock:
            if tp not in self._owned:
                return False
            current = max(self._pending.get(tp, -1), self._committed.get(tp, -1))
            if next_offset > current:
                self._pending[tp] = next_offset
                now, last = self._clock(), self._advanced.get(tp)
                self._advanced[tp] = now
                if last is not None:
                    self.cadence += (now - last - self.cadence) / 8
            return True

    def may_start(self, tp: TP) -> bool:
        """Whether ``tp`` may start a batch: it has processed at most ``ahead`` offsets past its last confirmed
        commit (or past the first offset it read, before its first commit)."""
        if self._ahead is None:
            return True
        with self._lock:
            committed = self._committed.get(tp, -1)
            base = committed if committed >= 0 else self._start.get(tp, -1)
            position = max(self._pending.get(tp, -1), committed)
            return position < 0 or base < 0 or position - base <= self._ahead

    def take(self) -> dict[TP, int]:
        """Offsets to commit now (they stay pending until ``confirm``)."""
        with self._lock:
            return {tp: off for tp, off in self._pending.items() if tp in self._owned}

    def confirm(self, tp: TP, offset: int) -> None:
        delta = 0
        with self._lock:
            previous = self._committed.get(tp, -1)
            if offset > previous:
                self._committed[tp] = offset
                delta = offset - (previous if previous >= 0 else self._start.get(tp, offset))
            if self._pending.get(tp, -1) <= offset:
                self._pending.pop(tp, None)
        if delta > 0 and self._on_commit is not None:
            self._on_commit(delta)

    def outstanding(self) -> bool:
        """Some processed offset is not confirmed committed yet."""
        with self._lock:
            return any(tp in self._owned for tp in self._pending)

    def committed(self, tp: TP) -> int | None:
        with self._lock:
            return self._committed.get(tp)

    def position(self, tp: TP) -> int:
        """The highest offset known processed (pending or committed), -1 if none."""
        with self._lock:
            return max(self._pending.get(tp, -1), self._committed.get(tp, -1))


class CommitPacer:
    """When the next asynchronous commit may go out (the poll thread's; times are monotonic seconds).

    At most ``most`` commits are in flight: with two, a batch's commit goes out when it finishes even while
    the previous one is on its way (the broker answers a connection's requests in order).
    """

    def __init__(self, stuck: float = 10.0, backoff: float = 0.1, most: int = 2) -> None:
        self.stuck = stuck
        self.backoff = backoff
        self.most = most
        self.in_flight = 0
        self.last = 0.0
        self._not_before = 0.0

    def due(self, now: float) -> bool:
        if now < self._not_before:
            return False
        if self.in_flight and now - self.last >= self.stuck:
            self.in_flight = 0  # not answered (lost): no longer counted
        return self.in_flight < self.most

    def sent(self, now: float) -> None:
        self.in_flight += 1
        self.last = now

    def waiting(self, now: float) -> bool:
        """A commit is in flight, or may go out now."""
        return self.in_flight > 0 or now >= self._not_before

    def answered(self, now: float, *, failed: bool = False) -> None:
        """A commit was answered (or failed to go out): the next one may follow, after ``backoff`` if it failed."""
        self.in_flight = max(0, self.in_flight - 1)
        self.last = now
        if failed:
            self._not_before = now + self.backoff


class CommitTarget(Protocol):
    """Where offsets are committed (the mapping's consumer)."""

    def commit(self, offsets: dict[TP, int], *, asynchronous: bool) -> Any: ...


class Commits:
    """The poll thread's commits of what ``committer`` holds: prompt asynchronous ones while polling,
    synchronous ones when stopping or on a revoke, and the broker's answers to the asynchronous ones.

    A failed commit is no loss: its offsets stay pending and go out again with the next one.
    """

    def __init__(self, committer: Committer, *, on_error: Callable[[], None], name: str = "",
                 pacer: CommitPacer | None = None, clock: Callable[[], float] = time.monotonic,
                 prompt_offsets: int = 1, interval: float = 0.0) -> None:
        self.committer = committer
        self._on_error = on_error  # CommitErrorCount
        self._name = name  # the mapping's UUID, in log lines
        self._pacer = pacer or CommitPacer()
        self._clock = clock
        self._sent: dict[TP, int] = {}  # the positions of the last asynchronous commit
        # A commit goes out at once when a partition moved ``prompt_offsets`` past what was last sent (a full
        # batch does: the gate needs its answer), else at most every ``interval`` seconds: at BatchSize 1 a
        # commit per invocation cost ~40 % of the engine's CPU per invocation, and bought nothing the gate needs.
        self._prompt_offsets = prompt_offsets
        self._interval = interval
        self._last_sent = 0.0

    def commit(self, target: CommitTarget, now: float, *, sync: bool = False, only: list[TP] | None = None) -> None:
        """Commit what is pending (of ``only`` when given); asynchronously unless ``sync``, when due."""
        if not (sync or self._pacer.due(now)):
            return
        offsets = self.committer.take()
        if only is not None:
            offsets = {tp: off for tp, off in offsets.items() if tp in only}
        if not offsets or (not sync and self._pacer.in_flight and offsets == self._sent):
            return  # nothing new since the commit on its way
        if not (sync or self._urgent(offsets) or now - self._last_sent >= self._interval):
            return
        try:
            if sync:
                target.commit(offsets, asynchronous=False)
                for tp, off in offsets.items():
                    self.committer.confirm(tp, off)
            else:
                self._pacer.sent(now)
                self._sent = offsets
                self._last_sent = now
                target.commit(offsets, asynchronous=True)
        except Exception as exc:  # noqa: BLE001 - retried with the next commit (on a revoke: the next owner re-delivers)
            if not sync:
                self._pacer.answered(now, failed=True)
            self._on_error()
            log.warning("mapping %s: commit failed: %s", self._name, exc)

    def poll_timeout(self, now: float, longest: float, *, running: bool) -> float:
        """How long the poll thread may wait in ``poll``: short while processed offsets wait to be committed
        or confirmed (not while a failed commit backs off); while batches run, a quarter of the usual time
        between two batches of a partition (a batch finishing meanwhile is committed without delay, and
        slow functions do not make the poll thread spin)."""
        if longest <= PROMPT_POLL_S:
            return longest
        pending = self.committer.take()
        if pending and self._pacer.waiting(now):
            if self._pacer.in_flight or self._urgent(pending):
                return PROMPT_POLL_S
            longest = min(longest, max(PROMPT_POLL_S, self._last_sent + self._interval - now))
        if running:
            return min(longest, max(PROMPT_POLL_S, self.committer.cadence / 4))
        return longest

    def _urgent(self, offsets: dict[TP, int]) -> bool:
        """Some partition moved ``prompt_offsets`` or more past both the last commit sent and the confirmed one
        (or has neither yet)."""
        for tp, off in offsets.items():
            committed = self.committer.committed(tp)
            done = max(self._sent.get(tp, -1), -1 if committed is None else committed)
            if done < 0 or off - done >= self._prompt_offsets:
                return True
        return False

    def answered(self, err: Any, partitions: list[Any]) -> None:
        """The broker's answer to an asynchronous commit (librdkafka's ``on_commit``)."""
        name = "" if err is None else getattr(err, "name", lambda: "")()
        # nothing to commit is no error, and no reason to wait before the next one
        self._pacer.answered(self._clock(), failed=err is not None and name != "_NO_OFFSET")
        if err is not None:
            if name != "_NO_OFFSET":
                self._on_error()
            # During a rebalance the broker refuses commits of the old generation; the offsets stay
            # pending and are committed again on the next loop (or on revoke).
            rebalancing = name in ("ILLEGAL_GENERATION", "REBALANCE_IN_PROGRESS", "UNKNOWN_MEMBER_ID", "_NO_OFFSET")
            (log.info if rebalancing else log.warning)("mapping %s: commit failed: %s", self._name, err)
            return
        for tp in partitions:
            if tp.error is None and tp.offset >= 0:
                self.committer.confirm((tp.topic, tp.partition), tp.offset)
