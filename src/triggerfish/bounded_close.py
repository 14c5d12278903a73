"""Closing a librdkafka client without letting its teardown hang the caller.

librdkafka's close can block for minutes in its final teardown after partitions were sought or paused
(librdkafka #1928, #4362). By then the group was left and offsets committed, so the caller (a bridge
delete, an engine mapping stopping) waits a bounded time and lets the rest finish in a daemon thread.

    if not close_within(consumer.close, 10.0, name="consumer x"):
        ...  # still closing in the background; a warning was logged
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

_log = logging.getLogger("triggerfish")

#: How long closing one client may hold its caller up.
CLOSE_WAIT_S = 10.0


def close_within(close: Callable[[], object], seconds: float = CLOSE_WAIT_S, *, name: str,
                 log: logging.Logger = _log) -> bool:
    """Run ``close`` in a daemon thread and wait up to ``seconds``; True if it finished. An error it raises
    is logged (closing must never fail what called it)."""

    def run() -> None:
        try:
            close()
        except Exception as exc:  # noqa: BLE001 - closing must never fail a delete or a stop
            log.warning("closing %s: %s", name, exc)

    closer = threading.Thread(target=run, daemon=True, name=f"close-{name}"[:60])
    closer.start()
    closer.join(seconds)
    if closer.is_alive():
        log.warning("%s: librdkafka's close did not finish in %.0f s; it goes on in the background", name, seconds)
        return False
    return True
