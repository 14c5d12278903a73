"""The retry policy: Lambda's MaximumRetryAttempts, record age, bisect and partial-batch responses.

Tests of a whole batch's life run the real loop (``esm/drive.py``'s ``BatchDriver``) with fakes: a
scripted invoker, a destination and a fake clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esm_fakes import CountingMetrics, FakeClock, FakeDestination, FakeLease, ScriptedInvoker, record
from triggerfish.esm.batcher import Cut
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.destinations import Source
from triggerfish.esm.drive import BatchDriver, OnFailure
from triggerfish.esm.event import Record
from triggerfish.esm.retry import (
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    Attempt,
    Outcome,
    RetryPolicy,
    commit_positions,
    parse_item_failures,
    retry_delay,
)
from triggerfish.esm.state import MappingStatus
from triggerfish.validation import InvalidParameterError

NOW = 1_700_000_000_000


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    timestamp: int = NOW


def recs(n: int, partition: int = 0, start: int = 0, topic: str = "orders") -> tuple[Rec, ...]:
    return tuple(Rec(topic, partition, start + i) for i in range(n))


ERROR = Outcome(failed=True, error_type="ValueError", error_message="poison")
OK = Outcome(failed=False, payload=None)


def item_failures(*pairs: tuple[str, int]) -> Outcome:
    return Outcome(failed=False, payload={"batchItemFailures": [
        {"itemIdentifier": {"partition": p, "offset": o}} for p, o in pairs
    ]})


@dataclass
class Trace:
    """What the real loop did to one batch; ``step`` orders invokes, sends and commits."""

    finished: bool = False
    step: int = 0
    invokes: list[tuple[int, list[int], set[int]]] = field(default_factory=list)  # (step, offsets, answered OK)
    sends: list[tuple[int, list[int], str, int]] = field(default_factory=list)  # (step, offsets, condition, invokes)
    commits: list[tuple[int, int]] = field(default_factory=list)  # (step, position)
    sleeps: list[float] = field(default_factory=list)

    def tick(self) -> int:
        self.step += 1
        return self.step


def drive(policy: RetryPolicy, records: tuple[Rec, ...], bad: set[int], partial: bool = False) -> Trace:
    """Run one batch through the real loop: every record in ``bad`` fails each invoke (as an invoke error,
    or with ``partial`` as a batchItemFailures entry)."""
    trace = Trace()

    def answer(attempt: Sequence[Record]) -> Outcome:
        offsets = [r.offset for r in attempt]
        trace.invokes.append((trace.tick(), offsets, set(offsets) - bad))
        failing = [r for r in attempt if r.offset in bad]
        if not failing:
            return OK
        return item_failures(*[(f"{r.topic}-{r.partition}", r.offset) for r in failing]) if partial else ERROR

    lease = FakeLease()
    lease.on_advance = lambda positions: trace.commits.append((trace.tick(), positions[("orders", 0)]))
    destination = FakeDestination()
    destination.on_sent = lambda sent, failure: trace.sends.append(
        (trace.tick(), [r.offset for r in sent], failure.condition, failure.invoke_count))
    clock = FakeClock(wall_ms=NOW)
    driver = BatchDriver("fn", policy, ScriptedInvoker(answer), status=MappingStatus(), metrics=CountingMetrics(),
                         clock=clock, on_failure=OnFailure(destination, Source("b1:9092"), lambda: "arn", lambda rs: b""))
    trace.finished = driver.run(Cut([record(r.offset, r.partition, r.topic, r.timestamp) for r in records]), lease)
    trace.sleeps = clock.sleeps
    return trace


def outcome_of(trace: Trace, records: tuple[Rec, ...]) -> tuple[list[Rec], list[tuple[str, Rec, int]], int]:
    """(records whose last invoke answered them OK and that were not discarded, discarded as
    (condition, record, invokes), invocations)."""
    by_offset = {r.offset: r for r in records}
    discarded = [(condition, by_offset[o], count) for _, offsets, condition, count in trace.sends for o in offsets]
    gone = {r.offset for _, r, _ in discarded}
    last_answer: dict[int, bool] = {}
    for _, offsets, answered_ok in trace.invokes:
        last_answer.update((o, o in answered_ok) for o in offsets)
    ok = [r for r in records if r.offset not in gone and last_answer.get(r.offset)]
    return ok, discarded, len(trace.invokes)


def run(policy: RetryPolicy, records: tuple[Rec, ...], bad: set[int],
        partial: bool = False) -> tuple[list[Rec], list[tuple[str, Rec, int]], int]:
    """Drive a batch through the real loop; returns (finished OK, discarded, invocations)."""
    trace = drive(policy, records, bad, partial)
    assert trace.finished
    return outcome_of(trace, records)


def test_defaults_are_on_demand_retry_forever() -> None:
    policy = RetryPolicy()
    assert policy.retry_limit is None
    attempt: Attempt[Rec] = Attempt(recs(3))
    for n in range(1, 50):
        plan = policy.after_invoke(attempt, ERROR)
        assert not plan.discard and not plan.succeeded
        (attempt,) = plan.next
        assert attempt.records == recs(3) and attempt.invokes == n and attempt.retries == n


def test_retry_limit_counts_retries_not_the_first_attempt() -> None:
    ok, discarded, invocations = run(RetryPolicy(maximum_retry_attempts=2), recs(4), bad={2})
    assert invocations == 3  # first attempt + 2 retries
    assert ok == []
    assert [(c, r.offset, n) for c, r, n in discarded] == [(RETRY_ATTEMPTS_EXHAUSTED, i, 3) for i in range(4)]


def test_zero_retries_discards_after_the_first_failure() -> None:
    _, discarded, invocations = run(RetryPolicy(maximum_retry_attempts=0), recs(2), bad={0})
    assert invocations == 1 and len(discarded) == 2


def test_infinite_retries_with_a_destination_are_capped_at_ten() -> None:
    policy = RetryPolicy(maximum_retry_attempts=-1, has_destination=True)
    assert policy.retry_limit == 10
    _, discarded, invocations = run(policy, recs(1), bad={0})
    assert invocations == 11 and discarded[0][2] == 11
    assert RetryPolicy(maximum_retry_attempts=500, has_destination=True).retry_limit == 500


def test_bisect_isolates_the_poison_record() -> None:
    policy = RetryPolicy(maximum_retry_attempts=1, bisect_on_error=True)
    ok, discarded, _ = run(policy, recs(8), bad={5})
    assert sorted(r.offset for r in ok) == [0, 1, 2, 3, 4, 6, 7]
    assert [(c, r.offset) for c, r, _ in discarded] == [(RETRY_ATTEMPTS_EXHAUSTED, 5)]
    # 8 -> 4+4 -> (4 ok) 2+2 -> 1+1 -> the bad one: first try + 1 retry
    assert discarded[0][2] == 5


def test_bisect_halves_keep_offset_order() -> None:
    plan = RetryPolicy(bisect_on_error=True).after_invoke(Attempt(recs(5)), ERROR)
    first, second = plan.next
    assert [r.offset for r in first.records] == [0, 1]
    assert [r.offset for r in second.records] == [2, 3, 4]
    assert first.invokes == second.invokes == 1 and first.retries == second.retries == 0


def test_partial_batch_commits_up_to_the_first_failure_and_resumes_there() -> None:
    policy = RetryPolicy(report_batch_item_failures=True)
    batch = recs(5) + recs(3, partition=1)
    plan = policy.after_invoke(Attempt(batch), item_failures(("orders-0", 3), ("orders-0", 2)))
    assert [(r.partition, r.offset) for r in plan.succeeded] == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    (retry,) = plan.next
    assert [(r.partition, r.offset) for r in retry.records] == [(0, 2), (0, 3), (0, 4)]
    assert retry.retries == 1
    assert commit_positions(plan.succeeded) == {("orders", 0): 2, ("orders", 1): 3}


def test_partial_batch_with_retries_exhausted_discards_the_rest() -> None:
    ok, discarded, _ = run(RetryPolicy(maximum_retry_attempts=1, report_batch_item_failures=True), recs(5), bad={3},
                           partial=True)
    assert [r.offset for r in ok] == [0, 1, 2]
    assert [r.offset for _, r, _ in discarded] == [3, 4]


def test_invalid_item_identifier_fails_the_whole_batch() -> None:
    policy = RetryPolicy(report_batch_item_failures=True, maximum_retry_attempts=0)
    for payload in (
        {"batchItemFailures": [{"itemIdentifier": {"partition": "orders-0", "offset": 99}}]},
        {"batchItemFailures": [{"itemIdentifier": {"partition": "other-0", "offset": 1}}]},
        {"batchItemFailures": [{"itemIdentifier": {"partition": "orders-0"}}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": "orders-0"},
    ):
        plan = policy.after_invoke(Attempt(recs(3)), Outcome(failed=False, payload=payload))
        assert plan.succeeded == ()
        assert [r.offset for r in plan.discard] == [0, 1, 2], payload


@pytest.mark.parametrize("payload", [None, {}, "", "done", {"batchItemFailures": []}, {"batchItemFailures": None}, [1]])
def test_empty_or_null_responses_mean_success(payload: object) -> None:
    assert parse_item_failures(payload, recs(2)).ok
    plan = RetryPolicy(report_batch_item_failures=True).after_invoke(Attempt(recs(2)), Outcome(False, payload))
    assert plan.succeeded == recs(2) and not plan.next


def test_item_failures_are_ignored_without_report_batch_item_failures() -> None:
    plan = RetryPolicy().after_invoke(Attempt(recs(3)), item_failures(("orders-0", 1)))
    assert plan.succeeded == recs(3)


def test_string_offsets_are_accepted() -> None:
    failures = parse_item_failures({"batchItemFailures": [{"itemIdentifier": {"partition": "a-b-2", "offset": "7"}}]},
                                   [Rec("a-b", 2, 7)])
    assert failures.first_failed == {("a-b", 2): 7}


def test_record_age_splits_expired_records_before_invoking() -> None:
    policy = RetryPolicy(maximum_record_age_seconds=60)
    old = Rec("orders", 0, 0, timestamp=NOW - 61_000)
    fresh = Rec("orders", 0, 1, timestamp=NOW - 59_000)
    untimed = Rec("orders", 0, 2, timestamp=-1)
    attempt, expired = policy.split_expired(Attempt((old, fresh, untimed), invokes=2, retries=1), NOW)
    assert expired == (old,)
    assert attempt.records == (fresh, untimed) and attempt.invokes == 2 and attempt.retries == 1
    assert RetryPolicy().split_expired(Attempt((old,)), NOW) == (Attempt((old,)), ())
    assert RECORD_AGE_EXCEEDED == "RecordAgeExceeded"


def test_policy_reads_the_mapping_fields() -> None:
    mapping = MappingConfig.from_dict({
        "FunctionName": "fn",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
        "Topics": ["orders"],
        "StartingPosition": "TRIM_HORIZON",
        "MaximumRetryAttempts": 3,
        "MaximumRecordAgeInSeconds": 120,
        "BisectBatchOnFunctionError": True,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "DestinationConfig": {"OnFailure": {"Destination": "kafka://orders-dlq"}},
    })
    assert RetryPolicy.for_mapping(mapping) == RetryPolicy(3, 120, True, True, True)


@pytest.mark.parametrize(
    ("field", "value", "text"),
    [
        ("MaximumRetryAttempts", 10001, "Member must have value less than or equal to 10000"),
        ("MaximumRetryAttempts", -2, "Member must have value greater than or equal to -1"),
        ("MaximumRecordAgeInSeconds", 30, "Member must have value greater than or equal to 60"),
        ("MaximumRecordAgeInSeconds", 604801, "Member must have value less than or equal to 604800"),
        ("FunctionResponseTypes", ["Whole"], "Member must satisfy enum value set: [ReportBatchItemFailures]"),
    ],
)
def test_out_of_range_fields_are_rejected_with_lambda_text(field: str, value: object, text: str) -> None:
    body = {
        "FunctionName": "fn",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
        "Topics": ["orders"],
        "StartingPosition": "TRIM_HORIZON",
        field: value,
    }
    with pytest.raises(InvalidParameterError) as info:
        MappingConfig.from_dict(body)
    assert text in info.value.lambda_message
    assert info.value.field.startswith(field)


def test_retry_delay_grows_and_is_bounded() -> None:
    delays = [retry_delay(n) for n in range(0, 12)]
    assert delays[0] == 0 and delays[1] > 0
    assert delays == sorted(delays) and max(delays) == 10.0


def test_retry_delay_survives_a_batch_retried_for_hours() -> None:
    assert retry_delay(1100) == retry_delay(100_000) == 10.0  # 0.1 * 2 ** 1100 does not fit a float


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 24),
    bad=st.sets(st.integers(0, 23), max_size=4),
    old=st.sets(st.integers(0, 23), max_size=3),
    retries=st.integers(0, 3),
    bisect=st.booleans(),
    partial=st.booleans(),
)
def test_every_record_ends_exactly_once_and_bad_ones_never_succeed(
    n: int, bad: set[int], old: set[int], retries: int, bisect: bool, partial: bool
) -> None:
    """The real batch loop (esm/drive.py) with a scripted invoker, a destination and a fake clock;
    records in ``old`` are older than MaximumRecordAgeInSeconds (producer timestamps need not follow offsets)."""
    bad = {b for b in bad if b < n}
    old = {o for o in old if o < n}
    policy = RetryPolicy(maximum_retry_attempts=retries, maximum_record_age_seconds=60 if old else -1,
                         bisect_on_error=bisect, report_batch_item_failures=partial)
    records = tuple(Rec("orders", 0, i, NOW - 61_000 if i in old else NOW) for i in range(n))
    trace = drive(policy, records, bad, partial=partial)
    assert trace.finished
    ok, discarded, invocations = outcome_of(trace, records)
    finished = [r.offset for r in ok] + [r.offset for _, r, _ in discarded]
    assert sorted(finished) == list(range(n))  # nothing lost, nothing twice
    assert not {r.offset for r in ok} & (bad | old)
    expired = {r.offset for c, r, _ in discarded if c == RECORD_AGE_EXCEEDED}
    exhausted = [(r.offset, count) for c, r, count in discarded if c == RETRY_ATTEMPTS_EXHAUSTED]
    assert expired == old and not any(set(offsets) & old for _, offsets, _ in trace.invokes)
    assert {o for o, _ in exhausted} >= bad - old
    assert len(exhausted) + len(expired) == len(discarded)
    assert all(count >= retries + 1 for _, count in exhausted)
    if bisect and not partial:
        assert {o for o, _ in exhausted} == bad - old  # bisect isolates exactly the bad records
    if partial and bad - old:
        first = min(bad - old)
        assert all(o >= first for o, _ in exhausted)
        assert [r.offset for r in ok if r.offset < first] == [o for o in range(first) if o not in old]
    assert invocations <= (retries + 1) * 2 * n
    # a record sent to the destination is never invoked again
    for step, offsets, _, _ in trace.sends:
        assert not any(set(offsets) & set(later) for s, later, _ in trace.invokes if s > step)
    # commits of a batch in progress only move forward and never pass a record that is not finished: each
    # record below a commit was sent before it, or answered OK by its last invoke and never invoked again
    # (``finished`` tells the caller to commit past the whole batch)
    positions = [p for _, p in trace.commits]
    assert positions == sorted(positions) and all(p <= n for p in positions)
    for step, position in trace.commits:
        for offset in range(position):
            if any(offset in sent and s < step for s, sent, _, _ in trace.sends):
                continue
            before = [answered for s, offsets, answered in trace.invokes if s < step and offset in offsets]
            assert before and offset in before[-1], (offset, step)
            assert not any(offset in offsets for s, offsets, _ in trace.invokes if s > step), (offset, step)
    # retries wait with backoff (no real time passes: the clock is fake); bisecting does not wait
    assert set(trace.sleeps) <= {retry_delay(k) for k in range(1, retries + 1)}
