"""Per-function invocation counts and durations: Lambda's ``Invocations``, ``Errors``, ``Throttles`` and
``Duration`` metrics, kept by the runtime for ``/metrics`` and the dashboard.

Prometheus gets ``triggerfish_function_invocations_total{function,outcome}`` (ok, error, throttled) and the
``triggerfish_function_duration_seconds{function}`` histogram; :data:`STATS` also keeps each function's last
durations (a bounded window), so the dashboard states exact percentiles of recent invocations.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram

_INVOCATIONS = Counter("triggerfish_function_invocations_total",
                       "Lambda Invocations, Errors and Throttles: invocations by function and outcome "
                       "(ok, error, throttled).", ["function", "outcome"])
_DURATION = Histogram("triggerfish_function_duration_seconds", "Lambda Duration: time spent in the handler.",
                      ["function"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900))

#: How many recent durations per function the percentiles are computed from.
WINDOW = 1000


@dataclass(frozen=True)
class FunctionSummary:
    """One function's counts since start, and duration percentiles (ms) of its last invocations."""

    invocations: int
    errors: int
    throttles: int
    durations: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    last_invoked: float | None


def percentile(ordered: list[float], share: float) -> float | None:
    """The nearest-rank percentile of an ascending list (None when empty)."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class FunctionStats:
    """Counts and recent durations per function; thread-safe."""

    def __init__(self, window: int = WINDOW) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._counts: dict[str, list[int]] = {}
        self._durations: dict[str, deque[float]] = {}
        self._last: dict[str, float] = {}
        # Prometheus children, looked up once each: labels() takes a lock and builds a key on every call, and
        # invoked() runs once per invocation. Created on first use, so /metrics shows the same series as before.
        self._outcomes: dict[tuple[str, str], Any] = {}
        self._durations_s: dict[str, Any] = {}

    def _outcome(self, name: str, outcome: str) -> Any:
        child = self._outcomes.get((name, outcome))
        if child is None:
            child = self._outcomes[(name, outcome)] = _INVOCATIONS.labels(name, outcome)
        return child

    def _duration(self, name: str) -> Any:
        child = self._durations_s.get(name)
        if child is None:
            child = self._durations_s[name] = _DURATION.labels(name)
        return child


    def invoked(self, name: str, duration_ms: float, *, error: bool) -> None:
        """One invocation that ran the handler (``error``: it failed, timed out or crashed)."""
        self._outcome(name, "error" if error else "ok").inc()
        self._duration(name).observe(duration_ms / 1000)
        now = time.time()
        with self._lock:
            counts = self._counts.get(name)
            if counts is None:
                counts = self._counts[name] = [0, 0, 0]
            durations = self._durations.get(name)
            if durations is None:  # a function throttled before it first ran has counts but no durations yet
                durations = self._durations[name] = deque(maxlen=self._window)
            counts[0] += 1
            if error:
                counts[1] += 1
            self._last[name] = now
            durations.append(duration_ms)

    def throttled(self, name: str) -> None:
        """One invocation refused for lack of concurrency (never ran the handler)."""
        self._outcome(name, "throttled").inc()
        with self._lock:
            self._counts.setdefault(name, [0, 0, 0])[2] += 1
            self._last[name] = time.time()

    def summary(self, name: str) -> FunctionSummary:
        with self._lock:
            invocations, errors, throttles = self._counts.get(name, [0, 0, 0])
            ordered = sorted(self._durations.get(name, ()))
            last = self._last.get(name)
        return FunctionSummary(invocations, errors, throttles, len(ordered), percentile(ordered, .5),
                               percentile(ordered, .9), percentile(ordered, .99), ordered[-1] if ordered else None,
                               last)


#: This process's functions.
STATS = FunctionStats()
