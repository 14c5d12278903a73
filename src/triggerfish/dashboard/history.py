"""Per-partition lag over the last hour: a ring buffer of samples per mapping partition, and the thread
that takes them.

Lambda's console draws ``OffsetLag`` over time; here each sample is what the engine (or, in a fleet, the
fleet) knows of a partition's lag when the sampler runs, every ``interval_s`` seconds. A mapping that is not
polling (Disabled) has no consumer to tell its lag, so :class:`~triggerfish.dashboard.probe.LagProbe` asks
Kafka for its group's committed offsets and the log end offsets: a stopped function's backlog still shows.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_log = logging.getLogger("triggerfish.dashboard")

#: How far back the charts go.
SPAN_S = 3600.0
#: Seconds between samples unless set otherwise.
INTERVAL_S = 10.0

TP = tuple[str, int]
Sample = tuple[float, int]


class LagHistory:
    """Lag samples per (mapping UUID, topic, partition), the last ``span_s`` seconds of them; thread-safe."""

    def __init__(self, span_s: float = SPAN_S, interval_s: float = INTERVAL_S) -> None:
        self.span_s = span_s
        self._lock = threading.Lock()
        self._size = self._capacity(interval_s)
        self._samples: dict[str, dict[TP, deque[Sample]]] = {}

    def _capacity(self, interval_s: float) -> int:
        return max(2, math.ceil(self.span_s / max(interval_s, 0.1)) + 1)

    def resize(self, interval_s: float) -> None:
        """Keep an hour of samples taken every ``interval_s`` seconds (applies to buffers made from now on)."""
        with self._lock:
            self._size = self._capacity(interval_s)

    def add(self, uuid: str, lags: Mapping[TP, int | None], now: float) -> None:
        """One sample of a mapping's partitions; an unknown lag (None) adds nothing."""
        with self._lock:
            parts = self._samples.setdefault(uuid, {})
            for tp, lag in lags.items():
                if lag is not None:
                    parts.setdefault(tp, deque(maxlen=self._size)).append((now, int(lag)))

    def series(self, uuid: str, now: float) -> list[dict[str, Any]]:
        """The mapping's samples of the last span, per partition: ``[{"Topic", "Partition", "Samples": [[t, lag]]}]``."""
        since = now - self.span_s
        with self._lock:
            parts = {tp: list(samples) for tp, samples in self._samples.get(uuid, {}).items()}
        return [{"Topic": tp[0], "Partition": tp[1], "Samples": [[t, lag] for t, lag in samples if t >= since]}
                for tp, samples in sorted(parts.items())]

    def keep(self, uuids: Iterable[str]) -> None:
        """Forget deleted mappings."""
        wanted = set(uuids)
        with self._lock:
            for uuid in [u for u in self._samples if u not in wanted]:
                del self._samples[uuid]


#: Takes one round of samples from what it watches into the history; returns the UUIDs it saw.
SampleRound = Callable[[Any, LagHistory, float], list[str]]


class Sampler:
    """A daemon thread sampling ``source`` (held weakly: the thread ends once it is gone) into ``history``."""

    def __init__(self, source: object, history: LagHistory, take: SampleRound, interval_s: float = INTERVAL_S) -> None:
        self.history = history
        self._source = weakref.ref(source)
        self._take = take
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self.interval_s = interval_s
        self._thread = threading.Thread(target=self._run, name="triggerfish-dashboard-lag", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def set_interval(self, interval_s: float) -> None:
        """Sample every ``interval_s`` seconds from now on (and keep an hour of such samples)."""
        self.interval_s = interval_s
        self.history.resize(interval_s)
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def sample(self) -> bool:
        """Take one round now; False once the source is gone."""
        source = self._source()
        if source is None:
            return False
        try:
            self.history.keep(self._take(source, self.history, time.time()))
        except Exception:  # noqa: BLE001 - a failed round must not end the sampling
            _log.exception("dashboard: lag sampling failed")
        return True

    def _run(self) -> None:
        while not self._stopped.is_set() and self.sample():
            self._wake.wait(self.interval_s)
            self._wake.clear()
