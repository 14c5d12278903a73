"""Everyone's records on the status topic, as one replica has read them: who is live, and each mapping's view.

Keys: ``replica/<replica id>`` (a heartbeat) and ``status/<uuid>/<replica id>`` (that replica's status of
the mapping); a null value deletes. A replica is live while its last heartbeat's timestamp (the broker's
LogAppendTime) is within the session timeout of now. Reading back ``own``'s heartbeats (a replica's
own, milliseconds after the broker stamped them) tells how far this host's clock is off the broker's.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from confluent_kafka import Message

from triggerfish.cluster import fleet
from triggerfish.cluster.clients import log

REPLICA_PREFIX = "replica/"
STATUS_PREFIX = "status/"


def replica_key(replica_id: str) -> bytes:
    return f"{REPLICA_PREFIX}{replica_id}".encode()


def status_key(uuid: str, replica_id: str) -> bytes:
    return f"{STATUS_PREFIX}{uuid}/{replica_id}".encode()


class Snapshot:
    """The status topic's latest record per key, and the views the CLI and API show (thread-safe)."""

    def __init__(self, session_timeout_s: float, *, own: tuple[str, float] | None = None) -> None:
        """``own``: (replica id, started) of the board reading this, to measure the clock skew."""
        self.session_timeout_s = session_timeout_s
        self._own = own
        self._skew = 0.0
        self._lock = threading.Lock()
        self._heartbeats: dict[str, tuple[dict[str, Any], float]] = {}   # replica -> (value, time)
        self._statuses: dict[str, dict[str, dict[str, Any]]] = {}        # uuid -> replica -> value + "time"

    def apply(self, msg: Message) -> None:
        key = (msg.key() or b"").decode("utf-8", "replace")
        _, stamp = msg.timestamp()
        when = stamp / 1000.0 if stamp and stamp > 0 else time.time()
        raw = msg.value()
        try:
            value = None if raw is None else json.loads(raw)
        except ValueError:
            log.warning("status record %r is not JSON; skipped", key[:80])
            return
        if value is not None and not isinstance(value, dict):
            return
        with self._lock:
            if key.startswith(REPLICA_PREFIX):
                rid = key[len(REPLICA_PREFIX):]
                if value is None:
                    self._heartbeats.pop(rid, None)
                else:
                    self._heartbeats[rid] = (value, when)
                    if self._own == (rid, value.get("started")) and stamp and stamp > 0:
                        self._skew = time.time() - when
            elif key.startswith(STATUS_PREFIX) and key.count("/") >= 2:
                uuid, rid = key[len(STATUS_PREFIX):].split("/", 1)
                if value is None:
                    self._statuses.get(uuid, {}).pop(rid, None)
                    if not self._statuses.get(uuid, True):
                        del self._statuses[uuid]
                else:
                    self._statuses.setdefault(uuid, {})[rid] = {**value, "time": when}

    def now(self) -> float:
        """Now on the broker's clock, as well as this host can tell."""
        return time.time() - self._skew

    def _live(self) -> dict[str, tuple[dict[str, Any], float]]:  # with self._lock held
        now = self.now()
        return {rid: hb for rid, hb in self._heartbeats.items() if fleet.is_live(hb[1], now, self.session_timeout_s)}

    @property
    def replicas(self) -> list[dict[str, Any]]:
        """The live replicas: their heartbeat values plus ``heartbeat``, its age in seconds."""
        now = self.now()
        with self._lock:
            live = self._live()
        return [{**value, "heartbeat": round(max(0.0, now - when), 3)} for _, (value, when) in sorted(live.items())]

    def fleet(self, uuid: str, *, enabled: bool = True) -> dict[str, Any] | None:
        """The mapping's fleet status over the live replicas; None when no live replica reports it."""
        with self._lock:
            live = self._live()
            statuses = {rid: dict(rec) for rid, rec in self._statuses.get(uuid, {}).items() if rid in live}
        if not statuses:
            return None
        return fleet.merge(statuses, {rid: live[rid][0] for rid in statuses}, enabled=enabled)

    def mappings(self) -> dict[str, dict[str, Any]]:
        """uuid -> the latest summary a live replica reports for it."""
        with self._lock:
            live = self._live()
            out: dict[str, tuple[float, dict[str, Any]]] = {}
            for uuid, by_replica in self._statuses.items():
                for rid, rec in by_replica.items():
                    if rid in live and (uuid not in out or rec["time"] > out[uuid][0]):
                        out[uuid] = (rec["time"], dict(rec.get("summary") or {}))
        return {uuid: summary for uuid, (_, summary) in sorted(out.items())}

    def keys_of(self, replica_id: str) -> list[bytes]:
        """The keys this replica has records under (a previous run's leftovers, at start)."""
        with self._lock:
            keys = [status_key(uuid, replica_id) for uuid, by in self._statuses.items() if replica_id in by]
            if replica_id in self._heartbeats:
                keys.append(replica_key(replica_id))
        return keys
