"""How each HTTP consumer polls, for the Java consumer's ``poll-idle-ratio-avg`` and ``time-between-poll-*``.

An HTTP poll (``GET /consumers/{group}/instances/{name}/records``) is the bridge's ``poll()``: the ratio is the
time spent polling over the time polling plus the time since the previous poll ended (the client's own work),
averaged over the last minute as the Java client's two 30 s samples are.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Iterable

_WINDOW_S = 60.0
_RECORDS = re.compile(r"/consumers/[^/]+/instances/([^/]+)/records")


class PollTimes:
    """Per consumer instance name: the recent polls' idle ratios and the times between them; thread-safe."""

    def __init__(self) -> None:
        self._last_end: dict[str, float] = {}
        self._polls: dict[str, deque[tuple[float, float, float]]] = {}  # name -> (ended at, ratio, ms between)
        self._lock = threading.Lock()

    def observe(self, method: str, path: str, start: float, end: float) -> None:
        """One HTTP request (seconds of one monotonic clock); only record polls count."""
        if method != "GET":
            return
        m = _RECORDS.fullmatch(path)
        if m is None:
            return
        name = m.group(1)
        with self._lock:
            last = self._last_end.get(name)
            self._last_end[name] = end
            if last is None:
                return  # the first poll has no time before it
            between = max(0.0, start - last)
            took = end - start
            ratio = took / (took + between) if took + between > 0 else 0.0
            polls = self._polls.setdefault(name, deque())
            polls.append((end, ratio, between * 1000))
            while polls and polls[0][0] < end - _WINDOW_S:
                polls.popleft()

    def metrics(self, name: str) -> dict[str, float]:
        """``poll-idle-ratio-avg``, ``time-between-poll-avg`` and ``-max`` (ms), once the consumer polled twice."""
        with self._lock:
            polls = list(self._polls.get(name, ()))
        if not polls:
            return {}
        return {"poll-idle-ratio-avg": sum(p[1] for p in polls) / len(polls),
                "time-between-poll-avg": sum(p[2] for p in polls) / len(polls),
                "time-between-poll-max": max(p[2] for p in polls)}

    def keep_only(self, names: Iterable[str]) -> None:
        """Forget the consumers not in ``names`` (closed ones)."""
        live = set(names)
        with self._lock:
            for name in [n for n in self._last_end if n not in live]:
                self._last_end.pop(name, None)
                self._polls.pop(name, None)
