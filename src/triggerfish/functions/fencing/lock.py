"""Single-flight: at most one fencing decision at a time; a concurrent call is rejected, not queued.

Why reject (503) rather than wait:

* Two alerts decided at the same time can each see both sites healthy and each remove the *other*
  site — leaving no endpoint at all. The second decision must read the state the first one left,
  so it has to start after the first has finished, not merely be serialised at some later point.
* Waiting inside the function holds a concurrency slot and eats the function timeout; if the
  first call is slow (an Infinispan timeout) the waiter times out too and Alertmanager sees a 502.
* Alertmanager already retries 5xx with exponential back-off until the group's flush deadline
  (at least ``group_interval``), so a 503 + ``Retry-After`` gets the same alert re-delivered
  moments later, and the retry then decides from fresh state (usually: "already fenced, ignore").
  A 429 (what Lambda returns when reserved concurrency throttles) would *not* be retried until the
  next ``group_interval``; answering 503 ourselves keeps the fast retry.

Reserved concurrency 1 remains the first line (one execution environment at a time on AWS
Lambda; triggerfish's function URL server enforces it with 429). This lock covers what that does
not: several worker processes or threads of one host, e.g. a deployment without reserved
concurrency. It is an ``flock`` on a file, so it is released by the kernel if a worker dies, and it
does not span hosts: run the function in one place. Where it cannot hold (several hosts, AWS
Lambda's execution environments), the fencer's re-read after removing still never leaves the load
balancer empty (:mod:`.fencer`), and on AWS Lambda reserved concurrency 1 is required (:mod:`.reserved`).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from triggerfish.errors import ConfigError, FencingBusyError

RETRY_AFTER_SECONDS = 5


def check(path: str) -> None:
    """At start-up: make sure the lock file can be opened, or name the variable that sets it."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError as exc:
        raise ConfigError("FENCING_LOCK_FILE", f"cannot open {path} ({exc.strerror}); point it at a writable file") from None


@contextmanager
def single_flight(path: str) -> Iterator[None]:
    """Hold the lock for the block, or raise :class:`FencingBusyError` at once if someone else holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FencingBusyError(path) from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
