"""Which processes use a state file: each running engine keeps a row with a heartbeat.

Several ``triggerfish run`` processes may share one state file (the same config on several
machines, or different configs). Each records itself (host, pid, start time, config, control API,
the mappings it runs) and refreshes the row every few seconds, so ``triggerfish status`` can list
every live process and say which runs each mapping, and a process starting on a file already in use
says so in its log.

    presence = Presence(store)
    others = presence.join(config="a.yaml", api=None, mappings=lambda: ["uuid", ...])
    live_processes(store)                 -> [{"id", "host", "pid", "started", "heartbeat", ...}]
    presence.leave()                      # on a clean stop

A process is live while its heartbeat is fresh and, on this host, its pid exists: a SIGKILLed
engine disappears at once here, and within ``STALE_S`` when seen from another host.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from triggerfish.esm.store import Store

_log = logging.getLogger("triggerfish.esm")

HEARTBEAT_S = 2.0
#: A row whose heartbeat is older is not a live process (a few missed beats: a busy disk, a GC pause).
STALE_S = 15.0
#: Rows of dead processes are forgotten after this long (they are not shown meanwhile either).
_FORGET_S = 3600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_live(row: dict[str, Any], *, now: float | None = None, host: str | None = None) -> bool:
    """A process row is live: a fresh heartbeat and, when on this host, a running pid."""
    now = time.time() if now is None else now
    if now - float(row["heartbeat"]) > STALE_S:
        return False
    return row["host"] != (host or socket.gethostname()) or _pid_alive(int(row["pid"]))


def live_processes(store: Store) -> list[dict[str, Any]]:
    """The processes using the state file now, oldest first."""
    return [row for row in store.processes() if is_live(row)]


class Presence:
    """This process's row in the state file; ``join`` starts the heartbeat, ``leave`` removes the row."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started = time.time()
        self.id = f"{self.host}:{self.pid}:{int(self.started * 1000)}"
        self._info: Callable[[], dict[str, Any]] = dict
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def join(self, *, config: str | None, api: str | None,
             mappings: Callable[[], list[str]] = list) -> list[dict[str, Any]]:
        """Record this process and start the heartbeat; returns the other live processes (also logged)."""
        self._info = lambda: {"config": config, "api": api, "mappings": mappings()}
        self._forget_dead()
        others = [row for row in live_processes(self._store) if row["id"] != self.id]
        self._store.put_process(self.id, self.host, self.pid, self.started, self._info())
        for other in others:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(other["started"]))
            _log.warning(
                "state file %s is also used by another live engine: pid %s on %s since %s (config %s). Mappings "
                "with the same event source, function and topic share one UUID, hence one consumer group; "
                "`triggerfish status` shows every process", self._store.path, other["pid"], other["host"], since,
                other.get("config") or "-")
        self._thread = threading.Thread(target=self._beat, name="triggerfish-heartbeat", daemon=True)
        self._thread.start()
        return others

    def leave(self) -> None:
        """Stop the heartbeat and remove this process's row (no-op if it never joined)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(HEARTBEAT_S * 2)
        self._thread = None
        try:
            self._store.remove_process(self.id)
        except Exception as exc:  # noqa: BLE001 - the row goes stale by itself
            _log.debug("could not remove process row %s: %s", self.id, exc)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if not self._store.beat(self.id, self._info()):  # removed by someone: record again
                    self._store.put_process(self.id, self.host, self.pid, self.started, self._info())
            except Exception as exc:  # noqa: BLE001 - presence is advisory; never stop the engine for it
                _log.warning("could not refresh this process's row in the state file: %s", exc)

    def _forget_dead(self) -> None:
        now = time.time()
        for row in self._store.processes():
            dead_here = row["host"] == self.host and not _pid_alive(int(row["pid"]))
            if dead_here or now - float(row["heartbeat"]) > _FORGET_S:
                self._store.remove_process(row["id"])
