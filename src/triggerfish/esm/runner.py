"""Runs one event source mapping: set up, poll, batch per partition, invoke, commit.

One poll thread owns the consumer (polling, rebalances, commits); each partition with a batch ready gets
a task on a worker pool sized by the function's concurrency: partitions run concurrently, each with at
most one batch in flight, in offset order.

    poll -> filter -> Partitions.accept -> dispatch (ready) -> BatchDriver.run(batch) -> Committer -> commit

This is the shell that owns the I/O (consumer, worker pool, on-failure destination), each built by a
factory of ``Factories`` (the defaults build the real ones; tests pass fakes). The decisions live in
``esm/setup.py`` (setup stages until they pass), ``esm/partitions.py`` (buffers, dispatch, flow control,
revokes), ``esm/assignment.py`` (the group's assigns and revokes, the partitions' status) and ``esm/drive.py``
(one batch's life: retry policy, bisect, partial batch, destinations); ``esm/wiring.py`` puts them together.
Offsets are committed only after success; a revoked partition's batch either finishes before the
revoke completes (and is committed) or is abandoned uncommitted.
A Queue-mode mapping (ConsumptionMode Queue) runs the share-group loop of ``esm/queue_drive.py`` in place
of the partition loop, with the same setup, batch driver, worker pool and status.
A quiet mapping parks its consumer with the idle poller (``esm/idle_wait.py``); quiet for longer, it closes it
and sleeps until a record waits (``esm/dormancy.py``), then consumes again as after a re-consume.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from triggerfish.diagnosis import Diagnosis
from triggerfish.esm import auth, block, gc_policy, log_level, problems
from triggerfish.esm.assignment import Assignment
from triggerfish.esm.block import Polled
from triggerfish.esm.client_reports import ClientReports
from triggerfish.esm.clock import Clock, SystemClock
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.consumer import KafkaSource, RecordSource, records_of
from triggerfish.esm.destinations import Destination
from triggerfish.esm.dormancy import Dormancy
from triggerfish.esm.drive import BatchDriver
from triggerfish.esm.event import EventBuilder
from triggerfish.esm.factories import Factories, record_filter, thread_pool
from triggerfish.esm.heap import release_free_memory
from triggerfish.esm.idle_wait import IDLE
from triggerfish.esm.metrics import MappingMetrics
from triggerfish.esm.partitions import Lease, Partitions
from triggerfish.esm.queue_drive import QueueHooks, consume_queue
from triggerfish.esm.retry import retry_delay
from triggerfish.esm.schema_records import SchemaRecords
from triggerfish.esm.setup import record_once, set_up
from triggerfish.esm.state import ENABLED, MappingStatus
from triggerfish.esm.wiring import client_id, commits_of, consumer_config, share_config, wire
from triggerfish.functions.runtime import FunctionRuntime

__all__ = ["Factories", "MappingRunner", "thread_pool"]
_log = logging.getLogger("triggerfish.esm")

_TP = tuple[str, int]
_POLL_INTERVAL_S = 0.1
#: A mapping with nothing buffered, in flight or to commit for _QUIET_S parks its consumer with the idle poller
#: (esm/idle_wait.py: a record ends the wait within one sweep, 0.2 s) and refreshes its status (watermarks, lag)
#: this seldom, as nothing moves: an idle engine of many mappings must not wake each one 10 times a second.
_IDLE_POLL_S, _QUIET_S, _IDLE_STATUS_S = 1.0, 10.0, 5.0
_STATUS_INTERVAL_S = 1.0

class MappingRunner:
    """One mapping's consumer and batches. ``start()`` returns at once; ``stop()`` is graceful."""

    def __init__(
        self,
        mapping: MappingConfig,
        runtime: FunctionRuntime,
        status: MappingStatus,
        *,
        save_status: Callable[[], None] | None = None,
        factories: Factories | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.mapping = mapping
        self.runtime = runtime
        self.status = status
        self.factories = factories or Factories()
        self._save_status = save_status or (lambda: None)
        self._stop = threading.Event()
        self._resetup = threading.Event()  # set by a login failure while polling
        self._reconsume = threading.Event()  # set when a batch failed unexpectedly: read again from the commits
        self._thread: threading.Thread | None = None
        self.clock = clock or SystemClock(self._stop)
        self.metrics = MappingMetrics(mapping.uuid or "", mapping.function)
        self._commits = commits_of(mapping, self.metrics, self.clock.monotonic)
        self._parts = Partitions(self._commits.committer, mapping.batch_size, mapping.window_seconds,
                                 stopping=self._stop.is_set, clock=self.clock.monotonic)
        self._filter = record_filter(mapping)
        # only with a SchemaRegistryConfig; kept across consumes (its schema cache outlives an outage)
        self._schemas = SchemaRecords.of(mapping, accept=self._filter, metrics=self.metrics, status=self.status)
        self._pool: Executor | None = None
        self._source: RecordSource | None = None
        self._builder: EventBuilder | None = None
        self.bootstrap_servers: list[str] = list(mapping.bootstrap_servers)
        self.error: BaseException | None = None
        self._started = self.clock.monotonic()
        self._reports = ClientReports(mapping, status, self.metrics, save_status=self._save_status,
                                      on_login_failed=self._resetup.set)
        self._client_error = self._reports.error  # librdkafka's error_cb (errors of polled messages too)
        self._assignment = Assignment(mapping, runtime, status, self._parts, self._commits, self.metrics,
                                      clock=self.clock.monotonic, down=lambda: self._reports.connection.down)
        #: The consumer group gave this process its share (possibly no partition: more replicas than partitions).
        self.joined = False
        #: Quiet long enough, the consumer closes until a record arrives (esm/dormancy.py); joined stays true.
        self.dormancy = Dormancy(mapping.uuid or "")

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        gc_policy.tune()  # the poll loop's records would keep the default collector busy
        log_level.apply(self.mapping.uuid or "", (self.mapping.logging_config or {}).get("SystemLogLevel"))
        self._thread = threading.Thread(target=self._main, name=f"esm-{self.mapping.uuid}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop polling, finish in-flight batches, commit, leave the group. True if done in time."""
        self._stop.set()
        self.dormancy.rouse("stopping")
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        log_level.apply(self.mapping.uuid or "", None)  # a stopped mapping's level must not linger
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def polling(self) -> bool:
        """The consumer is running and librdkafka has a broker connection (what readiness asks)."""
        return self.running and self.status.state == ENABLED and not self._reports.connection.down

    @property
    def pauses(self) -> int:
        """How often a partition was paused for backpressure."""
        return self._parts.pauses

    def _main(self) -> None:
        try:
            resolved = self._setup()
            consume = self._consume_queue if self.mapping.queue else self._consume
            dormant = False
            while resolved is not None:
                self.joined = self.joined and dormant  # woken from dormancy: rejoining the group it was ready in
                consume(dict(resolved.config))
                dormant = self.dormancy.asleep
                if self._stop.is_set() or not (dormant or self._resetup.is_set() or self._reconsume.is_set()):
                    break
                if self._pool is not None:
                    self._pool.shutdown(wait=True)
                    self._pool = None
                if self._resetup.is_set():
                    # A login failed while polling (rotated secret, revoked certificate): librdkafka would retry
                    # the stale credentials forever; the setup stages read the secrets again.
                    self._resetup.clear()
                    _log.warning("mapping %s: login failed while polling; running setup again", self.mapping.uuid)
                    resolved = self._setup()
                elif dormant:  # no consumer of its own until the watcher sees a record; then as after a re-consume
                    self._save_status()  # its partitions unassigned
                    self.dormancy.sleep(resolved.config, self.bootstrap_servers, self.mapping.group_id,
                                        self.mapping.topics, wake=lambda: not self._polling_on())
                    if self._stop.is_set():
                        break
                else:
                    self._reconsume.clear()
                    if self._schemas is not None and self._schemas.retries:  # the registry is down: give it time
                        self._stop.wait(retry_delay(self._schemas.retries))
                    _log.warning("mapping %s: reading again from the committed offsets", self.mapping.uuid)
        except BaseException as exc:  # noqa: BLE001 - a mapping's failure must not end the engine
            self.error = exc
            _log.exception("mapping %s stopped on an unexpected error", self.mapping.uuid)
            self.status.set_problem(Diagnosis(problems.INTERNAL, f"{type(exc).__name__}: {exc}", "see the engine log"))
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            if self._schemas is not None:
                self._schemas.close()
            self._save_status()

    def _setup(self) -> auth.Auth | None:
        resolved = set_up(self.mapping, self.status, stop=self._stop, clock=self.clock,
                          save_status=self._save_status, check=self.factories.check)
        if resolved is not None:
            self._started = self.clock.monotonic()  # first_poll / first_invoke durations count from here
            self.bootstrap_servers = list(resolved.bootstrap)
            self._reports.connect(resolved)
        return resolved

    def _stage(self, stage: str, target: str, ok: bool, detail: str, problem: Diagnosis | None = None) -> None:
        record_once(self.status, stage, target, ok, detail, problem, (self.clock.monotonic() - self._started) * 1000)

    # -- the poll loop -------------------------------------------------------------------------
    def _consume(self, client_config: dict[str, Any]) -> None:
        mapping, factories = self.mapping, self.factories
        driver, destination = self._driver(client_config)
        settings = consumer_config(client_config, mapping, self._reports.stats)
        source = self._source = factories.source(settings, mapping, on_assign=self._assigned, on_revoke=self._revoked,
                                                 on_commit=functools.partial(self._commit_answered, driver),
                                                 on_error=self._client_error)
        max_records = min(max(mapping.batch_size, 500), 10000)
        kafka = source if isinstance(source, KafkaSource) else None  # the idle poller and the probe need the real one
        last_status, busy = 0.0, self.clock.monotonic()
        longest, connection = _POLL_INTERVAL_S, self._reports.connection
        try:
            while self._polling_on():
                now = self.clock.monotonic()
                quiet = now - busy >= _QUIET_S
                if quiet and longest != _IDLE_POLL_S:
                    release_free_memory()  # what the busy spell freed goes back to the OS
                longest = _IDLE_POLL_S if quiet else _POLL_INTERVAL_S
                if kafka is not None and connection.probe(kafka.reachable, now):  # while down: is a broker back?
                    self._reports.connection_changed()
                idle = quiet and kafka is not None and not connection.down
                if idle and kafka is not None and self.joined and self.dormancy.due(now - busy):
                    messages = self.dormancy.settle(kafka, self._parts.tps, self._commits, max_records)
                    if self.dormancy.asleep:
                        break
                    busy = now  # not now (a record came, a rebalance, a failed commit): after another quiet spell
                elif idle:  # one thread polls every quiet mapping
                    messages = IDLE.wait(source, max_records, until=now + _IDLE_STATUS_S, wake=self._unpark)
                else:  # while offsets wait for a commit, polls are short (esm/committer.py)
                    timeout = self._commits.poll_timeout(now, self._parts.poll_timeout(now, longest),
                                                         running=self._parts.running())
                    messages = source.poll(max_records, timeout)
                now = self.clock.monotonic()
                if messages:
                    self._parts.accept(self._records_of(messages), now)
                    busy = now
                elif not self._quiet():
                    busy = now
                self._dispatch(driver, now)
                self._commits.commit(source, self.clock.monotonic())
                self._flow_control()
                if now - last_status >= (_IDLE_STATUS_S if quiet else _STATUS_INTERVAL_S):
                    self._refresh_status()
                    last_status = now
            self._parts.drain()
            self._commits.commit(source, self.clock.monotonic(), sync=True)
        finally:
            self._refresh_status()
            source.close()
            self._source = None
            if destination is not None:
                destination.close()

    def _quiet(self) -> bool:
        """Nothing buffered, in flight or waiting to be committed."""
        parts = self._parts
        if self._commits.committer.outstanding():
            return False
        return all((p := parts.get(tp)) is None or not (p.in_flight or len(p.buffer)) for tp in parts.tps())

    def _consume_queue(self, client_config: dict[str, Any]) -> None:
        """Queue mode: the share-group loop of ``esm/queue_drive.py`` with this runner's driver, pool and status."""
        driver, destination = self._driver(client_config)
        assert self._builder is not None and self._pool is not None
        hooks = QueueHooks(lambda messages: block.flat(self._records_of(messages)), self._reconsume.is_set,
                           self._share_joined, self._save_status, self.status, self.metrics, self.clock.monotonic)
        watched = share_config(client_config, self._reports.stats)
        try:
            consume_queue(self.factories.share, watched, self.mapping, driver, self._builder, self._pool, hooks,
                          workers=max(1, self.runtime.concurrency_of(self.mapping.function)),
                          client_id=client_id(self.mapping), on_error=self._client_error, running=self._polling_on)
        finally:
            if destination is not None:
                destination.close()

    def _share_joined(self) -> None:
        self.joined = True
        self._stage("first_poll", self.mapping.group_id, True, f"joined share group {self.mapping.group_id}")

    def _polling_on(self) -> bool:
        return not (self._stop.is_set() or self._resetup.is_set() or self._reconsume.is_set())

    def _unpark(self) -> bool:
        """A parked consumer goes back to its own thread: to stop, or to probe for its brokers while down."""
        return not self._polling_on() or self._reports.connection.down

    def _driver(self, client_config: dict[str, Any]) -> tuple[BatchDriver, Destination | None]:
        """The batch loop of this consume (``esm/wiring.py``), with the on-failure destination it sends to."""
        mapping = self.mapping
        wired = wire(mapping, self.runtime, self.factories, client_config, self.bootstrap_servers, status=self.status,
                     metrics=self.metrics, clock=self.clock, on_invoke=lambda ok, detail, problem: self._stage(
                         "first_invoke", mapping.function, ok, detail, problem))
        self._builder, self._parts.pollers, self._pool = wired.builder, wired.pollers, wired.pool
        self.status.host = f"{socket.gethostname()}:{os.getpid()}"
        if self._schemas is not None:
            self._schemas.on_failure = wired.on_failure
        return wired.driver, wired.destination

    def _records_of(self, messages: Sequence[Any]) -> Polled:
        if self._schemas is not None:
            records: Polled
            records, filtered = self._schemas.records_of(messages, self._client_error)
            if self._schemas.waiting:  # keep nothing of this poll: read again from the committed offsets, later
                self._reconsume.set()
        else:
            records, filtered = records_of(messages, self._filter, self._client_error)
        self.metrics.polled(block.count(records), filtered)
        return records

    def _dispatch(self, driver: BatchDriver, now: float) -> None:
        if self._stop.is_set():
            return
        for lease in self._parts.dispatch(now):
            assert self._pool is not None
            self._pool.submit(self._drive, driver, lease)

    def _drive(self, driver: BatchDriver, lease: Lease) -> None:
        """Run batches of one partition back to back while ready (in a pool thread); pollers are shared in turn."""
        try:
            while (taken := lease.take(self.clock.monotonic())) is not None:
                cut, commit_to = taken
                if not driver.run(cut, lease) or not lease.finish(commit_to):
                    return
                if self._parts.yields(self.clock.monotonic()):
                    return
        except BaseException as exc:  # noqa: BLE001 - a bug must not end the mapping nor lose the batch
            _log.exception("mapping %s: batch processing failed", self.mapping.uuid)
            # The batch left the buffer uncommitted: a later batch of this partition committing would skip it.
            # The partition stops here and the consumer starts again from the group's committed offsets.
            self._parts.start_revoke([lease.partition.tp])
            self.status.set_problem(Diagnosis(
                problems.INTERNAL, f"batch processing failed: {type(exc).__name__}: {exc}",
                "see the engine log; the batch is read again from the last committed offset", stage="invoke"))
            self._save_status()
            self._reconsume.set()
        finally:
            lease.release()
            if self._polling_on():  # records that came meanwhile (or a freed poller) go on at once
                with contextlib.suppress(RuntimeError):  # the pool shut down meanwhile: the next consume dispatches
                    self._dispatch(driver, self.clock.monotonic())

    def _commit_answered(self, driver: BatchDriver, err: Any, partitions: list[Any]) -> None:
        """librdkafka's answer to an asynchronous commit (inside poll): the batches it lets start start now."""
        self._commits.answered(err, partitions)
        if self._polling_on():
            with contextlib.suppress(RuntimeError):  # the pool shut down meanwhile
                self._dispatch(driver, self.clock.monotonic())

    # -- rebalances (callbacks inside poll) ------------------------------------------------------
    def _assigned(self, tps: list[_TP], committed: dict[_TP, int]) -> None:
        assert self._builder is not None
        self.joined = True
        self._assignment.assigned(tps, committed, self._builder.envelope_size)
        self._stage("first_poll", self.mapping.group_id, True,
                    f"joined group {self.mapping.group_id}; assigned {len(tps)} partition(s)")
        self._save_status()  # the assignment shows at once, not with the next refresh

    def _revoked(self, tps: list[_TP]) -> None:
        self._assignment.revoked(tps, self._source)

    # -- flow control, status ------------------------------------------------------------------
    def _flow_control(self) -> None:
        """Pause partitions whose backlog is large (a batch retrying, a slow function); resume when drained."""
        if self._source is None:
            return
        pause, resume = self._parts.flow()
        if pause:
            self._source.pause(pause)
        if resume:
            self._source.resume(resume)

    def _refresh_status(self) -> None:
        self._assignment.refresh(self._source)
        self._save_status()
