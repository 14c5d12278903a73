"""Fakes of the runner's collaborators, for testing its logic without Kafka, functions or real time.

The fakes stand in for what the runner gets from its factories (``esm.runner.Factories``): the consumer
(``FakeSource``, yielding real ``confluent_kafka.Message`` objects built in memory), the worker pool
(``InlineExecutor``), the invoker (``ScriptedInvoker``), the on-failure destination (``FakeDestination``),
plus the clock (``FakeClock``) and a batch's lease (``FakeLease``). The Kafka client itself is never mocked:
tests that talk to Kafka use the real broker.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from triggerfish.esm.destinations import DestinationError, Failure, Source
from triggerfish.esm.event import Record
from triggerfish.esm.retry import Outcome
from triggerfish.functions.runtime import InvokeResult

TP = tuple[str, int]
NOW_MS = 1_700_000_000_000
OK = Outcome(failed=False, payload=None)
ERROR = Outcome(failed=True, error_type="ValueError", error_message="poison")


def record(offset: int, partition: int = 0, topic: str = "orders", timestamp: int = NOW_MS,
           value: bytes | None = b"{}") -> Record:
    return Record(topic, partition, offset, timestamp, "CREATE_TIME", None, value)


def records(n: int, partition: int = 0, start: int = 0, topic: str = "orders", timestamp: int = NOW_MS) -> list[Record]:
    return [record(start + i, partition, topic, timestamp) for i in range(n)]


def message(offset: int, value: bytes | None = b'{"n": 1}', partition: int = 0, topic: str = "orders",
            timestamp: int = NOW_MS) -> Message:
    """A polled message as librdkafka hands it over."""
    return Message(topic=topic, partition=partition, offset=offset, value=value, timestamp=(1, timestamp))


def error_message(code: int, text: str) -> Message:
    return Message(error=KafkaError(code, text))


def item_failures(*records: Record) -> Outcome:
    """A ReportBatchItemFailures response naming ``records``."""
    return Outcome(failed=False, payload={"batchItemFailures": [
        {"itemIdentifier": {"partition": f"{r.topic}-{r.partition}", "offset": r.offset}} for r in records
    ]})


class CountingMetrics:
    """Counts what the driver reports (the MetricsSink protocol)."""

    def __init__(self) -> None:
        self.invokes: list[tuple[int, bool, bool]] = []
        self.dropped_records = 0
        self.delivered = 0
        self.destination_errors = 0

    def invoked(self, records: int, *, failed: bool = False, error: bool = False) -> None:
        self.invokes.append((records, failed, error))

    def dropped(self, records: int) -> None:
        self.dropped_records += records

    def destination_delivered(self, records: int) -> None:
        self.delivered += records

    def destination_error(self) -> None:
        self.destination_errors += 1


class FakeClock:
    """Moves only when slept on or advanced; ``sleeps`` lists every sleep (the backoffs)."""

    def __init__(self, start: float = 1000.0, wall_ms: int = NOW_MS) -> None:
        self.now = start
        self._start = start
        self._wall = wall_ms
        self.sleeps: list[float] = []
        self._lock = threading.Lock()
        self.on_sleep: Callable[[float], None] | None = None

    def monotonic(self) -> float:
        return self.now

    def time_ms(self) -> int:
        return self._wall + int((self.now - self._start) * 1000)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class ScriptedInvoker:
    """Answers each invoke from ``answer``: a function of the records, or a list of outcomes taken in
    order (the last one repeats). ``calls`` holds the offsets of every invoke."""

    def __init__(self, answer: Callable[[Sequence[Record]], Outcome] | Sequence[Outcome] = (OK,)) -> None:
        self._answer = answer
        self.calls: list[list[int]] = []
        self.before: Callable[[int], None] | None = None  # runs before answering invoke number n (1-based)

    def invoke(self, batch: Sequence[Record]) -> tuple[Outcome, InvokeResult | None]:
        self.calls.append([r.offset for r in batch])
        if self.before is not None:
            self.before(len(self.calls))
        if callable(self._answer):
            outcome = self._answer(batch)
        else:
            outcome = self._answer[min(len(self.calls), len(self._answer)) - 1]
        if outcome.failed:
            body = {"errorType": outcome.error_type, "errorMessage": outcome.error_message}
            return outcome, InvokeResult("fn", f"req-{len(self.calls)}", json.dumps(body).encode(), "Unhandled", 1.0)
        return outcome, InvokeResult("fn", f"req-{len(self.calls)}", json.dumps(outcome.payload).encode(), None, 1.0)


class FakeDestination:
    """Fails the first ``fail`` sends (-1: every send) with DestinationError; ``sent`` holds what it took."""

    def __init__(self, fail: int = 0, target: str = "kafka://orders-dlq") -> None:
        self.target = target
        self.fail = fail
        self.attempts = 0
        self.sent: list[tuple[list[Record], Failure, Source, Any]] = []
        self.closed = False
        self.on_send: Callable[[], None] | None = None  # before each attempt
        self.on_sent: Callable[[list[Record], Failure], None] | None = None  # after each accepted send

    def send(self, records: Sequence[Any], failure: Failure, source: Source, event: Any) -> None:
        self.attempts += 1
        if self.on_send is not None:
            self.on_send()
        if self.fail:
            self.fail -= 1 if self.fail > 0 else 0
            raise DestinationError(f"{self.target} unreachable")
        self.sent.append((list(records), failure, source, event))
        if self.on_sent is not None:
            self.on_sent(list(records), failure)

    def close(self) -> None:
        self.closed = True


class FakeLease:
    """A batch's lease: ``positions`` is how far it committed; ``live = False`` revokes it."""

    def __init__(self) -> None:
        self.live = True
        self.positions: dict[TP, int] = {}
        self.advances: list[dict[TP, int]] = []
        self.on_advance: Callable[[Mapping[TP, int]], None] | None = None

    def current(self) -> bool:
        return self.live

    def advance(self, positions: Mapping[TP, int]) -> None:
        if self.live:
            if self.on_advance is not None:
                self.on_advance(positions)
            self.advances.append(dict(positions))
            for tp, offset in positions.items():
                self.positions[tp] = max(offset, self.positions.get(tp, -1))


class InlineExecutor(Executor):
    """A worker pool that runs each task at once in the submitting thread: runs are deterministic."""

    def __init__(self) -> None:
        self.submitted = 0
        self.shut_down = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the future like a pool does
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.shut_down = True


Step = Callable[["FakeSource"], Sequence[Message]]


class FakeSource:
    """A consumer that plays ``script``: each poll runs the next step (assign, revoke, messages, ...).

    With the script done, polls are idle: they move the fake clock by the poll timeout; ``idle_for`` says
    for how long (fake seconds).
    Commits are recorded; an asynchronous one is answered through ``on_commit`` on the next poll, as
    librdkafka does. ``close`` revokes what is assigned, as leaving the group does.
    """

    def __init__(self, script: Iterable[Step], clock: FakeClock, settings: dict[str, Any], *,
                 on_assign: Callable[[list[TP], dict[TP, int]], None], on_revoke: Callable[[list[TP]], None],
                 on_commit: Callable[[Any, list[Any]], None] | None, on_error: Callable[[Any], None] | None,
                 commit_error: KafkaError | None = None, unsendable_commits: int = 0) -> None:
        self.script = list(script)
        self.clock = clock
        self.settings = settings
        self.on_assign, self.on_revoke, self.on_commit, self.on_error = on_assign, on_revoke, on_commit, on_error
        self.assigned: list[TP] = []
        self.commits: list[tuple[dict[TP, int], bool]] = []
        self.committed: dict[TP, int] = {}
        self.paused: list[list[TP]] = []
        self.resumed: list[list[TP]] = []
        self.timeouts: list[float] = []
        self._idle_since: float | None = None
        self.closed = False
        self.commit_error = commit_error  # the answer to the next asynchronous commit
        self.unsendable_commits = unsendable_commits  # commits that raise before going out
        self._answers: list[tuple[KafkaError | None, list[TopicPartition]]] = []

    def poll(self, max_records: int, timeout: float) -> Sequence[Message]:
        self.timeouts.append(timeout)
        while self._answers and self.on_commit is not None:
            err, tps = self._answers.pop(0)
            self.on_commit(err, tps)
        if self.script:
            return self.script.pop(0)(self)
        if self._idle_since is None:
            self._idle_since = self.clock.now
        self.clock.advance(max(timeout, 0.01))
        time.sleep(0.001)
        return []

    def idle_for(self) -> float:
        return 0.0 if self._idle_since is None else self.clock.now - self._idle_since

    def assign(self, tps: list[TP], committed: dict[TP, int] | None = None) -> None:
        self.assigned += tps
        self.on_assign(tps, committed or {tp: -1001 for tp in tps})

    def revoke(self, tps: list[TP]) -> None:
        self.assigned = [tp for tp in self.assigned if tp not in tps]
        self.on_revoke(tps)

    def commit(self, offsets: dict[TP, int], *, asynchronous: bool) -> Any:
        if self.unsendable_commits:
            self.unsendable_commits -= 1
            raise KafkaException(KafkaError(KafkaError._QUEUE_FULL))
        self.commits.append((dict(offsets), asynchronous))
        if asynchronous:
            err = self.commit_error
            self.commit_error = None
            if err is None:
                self.committed.update(offsets)
            self._answers.append((err, [TopicPartition(t, p, o) for (t, p), o in offsets.items()]))
            return None
        self.committed.update(offsets)
        return [TopicPartition(t, p, o) for (t, p), o in offsets.items()]

    def pause(self, tps: list[TP]) -> None:
        self.paused.append(list(tps))

    def resume(self, tps: list[TP]) -> None:
        self.resumed.append(list(tps))

    def watermarks(self, tp: TP) -> tuple[int, int] | None:
        return (0, 100) if tp in self.assigned else None

    def close(self) -> None:
        if self.assigned:
            self.revoke(list(self.assigned))
        self.closed = True


def assign(*tps: TP, committed: dict[TP, int] | None = None) -> Step:
    def step(source: FakeSource) -> Sequence[Message]:
        source.assign(list(tps), committed)
        return []
    return step


def revoke(*tps: TP) -> Step:
    def step(source: FakeSource) -> Sequence[Message]:
        source.revoke(list(tps))
        return []
    return step


def poll(*messages: Message) -> Step:
    def step(source: FakeSource) -> Sequence[Message]:
        return list(messages)
    return step


def until(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait (real time) until ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the awaited condition never came"
        time.sleep(0.005)


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> Step:
    """A step that holds the poll thread until ``predicate`` (e.g. a batch is in flight)."""
    def step(source: FakeSource) -> Sequence[Message]:
        until(predicate, timeout)
        return []
    return step
