"""What to do after an invocation fails: Lambda's retry controls for Kafka, as a pure policy.

Fields (Lambda's names): ``MaximumRetryAttempts`` (-1 infinite, 0..10000; retries, not counting
the first attempt; capped at 10 when infinite and an on-failure destination is set),
``MaximumRecordAgeInSeconds`` (-1, 60..604800), ``BisectBatchOnFunctionError`` and
``FunctionResponseTypes: [ReportBatchItemFailures]``.

The defaults (-1, -1, false, none) are Lambda's on-demand behaviour: retry the whole batch until it
succeeds. No I/O and no clock here: callers pass ``now_ms`` and act on the returned ``Plan``
(invoke again, send to the destination, commit).

Splitting a batch in half does not use up a retry (Lambda does not document how the two interact;
this is triggerfish's choice), so a bisecting mapping always narrows a failure down to single
records before it gives up on any of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter, countOf
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from triggerfish.esm.block import Block

if TYPE_CHECKING:
    from triggerfish.esm.config import MappingConfig

RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"
MAXIMUM_PAYLOAD_SIZE_EXCEEDED = "MaximumPayloadSizeExceeded"
_REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
_DESTINATION_RETRY_CAP = 10
_TOPIC, _PARTITION, _OFFSET = attrgetter("topic"), attrgetter("partition"), attrgetter("offset")


class RecordLike(Protocol):
    """What the policy needs to know about a record (the engine's record type has more)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...  # epoch ms; <= 0 when the record has none


R = TypeVar("R", bound=RecordLike)


@dataclass(frozen=True)
class Attempt(Generic[R]):
    """Records to invoke together, with how often they were invoked and retried so far."""

    records: Sequence[R]
    invokes: int = 0
    retries: int = 0


@dataclass(frozen=True)
class Outcome:
    """An invocation's result as the policy sees it.

    ``failed`` is an invoke error (handler error, timeout, crash, throttle); otherwise ``payload``
    is the function's parsed JSON response (consulted for ReportBatchItemFailures).
    """

    failed: bool
    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class Plan(Generic[R]):
    """The decision after one invocation.

    ``succeeded`` may be committed; ``discard`` goes to the on-failure destination (or is dropped
    without one) with ``condition`` and is committed after that; ``next`` runs next, in order.
    """

    succeeded: Sequence[R] = ()
    discard: Sequence[R] = ()
    condition: str | None = None
    invoke_count: int = 0
    next: tuple[Attempt[R], ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class ItemFailures:
    """A parsed partial-batch response: ``first_failed`` maps (topic, partition) to the lowest
    failed offset; ``invalid`` says why the whole batch counts as failed; both empty = success."""

    first_failed: Mapping[tuple[str, int], int] = field(default_factory=dict)
    invalid: str = ""
    #: Every failed record as (topic, partition, offset): Queue mode releases exactly these.
    items: frozenset[tuple[str, int, int]] = frozenset()

    @property
    def ok(self) -> bool:
        return not self.first_failed and not self.invalid


@dataclass(frozen=True)
class RetryPolicy:
    maximum_retry_attempts: int = -1
    maximum_record_age_seconds: int = -1
    bisect_on_error: bool = False
    report_batch_item_failures: bool = False
    has_destination: bool = False

    @classmethod
    def for_mapping(cls, mapping: MappingConfig) -> RetryPolicy:
        """The policy of a mapping's Lambda fields."""
        destination = ((mapping.destination_config or {}).get("OnFailure") or {}).get("Destination") or ""
        return cls(
            maximum_retry_attempts=mapping.maximum_retry_attempts,
            maximum_record_age_seconds=mapping.maximum_record_age_in_seconds,
            bisect_on_error=mapping.bisect_batch_on_function_error,
            report_batch_item_failures=_REPORT_BATCH_ITEM_FAILURES in mapping.function_response_types,
            has_destination=bool(destination),
        )

    @property
    def retry_limit(self) -> int | None:
        """Retries allowed after the first attempt; None = retry forever."""
        if self.maximum_retry_attempts >= 0:
            return self.maximum_retry_attempts
        return _DESTINATION_RETRY_CAP if self.has_destination else None

    def split_expired(self, attempt: Attempt[R], now_ms: int) -> tuple[Attempt[R], tuple[R, ...]]:
        """Take records older than MaximumRecordAgeInSeconds out of an attempt, before invoking it."""
        if self.maximum_record_age_seconds < 0:
            return attempt, ()
        oldest = now_ms - self.maximum_record_age_seconds * 1000
        expired = tuple(r for r in attempt.records if 0 < r.timestamp < oldest)
        if not expired:
            return attempt, ()
        fresh = tuple(r for r in attempt.records if not 0 < r.timestamp < oldest)
        return Attempt(fresh, attempt.invokes, attempt.retries), expired

    def after_invoke(self, attempt: Attempt[R], outcome: Outcome) -> Plan[R]:
        """Decide what happens to an attempt's records after it was invoked once more."""
        invoked = attempt.invokes + 1
        records = attempt.records
        if not outcome.failed:
            if not self.report_batch_item_failures:
                return Plan(succeeded=records, invoke_count=invoked)
            failures = parse_item_failures(outcome.payload, records)
            if failures.ok:
                return Plan(succeeded=records, invoke_count=invoked)
            if not failures.invalid:
                succeeded, remaining = _cut_at(records, failures.first_failed)
                # Resume at the first failed record of each partition; the cut itself plays the
                # part of bisection, so only a retry limit can stop it.
                return self._retry_or_discard(
                    Attempt(remaining, invoked, attempt.retries), succeeded, "partial batch failure"
                )
            reason = failures.invalid
        else:
            reason = f"{outcome.error_type or 'Error'}: {outcome.error_message or ''}".strip(": ")
        if self.bisect_on_error and len(records) > 1:
            half = len(records) // 2
            return Plan(
                invoke_count=invoked,
                next=(Attempt(records[:half], invoked, 0), Attempt(records[half:], invoked, 0)),
                reason=f"bisect after {reason}",
            )
        return self._retry_or_discard(Attempt(records, invoked, attempt.retries), (), reason)

    def _retry_or_discard(self, failed: Attempt[R], succeeded: tuple[R, ...], reason: str) -> Plan[R]:
        limit = self.retry_limit
        if limit is not None and failed.retries >= limit:
            return Plan(
                succeeded=succeeded,
                discard=failed.records,
                condition=RETRY_ATTEMPTS_EXHAUSTED,
                invoke_count=failed.invokes,
                reason=reason,
            )
        return Plan(
            succeeded=succeeded,
            invoke_count=failed.invokes,
            next=(Attempt(failed.records, failed.invokes, failed.retries + 1),),
            reason=reason,
        )


def retry_delay(retries: int) -> float:
    """Seconds to wait before retry number ``retries`` (1-based): short at first, at most 10 s."""
    if retries <= 0:
        return 0.0
    # The exponent is capped: a batch retried forever reaches retry 1100 after three hours, and
    # 0.1 * 2 ** 1100 no longer fits a float.
    return min(0.1 * 2.0 ** min(retries - 1, 16), 10.0)


def parse_item_failures(payload: Any, records: Sequence[RecordLike]) -> ItemFailures:
    """Read ``{"batchItemFailures": [{"itemIdentifier": {"partition": "topic-N", "offset": N}}]}``.

    Empty, null, ``{}`` or an empty list mean success. An identifier that is malformed or names a
    record not in the batch makes the whole batch count as failed, as in Lambda.
    """
    if not isinstance(payload, Mapping):
        return ItemFailures()
    items = payload.get("batchItemFailures")
    if items is None:
        return ItemFailures()
    if not isinstance(items, list):
        return ItemFailures(invalid="batchItemFailures is not a list")
    known = {(f"{r.topic}-{r.partition}", r.offset): (r.topic, r.partition) for r in records}
    first: dict[tuple[str, int], int] = {}
    failed: set[tuple[str, int, int]] = set()
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(ident, Mapping):
            return ItemFailures(invalid=f"batchItemFailures entry without an itemIdentifier object: {item!r}"[:300])
        partition, offset = ident.get("partition"), ident.get("offset")
        if isinstance(offset, str) and offset.strip().isdigit():
            offset = int(offset)
        if not isinstance(partition, str) or isinstance(offset, bool) or not isinstance(offset, int):
            return ItemFailures(invalid=f"malformed itemIdentifier {dict(ident)!r}"[:300])
        tp = known.get((partition, offset))
        if tp is None:
            return ItemFailures(invalid=f"itemIdentifier {partition}@{offset} is not in the batch"[:300])
        first[tp] = min(offset, first.get(tp, offset))
        failed.add((*tp, offset))
    return ItemFailures(first_failed=first, items=frozenset(failed))


def _cut_at(records: Sequence[R], first_failed: Mapping[tuple[str, int], int]) -> tuple[tuple[R, ...], tuple[R, ...]]:
    succeeded: list[R] = []
    remaining: list[R] = []
    for r in records:
        cut = first_failed.get((r.topic, r.partition))
        (remaining if cut is not None and r.offset >= cut else succeeded).append(r)
    return tuple(succeeded), tuple(remaining)


def commit_positions(records: Iterable[RecordLike]) -> dict[tuple[str, int], int]:
    """Kafka's next-offset convention: for each partition, the highest offset seen plus one."""
    if isinstance(records, Block):  # one partition's, in offset order
        return {(records.topic, records.partition): records.offsets[-1] + 1} if len(records) else {}
    if isinstance(records, Sequence) and len(records) == 1:
        (r,) = records
        return {(r.topic, r.partition): r.offset + 1}
    if isinstance(records, Sequence) and records:
        # The usual batch holds one partition: three walks in C (map over attribute getters) instead of a dict
        # update per record.
        t0, p0, n = records[0].topic, records[0].partition, len(records)
        if countOf(map(_PARTITION, records), p0) == n and countOf(map(_TOPIC, records), t0) == n:
            return {(t0, p0): max(map(_OFFSET, records)) + 1}
    positions: dict[tuple[str, int], int] = {}
    for r in records:
        key = (r.topic, r.partition)
        positions[key] = max(positions.get(key, 0), r.offset + 1)
    return positions
