"""How a mapping runner's parts are wired together: its commits (gate and pacing), its consumer's librdkafka
settings and client id, and each consume's batch driver over the event builder, worker pool, invoker and
on-failure destination.

Each piece of I/O comes from a factory of ``esm/factories.py`` (tests pass fakes); this puts them together.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from triggerfish.diagnosis import Diagnosis
from triggerfish.esm.clock import Clock
from triggerfish.esm.committer import CommitPacer, Commits, Committer, gate_offsets
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.consumer import consumer_settings
from triggerfish.esm.destinations import Destination, Source, destination_of
from triggerfish.esm.drive import BatchDriver, OnFailure
from triggerfish.esm.event import EventBuilder
from triggerfish.esm.factories import Factories, function_arn
from triggerfish.esm.metrics import MappingMetrics
from triggerfish.esm.pollers import Pollers
from triggerfish.esm.retry import RetryPolicy
from triggerfish.esm.state import MappingStatus
from triggerfish.functions.runtime import FunctionRuntime

#: librdkafka statistics this often: times ``connection._DOWN_SNAPSHOTS``, how soon an outage librdkafka does not
#: report shows (~15 s). A restored connection still shows within ~2 s: a consumer that is down asks every second
#: whether a broker answers (``ConnectionWatch.probe``). Building snapshots every 2 s was ~60 % of an idle
#: consumer's librdkafka main thread. Queue mode's share consumers have no probe: theirs stay at 2 s.
_STATS_INTERVAL_MS, _QUEUE_STATS_INTERVAL_MS = 5000, 2000
_COMMIT_STUCK_S = 10.0
#: How often small batches' offsets are committed (a partition that moved a quarter of the commit gate commits at once).
_COMMIT_INTERVAL_S = 0.1


def commits_of(mapping: MappingConfig, metrics: MappingMetrics, clock: Callable[[], float]) -> Commits:
    """When a mapping's offsets are committed: gated on its BatchSize, paced, promptly once a partition moved."""
    gate = gate_offsets(mapping.batch_size)
    committer = Committer(metrics.committed, clock, ahead=gate)
    return Commits(committer, on_error=metrics.commit_error, name=mapping.uuid or "", pacer=CommitPacer(_COMMIT_STUCK_S),
                   clock=clock, prompt_offsets=max(1, gate // 4), interval=_COMMIT_INTERVAL_S)


def client_id(mapping: MappingConfig) -> str:
    """The consumer's client.id: the mapping, host and process (what a broker's logs and quotas see)."""
    return f"triggerfish-{mapping.uuid}-{socket.gethostname()}-{os.getpid()}"


def consumer_config(client_config: dict[str, Any], mapping: MappingConfig,
                    stats: Callable[[str], None]) -> dict[str, Any]:
    """The group consumer's librdkafka settings, with ``stats`` receiving its statistics."""
    settings = consumer_settings(client_config, mapping, mapping.group_id, client_id(mapping))
    settings.update({"statistics.interval.ms": _STATS_INTERVAL_MS, "stats_cb": stats})
    return settings


def share_config(client_config: dict[str, Any], stats: Callable[[str], None]) -> dict[str, Any]:
    """Queue mode's share consumer settings, with ``stats`` receiving its statistics."""
    return {**client_config, "statistics.interval.ms": _QUEUE_STATS_INTERVAL_MS, "stats_cb": stats}


@dataclass(frozen=True)
class Wiring:
    """One consume's batch driver and what it runs on."""

    driver: BatchDriver
    builder: EventBuilder
    pool: Executor
    pollers: Pollers | None
    destination: Destination | None
    on_failure: OnFailure | None


def wire(mapping: MappingConfig, runtime: FunctionRuntime, factories: Factories, client_config: dict[str, Any],
         bootstrap_servers: list[str], *, status: MappingStatus, metrics: MappingMetrics, clock: Clock,
         on_invoke: Callable[[bool, str, Diagnosis | None], None]) -> Wiring:
    """The batch driver of one consume, with its invoker, worker pool and the on-failure destination it sends to."""
    policy = RetryPolicy.for_mapping(mapping)
    builder = EventBuilder.for_mapping(mapping, bootstrap_servers)
    target = destination_of(mapping)
    destination = factories.destination(target, client_config) if target else None
    workers = max(1, runtime.concurrency_of(mapping.function))
    pollers = Pollers.of(mapping.provisioned_poller_config, workers, mapping.uuid or "")
    pool = factories.pool(workers, f"esm-{(mapping.uuid or '')[:8]}")
    try:
        invoker = factories.invoker(runtime, mapping.function, builder,
                                    parse_response=policy.report_batch_item_failures)
        on_failure = None if destination is None else OnFailure(
            destination, Source(",".join(bootstrap_servers), mapping.event_source_arn, mapping.uuid or ""),
            functools.partial(function_arn, mapping, runtime), builder.build)
        driver = BatchDriver(mapping.function, policy, invoker, status=status, metrics=metrics, clock=clock,
                             on_failure=on_failure, name=mapping.uuid or "", on_invoke=on_invoke)
    except BaseException:  # the runner never got the pool: shut it down here, as it would have
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    return Wiring(driver, builder, pool, pollers, destination, on_failure)
