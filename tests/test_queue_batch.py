"""One Queue-mode batch (``esm/queue_batch.py``) with fakes: the verdict per record (ACCEPT, RELEASE,
REJECT) after invokes, in-engine retries, bisection, the last delivery, too-old and too-large records;
and how one poll's records are cut into batches. No Kafka, no function processes, no real sleeps."""

from __future__ import annotations

from collections.abc import Mapping

from esm_fakes import (
    ERROR,
    NOW_MS,
    OK,
    CountingMetrics,
    FakeClock,
    FakeDestination,
    ScriptedInvoker,
    item_failures,
    record,
)
from triggerfish.esm.batcher import Cut
from triggerfish.esm.destinations import Source
from triggerfish.esm.drive import BatchDriver, OnFailure
from triggerfish.esm.event import EventBuilder, Record
from triggerfish.esm.queue_batch import QueueBatch, cut_batches
from triggerfish.esm.retry import (
    MAXIMUM_PAYLOAD_SIZE_EXCEEDED,
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    Outcome,
    RetryPolicy,
)
from triggerfish.esm.share import ACCEPT, REJECT, RELEASE
from triggerfish.esm.state import MappingStatus

LIMIT = 3


class Queued:
    """A QueueBatch wired to fakes, and what it did."""

    def __init__(self, policy: RetryPolicy, answer: object = (OK,), *, destination: bool = True,
                 stopping: bool = False) -> None:
        self.clock = FakeClock()
        self.invoker = ScriptedInvoker(answer)  # type: ignore[arg-type]
        self.status = MappingStatus()
        self.metrics = CountingMetrics()
        self.destination = FakeDestination() if destination else None
        on_failure = None if self.destination is None else OnFailure(
            self.destination, Source("b1:9092", None, "uuid-1"), lambda: "arn:fn", lambda rs: b"event")
        driver = BatchDriver("fn", policy, self.invoker, status=self.status, metrics=self.metrics, clock=self.clock,
                             on_failure=on_failure, name="uuid-1")
        self.batch = QueueBatch(driver, LIMIT, lambda: stopping)

    def run(self, batch: list[Record], deliveries: Mapping[int, int] | None = None,
            oversized: bool = False) -> dict[int, object]:
        counts = {("orders", r.partition, r.offset): (deliveries or {}).get(r.offset, 1) for r in batch}
        verdicts = self.batch.run(Cut(batch, oversized), counts)
        assert set(verdicts) == set(counts)  # every record of the batch gets a verdict
        return {offset: kind for (_, _, offset), kind in sorted(verdicts.items())}

    def sent(self) -> list[tuple[list[int], str]]:
        assert self.destination is not None
        return [([r.offset for r in rs], f.condition) for rs, f, _, _ in self.destination.sent]


def _policy(**kw: object) -> RetryPolicy:
    return RetryPolicy(maximum_retry_attempts=0, has_destination=True, **kw)  # type: ignore[arg-type]


def _batch(*offsets: int, partition: int = 0) -> list[Record]:
    return [record(o, partition) for o in offsets]


def test_a_successful_batch_is_accepted_record_by_record() -> None:
    q = Queued(_policy())
    assert q.run(_batch(4, 9, 12)) == {4: ACCEPT, 9: ACCEPT, 12: ACCEPT}
    assert q.invoker.calls == [[4, 9, 12]] and q.metrics.invokes == [(3, False, False)]


def test_a_failed_batch_is_released_for_the_broker_to_redeliver() -> None:
    q = Queued(_policy(), answer=[ERROR])
    assert q.run(_batch(1, 2)) == {1: RELEASE, 2: RELEASE}
    assert q.invoker.calls == [[1, 2]] and q.sent() == [] and q.clock.sleeps == []


def test_partial_batch_response_releases_exactly_the_reported_records() -> None:
    batch = _batch(0, 1, 2, 3)
    q = Queued(_policy(report_batch_item_failures=True), answer=[item_failures(batch[1], batch[3])])
    assert q.run(batch) == {0: ACCEPT, 1: RELEASE, 2: ACCEPT, 3: RELEASE}
    bad = Queued(_policy(report_batch_item_failures=True), answer=[Outcome(False, {"batchItemFailures": 7})])
    assert bad.run(_batch(0, 1)) == {0: RELEASE, 1: RELEASE}  # an invalid response fails the whole batch


def test_at_the_last_delivery_failed_records_go_to_the_destination_and_are_rejected() -> None:
    q = Queued(_policy(), answer=[ERROR])
    assert q.run(_batch(5, 6), deliveries={5: LIMIT, 6: LIMIT - 1}) == {5: REJECT, 6: RELEASE}
    assert q.sent() == [([5], RETRY_ATTEMPTS_EXHAUSTED)]
    dropped = Queued(_policy(), answer=[ERROR], destination=False)
    assert dropped.run(_batch(5), deliveries={5: LIMIT}) == {5: REJECT}
    assert dropped.metrics.dropped_records == 1 and q.metrics.delivered == 1


def test_retries_in_the_engine_then_release() -> None:
    q = Queued(RetryPolicy(maximum_retry_attempts=2, has_destination=True), answer=[ERROR, ERROR, ERROR])
    assert q.run(_batch(1)) == {1: RELEASE}
    assert q.invoker.calls == [[1], [1], [1]] and q.clock.sleeps == [0.1, 0.2]
    healed = Queued(RetryPolicy(maximum_retry_attempts=2), answer=[ERROR, OK])
    assert healed.run(_batch(1)) == {1: ACCEPT}


def test_bisect_narrows_a_function_error_to_the_poison_record() -> None:
    q = Queued(_policy(bisect_on_error=True), answer=lambda rs: ERROR if any(r.offset == 2 for r in rs) else OK)
    assert q.run(_batch(0, 1, 2, 3)) == {0: ACCEPT, 1: ACCEPT, 2: RELEASE, 3: ACCEPT}
    assert q.invoker.calls == [[0, 1, 2, 3], [0, 1], [2, 3], [2], [3]]


def test_too_old_and_too_large_records_go_to_the_destination_at_once() -> None:
    q = Queued(_policy(maximum_record_age_seconds=60))
    old = record(1, timestamp=NOW_MS - 120_000)
    assert q.run([old, record(2)]) == {1: REJECT, 2: ACCEPT}
    assert q.sent() == [([1], RECORD_AGE_EXCEEDED)]
    big = Queued(_policy())
    assert big.run(_batch(7), oversized=True) == {7: REJECT}
    assert big.sent() == [([7], MAXIMUM_PAYLOAD_SIZE_EXCEEDED)] and big.invoker.calls == []


def test_records_of_a_stopping_runner_go_back_to_the_group() -> None:
    q = Queued(_policy(), stopping=True)
    assert q.run(_batch(1, 2)) == {1: RELEASE, 2: RELEASE}
    assert q.invoker.calls == []


def test_one_poll_is_cut_by_batch_size_and_payload_across_partitions() -> None:
    builder = EventBuilder("SelfManagedKafka", ["b1:9092"])
    polled = [record(o, p) for o in range(5) for p in (1, 0)]
    cuts = cut_batches(polled, 4, builder)
    assert [[(r.partition, r.offset) for r in c.records] for c in cuts] == [
        [(0, 0), (0, 1), (0, 2), (0, 3)], [(0, 4), (1, 0), (1, 1), (1, 2)], [(1, 3), (1, 4)]]
    limit = builder.size(cuts[1].records)  # exactly one mixed batch of 4 fits
    for cut in cut_batches(polled, 10, builder, max_bytes=limit):
        assert builder.size(cut.records) <= limit and not cut.oversized
    assert cut_batches([], 4, builder) == []
