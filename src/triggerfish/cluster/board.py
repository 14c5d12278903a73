"""This replica's heartbeat and mapping statuses on ``triggerfish.<Name>.status``, and everyone's read back.

Every HEARTBEAT_S a thread produces ``replica/<id>`` plus the statuses that changed since they were
last sent (an unchanged status stays in the compacted topic: liveness comes from the heartbeat, so
re-sending it would only cost bytes). A new mapping, or a change of State or LastProcessingResult, is
sent at once: those are rare, and what a user waits for after a create or an update. A clean ``stop`` deletes this replica's keys (tombstones), so it
leaves the fleet at once; a killed replica leaves when its heartbeat is older than the session timeout.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from triggerfish.cluster.clients import Health, settings, unavailable
from triggerfish.cluster.config import ClusterConfig
from triggerfish.cluster.reader import LogReader
from triggerfish.cluster.snapshot import Snapshot, replica_key, status_key
from triggerfish.cluster.topics import ensure_topics, precreate_commands

HEARTBEAT_S = 2.0
MIN_GAP_S = 0.25


def _encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str).encode()


class StatusBoard:
    """Publishes this replica's view and reads the fleet's (``replicas``, ``fleet``, ``mappings``)."""

    def __init__(self, cfg: ClusterConfig, *, api: str | None = None) -> None:
        self.cfg = cfg
        self.api = api
        self._started = time.time()
        self._snapshot = Snapshot(cfg.session_timeout_s, own=(cfg.replica_id, self._started))
        self._reader = LogReader(cfg, cfg.status_topic, self._snapshot.apply, commands=lambda: precreate_commands(cfg))
        self._health = Health()
        self._lock = threading.Lock()
        self._published: dict[str, bytes] = {}   # uuid -> latest status record value
        self._sent: dict[str, bytes] = {}        # uuid -> the value last handed to the producer
        self._forgotten: set[str] = set()
        self._headline: dict[str, tuple[Any, Any]] = {}   # uuid -> (State, LastProcessingResult) last published
        self._wake = threading.Event()
        self._producer: Producer | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._delivered = 0.0                    # monotonic time the last heartbeat was acknowledged
        #: Bytes of keys and values handed to the producer (before compression), for the budget.
        self.sent_bytes = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 30.0) -> None:
        """Read the board to its end, send the first heartbeat, start the heartbeat thread."""
        deadline = time.monotonic() + timeout
        ensure_topics(self.cfg, timeout=min(timeout, 15.0))
        self._reader.start(max(1.0, deadline - time.monotonic()))
        self._producer = Producer(settings(self.cfg, self._health, **{
            "client.id": f"triggerfish-{self.cfg.replica_id}-status", "linger.ms": 20,
            "compression.type": "lz4", "message.timeout.ms": 10_000}))
        try:
            for key in self._snapshot.keys_of(self.cfg.replica_id):  # a previous run's, under the same id
                self._produce(key, None)
            self._beat()
            if self._producer.flush(max(0.5, deadline - time.monotonic())) > 0 or not self._delivered:
                raise unavailable(self.cfg, "cannot publish this replica's heartbeat", self._health.reason())
        except BaseException:
            self._close_producer()
            self._reader.stop()
            raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="triggerfish-cluster-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Delete this replica's keys (it leaves the fleet at once), then close everything (idempotent)."""
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=HEARTBEAT_S + 5)
        if self._producer is not None:
            with self._lock:
                uuids = set(self._sent) | self._forgotten
                self._published.clear()
                self._sent.clear()
                self._forgotten.clear()
            for uuid in sorted(uuids):
                self._produce(status_key(uuid, self.cfg.replica_id), None)
            self._produce(replica_key(self.cfg.replica_id), None)
            self._producer.flush(5.0)
        self._close_producer()
        self._reader.stop()

    # ------------------------------------------------------------------ this replica's view

    def publish(self, uuid: str, summary: dict[str, Any], status: dict[str, Any]) -> None:
        """Set this replica's status of ``uuid`` (latest wins); sent with the next heartbeat if it changed."""
        value = _encode({"replica": self.cfg.replica_id, "summary": summary, "status": status})
        headline = (status.get("State"), status.get("LastProcessingResult"))
        with self._lock:
            self._published[uuid] = value
            self._forgotten.discard(uuid)
            if self._headline.get(uuid) != headline:
                self._headline[uuid] = headline
                self._wake.set()

    def forget(self, uuid: str) -> None:
        """This replica no longer runs ``uuid``: its status record is deleted with the next heartbeat."""
        with self._lock:
            self._published.pop(uuid, None)
            self._sent.pop(uuid, None)
            self._headline.pop(uuid, None)
            self._forgotten.add(uuid)
            self._wake.set()

    # ------------------------------------------------------------------ the fleet's view

    def replicas(self) -> list[dict[str, Any]]:
        return self._snapshot.replicas

    def fleet(self, uuid: str, *, enabled: bool = True) -> dict[str, Any] | None:
        return self._snapshot.fleet(uuid, enabled=enabled)

    def mappings(self) -> dict[str, dict[str, Any]]:
        return self._snapshot.mappings()

    def problem(self) -> str | None:
        """None while the board is read and heartbeats are delivered; else why (for /readyz)."""
        if self._thread is None:
            return "the cluster's status board is not started"
        late = time.monotonic() - self._delivered
        if late > 3 * HEARTBEAT_S:
            return (f"this replica's heartbeats have not reached the cluster's Kafka ({self.cfg.bootstrap}) "
                    f"for {late:.0f} s: {self._health.reason() or 'no answer'}")
        return self._reader.problem()

    # ------------------------------------------------------------------ the heartbeat thread

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(HEARTBEAT_S)
            self._wake.clear()
            if not self._stop.is_set():
                self._beat()
                self._stop.wait(MIN_GAP_S)  # a flapping status wakes us at most this often

    def _beat(self) -> None:
        with self._lock:
            changed = {u: v for u, v in self._published.items() if self._sent.get(u) != v}
            self._sent.update(changed)
            gone, self._forgotten = self._forgotten, set()
            mappings = sorted(self._published)
        for uuid in sorted(gone):
            self._produce(status_key(uuid, self.cfg.replica_id), None)
        for uuid, value in changed.items():
            self._produce(status_key(uuid, self.cfg.replica_id), value, uuid)
        self._produce(replica_key(self.cfg.replica_id), _encode({
            "id": self.cfg.replica_id, "host": socket.gethostname(), "pid": os.getpid(), "started": self._started,
            "api": self.api, "mappings": mappings}), heartbeat=True)
        if self._producer is not None:
            self._producer.poll(0)

    def _produce(self, key: bytes, value: bytes | None, uuid: str | None = None, *, heartbeat: bool = False) -> None:
        producer = self._producer
        if producer is None:
            return

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                self._health.on_error(err)
                if uuid is not None:
                    with self._lock:  # send it again with the next heartbeat
                        if self._sent.get(uuid) == value:
                            del self._sent[uuid]
                return
            if heartbeat:
                self._delivered = time.monotonic()
                self._health.clear()

        try:
            producer.produce(self.cfg.status_topic, value, key, on_delivery=delivered)
            self.sent_bytes += len(key) + len(value or b"")
        except BufferError:  # the local queue is full: Kafka has been away for long
            self._health.on_error(KafkaError(KafkaError._QUEUE_FULL))

    def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.purge()
            producer.close()


def read_board(cfg: ClusterConfig, timeout: float = 15.0) -> Snapshot:
    """The status topic read once to its end (for `triggerfish status`): ``.replicas``, ``.fleet(uuid)``,
    ``.mappings()``; never creates a topic."""
    snapshot = Snapshot(cfg.session_timeout_s)
    reader = LogReader(cfg, cfg.status_topic, snapshot.apply, commands=lambda: precreate_commands(cfg))
    reader.start(timeout)
    reader.stop()
    return snapshot
