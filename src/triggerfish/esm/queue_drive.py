"""Queue mode's poll loop (ConsumptionMode Queue): a share group's records, batched across partitions,
acknowledged one by one.

    poll (share group) -> records (FilterCriteria, schema registry) -> batches of any partitions
    -> worker pool: QueueBatch.run each -> ACCEPT / RELEASE / REJECT every record of the poll -> commit -> poll

A share consumer in explicit acknowledgement mode must acknowledge every record of a poll before it polls
again, so one poll's batches run in parallel (up to the function's concurrency) and the loop waits for all
of them. Records the filter or the schema registry dropped are ACCEPTed (processed, as Lambda counts
them). No offsets, no partitions owned, no order: the broker redelivers what is released, to any member.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import AcknowledgeType

from triggerfish.diagnosis import Diagnosis
from triggerfish.esm import problems
from triggerfish.esm.batcher import Cut
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.drive import BatchDriver
from triggerfish.esm.event import EventBuilder, Record
from triggerfish.esm.partitions import is_filtered
from triggerfish.esm.queue_batch import QueueBatch, coord, cut_batches
from triggerfish.esm.share import (
    ACCEPT,
    RELEASE,
    Coord,
    ShareSourceFactory,
    ShareSourceLike,
    delivery_limit,
    share_settings,
)

_log = logging.getLogger("triggerfish.esm")

POLL_INTERVAL_S = 0.1
_TICK_INTERVAL_S = 1.0
#: At most this many records locked to one member per poll.
_MAX_POLL_RECORDS = 10000


class StatusSink(Protocol):
    def set_problem(self, problem: Diagnosis | None) -> None: ...


class MetricsSink(Protocol):
    def committed(self, delta: int) -> None: ...

    def commit_error(self) -> None: ...


@dataclass(frozen=True)
class QueueHooks:
    """What the mapping's runner contributes to the loop."""

    #: Polled messages as records (dropped ones as ``filtered_record`` placeholders).
    records_of: Callable[[Sequence[Any]], list[Record]]
    #: Set by ``records_of`` when nothing of the poll may be kept now (the schema registry is down).
    waiting: Callable[[], bool]
    #: The first poll came back: the consumer is a member of the share group.
    joined: Callable[[], None]
    #: About once a second: save the mapping's status.
    tick: Callable[[], None]
    status: StatusSink
    metrics: MetricsSink
    monotonic: Callable[[], float] = time.monotonic


def consume_queue(factory: ShareSourceFactory, client_config: dict[str, Any], mapping: MappingConfig,
                  driver: BatchDriver, builder: EventBuilder, pool: Executor, hooks: QueueHooks, *, workers: int,
                  client_id: str, on_error: Callable[[Any], None], running: Callable[[], bool]) -> None:
    """Consume ``mapping``'s topic through its share group (the group id: ConsumerGroupId or the UUID)
    until ``running()`` turns false, ``workers`` batches at a time; the share consumer is closed on the way out."""
    group = mapping.group_id

    def acknowledged(count: int, error: Any) -> None:  # the broker's answer to an acknowledgement commit
        if error is None:
            hooks.metrics.committed(count)
        else:
            hooks.metrics.commit_error()
            _log.warning("mapping %s: acknowledging %d record(s) failed: %s", mapping.uuid, count, error)

    batch = QueueBatch(driver, delivery_limit(client_config, group), lambda: not running())
    max_records = min(mapping.batch_size * workers, _MAX_POLL_RECORDS)
    source = factory(share_settings(client_config, group, client_id, max_records), mapping.topics, on_error=on_error,
                     on_acknowledged=acknowledged)
    try:
        QueueLoop(source, batch, pool, builder, mapping.batch_size, hooks).run(running)
    finally:
        source.close()


class QueueLoop:
    """Polls one share consumer from the runner's poll thread until ``running()`` turns false."""

    def __init__(self, source: ShareSourceLike, batch: QueueBatch, pool: Executor, builder: EventBuilder,
                 batch_size: int, hooks: QueueHooks) -> None:
        self.source = source
        self.batch = batch
        self.pool = pool
        self.builder = builder
        self.batch_size = batch_size
        self.hooks = hooks

    def run(self, running: Callable[[], bool]) -> None:
        joined = False
        last_tick = 0.0
        while running():
            messages = self.source.poll(POLL_INTERVAL_S)
            if not joined:
                joined = True
                self.hooks.joined()
            if messages:
                self.source.acknowledge(self._verdicts(messages))
                self.source.commit()
            now = self.hooks.monotonic()
            if now - last_tick >= _TICK_INTERVAL_S:
                self.hooks.tick()
                last_tick = now
        self.hooks.tick()

    def _verdicts(self, messages: Sequence[Any]) -> dict[Coord, AcknowledgeType]:
        """How the broker is to treat each record of one poll."""
        deliveries = {(m.topic(), m.partition(), m.offset()): m.delivery_count() or 1
                      for m in messages if m.error() is None}
        records = self.hooks.records_of(messages)
        if self.hooks.waiting():  # e.g. the schema registry is down: the broker delivers them again later
            return dict.fromkeys(deliveries, RELEASE)
        verdicts: dict[Coord, AcknowledgeType] = dict.fromkeys(deliveries, ACCEPT)  # filtered ones stay accepted
        real = [r for r in records if coord(r) in deliveries and not is_filtered(r)]
        futures = [(cut, self.pool.submit(self.batch.run, cut, deliveries))
                   for cut in cut_batches(real, self.batch_size, self.builder)]
        for cut, future in futures:
            verdicts.update(self._outcome(cut, future))
        return verdicts

    def _outcome(self, cut: Cut, future: Any) -> dict[Coord, AcknowledgeType]:
        try:
            result: dict[Coord, AcknowledgeType] = future.result()
            return result
        except BaseException as exc:  # noqa: BLE001 - a bug must neither end the mapping nor lose the batch
            _log.exception("Queue-mode batch failed; its %d record(s) are released", len(cut.records))
            self.hooks.status.set_problem(Diagnosis(
                problems.INTERNAL, f"batch processing failed: {type(exc).__name__}: {exc}",
                "see the engine log; the batch's records were released to the share group", stage="invoke"))
            return {coord(r): RELEASE for r in cut.records}
