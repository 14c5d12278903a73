"""Per-function invocation counts and durations: Lambda's ``Invocations``, ``Errors``, ``Throttles`` and
``Duration`` metrics, kept by the runtime for ``/metrics`` and the dashboard.

Prometheus gets ``triggerfish_function_invocations_total{function,outcome}`` (ok, error, throttled) and the
``triggerfish_function_duration_seconds{function}`` histogram; :data:`STATS` also keeps each function's last
durations (a bounded window), so the dashboard states exact percentiles of recent invocations.

The counts are plain numbers under one lock, turned into Prometheus samples when ``/metrics`` is read
(``_Exporter``): a Counter and a Histogram child updated per invocation took four locks and ~2 µs of
every small invocation. The series, their names and their ``_created`` samples are what those gave.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric

_INVOCATIONS_DOC = ("Lambda Invocations, Errors and Throttles: invocations by function and outcome "
                    "(ok, error, throttled).")
_DURATION_DOC = "Lambda Duration: time spent in the handler."
#: The duration histogram's upper bounds in seconds (the last, +Inf, takes the rest).
_BOUNDS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, math.inf)
#: Their ``le`` labels, as Prometheus writes them (``prometheus_client.utils.floatToGoString``).
_LE = tuple("+Inf" if b == math.inf else repr(float(b)) for b in _BOUNDS)

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


class _Function:
    """One function's numbers (read and written under ``FunctionStats._lock``)."""

    __slots__ = ("counts", "created", "durations", "buckets", "seconds", "last")

    def __init__(self, window: int) -> None:
        #: Invocations by outcome ("ok", "error", "throttled"), and when each outcome first happened.
        self.counts = {"ok": 0, "error": 0, "throttled": 0}
        self.created: dict[str, float] = {}
        self.durations: deque[float] = deque(maxlen=window)
        #: The histogram: invocations per bucket of ``_BOUNDS`` (not cumulative), and their sum in seconds.
        self.buckets = [0] * len(_BOUNDS)
        self.seconds = 0.0
        self.last: float | None = None


class FunctionStats:
    """Counts and recent durations per function; thread-safe."""

    def __init__(self, window: int = WINDOW) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._functions: dict[str, _Function] = {}

    def invoked(self, name: str, duration_ms: float, *, error: bool) -> None:
        """One invocation that ran the handler (``error``: it failed, timed out or crashed)."""
        now = time.time()
        outcome = "error" if error else "ok"
        seconds = duration_ms / 1000
        bucket = bisect_left(_BOUNDS, seconds)  # the first bound at or above it, as Prometheus' Histogram counts
        with self._lock:
            f = self._counted(name, outcome, now)
            f.buckets[bucket] += 1
            f.seconds += seconds
            f.durations.append(duration_ms)

    def throttled(self, name: str) -> None:
        """One invocation refused for lack of concurrency (never ran the handler)."""
        with self._lock:
            self._counted(name, "throttled", time.time())

    def _counted(self, name: str, outcome: str, now: float) -> _Function:
        """Count one invocation of ``name`` with ``outcome`` at ``now``; its numbers (call with ``_lock`` held)."""
        f = self._functions.get(name)
        if f is None:
            f = self._functions[name] = _Function(self._window)
        f.counts[outcome] += 1
        f.created.setdefault(outcome, now)
        f.last = now
        return f

    def summary(self, name: str) -> FunctionSummary:
        with self._lock:
            f = self._functions.get(name)
            if f is None:
                return FunctionSummary(0, 0, 0, 0, None, None, None, None, None)
            counts, ordered, last = dict(f.counts), sorted(f.durations), f.last
        return FunctionSummary(counts["ok"] + counts["error"], counts["error"], counts["throttled"], len(ordered),
                               percentile(ordered, .5), percentile(ordered, .9), percentile(ordered, .99),
                               ordered[-1] if ordered else None, last)

    def metrics(self) -> list[Metric]:
        """The Prometheus families: invocations by outcome, and the duration histogram."""
        invocations = CounterMetricFamily("triggerfish_function_invocations", _INVOCATIONS_DOC,
                                          labels=["function", "outcome"])
        durations = HistogramMetricFamily("triggerfish_function_duration_seconds", _DURATION_DOC, labels=["function"])
        with self._lock:
            for name, f in self._functions.items():
                # a series exists from its outcome's first invocation on, as a labelled child did
                for outcome, created in sorted(f.created.items(), key=lambda kv: kv[1]):
                    invocations.add_metric([name, outcome], f.counts[outcome], created=created)
                ran = [created for outcome, created in f.created.items() if outcome != "throttled"]
                if ran:
                    total = 0
                    cumulative = []
                    for le, count in zip(_LE, f.buckets, strict=True):
                        total += count
                        cumulative.append((le, float(total)))
                    durations.add_metric([name], cumulative, f.seconds)
                    durations.add_sample("triggerfish_function_duration_seconds_created", {"function": name}, min(ran))
        return [invocations, durations]


class _Exporter:
    """:data:`STATS` as a Prometheus collector (read at each scrape)."""

    def __init__(self, stats: FunctionStats) -> None:
        self._stats = stats

    def describe(self) -> list[Metric]:
        return FunctionStats().metrics()  # the names only: no samples

    def collect(self) -> Iterator[Metric]:
        yield from self._stats.metrics()


#: This process's functions.
STATS = FunctionStats()
REGISTRY.register(_Exporter(STATS))
