"""The last records this process sent to on-failure destinations: a small bounded log for the dashboard.

The destinations (``esm/destinations.py``) call :func:`record` after a successful send; the dashboard reads
:data:`RECENT`. Only what says which records failed and why is kept (condition, offsets, time, target):
never a record's key, value or headers, which may hold anything.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from triggerfish.esm.retry import RecordLike

#: How many deliveries are kept; older ones are forgotten.
KEPT = 50


@dataclass(frozen=True)
class SentFailure:
    """One delivery to an on-failure destination: which mapping, where to, why, and which offsets."""

    time: float
    mapping_uuid: str
    target: str
    condition: str
    function_arn: str
    invoke_count: int
    error_type: str
    #: (topic, partition) -> (first offset, last offset, records)
    offsets: tuple[tuple[str, int, int, int, int], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "Time": self.time, "MappingUUID": self.mapping_uuid, "Destination": self.target,
            "Condition": self.condition, "FunctionArn": self.function_arn, "ApproximateInvokeCount": self.invoke_count,
            "ErrorType": self.error_type,
            "Offsets": [{"Topic": t, "Partition": p, "FirstOffset": first, "LastOffset": last, "Records": n}
                        for t, p, first, last, n in self.offsets],
        }


class FailureLog:
    """A thread-safe ring of the last ``size`` deliveries, newest first when read."""

    def __init__(self, size: int = KEPT) -> None:
        self._lock = threading.Lock()
        self._sent: deque[SentFailure] = deque(maxlen=size)

    def add(self, sent: SentFailure) -> None:
        with self._lock:
            self._sent.append(sent)

    def recent(self, mapping_uuid: str | None = None) -> list[SentFailure]:
        with self._lock:
            found = list(self._sent)
        return [s for s in reversed(found) if mapping_uuid is None or s.mapping_uuid == mapping_uuid]


#: This process's deliveries.
RECENT = FailureLog()


def record(target: str, records: Sequence[RecordLike], condition: str, function_arn: str, invoke_count: int,
           mapping_uuid: str, error_type: str | None = None, *, log: FailureLog = RECENT) -> None:
    """Note that ``records`` were delivered to ``target`` for ``condition``."""
    spans: dict[tuple[str, int], list[int]] = {}
    for r in records:
        span = spans.setdefault((r.topic, r.partition), [r.offset, r.offset, 0])
        span[0], span[1], span[2] = min(span[0], r.offset), max(span[1], r.offset), span[2] + 1
    log.add(SentFailure(time.time(), mapping_uuid, target, condition, function_arn, invoke_count, error_type or "",
                        tuple((t, p, a, b, n) for (t, p), (a, b, n) in sorted(spans.items()))))
