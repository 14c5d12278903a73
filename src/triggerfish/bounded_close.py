"""Closing a librdkafka client without letting its teardown hang the caller.

librdkafka's close can block for minutes in its final teardown after partitions were sought or paused
(librdkafka #1928, #4362). By then the group was left and offsets committed, so the caller (a bridge
delete, an engine mapping stopping) waits a bounded time and lets the rest finish in a daemon thread.

A consumer that ever subscribed first leaves its group in polls (``leave_group``), so that close has no
revoke left to run: confluent-kafka runs a revoke that close serves holding the GIL, and librdkafka can leave
the call it makes there unanswered once the group is torn down (librdkafka #4041, #4884), which stops every
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
#: How long the assignment must stay empty before the group counts as left: an assignment that waited in the
#: queue (nobody polled since the group was joined) comes first, and its revoke a moment after it.
LEAVE_SETTLE_S = 0.05


def leave_group(consumer: Consumer, seconds: float = LEAVE_WAIT_S, *, manual: bool = False,
                log: logging.Logger = _log) -> None:
    """Unsubscribe and poll until every rebalance the group still had for this consumer has run (its callbacks
    in this thread) and the assignment has stayed empty for ``LEAVE_SETTLE_S``, before ``close``.

    Call it for a consumer that ever subscribed, even one unsubscribed since: an assignment and its revoke may
    still wait in its queue. A ``manual`` assignment (``assign``) is not the group's: it is dropped first, or the
    wait would last ``seconds``. Records the polls return are dropped: they were not handed to anyone, and with
    ``enable.auto.offset.store=false`` (the engine and the bridge) nothing stores their offsets, so the group's
    next member reads them again. Call it from the thread that polls the consumer."""
    try:
        if manual:
            consumer.unassign()
        consumer.unsubscribe()
        deadline = time.monotonic() + seconds
        empty_since: float | None = None
        while (now := time.monotonic()) < deadline:
            consumer.poll(0.01)
            if consumer.assignment():
                empty_since = None
            elif empty_since is None:
                empty_since = now
            elif now - empty_since >= LEAVE_SETTLE_S:
                return
        log.warning("the consumer's assignment was not revoked within %.0f s; closing it anyway", seconds)
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
