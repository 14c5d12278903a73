"""Closing a librdkafka client without letting its teardown hang the caller.

librdkafka's close can block for minutes in its final teardown after partitions were sought or paused
(librdkafka #1928, #4362). By then the group was left and offsets committed, so the caller (a bridge
delete, an engine mapping stopping) waits a bounded time and lets the rest finish in a daemon thread.

A subscribed consumer first leaves its group in polls (``leave_group``), so that close has no revoke left
to run: confluent-kafka runs a revoke that close serves holding the GIL, and librdkafka can leave the
call it makes there unanswered once the group is torn down (librdkafka #4041, #4884), which stops every
thread of the process, the one waiting on ``close_within`` too.

    leave_group(consumer)
    if not close_within(consumer.close, 10.0, name="consumer x"):
        ...  # still closing in the background; a warning was logged
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException

_log = logging.getLogger("triggerfish")

#: How long closing one client may hold its caller up.
CLOSE_WAIT_S = 10.0
#: How long leaving the group may take: the revoke is local (no broker needed), so a poll or two.
LEAVE_WAIT_S = 5.0


def leave_group(consumer: Consumer, seconds: float = LEAVE_WAIT_S, *, log: logging.Logger = _log) -> None:
    """Unsubscribe and poll until the revoke has run (its callbacks in this thread), before ``close``.

    Records the polls return are dropped: they were not handed to anyone, and with
    ``enable.auto.offset.store=false`` (the engine and the bridge) nothing stores their offsets, so the
    group's next member reads them again. Call it from the thread that polls the consumer."""
    try:
        consumer.unsubscribe()
        deadline = time.monotonic() + seconds
        while consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.01)
        consumer.poll(0)  # a rebalance queued behind the last one
    except (KafkaException, RuntimeError) as exc:  # closed already, or the client failed: close copes
        log.debug("leaving the group before closing: %s", exc)


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
