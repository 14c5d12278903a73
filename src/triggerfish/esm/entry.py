"""One mapping as the engine holds it, and where its status is written.

An :class:`Entry` is a mapping's definition, live status, origin (config file or API), catalog version,
runner and the lock its state changes take. :meth:`Entry.save` writes its status to the store and, in a
fleet, to the status board (a :class:`StatusSink`) every replica reads.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from triggerfish.esm.catalog import summary
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.runner import MappingRunner
from triggerfish.esm.state import MappingStatus
from triggerfish.esm.store import Store

_log = logging.getLogger("triggerfish.esm")

#: An unchanged status is written again after this long (the runners refresh it every second; writing 50
#: unchanged rows a second was an idle engine's busiest SQLite work), so ``StatusUpdated`` stays recent.
_RESAVE_S = 15.0


class StatusSink(Protocol):
    """Where a fleet's replicas publish each mapping's status (``triggerfish.cluster.board.StatusBoard``)."""

    def publish(self, uuid: str, summary: dict[str, Any], status: dict[str, Any]) -> None: ...
    def forget(self, uuid: str) -> None: ...


@dataclass
class Entry:
    config: MappingConfig
    status: MappingStatus
    origin: str
    version: int = 0
    runner: MappingRunner | None = None
    lock: threading.Lock = None  # type: ignore[assignment]
    #: What ``save`` last wrote (status, config version) and when (monotonic).
    saved: tuple[dict[str, Any], MappingConfig] | None = None
    saved_at: float = 0.0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def save(self, store: Store, sink: StatusSink | None) -> None:
        """Write the status when it changed (or ``_RESAVE_S`` after the last write); never raises."""
        uuid = self.config.uuid
        if not uuid:
            return
        status = self.status.to_dict()
        now = time.monotonic()
        if (self.saved is not None and self.saved[1] is self.config and self.saved[0] == status
                and now - self.saved_at < _RESAVE_S):
            return
        self.saved, self.saved_at = (status, self.config), now
        try:
            store.save_status(uuid, status)
            if sink is not None:
                sink.publish(uuid, summary(self.config, self.origin), status)
        except Exception as exc:  # noqa: BLE001 - status is advisory; never stop processing for it
            _log.warning("could not save status of %s: %s", uuid, exc)
