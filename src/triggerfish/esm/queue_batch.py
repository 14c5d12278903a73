"""One Queue-mode batch's life: invoke, retry in the engine, then a verdict per record for the share group.

    invoke -> OK: ACCEPT
           -> the failed records (the whole batch on a function error or an invalid partial response;
              only the reported items with ReportBatchItemFailures): retried here up to
              MaximumRetryAttempts (0 by default in Queue mode), halved first with BisectBatchOnFunctionError
           -> still failing: RELEASE, so the broker delivers them again, to any member of the share group;
              at a record's last delivery (its delivery count reached the group's limit) it goes to the
              on-failure destination (dropped without one) and is REJECTed: archived, as the broker
              would archive it, but not lost to the destination.

Records older than MaximumRecordAgeInSeconds and a record too large for an invoke payload go to the
destination at once and are REJECTed. A record the destination did not take before the runner stopped
is RELEASEd. Invoking, status, metrics and the destination are the stream path's ``BatchDriver``'s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence

from confluent_kafka import AcknowledgeType

from triggerfish.esm.batcher import Cut, PartitionBuffer
from triggerfish.esm.config import MAX_PAYLOAD_BYTES
from triggerfish.esm.drive import BatchDriver
from triggerfish.esm.event import EventBuilder, Record
from triggerfish.esm.retry import (
    MAXIMUM_PAYLOAD_SIZE_EXCEEDED,
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    Attempt,
    Outcome,
    RetryPolicy,
    parse_item_failures,
    retry_delay,
)
from triggerfish.esm.share import ACCEPT, REJECT, RELEASE, Coord
from triggerfish.functions.runtime import InvokeResult

_Last = tuple[Outcome, InvokeResult | None]


def coord(r: Record) -> Coord:
    return r.topic, r.partition, r.offset


def cut_batches(records: Sequence[Record], batch_size: int, builder: EventBuilder,
                max_bytes: int = MAX_PAYLOAD_BYTES) -> list[Cut]:
    """One poll's records (any partitions) in batches of at most ``batch_size`` records and ``max_bytes`` of event."""
    if not records:
        return []
    ordered = sorted(records, key=coord)  # each partition's records together and in order in the event
    # The envelope as if every partition of the poll were in each batch: never smaller than the real one.
    keys = {(r.topic, r.partition) for r in ordered}
    head = builder.size([])
    envelope = head + sum(builder.envelope_size(t, p) - head + 1 for t, p in keys) - 1
    buffer = PartitionBuffer(batch_size, 0.0, envelope, max_bytes)
    for r in ordered:
        buffer.add(r, 0.0)
    cuts = []
    while len(buffer):
        cuts.append(buffer.take(0.0))
    return cuts


class _Lease:
    """The batch's claim: current until the runner stops (a share group has no revokes); nothing to commit."""

    def __init__(self, stopping: Callable[[], bool]) -> None:
        self._stopping = stopping

    def current(self) -> bool:
        return not self._stopping()

    def advance(self, positions: Mapping[tuple[str, int], int]) -> None:
        pass  # acknowledged per record by the verdicts instead


class QueueBatch:
    """Runs Queue-mode batches of one mapping (one ``run`` per batch, from any thread)."""

    def __init__(self, driver: BatchDriver, delivery_limit: int, stopping: Callable[[], bool]) -> None:
        self.driver = driver
        self.delivery_limit = delivery_limit
        self._stopping = stopping

    def run(self, cut: Cut, deliveries: Mapping[Coord, int]) -> dict[Coord, AcknowledgeType]:
        """Invoke until the batch is done; how the broker is to treat each record (``deliveries``: each
        record's delivery count, 1 on its first delivery)."""
        driver, policy, lease = self.driver, self.driver.policy, _Lease(self._stopping)
        verdicts: dict[Coord, AcknowledgeType] = {}
        if cut.oversized:
            r = cut.records[0]
            self._give_up(cut.records, MAXIMUM_PAYLOAD_SIZE_EXCEEDED,
                          f"record {r.topic}-{r.partition}@{r.offset} is {r.json_size()} bytes as JSON; an invoke "
                          f"payload holds at most {driver.max_payload}", lease, verdicts)
            return verdicts
        queue: deque[Attempt[Record]] = deque([Attempt(tuple(cut.records))])
        last: _Last | None = None
        while queue and lease.current():
            attempt = queue.popleft()
            attempt, expired = policy.split_expired(attempt, driver.clock.time_ms())
            if expired:
                self._give_up(expired, RECORD_AGE_EXCEEDED, "older than MaximumRecordAgeInSeconds", lease, verdicts,
                              attempt.invokes, last)
            if not attempt.records:
                continue
            if attempt.retries:
                driver.clock.sleep(retry_delay(attempt.retries))
                if not lease.current():
                    break
            outcome, _ = last = driver.invoker.invoke(attempt.records)
            driver.report(attempt, outcome)
            failed, reason = _failed(policy, attempt.records, outcome)
            driver.metrics.invoked(len(attempt.records), failed=bool(failed), error=outcome.failed)
            bad = {coord(r) for r in failed}
            for r in attempt.records:
                if coord(r) not in bad:
                    verdicts[coord(r)] = ACCEPT
            if not failed:
                continue
            invoked = attempt.invokes + 1
            if policy.bisect_on_error and outcome.failed and len(failed) > 1:
                half = len(failed) // 2
                queue.extendleft([Attempt(failed[half:], invoked, 0), Attempt(failed[:half], invoked, 0)])
            elif attempt.retries < (policy.retry_limit or 0):
                queue.appendleft(Attempt(failed, invoked, attempt.retries + 1))
            else:
                for r in failed:
                    verdicts[coord(r)] = RELEASE
                final = tuple(r for r in failed if deliveries.get(coord(r), 1) >= self.delivery_limit)
                if final:
                    self._give_up(final, RETRY_ATTEMPTS_EXHAUSTED,
                                  f"{reason}; delivered {self.delivery_limit} times (the group's delivery limit)",
                                  lease, verdicts, invoked, last)
        for r in cut.records:  # abandoned because the runner stops: back to the group at once
            verdicts.setdefault(coord(r), RELEASE)
        return verdicts

    def _give_up(self, records: Sequence[Record], condition: str, reason: str, lease: _Lease,
                 verdicts: dict[Coord, AcknowledgeType], invoke_count: int = 0, last: _Last | None = None) -> None:
        """To the on-failure destination (dropped without one), then archived; released if the runner
        stopped before the destination took them."""
        done = self.driver.discard(records, condition, reason, lease, invoke_count, last)
        for r in records:
            verdicts[coord(r)] = REJECT if done else RELEASE


def _failed(policy: RetryPolicy, records: Sequence[Record], outcome: Outcome) -> tuple[Sequence[Record], str]:
    """The records of an invoke that failed, and why (none when it succeeded)."""
    if outcome.failed:
        return records, f"{outcome.error_type or 'Error'}: {outcome.error_message or ''}".strip(": ")
    if not policy.report_batch_item_failures:
        return (), ""
    failures = parse_item_failures(outcome.payload, records)
    if failures.ok:
        return (), ""
    if failures.invalid:
        return records, failures.invalid
    return tuple(r for r in records if coord(r) in failures.items), "partial batch failure"
