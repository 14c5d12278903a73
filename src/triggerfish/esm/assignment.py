"""The partitions a mapping runner holds as its consumer group assigns and revokes them, and what the
mapping's status shows of them (assigned, committed offset, watermarks, lag).

The group's callbacks run inside poll, on the runner's poll thread. A revoke waits (bounded) for the
revoked partitions' in-flight batches and commits what finished before another member takes them; a batch
still running after the wait is abandoned uncommitted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from triggerfish.esm.committer import Commits
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.consumer import TP, RecordSource
from triggerfish.esm.metrics import MappingMetrics
from triggerfish.esm.partitions import Partitions
from triggerfish.esm.state import MappingStatus
from triggerfish.functions.runtime import FunctionRuntime

_log = logging.getLogger("triggerfish.esm")

#: How long a revoke waits for a revoked partition's in-flight batch before abandoning it.
_REVOKE_WAIT_MAX_S = 30.0


class Assignment:
    """One runner's partitions and their status. ``down`` tells whether the brokers are unreachable."""

    def __init__(self, mapping: MappingConfig, runtime: FunctionRuntime, status: MappingStatus, parts: Partitions,
                 commits: Commits, metrics: MappingMetrics, *, clock: Callable[[], float],
                 down: Callable[[], bool]) -> None:
        self._mapping, self._runtime, self._status = mapping, runtime, status
        self._parts, self._commits, self._metrics = parts, commits, metrics
        self._clock, self._down = clock, down

    def assigned(self, tps: list[TP], committed: dict[TP, int], envelope_size: Callable[[str, int], int]) -> None:
        """The group assigned ``tps``, with their committed offsets (negative: none yet)."""
        self._parts.assign(tps, committed, envelope_size)
        for tp in tps:
            ps = self._status.partition(*tp)
            ps.assigned = True
            ps.committed = committed.get(tp) if committed.get(tp, -1) >= 0 else None
        _log.info("mapping %s: assigned %s", self._mapping.uuid, ", ".join(f"{t}-{p}" for t, p in tps))

    def revoked(self, tps: list[TP], source: RecordSource | None) -> None:
        """The group takes ``tps`` away: let in-flight batches finish (bounded), commit them, drop the buffers."""
        parts = self._parts.start_revoke(tps)
        fn = self._mapping.function
        wait = min(_REVOKE_WAIT_MAX_S, self._runtime.get(fn).timeout + 5) if fn in self._runtime else 0.0
        self._parts.wait_idle(parts, self._clock() + wait)
        if source is not None:  # commit what finished before another member takes the partitions
            self._commits.commit(source, self._clock(), sync=True, only=tps)
        self._parts.remove(parts, tps)
        if not self._down():  # handed to another member; partitions lost in an outage keep their lag
            self._metrics.released(tps)
        for p in parts:
            self._status.partition(*p.tp).assigned = False
        if tps:
            _log.info("mapping %s: revoked %s", self._mapping.uuid, ", ".join(f"{t}-{p}" for t, p in tps))

    def refresh(self, source: RecordSource | None) -> None:
        """Committed offsets, watermarks and lag into the status and the lag gauges; pollers scaled to the lag."""
        tps = self._parts.tps()
        for tp in tps:
            ps = self._status.partition(*tp)
            committed = self._commits.committer.committed(tp)
            if committed is not None:
                ps.committed = committed
            marks = source.watermarks(tp) if source is not None else None
            if marks is not None:
                ps.low_watermark, ps.high_watermark = marks
        if not self._down():  # watermarks read during an outage are stale: the gauges keep their last value
            self._metrics.lags({tp: self._status.partition(*tp).lag for tp in tps})
        self._parts.scale({tp for tp in tps if (self._status.partition(*tp).lag or 0) > 0})  # provisioned pollers
