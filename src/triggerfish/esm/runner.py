"""Runs one event source mapping: set up, poll, batch per partition, invoke, commit.

Threads: one poll thread owns the Kafka consumer (polling, rebalances, commits); each partition
with a batch ready gets a task on a thread pool sized by the function's concurrency, so partitions
run concurrently while each partition has at most one batch in flight, in offset order.

    poll -> filter -> PartitionBuffer -> (ready) -> _process(batch) -> Committer -> commit (poll thread)

``_setup`` is everything before the first poll (credentials, secrets, broker checks); ``_process``
is the one place that decides what happens after an invoke (retry policy, bisect, partial batch,
destinations — ``esm/retry.py``); ``_discard`` is where records given up on go.
Offsets are committed only after success; a revoked partition's batch either finishes before the
revoke completes (and is committed) or is abandoned uncommitted.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from triggerfish.checks import Check
from triggerfish.diagnosis import Diagnosis
from triggerfish.errors import ConfigError, SetupError, TriggerfishError
from triggerfish.esm import auth, problems, stages
from triggerfish.esm.batcher import Cut, PartitionBuffer
from triggerfish.esm.committer import Committer
from triggerfish.esm.config import MAX_PAYLOAD_BYTES, MappingConfig
from triggerfish.esm.consumer import KafkaSource, consumer_settings
from triggerfish.esm.destinations import (
    DESTINATION_UNREACHABLE,
    Destination,
    DestinationError,
    Source,
    destination_of,
    failure_for,
    open_destination,
)
from triggerfish.esm.event import EventBuilder, Record
from triggerfish.esm.invoker import Invoker
from triggerfish.esm.metrics import MappingMetrics
from triggerfish.esm.retry import (
    MAXIMUM_PAYLOAD_SIZE_EXCEEDED,
    RECORD_AGE_EXCEEDED,
    Attempt,
    Outcome,
    RetryPolicy,
    commit_positions,
    retry_delay,
)
from triggerfish.esm.state import ENABLED, ENABLING, USER_INITIATED, MappingStatus
from triggerfish.functions.runtime import FunctionRuntime

log = logging.getLogger("triggerfish.esm")

TP = tuple[str, int]
POLL_INTERVAL_S = 0.1
STATUS_INTERVAL_S = 1.0
SETUP_BACKOFF_MAX_S = 60.0
#: How long a revoke waits for a revoked partition's in-flight batch before abandoning it.
REVOKE_WAIT_MAX_S = 30.0
COMMIT_INTERVAL_S = 0.1
COMMIT_STUCK_S = 10.0


@dataclass
class _Partition:
    tp: TP
    buffer: PartitionBuffer
    generation: int
    #: Next offset after the last record seen (filtered ones included); -1 before the first.
    position: int = -1
    in_flight: bool = False
    revoking: bool = False
    paused: bool = False
    done: threading.Condition = field(default_factory=lambda: threading.Condition())


class MappingRunner:
    """One mapping's consumer and batches. ``start()`` returns at once; ``stop()`` is graceful."""

    def __init__(
        self,
        mapping: MappingConfig,
        runtime: FunctionRuntime,
        status: MappingStatus,
        *,
        save_status: Callable[[], None] | None = None,
    ) -> None:
        self.mapping = mapping
        self.runtime = runtime
        self.status = status
        self._save_status = save_status or (lambda: None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._parts: dict[TP, _Partition] = {}
        self._generation = 0
        self.metrics = MappingMetrics(mapping.uuid or "", mapping.function)
        self._committer = Committer(self.metrics.committed)
        self._policy = RetryPolicy.for_mapping(mapping)
        self._filter = self._compile_filter()
        self._pool: ThreadPoolExecutor | None = None
        self._source: KafkaSource | None = None
        self._builder: EventBuilder | None = None
        self._invoker: Invoker | None = None
        self._destination: Destination | None = None
        self._client_config: dict[str, Any] = {}
        self.bootstrap_servers: list[str] = list(mapping.bootstrap_servers)
        self.error: BaseException | None = None
        self._commit_in_flight = False
        self._last_commit = 0.0
        self.pauses = 0
        self._auth: auth.Auth | None = None
        self._resetup = threading.Event()  # set by a login failure while polling
        self._started = time.monotonic()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=f"esm-{self.mapping.uuid}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop polling, finish in-flight batches, commit, leave the group. True if done in time."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _main(self) -> None:
        try:
            config = self._setup()
            while config is not None:
                self._consume(config)
                if self._stop.is_set() or not self._resetup.is_set():
                    break
                # A login failed while polling (rotated secret, revoked certificate): librdkafka would retry
                # the stale credentials forever; the setup stages read the secrets again.
                self._resetup.clear()
                if self._pool is not None:
                    self._pool.shutdown(wait=True)
                    self._pool = None
                log.warning("mapping %s: login failed while polling; running setup again", self.mapping.uuid)
                config = self._setup()
        except BaseException as exc:  # noqa: BLE001 - a mapping's failure must not end the engine
            self.error = exc
            log.exception("mapping %s stopped on an unexpected error", self.mapping.uuid)
            self.status.set_problem(Diagnosis(problems.INTERNAL, f"{type(exc).__name__}: {exc}", "see the engine log"))
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._save_status()

    # -- setup (before the first poll) ---------------------------------------------------------
    def _setup(self) -> dict[str, Any] | None:
        """Run the setup stages (``esm/stages.py``) until they all pass; return the librdkafka settings.

        On a failure the status shows Lambda's PROBLEM text, the stop code as StateTransitionReason,
        the failed stage's detail and fix, and every stage's result; setup is retried with capped
        exponential backoff, so fixing the cause (an ACL, a secret) is enough: no restart.
        Returns None when stopped before setup succeeded.
        """
        delay = 1.0
        while not self._stop.is_set():
            problem: Diagnosis | None
            try:
                results, resolved = stages.check_mapping(self.mapping)
            except (ConfigError, TriggerfishError) as exc:
                results, resolved = [], None
                problem = self._problem_of(exc)
            except Exception as exc:  # noqa: BLE001 - a surprise in a check must not end the retries
                log.exception("mapping %s: setup check failed unexpectedly", self.mapping.uuid)
                results, resolved = [], None
                problem = Diagnosis(problems.INTERNAL, f"{type(exc).__name__}: {exc}", "see the engine log", stage="setup")
            else:
                problem = stages.setup_problem(results)
            self.status.set_stages([r.stage_dict() for r in results])
            if self._stop.is_set():
                return None
            if problem is None and resolved is not None:
                self._auth = resolved
                self._started = time.monotonic()  # first_poll / first_invoke durations count from here
                self.bootstrap_servers = list(resolved.bootstrap)
                self.status.set_state(ENABLED, USER_INITIATED, problem=None)
                self._save_status()
                return dict(resolved.config)
            assert problem is not None
            log.error("mapping %s: %s [%s] %s; fix: %s", self.mapping.uuid, problem.problem, problem.stage,
                      problem.detail, problem.fix)
            # one step: a re-setup after a login failure must not show Enabled with the new PROBLEM
            self.status.set_state(ENABLING, problems.reason_for(problem.problem), problem=problem)
            self._save_status()
            if self._stop.wait(delay):
                return None
            delay = min(delay * 2, SETUP_BACKOFF_MAX_S)
        return None

    def _stage_once(self, stage: str, ok: bool, detail: str, problem: Diagnosis | None = None) -> None:
        """Record ``first_poll`` / ``first_invoke`` (after the checked stages) the first time they happen."""
        if any(r.get("stage") == stage for r in self.status.stages):
            return
        record = Check.of(stage, self.mapping.function if stage == "first_invoke" else self.mapping.group_id,
                          "ok" if ok else "fail", problem.problem if problem else "",
                          detail, problem.fix if problem else "",
                          duration_ms=round((time.monotonic() - self._started) * 1000, 1))
        self.status.set_stages([*self.status.stages, record.stage_dict()])

    @staticmethod
    def _problem_of(exc: BaseException) -> Diagnosis:
        if isinstance(exc, SetupError):
            return exc.diagnosis
        if isinstance(exc, ConfigError):
            return Diagnosis(problems.CONNECTION_ERROR, str(exc), "fix the mapping's configuration", stage="config")
        return Diagnosis(problems.CONNECTION_ERROR, str(exc), "", stage="setup")

    # -- the poll loop -------------------------------------------------------------------------
    def _consume(self, client_config: dict[str, Any]) -> None:
        mapping = self.mapping
        self._client_config = client_config
        self._builder = EventBuilder.for_mapping(mapping, self.bootstrap_servers)
        target = destination_of(mapping)
        self._destination = open_destination(target, client_config) if target else None
        self._invoker = Invoker(self.runtime, mapping.function, self._builder,
                                parse_response=self._policy.report_batch_item_failures)
        workers = max(1, self.runtime.concurrency_of(mapping.function))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"esm-{mapping.uuid[:8]}")
        settings = consumer_settings(client_config, mapping, mapping.group_id,
                                     f"triggerfish-{mapping.uuid}-{socket.gethostname()}-{os.getpid()}")
        self.status.host = f"{socket.gethostname()}:{os.getpid()}"
        source = self._source = KafkaSource(settings, mapping, on_assign=self._assigned, on_revoke=self._revoked,
                                            on_commit=self._committed, on_error=self._client_error)
        max_records = min(max(mapping.batch_size, 500), 10000)
        last_status = 0.0
        try:
            while not self._stop.is_set() and not self._resetup.is_set():
                messages = source.poll(max_records, self._poll_timeout())
                now = time.monotonic()
                if messages:
                    self._accept(messages, now)
                self._dispatch(now)
                self._commit(sync=False)
                self._flow_control()
                if now - last_status >= STATUS_INTERVAL_S:
                    self._refresh_status()
                    last_status = now
            self._drain()
            self._commit(sync=True)
        finally:
            self._refresh_status()
            source.close()
            self._source = None
            if self._destination is not None:
                self._destination.close()

    def _poll_timeout(self) -> float:
        now = time.monotonic()
        timeout = POLL_INTERVAL_S
        with self._lock:
            for p in self._parts.values():
                if not p.in_flight and p.buffer.records:
                    deadline = p.buffer.deadline()
                    if deadline is not None:
                        timeout = min(timeout, max(0.0, deadline - now))
        return timeout

    def _accept(self, messages: Sequence[Any], now: float) -> None:
        accept = self._filter
        from_message = Record.from_message  # computes each record's JSON size too
        # Decode and encode outside the lock: batches of other partitions keep flowing meanwhile.
        records: list[Record] = []
        filtered = 0
        if accept is None:
            records = [from_message(msg) for msg in messages if msg.error() is None]
            if len(records) < len(messages):
                for msg in messages:
                    err = msg.error()
                    if err is not None:
                        self._client_error(err)
        else:
            for msg in messages:
                err = msg.error()
                if err is not None:
                    self._client_error(err)
                    continue
                if not accept(msg.value()):
                    # filtered out: only its offset matters, committed with the records around it
                    records.append(Record(msg.topic(), msg.partition(), msg.offset(), 0, "", None, None))
                    records[-1].encoded = b"-"
                    filtered += 1
                    continue
                records.append(from_message(msg))
        self.metrics.polled(len(records), filtered)
        with self._lock:
            p: _Partition | None = None
            topic, partition = None, -1
            for record in records:
                if record.partition != partition or record.topic != topic:  # a poll holds runs per partition
                    topic, partition = record.topic, record.partition
                    p = self._parts.get((topic, partition))
                if p is None or p.revoking or record.offset < p.position:
                    continue  # not ours (any more), or already buffered before a pause
                if p.position < 0:
                    self._committer.start(p.tp, record.offset)  # CommittedEventCount's base
                p.position = record.offset + 1
                if record.encoded != b"-":
                    p.buffer.add(record, now)

    def _dispatch(self, now: float) -> None:
        if self._stop.is_set():
            return
        with self._lock:
            for p in self._parts.values():
                if p.in_flight or p.revoking:
                    continue
                if p.buffer.ready(now):
                    p.in_flight = True
                    assert self._pool is not None
                    self._pool.submit(self._drive, p, p.generation)
                elif not p.buffer.records and p.position > self._committer.position(p.tp):
                    # Everything since the last batch was filtered out: nothing to invoke, commit past it.
                    self._committer.advance(p.tp, p.position)

    def _drive(self, p: _Partition, generation: int) -> None:
        """Run batches of one partition back to back while they are ready (in a pool thread)."""
        def current() -> bool:
            return p.generation == generation and not p.revoking and not self._stop.is_set()

        try:
            while True:
                with self._lock:
                    now = time.monotonic()
                    if not current() or not p.buffer.ready(now):
                        return
                    cut = p.buffer.take(now)
                    commit_to = cut.records[-1].offset + 1
                    if not p.buffer.records:
                        commit_to = max(commit_to, p.position)
                done = self._process(cut, current)
                with self._lock:
                    if not done or p.generation != generation:
                        return
                    self._committer.advance(p.tp, commit_to)
        except BaseException:  # noqa: BLE001
            log.exception("mapping %s: batch processing failed", self.mapping.uuid)
        finally:
            with p.done:
                p.in_flight = False
                p.done.notify_all()

    # -- what happens to a batch ---------------------------------------------------------------
    def _process(self, cut: Cut, current: Callable[[], bool]) -> bool:
        """Invoke until the batch is done; True = commit it, False = abandoned (revoked/stopping).

        The retry policy (``RetryPolicy``) decides after each invoke: success, retry with backoff,
        bisect, partial-batch resume, or discard to the on-failure destination.
        """
        if cut.oversized:
            r = cut.records[0]
            return self._discard(cut.records, MAXIMUM_PAYLOAD_SIZE_EXCEEDED,
                                 f"record {r.topic}-{r.partition}@{r.offset} is {r.json_size()} bytes as JSON; "
                                 f"an invoke payload holds at most {MAX_PAYLOAD_BYTES}", current)
        assert self._invoker is not None
        queue: deque[Attempt[Record]] = deque([Attempt(tuple(cut.records))])
        last: tuple[Outcome, Any] | None = None
        while queue:
            attempt = queue.popleft()
            attempt, expired = self._policy.split_expired(attempt, int(time.time() * 1000))
            if expired and not self._discard(expired, RECORD_AGE_EXCEEDED, "older than MaximumRecordAgeInSeconds",
                                             current, attempt.invokes, last, _pending(attempt.records, queue)):
                return False
            if not attempt.records:
                continue
            if attempt.retries and self._stop.wait(retry_delay(attempt.retries)):
                return False
            if not current():
                return False
            outcome, result = last = self._invoker.invoke(attempt.records)
            if outcome.failed:
                d = problems.function_failed(self.mapping.function, str(outcome.error_type), str(outcome.error_message))
                failure = d.at("invoke")
                self.status.failed_invoke(failure)
                self._stage_once("first_invoke", False, failure.detail, failure)
            else:
                self.status.ok(len(attempt.records))
                self._stage_once("first_invoke", True, f"{len(attempt.records)} record(s) OK")
            plan = self._policy.after_invoke(attempt, outcome)
            self.metrics.invoked(len(attempt.records), failed=len(plan.succeeded) < len(attempt.records),
                                 error=outcome.failed)
            pending = _pending((), [*plan.next, *queue])
            if plan.succeeded:
                # e.g. a partial batch response: commit up to the first failed record while it is retried
                self._advance(plan.succeeded, current, pending)
            if plan.discard and not self._discard(plan.discard, plan.condition or "", plan.reason, current,
                                                  plan.invoke_count, last, pending):
                return False
            queue.extendleft(reversed(plan.next))
        return True

    def _advance(self, records: Sequence[Record], current: Callable[[], bool], pending: dict[TP, int]) -> None:
        """Commit past finished records of a batch still in progress, never past a pending one."""
        with self._lock:
            if current():
                for tp, offset in commit_positions(records).items():
                    self._committer.advance(tp, min(offset, pending.get(tp, offset)))

    def _discard(
        self,
        records: Sequence[Record],
        condition: str,
        reason: str,
        current: Callable[[], bool],
        invoke_count: int = 0,
        last: tuple[Outcome, Any] | None = None,
        pending: dict[TP, int] | None = None,
    ) -> bool:
        """Records given up on (retries exhausted, too old, too large) go to the on-failure destination
        (without one they are dropped) and are then committed past.

        An unreachable destination is retried with backoff and nothing is committed meanwhile;
        False = the batch was abandoned (revoked/stopping) before the destination took it.
        """
        first, end = records[0], records[-1]
        span = f"{first.topic}-{first.partition} offsets {first.offset}..{end.offset} ({len(records)} records)"
        if self._destination is None:
            log.error("mapping %s: %s: %s skipped: %s", self.mapping.uuid, condition, span, reason)
            self.status.set_problem(Diagnosis(problems.FUNCTION_CALL if condition != MAXIMUM_PAYLOAD_SIZE_EXCEEDED else
                                              "PROBLEM: Record too large for the invoke payload.",
                                              f"{condition}: {reason}", "see the engine log for the skipped offsets",
                                              stage="invoke"))
            self.metrics.dropped(len(records))
            self._advance(records, current, pending or {})
            return True
        assert self._builder is not None
        failure = failure_for(condition, self._function_arn(), invoke_count, last)
        source = Source(",".join(self.bootstrap_servers), self.mapping.event_source_arn, self.mapping.uuid or "")
        event = self._builder.build(records)
        tries = 0
        while True:
            try:
                self._destination.send(records, failure, source, event)
            except DestinationError as exc:
                tries += 1
                self.metrics.destination_error()
                log.error("mapping %s: %s: %s not committed, retrying: %s", self.mapping.uuid, condition, span, exc)
                self.status.set_problem(Diagnosis(DESTINATION_UNREACHABLE, str(exc),
                                                  f"make {self._destination.target} reachable and writable; the "
                                                  "records wait uncommitted until it takes them", stage="destination"))
                if self._stop.wait(retry_delay(tries)) or not current():
                    return False
                continue
            log.warning("mapping %s: %s: %s sent to %s: %s", self.mapping.uuid, condition, span,
                        self._destination.target, reason)
            if tries:
                self.status.set_problem(None)
            self.metrics.destination_delivered(len(records))
            self._advance(records, current, pending or {})
            return True

    def _function_arn(self) -> str:  # the on-failure record's functionArn
        name = self.mapping.function_name
        if name.startswith("arn:"):
            return name
        if self.mapping.function in self.runtime:
            return self.runtime.get(self.mapping.function).arn()
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.mapping.function}"

    # -- rebalances ----------------------------------------------------------------------------
    def _assigned(self, tps: list[TP], committed: dict[TP, int]) -> None:
        assert self._builder is not None
        with self._lock:
            for tp in tps:
                self._generation += 1
                envelope = self._builder.envelope_size(*tp)
                self._parts[tp] = _Partition(
                    tp, PartitionBuffer(self.mapping.batch_size, self.mapping.window_seconds, envelope), self._generation
                )
                ps = self.status.partition(*tp)
                ps.assigned = True
                ps.committed = committed.get(tp) if committed.get(tp, -1) >= 0 else None
            self._committer.own(tps, committed)
        log.info("mapping %s: assigned %s", self.mapping.uuid, ", ".join(f"{t}-{p}" for t, p in tps))
        self._stage_once("first_poll", True, f"joined group {self.mapping.group_id}; assigned {len(tps)} partition(s)")

    def _revoked(self, tps: list[TP]) -> None:
        with self._lock:
            parts = [self._parts[tp] for tp in tps if tp in self._parts]
            for p in parts:
                p.revoking = True
        deadline = time.monotonic() + min(REVOKE_WAIT_MAX_S, self.runtime.get(self.mapping.function).timeout + 5) \
            if self.mapping.function in self.runtime else time.monotonic()
        for p in parts:
            with p.done:
                while p.in_flight and time.monotonic() < deadline:
                    p.done.wait(0.1)
        # Commit what finished, for these partitions only, before another member takes them.
        offsets = {tp: off for tp, off in self._committer.take().items() if tp in tps}
        if offsets and self._source is not None:
            try:
                self._source.commit(offsets, asynchronous=False)
                for tp, off in offsets.items():
                    self._committer.confirm(tp, off)
            except Exception as exc:  # noqa: BLE001 - the next owner re-delivers (at-least-once)
                self.metrics.commit_error()
                log.warning("mapping %s: commit on revoke failed: %s", self.mapping.uuid, exc)
        with self._lock:
            for p in parts:
                p.generation = -1  # an abandoned batch can no longer commit
                del self._parts[p.tp]
                ps = self.status.partition(*p.tp)
                ps.assigned = False
            self._committer.forget(tps)
        if tps:
            log.info("mapping %s: revoked %s", self.mapping.uuid, ", ".join(f"{t}-{p}" for t, p in tps))

    # -- commits, flow control, status ---------------------------------------------------------
    def _commit(self, *, sync: bool) -> None:
        if self._source is None:
            return
        now = time.monotonic()
        if not sync and (self._commit_in_flight or now - self._last_commit < COMMIT_INTERVAL_S):
            # One asynchronous commit at a time, at most every COMMIT_INTERVAL_S: a commit per batch
            # at thousands of batches a second would queue heartbeats behind OffsetCommits.
            if not self._commit_in_flight or now - self._last_commit < COMMIT_STUCK_S:
                return
        offsets = self._committer.take()
        if not offsets:
            return
        try:
            if sync:
                self._source.commit(offsets, asynchronous=False)
                for tp, off in offsets.items():
                    self._committer.confirm(tp, off)
            else:
                self._commit_in_flight = True
                self._last_commit = now
                self._source.commit(offsets, asynchronous=True)
        except Exception as exc:  # noqa: BLE001 - retried on the next loop
            self._commit_in_flight = False
            self.metrics.commit_error()
            log.warning("mapping %s: commit failed: %s", self.mapping.uuid, exc)

    def _committed(self, err: Any, partitions: list[Any]) -> None:
        self._commit_in_flight = False
        if err is not None:
            if getattr(err, "name", lambda: "")() != "_NO_OFFSET":  # nothing to commit is no error
                self.metrics.commit_error()
            # During a rebalance the broker refuses commits of the old generation; the offsets stay
            # pending and are committed again on the next loop (or on revoke).
            rebalancing = getattr(err, "name", lambda: "")() in ("ILLEGAL_GENERATION", "REBALANCE_IN_PROGRESS",
                                                                 "UNKNOWN_MEMBER_ID", "_NO_OFFSET")
            (log.info if rebalancing else log.warning)("mapping %s: commit failed: %s", self.mapping.uuid, err)
            return
        for tp in partitions:
            if tp.error is None and tp.offset >= 0:
                self._committer.confirm((tp.topic, tp.partition), tp.offset)

    def _client_error(self, err: Any) -> None:
        try:
            name, text, fatal = err.name(), err.str(), err.fatal()
        except AttributeError:
            return
        self.metrics.polling_error()
        who = self._auth
        diagnosis = problems.from_kafka_error(name, text, target=",".join(self.bootstrap_servers),
                                              topic=self.mapping.topic, group=self.mapping.group_id,
                                              principal=who.principal if who else "",
                                              mechanism=who.mechanism if who else "", user=who.user if who else "")
        if diagnosis is not None:
            self.status.set_problem(diagnosis.at("poll"))
            if diagnosis.problem in (problems.SASL_AUTHENTICATION, problems.TLS_AUTHENTICATION):
                self._resetup.set()
        if diagnosis is not None or fatal:
            log.error("mapping %s: %s: %s", self.mapping.uuid, name, text)
        else:
            log.debug("mapping %s: %s: %s", self.mapping.uuid, name, text)

    def _flow_control(self) -> None:
        """Pause partitions whose backlog is large (a batch retrying, a slow function); resume when drained."""
        if self._source is None:
            return
        # Pause above 8 batches; resume below 2, so full batches are still buffered while fetching restarts
        # (a pause drops what librdkafka prefetched for the partition: pausing often costs throughput).
        high_count, high_bytes = 8 * self.mapping.batch_size, 8 * MAX_PAYLOAD_BYTES
        pause, resume = [], []
        with self._lock:
            for p in self._parts.values():
                big = len(p.buffer) >= high_count or p.buffer.bytes >= high_bytes
                if big and not p.paused:
                    p.paused = True
                    pause.append(p.tp)
                    self.pauses += 1
                elif p.paused and len(p.buffer) < high_count // 4 and p.buffer.bytes < high_bytes // 4:
                    p.paused = False
                    resume.append(p.tp)
        if pause:
            self._source.pause(pause)
        if resume:
            self._source.resume(resume)

    def _drain(self) -> None:
        """Wait for in-flight batches (they finish their current invoke; retries stop)."""
        with self._lock:
            parts = list(self._parts.values())
        for p in parts:
            with p.done:
                while p.in_flight:
                    p.done.wait(0.1)

    def _refresh_status(self) -> None:
        source = self._source
        with self._lock:
            tps = list(self._parts)
        for tp in tps:
            ps = self.status.partition(*tp)
            committed = self._committer.committed(tp)
            if committed is not None:
                ps.committed = committed
            marks = source.watermarks(tp) if source is not None else None
            if marks is not None:
                ps.low_watermark, ps.high_watermark = marks
        self.metrics.lags(self.status.partition(*tp).lag for tp in tps)
        self._save_status()

    # -- filters -------------------------------------------------------------------------------
    def _compile_filter(self) -> Callable[[bytes | None], bool] | None:
        if not self.mapping.filter_criteria:
            return None
        from triggerfish.esm.filter import compile_criteria

        compiled = compile_criteria(self.mapping.filter_criteria)
        return None if compiled is None else compiled.matches


def _pending(records: Sequence[Record], attempts: Sequence[Attempt[Record]]) -> dict[TP, int]:
    """The lowest offset per partition that is not finished yet (commits must stay below it)."""
    low: dict[TP, int] = {}
    for r in [*records, *(r for a in attempts for r in a.records)]:
        tp = (r.topic, r.partition)
        low[tp] = min(low.get(tp, r.offset), r.offset)
    return low
