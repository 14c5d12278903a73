"""One thread that watches the consumers of every quiet mapping, so that idle mappings do not each wake.

confluent-kafka's ``poll`` with a timeout of 200 ms or more wakes every 200 ms to take the GIL and check for
signals (its "wakeable" poll): a mapping waiting 1 s at a time in its own thread costs 5 wake-ups and GIL
grabs a second doing nothing, 250 a second for 50 mappings, the largest share of an idle engine's wake-ups.
A mapping with nothing buffered, in flight or to commit for a while parks its consumer here instead: one
thread polls every parked consumer without waiting (``poll(.., 0)``, no 200 ms chunks) every ``SWEEP_S``
and hands what it got to the mapping's own thread, which goes on as if its poll had returned it.

    messages = IDLE.wait(source, max_records, until=monotonic() + 5.0, wake=lambda: stop.is_set())

A parked mapping's first record waits up to ``SWEEP_S`` longer than a mapping polling on its own would
(one sweep); ``wake`` (a stop, a configuration change, a re-setup) is noticed within one sweep, sooner
than a 1 s poll of its own. The consumer's callbacks (rebalance, commit, error, statistics) run on the
sweep thread while the mapping's thread waits for it: the consumer still has one user at a time. A callback
that blocks holds up the other parked mappings with it (an assignment reads the committed offsets, and the
poll that made it the partitions' leaders: 10 s at most each).
A mapping parked long enough goes dormant instead (``esm/dormancy.py``: its consumer closes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

_log = logging.getLogger("triggerfish.esm")

#: How often the parked consumers are polled: the most a parked mapping's first record waits extra.
SWEEP_S = 0.2


class Pollable(Protocol):
    def poll(self, max_records: int, timeout: float) -> Sequence[Any]: ...


@dataclass
class _Parked:
    source: Pollable
    max_records: int
    until: float
    wake: Callable[[], bool]
    done: threading.Event = field(default_factory=threading.Event)
    messages: Sequence[Any] = ()
    error: BaseException | None = None


class IdleWaiter:
    """Polls parked consumers from one daemon thread, started on the first ``wait``."""

    def __init__(self, sweep: float = SWEEP_S) -> None:
        self._sweep = sweep
        self._parked: list[_Parked] = []
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None

    def wait(self, source: Pollable, max_records: int, *, until: float, wake: Callable[[], bool]) -> Sequence[Any]:
        """What ``source.poll`` returned once it had records, or nothing at ``until`` (monotonic) or once
        ``wake()`` is true. An exception of the poll (or of a callback inside it) is raised here."""
        parked = _Parked(source, max_records, until, wake)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="esm-idle-poller", daemon=True)
                self._thread.start()
            self._parked.append(parked)
            self._lock.notify()
        parked.done.wait()
        if parked.error is not None:
            raise parked.error
        return parked.messages

    @property
    def parked(self) -> int:
        with self._lock:
            return len(self._parked)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._parked:
                    self._lock.wait()
                parked = list(self._parked)
            for p in parked:
                self._poll(p)
            time.sleep(self._sweep)

    def _poll(self, p: _Parked) -> None:
        try:
            if not p.wake():
                p.messages = p.source.poll(p.max_records, 0)
            if not (p.messages or p.wake() or time.monotonic() >= p.until):
                return
        except BaseException as exc:  # noqa: BLE001 - the mapping's thread raises it, as its own poll would
            p.error = exc
        with self._lock:
            self._parked.remove(p)
        p.done.set()


#: The engine's one idle poller.
IDLE = IdleWaiter()
