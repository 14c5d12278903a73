"""Time as a mapping's runner sees it: monotonic seconds, wall-clock milliseconds, interruptible sleeps.

The runner, its batch loop and its setup loop take a ``Clock`` instead of calling ``time`` themselves, so
tests pass a fake one that moves only when slept on: backoffs and batching windows cost no real time.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def time_ms(self) -> int: ...  # epoch milliseconds, as record timestamps are

    def sleep(self, seconds: float) -> None: ...  # may return early when the runner stops


class SystemClock:
    """The real clock; ``sleep`` wakes early when ``stop`` is set."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self._stop = stop or threading.Event()

    def monotonic(self) -> float:
        return time.monotonic()

    def time_ms(self) -> int:
        return int(time.time() * 1000)

    def sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)
