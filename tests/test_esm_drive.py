"""One batch's life (``esm/drive.py``) with fakes: scripted invokes, a destination that fails, a fake clock.

No Kafka, no function processes, no real sleeps: every backoff is a step of the fake clock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from esm_fakes import (
    ERROR,
    NOW_MS,
    OK,
    CountingMetrics,
    FakeClock,
    FakeDestination,
    FakeLease,
    ScriptedInvoker,
    item_failures,
    record,
    records,
)
from triggerfish.diagnosis import Diagnosis
from triggerfish.esm import problems
from triggerfish.esm.batcher import Cut
from triggerfish.esm.clock import SystemClock
from triggerfish.esm.destinations import DESTINATION_UNREACHABLE, Source
from triggerfish.esm.drive import TOO_LARGE, BatchDriver, OnFailure, pending
from triggerfish.esm.event import Record
from triggerfish.esm.retry import (
    MAXIMUM_PAYLOAD_SIZE_EXCEEDED,
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    Attempt,
    RetryPolicy,
    retry_delay,
)
from triggerfish.esm.state import OK as STATUS_OK
from triggerfish.esm.state import MappingStatus

TP0 = ("orders", 0)
ARN = "arn:aws:lambda:us-east-1:000000000000:function:fn"


class Driven:
    """A driver wired to fakes, and what it did."""

    def __init__(self, policy: RetryPolicy, answer: object = (OK,), destination: FakeDestination | None = None,
                 clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.invoker = ScriptedInvoker(answer)  # type: ignore[arg-type]
        self.status = MappingStatus()
        self.metrics = CountingMetrics()
        self.destination = destination
        self.lease = FakeLease()
        self.hooks: list[tuple[bool, str, Diagnosis | None]] = []
        on_failure = None if destination is None else OnFailure(
            destination, Source("b1:9092", None, "uuid-1"), lambda: ARN, lambda rs: b"event:%d" % len(rs))
        self.driver = BatchDriver("fn", policy, self.invoker, status=self.status, metrics=self.metrics,
                                  clock=self.clock, on_failure=on_failure, name="uuid-1",
                                  on_invoke=lambda ok, detail, problem: self.hooks.append((ok, detail, problem)))

    def run(self, batch: Sequence[Record], oversized: bool = False) -> bool:
        return self.driver.run(Cut(list(batch), oversized), self.lease)


def test_a_successful_batch_is_committed_after_one_invoke() -> None:
    d = Driven(RetryPolicy())
    assert d.run(records(5))
    assert d.invoker.calls == [[0, 1, 2, 3, 4]]
    assert d.lease.positions == {TP0: 5}
    assert d.clock.sleeps == []
    assert d.status.last_processing_result == STATUS_OK and d.status.records == 5
    assert d.hooks == [(True, "5 record(s) OK", None)]
    assert d.metrics.invokes == [(5, False, False)]


def test_failed_invokes_are_retried_with_growing_backoff_and_nothing_committed_meanwhile() -> None:
    d = Driven(RetryPolicy(), answer=[ERROR, ERROR, ERROR, ERROR, OK])
    committed_at_invoke: list[dict[tuple[str, int], int]] = []
    d.invoker.before = lambda n: committed_at_invoke.append(dict(d.lease.positions))
    assert d.run(records(3))
    assert len(d.invoker.calls) == 5 and all(call == [0, 1, 2] for call in d.invoker.calls)
    assert d.clock.sleeps == [0.1, 0.2, 0.4, 0.8]  # the fake clock: no real time passed
    assert committed_at_invoke == [{}] * 5
    assert d.lease.positions == {TP0: 3}
    assert d.metrics.invokes == [(3, True, True)] * 4 + [(3, False, False)]
    # the failures showed as the processing result until the success
    first_failure = d.hooks[0]
    assert first_failure[0] is False and first_failure[2] is not None
    assert first_failure[2].problem == problems.FUNCTION_CALL and first_failure[2].stage == "invoke"
    assert "ValueError: poison" in first_failure[1]
    assert d.status.last_processing_result == STATUS_OK and d.status.errors == 4


def test_backoff_is_capped_at_ten_seconds() -> None:
    d = Driven(RetryPolicy(), answer=[ERROR] * 12 + [OK])
    assert d.run(records(1))
    assert d.clock.sleeps == [retry_delay(n) for n in range(1, 13)]
    assert max(d.clock.sleeps) == 10.0


def test_bisect_isolates_the_poison_record_and_commits_never_pass_a_pending_one() -> None:
    destination = FakeDestination()
    d = Driven(RetryPolicy(maximum_retry_attempts=0, bisect_on_error=True, has_destination=True),
               answer=lambda batch: ERROR if any(r.offset == 5 for r in batch) else OK, destination=destination)
    assert d.run(records(8))
    assert d.invoker.calls == [[0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7], [4, 5], [4], [5], [6, 7]]
    (sent, failure, source, event), = destination.sent
    assert [r.offset for r in sent] == [5]
    assert failure.condition == RETRY_ATTEMPTS_EXHAUSTED and failure.invoke_count == 4
    assert failure.function_arn == ARN and failure.function_error == "Unhandled"
    assert failure.request_id == "req-6" and failure.error_type == "ValueError"
    assert source.bootstrap_servers == "b1:9092" and event == b"event:1"
    # each commit stops below the lowest record not finished yet
    assert d.lease.advances == [{TP0: 4}, {TP0: 5}, {TP0: 6}, {TP0: 8}]
    assert d.clock.sleeps == []  # bisecting does not wait


def test_partial_batch_response_commits_up_to_the_first_failure_and_retries_from_there() -> None:
    batch = records(6)
    d = Driven(RetryPolicy(report_batch_item_failures=True), answer=[item_failures(batch[4], batch[2]), OK])
    assert d.run(batch)
    assert d.invoker.calls == [[0, 1, 2, 3, 4, 5], [2, 3, 4, 5]]
    assert d.lease.advances == [{TP0: 2}, {TP0: 6}]
    assert d.clock.sleeps == [0.1]
    assert d.metrics.invokes == [(6, True, False), (4, False, False)]


def test_records_older_than_maximum_record_age_go_to_the_destination_without_an_invoke() -> None:
    destination = FakeDestination()
    old = [record(i, timestamp=NOW_MS - 61_000) for i in range(2)]
    fresh = [record(2, timestamp=NOW_MS - 1_000), record(3, timestamp=0)]  # 0: no timestamp, never expires
    d = Driven(RetryPolicy(maximum_record_age_seconds=60, has_destination=True), destination=destination)
    assert d.run(old + fresh)
    (sent, failure, _, _), = destination.sent
    assert [r.offset for r in sent] == [0, 1]
    assert failure.condition == RECORD_AGE_EXCEEDED and failure.invoke_count == 0 and failure.status_code is None
    assert d.invoker.calls == [[2, 3]]
    assert d.lease.advances == [{TP0: 2}, {TP0: 4}]


def test_a_batch_failing_until_it_is_too_old_goes_to_the_destination() -> None:
    destination = FakeDestination()
    d = Driven(RetryPolicy(maximum_record_age_seconds=60, has_destination=True), answer=(ERROR,),
               destination=destination)
    assert d.run([record(0, timestamp=NOW_MS - 30_000)])
    (sent, failure, _, _), = destination.sent
    assert failure.condition == RECORD_AGE_EXCEEDED
    # retried until the fake clock's backoffs made it older than 60 s
    assert sum(d.clock.sleeps) > 30 and failure.invoke_count == len(d.invoker.calls) == len(d.clock.sleeps) + 1
    assert d.lease.positions == {TP0: 1}


def test_retries_exhausted_send_the_batch_to_the_destination_then_commit() -> None:
    destination = FakeDestination()
    d = Driven(RetryPolicy(maximum_retry_attempts=2, has_destination=True), answer=(ERROR,), destination=destination)
    assert d.run(records(3))
    assert len(d.invoker.calls) == 3 and d.clock.sleeps == [0.1, 0.2]
    (sent, failure, _, _), = destination.sent
    assert [r.offset for r in sent] == [0, 1, 2]
    assert failure.condition == RETRY_ATTEMPTS_EXHAUSTED and failure.invoke_count == 3
    assert d.metrics.delivered == 3 and d.metrics.dropped_records == 0
    assert d.lease.positions == {TP0: 3}


def test_retries_exhausted_without_a_destination_drop_the_batch_and_commit() -> None:
    d = Driven(RetryPolicy(maximum_retry_attempts=0), answer=(ERROR,))
    assert d.run(records(2))
    assert d.metrics.dropped_records == 2
    assert d.status.problem is not None and d.status.problem.problem == problems.FUNCTION_CALL
    assert d.status.problem.detail.startswith(RETRY_ATTEMPTS_EXHAUSTED)
    assert d.lease.positions == {TP0: 2}


def test_an_unreachable_destination_is_retried_and_nothing_is_committed_until_it_takes_the_records() -> None:
    destination = FakeDestination(fail=3)
    d = Driven(RetryPolicy(maximum_retry_attempts=0, has_destination=True), answer=(ERROR,), destination=destination)
    committed_at_send: list[dict[tuple[str, int], int]] = []
    problem_at_send: list[str] = []
    destination.on_send = lambda: (committed_at_send.append(dict(d.lease.positions)),
                                   problem_at_send.append(d.status.last_processing_result))
    assert d.run(records(2))
    assert destination.attempts == 4 and len(destination.sent) == 1
    assert committed_at_send == [{}] * 4
    assert problem_at_send[1:] == [DESTINATION_UNREACHABLE] * 3
    assert d.clock.sleeps == [0.1, 0.2, 0.4]
    assert d.metrics.destination_errors == 3 and d.metrics.delivered == 2
    assert d.status.problem is None  # cleared once the destination took them
    assert d.lease.positions == {TP0: 2}


def test_a_batch_revoked_while_the_destination_is_unreachable_is_abandoned_uncommitted() -> None:
    destination = FakeDestination(fail=-1)
    d = Driven(RetryPolicy(maximum_retry_attempts=0, has_destination=True), answer=(ERROR,), destination=destination)
    d.clock.on_sleep = lambda s: setattr(d.lease, "live", destination.attempts < 3)
    assert d.run(records(2)) is False
    assert destination.attempts == 3 and destination.sent == []
    assert d.lease.positions == {}


def test_a_record_too_large_for_a_payload_goes_to_the_destination_without_an_invoke() -> None:
    destination = FakeDestination()
    d = Driven(RetryPolicy(has_destination=True), destination=destination)
    assert d.run([record(7)], oversized=True)
    assert d.invoker.calls == []
    (sent, failure, _, _), = destination.sent
    assert [r.offset for r in sent] == [7] and failure.condition == MAXIMUM_PAYLOAD_SIZE_EXCEEDED
    assert d.lease.positions == {TP0: 8}


def test_a_record_too_large_without_a_destination_is_skipped_with_its_own_problem() -> None:
    d = Driven(RetryPolicy())
    assert d.run([record(7)], oversized=True)
    assert d.status.problem is not None and d.status.problem.problem == TOO_LARGE
    assert "orders-0@7" in d.status.problem.detail
    assert d.lease.positions == {TP0: 8} and d.metrics.dropped_records == 1


def test_a_batch_revoked_between_retries_is_abandoned_uncommitted() -> None:
    d = Driven(RetryPolicy(), answer=(ERROR,))
    d.clock.on_sleep = lambda s: setattr(d.lease, "live", False)  # the revoke comes during the backoff
    assert d.run(records(3)) is False
    assert d.invoker.calls == [[0, 1, 2]]
    assert d.lease.positions == {} and d.lease.advances == []


def test_a_batch_revoked_after_a_partial_success_keeps_only_what_was_committed_before() -> None:
    batch = records(4)
    d = Driven(RetryPolicy(report_batch_item_failures=True), answer=[item_failures(batch[2]), OK])
    d.clock.on_sleep = lambda s: setattr(d.lease, "live", False)
    assert d.run(batch) is False
    assert d.lease.positions == {TP0: 2} and len(d.invoker.calls) == 1


def test_expired_records_of_a_revoked_batch_are_not_committed() -> None:
    destination = FakeDestination(fail=-1)
    d = Driven(RetryPolicy(maximum_record_age_seconds=60, has_destination=True), destination=destination)
    d.clock.on_sleep = lambda s: setattr(d.lease, "live", False)
    assert d.run([record(0, timestamp=NOW_MS - 61_000), record(1)]) is False
    assert d.invoker.calls == [] and d.lease.positions == {}


def test_pending_is_the_lowest_unfinished_offset_per_partition() -> None:
    a, b = records(3, start=4), records(2, partition=1, start=9)
    assert pending(a[1:], [Attempt(tuple(a[:1])), Attempt(tuple(b))]) == {TP0: 4, ("orders", 1): 9}
    assert pending((), []) == {}


def test_the_system_clock_sleeps_until_stopped() -> None:
    stop = threading.Event()
    clock = SystemClock(stop)
    stop.set()
    before = clock.monotonic()
    clock.sleep(30)  # returns at once: the runner is stopping
    assert clock.monotonic() - before < 5
    assert abs(clock.time_ms() - SystemClock().time_ms()) < 5000



def test_records_expiring_out_of_offset_order_are_not_committed_past_a_fresh_one() -> None:
    # timestamps are the producer's: a later offset may be older than an earlier one
    destination = FakeDestination()
    d = Driven(RetryPolicy(maximum_record_age_seconds=60, has_destination=True), destination=destination)
    committed_at_invoke: list[dict[tuple[str, int], int]] = []
    d.invoker.before = lambda n: committed_at_invoke.append(dict(d.lease.positions))
    assert d.run([record(0), record(1, timestamp=NOW_MS - 61_000), record(2)])
    assert [r.offset for r in destination.sent[0][0]] == [1]
    assert d.invoker.calls == [[0, 2]]
    assert committed_at_invoke == [{TP0: 0}]  # record 0 is still pending when record 1 is sent
    assert d.lease.positions == {TP0: 3}
