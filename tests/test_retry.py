"""The retry policy: Lambda's MaximumRetryAttempts, record age, bisect and partial-batch responses."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triggerfish.esm.config import MappingConfig
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


def run(policy: RetryPolicy, records: tuple[Rec, ...], bad: set[int], partial: bool = False) -> tuple[list, list, int]:
    """Drive the policy like the engine does; returns (delivered-ok, discarded, invocations)."""
    queue = deque([Attempt(records)])
    ok: list[Rec] = []
    discarded: list[tuple[str, Rec, int]] = []
    invocations = 0
    while queue:
        attempt = queue.popleft()
        invocations += 1
        failing = [r for r in attempt.records if r.offset in bad]
        if not failing:
            outcome = OK
        elif partial:
            outcome = item_failures(*[(f"{r.topic}-{r.partition}", r.offset) for r in failing])
        else:
            outcome = ERROR
        plan = policy.after_invoke(attempt, outcome)
        ok.extend(plan.succeeded)
        discarded.extend((plan.condition, r, plan.invoke_count) for r in plan.discard)
        queue.extendleft(reversed(plan.next))
    return ok, discarded, invocations


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


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 24),
    bad=st.sets(st.integers(0, 23), max_size=4),
    retries=st.integers(0, 3),
    bisect=st.booleans(),
    partial=st.booleans(),
)
def test_every_record_ends_exactly_once_and_bad_ones_never_succeed(
    n: int, bad: set[int], retries: int, bisect: bool, partial: bool
) -> None:
    bad = {b for b in bad if b < n}
    policy = RetryPolicy(maximum_retry_attempts=retries, bisect_on_error=bisect, report_batch_item_failures=partial)
    ok, discarded, invocations = run(policy, recs(n), bad, partial=partial)
    finished = [r.offset for r in ok] + [r.offset for _, r, _ in discarded]
    assert sorted(finished) == list(range(n))  # nothing lost, nothing twice
    assert not {r.offset for r in ok} & bad
    assert {r.offset for _, r, _ in discarded} >= bad
    assert all(c == RETRY_ATTEMPTS_EXHAUSTED and count >= retries + 1 for c, _, count in discarded)
    if bisect and not partial:
        assert {r.offset for _, r, _ in discarded} == bad  # bisect isolates exactly the bad records
    if partial and bad:
        assert all(r.offset >= min(bad) for _, r, _ in discarded)
        assert sorted(r.offset for r in ok)[: min(bad)] == list(range(min(bad)))
    assert invocations <= (retries + 1) * 2 * n
