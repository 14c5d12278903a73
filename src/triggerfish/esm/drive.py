"""One batch's life: invoke it until it is done, then say whether it may be committed.

    Attempt -> invoke -> Outcome -> RetryPolicy.after_invoke -> Plan
        succeeded: commit past them (never past a record still pending)
        next:      retry with backoff, a bisected half, or the rest after a partial batch response
        discard:   to the on-failure destination (dropped without one), then commit past them

Records older than MaximumRecordAgeInSeconds are taken out before each attempt; a record too large for
an invoke payload is discarded at once. An unreachable destination is retried with backoff and nothing
is committed meanwhile. The batch is abandoned (``run`` returns False, nothing more committed) as soon
as its ``BatchLease`` is no longer current: the partition was revoked, or the runner is stopping.

Everything with an effect is passed in behind small protocols (the invoker, the destination, status and
metrics sinks, the clock of ``esm/clock.py`` and the lease), so the loop runs in tests without Kafka,
functions or real time.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from triggerfish.diagnosis import Diagnosis
from triggerfish.esm import problems
from triggerfish.esm.batcher import Cut
from triggerfish.esm.clock import Clock
from triggerfish.esm.config import MAX_PAYLOAD_BYTES
from triggerfish.esm.destinations import DESTINATION_UNREACHABLE, Destination, DestinationError, Source, failure_for
from triggerfish.esm.event import Record
from triggerfish.esm.retry import (
    MAXIMUM_PAYLOAD_SIZE_EXCEEDED,
    RECORD_AGE_EXCEEDED,
    Attempt,
    Outcome,
    RetryPolicy,
    commit_positions,
    retry_delay,
)
from triggerfish.functions.runtime import InvokeResult

_log = logging.getLogger("triggerfish.esm")

_TP = tuple[str, int]
#: The last invoke's outcome and the runtime's result (None when the function was not found).
_Last = tuple[Outcome, InvokeResult | None]
TOO_LARGE = "PROBLEM: Record too large for the invoke payload."


class Invoke(Protocol):
    """Invokes the function with one batch (``esm.invoker.Invoker``)."""

    def invoke(self, records: Sequence[Record]) -> _Last: ...


class StatusSink(Protocol):
    """Where LastProcessingResult and the current problem go (``esm.state.MappingStatus``)."""

    def ok(self, records: int) -> None: ...

    def failed_invoke(self, problem: Diagnosis) -> None: ...

    def set_problem(self, problem: Diagnosis | None) -> None: ...


class MetricsSink(Protocol):
    """The record counts Lambda publishes (``esm.metrics.MappingMetrics``)."""

    def invoked(self, records: int, *, failed: bool = False, error: bool = False) -> None: ...

    def dropped(self, records: int) -> None: ...

    def destination_delivered(self, records: int) -> None: ...

    def destination_error(self) -> None: ...


class BatchLease(Protocol):
    """The batch's claim on its partition (``esm.partitions.Lease``)."""

    def current(self) -> bool: ...  # False once revoked or stopping: abandon the batch

    def advance(self, positions: Mapping[_TP, int]) -> None: ...  # commit past these (if still current)


#: Called after each failed invoke and the first successful one with (ok, detail, problem): the runner
#: records the first call as a stage.
_InvokeHook = Callable[[bool, str, Diagnosis | None], None]


@dataclass(frozen=True)
class OnFailure:
    """Where records given up on go, and what their on-failure record names."""

    destination: Destination
    source: Source
    #: The function's ARN when the records are sent (the function may be deployed after the mapping).
    function_arn: Callable[[], str]
    #: The invocation event of the records (the bytes the function is sent).
    event: Callable[[Sequence[Record]], bytes]


class BatchDriver:
    """Runs batches of one mapping through the retry policy (one ``run`` per batch, from any thread)."""

    def __init__(
        self,
        function: str,
        policy: RetryPolicy,
        invoker: Invoke,
        *,
        status: StatusSink,
        metrics: MetricsSink,
        clock: Clock,
        on_failure: OnFailure | None = None,
        on_invoke: _InvokeHook | None = None,
        name: str = "",
        max_payload: int = MAX_PAYLOAD_BYTES,
    ) -> None:
        self.function = function
        self.policy = policy
        self.invoker = invoker
        self.status = status
        self.metrics = metrics
        self.clock = clock
        self.on_failure = on_failure
        self._on_invoke = on_invoke or (lambda ok, detail, problem: None)
        self._ok_reported = False
        self.name = name  # the mapping's UUID, in log lines
        self.max_payload = max_payload

    def run(self, cut: Cut, lease: BatchLease) -> bool:
        """Invoke until the batch is done; True = commit it, False = abandoned (revoked/stopping)."""
        if cut.oversized:
            r = cut.records[0]
            return self.discard(cut.records, MAXIMUM_PAYLOAD_SIZE_EXCEEDED,
                                 f"record {r.topic}-{r.partition}@{r.offset} is {r.json_size()} bytes as JSON; "
                                 f"an invoke payload holds at most {self.max_payload}", lease)
        queue: deque[Attempt[Record]] = deque([Attempt(cut.records)])  # (a block stays one: see esm.block)
        last: _Last | None = None
        while queue:
            attempt = queue.popleft()
            attempt, expired = self.policy.split_expired(attempt, self.clock.time_ms())
            if expired and not self.discard(expired, RECORD_AGE_EXCEEDED, "older than MaximumRecordAgeInSeconds",
                                             lease, attempt.invokes, last, pending(attempt.records, queue)):
                return False
            if not attempt.records:
                continue
            if attempt.retries:
                self.clock.sleep(retry_delay(attempt.retries))
            if not lease.current():
                return False
            outcome, _ = last = self.invoker.invoke(attempt.records)
            self.report(attempt, outcome)
            if not (outcome.failed or queue or self.policy.report_batch_item_failures):
                # what after_invoke would plan: all of it succeeded and nothing else is pending
                self.metrics.invoked(len(attempt.records))
                lease.advance(commit_positions(attempt.records))
                return True
            plan = self.policy.after_invoke(attempt, outcome)
            self.metrics.invoked(len(attempt.records), failed=len(plan.succeeded) < len(attempt.records),
                                 error=outcome.failed)
            waiting = pending((), [*plan.next, *queue])
            if plan.succeeded:
                # e.g. a partial batch response: commit up to the first failed record while it is retried
                _advance(plan.succeeded, lease, waiting)
            if plan.discard and not self.discard(plan.discard, plan.condition or "", plan.reason, lease,
                                                  plan.invoke_count, last, waiting):
                return False
            queue.extendleft(reversed(plan.next))
        return True

    def report(self, attempt: Attempt[Record], outcome: Outcome) -> None:
        """LastProcessingResult and the first-invoke stage after one invoke (the Queue-mode loop reports too)."""
        if outcome.failed:
            d = problems.function_failed(self.function, str(outcome.error_type), str(outcome.error_message))
            failure = d.at("invoke")
            self.status.failed_invoke(failure)
            self._on_invoke(False, failure.detail, failure)
        else:
            self.status.ok(len(attempt.records))
            if not self._ok_reported:  # the hook records the first invoke only: no call (and no text) per batch
                self._ok_reported = True
                self._on_invoke(True, f"{len(attempt.records)} record(s) OK", None)

    def discard(
        self,
        records: Sequence[Record],
        condition: str,
        reason: str,
        lease: BatchLease,
        invoke_count: int = 0,
        last: _Last | None = None,
        waiting: Mapping[_TP, int] | None = None,
    ) -> bool:
        """Records given up on (retries exhausted, too old, too large) go to the on-failure destination
        (without one they are dropped) and are then committed past.

        An unreachable destination is retried with backoff and nothing is committed meanwhile;
        False = the batch was abandoned (revoked/stopping) before the destination took it.
        """
        waiting = waiting or {}
        first, end = records[0], records[-1]
        span = f"{first.topic}-{first.partition} offsets {first.offset}..{end.offset} ({len(records)} records)"
        target = self.on_failure
        if target is None:
            _log.error("mapping %s: %s: %s skipped: %s", self.name, condition, span, reason)
            self.status.set_problem(Diagnosis(problems.FUNCTION_CALL if condition != MAXIMUM_PAYLOAD_SIZE_EXCEEDED
                                              else TOO_LARGE, f"{condition}: {reason}",
                                              "see the engine log for the skipped offsets", stage="invoke"))
            self.metrics.dropped(len(records))
            _advance(records, lease, waiting)
            return True
        destination = target.destination
        failure = failure_for(condition, target.function_arn(), invoke_count, last)
        event = target.event(records)
        tries = 0
        while True:
            try:
                destination.send(records, failure, target.source, event)
            except DestinationError as exc:
                tries += 1
                self.metrics.destination_error()
                _log.error("mapping %s: %s: %s not committed, retrying: %s", self.name, condition, span, exc)
                self.status.set_problem(Diagnosis(DESTINATION_UNREACHABLE, str(exc),
                                                  f"make {destination.target} reachable and writable; the "
                                                  "records wait uncommitted until it takes them", stage="destination"))
                self.clock.sleep(retry_delay(tries))
                if not lease.current():
                    return False
                continue
            _log.warning("mapping %s: %s: %s sent to %s: %s", self.name, condition, span, destination.target, reason)
            if tries:
                self.status.set_problem(None)
            self.metrics.destination_delivered(len(records))
            _advance(records, lease, waiting)
            return True


def _advance(records: Sequence[Record], lease: BatchLease, waiting: Mapping[_TP, int]) -> None:
    """Commit past finished records of a batch still in progress, never past a pending one."""
    lease.advance({tp: min(offset, waiting.get(tp, offset)) for tp, offset in commit_positions(records).items()})


def pending(records: Sequence[Record], attempts: Sequence[Attempt[Record]]) -> dict[_TP, int]:
    """The lowest offset per partition that is not finished yet (commits must stay below it)."""
    low: dict[_TP, int] = {}
    for r in [*records, *(r for a in attempts for r in a.records)]:
        tp = (r.topic, r.partition)
        low[tp] = min(low.get(tp, r.offset), r.offset)
    return low
