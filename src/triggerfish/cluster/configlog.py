"""Mapping definitions in one total order on the compacted topic ``triggerfish.<Name>.configs``.

Every replica reads the topic (partition 0, read_committed, from the beginning) and applies each record
through ``on_change`` in offset order; a record's offset is its entry's ``version``. A write is a
compare-and-set: all replicas' writers share ONE transactional.id, so ``init_transactions`` fences
whichever other writer is open; after it, every earlier transaction is decided, the reader catches up
to the end, ``check`` judges the complete state while the fence is held, and the record commits unless
another replica's writer fenced this one meanwhile (then everything is retried, the check included).
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from triggerfish.cluster.clients import Health, error_of, log, refusal, unavailable, writer_settings
from triggerfish.cluster.config import ClusterConfig
from triggerfish.cluster.reader import LogReader
from triggerfish.cluster.topics import ensure_topics, precreate_commands
from triggerfish.errors import ClusterError, UnavailableError
from triggerfish.esm.catalog import Definition

KEY_PREFIX = "mapping/"
#: Resource tags (TagResource) share the log: one record per tagged ARN, never a mapping definition.
TAGS_PREFIX = "tags/"
WRITE_TIMEOUT_S = 15.0
ATTEMPTS = 6
TRANSACTION_TIMEOUT_MS = 10_000  # a writer that dies mid-write blocks read_committed readers at most this long


@dataclass(frozen=True)
class Entry(Definition):
    """One mapping definition as the log holds it; ``version`` is the record's offset, ``writer`` the
    replica that wrote it, ``time`` when (its clock)."""

    writer: str
    time: float


def _accept(entries: Mapping[str, Entry]) -> None:
    """The default check: write whatever the state."""


class _Entries:
    """The applied state: uuid -> Entry, fed by the reader thread."""

    def __init__(self, on_change: Callable[[str, Entry | None], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._tags: dict[str, dict[str, str]] = {}
        self._on_change = on_change

    def copy(self) -> dict[str, Entry]:
        with self._lock:
            return dict(self._entries)

    def tags(self, arn: str) -> dict[str, str] | None:
        with self._lock:
            found = self._tags.get(arn)
        return dict(found) if found is not None else None

    def _apply_tags(self, arn: str, value: bytes | None) -> None:
        try:
            tags = None if value is None else {str(k): str(v) for k, v in json.loads(value)["tags"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("configs record with tags for %s is not a tag set; skipped", arn[:200])
            return
        with self._lock:
            if tags is None:
                self._tags.pop(arn, None)
            else:
                self._tags[arn] = tags

    def apply(self, msg: Message) -> None:
        key = (msg.key() or b"").decode("utf-8", "replace")
        if key.startswith(TAGS_PREFIX):
            self._apply_tags(key[len(TAGS_PREFIX):], msg.value())
            return
        if not key.startswith(KEY_PREFIX):
            log.warning("configs record at offset %s has key %r; skipped", msg.offset(), key[:80])
            return
        uuid = key[len(KEY_PREFIX):]
        value = msg.value()
        entry: Entry | None = None
        if value is not None:
            try:
                data = json.loads(value)
                entry = Entry(uuid=uuid, config=dict(data["config"]), version=msg.offset() or 0,
                              origin=str(data.get("origin", "api")), writer=str(data.get("writer", "")),
                              time=float(data.get("time", 0.0)))
            except (ValueError, KeyError, TypeError):
                log.warning("configs record at offset %s for %s is not a mapping definition; skipped",
                            msg.offset(), uuid)
                return
        with self._lock:
            if entry is None and uuid not in self._entries:
                return  # a tombstone for a definition compaction already removed
            if entry is None:
                del self._entries[uuid]
            else:
                self._entries[uuid] = entry
        if self._on_change is not None:
            self._on_change(uuid, entry)


class ConfigLog:
    """This replica's copy of the cluster's mapping definitions, and the one way to change them.

    ``on_change(uuid, entry or None)`` runs on the reader thread, once per record, in offset order,
    for this replica's writes as for everyone else's; it must not call ``write`` (that waits for it).
    """

    def __init__(self, cfg: ClusterConfig, on_change: Callable[[str, Entry | None], None]) -> None:
        self.cfg = cfg
        self._entries = _Entries(on_change)
        self._reader = LogReader(cfg, cfg.configs_topic, self._entries.apply,
                                 commands=lambda: precreate_commands(cfg), transactional=True)
        self._write_lock = threading.Lock()  # no point fencing our own writes
        self._started = False
        #: Attempts another replica's writer fenced (each was retried from the start).
        self.fenced = 0

    def start(self, timeout: float = 30.0) -> None:
        """Create/check the topics, start the reader, return once it applied everything committed."""
        deadline = time.monotonic() + timeout
        ensure_topics(self.cfg, timeout=min(timeout, 15.0))
        self._reader.start(max(1.0, deadline - time.monotonic()))
        self._started = True

    def stop(self) -> None:
        self._started = False
        self._reader.stop()

    def entries(self) -> dict[str, Entry]:
        return self._entries.copy()

    def problem(self) -> str | None:
        """None when the reader is connected and caught up; else why (for /readyz)."""
        if not self._started:
            return "the cluster's config log is not started"
        return self._reader.problem()

    def tags(self, arn: str) -> dict[str, str] | None:
        """The tags last written for ``arn``, or None when none ever were."""
        return self._entries.tags(arn)

    def write_tags(self, arn: str, tags: dict[str, str]) -> int:
        """Record ``arn``'s whole tag set; returns once this replica has read it back."""
        value = json.dumps({"tags": tags, "writer": self.cfg.replica_id, "time": time.time()},
                           separators=(",", ":")).encode()
        return self._write(f"{TAGS_PREFIX}{arn}".encode(), value, _accept, arn)

    def write(self, uuid: str, config: dict[str, Any] | None,
              check: Callable[[Mapping[str, Entry]], None] = _accept) -> int:
        """Write ``config`` for ``uuid`` (None: delete) if ``check(entries)`` accepts the latest state.

        Returns the record's offset (the new version) once ``on_change`` has run for it here. ``check``
        raises to refuse (MappingConflict, ConcurrentChange ...); UnavailableError when the state Kafka
        cannot take the write within WRITE_TIMEOUT_S.
        """
        key = f"{KEY_PREFIX}{uuid}".encode()
        value = None if config is None else json.dumps(
            {"uuid": uuid, "config": config, "origin": "api", "writer": self.cfg.replica_id, "time": time.time()},
            separators=(",", ":")).encode()
        return self._write(key, value, check, uuid)

    def _write(self, key: bytes, value: bytes | None, check: Callable[[Mapping[str, Entry]], None],
               uuid: str) -> int:
        deadline = time.monotonic() + WRITE_TIMEOUT_S
        with self._write_lock:
            for attempt in range(ATTEMPTS):
                try:
                    offset = self._attempt(key, value, check, deadline)
                except _Fenced as fenced:
                    self.fenced += 1
                    if attempt == ATTEMPTS - 1 or time.monotonic() > deadline:
                        raise UnavailableError(f"cluster {self.cfg.name}: the change to {uuid} was interrupted "
                                               f"{ATTEMPTS} times by other replicas' writes ({fenced}); "
                                               "retry") from None
                    time.sleep(random.uniform(0.02, 0.15) * (attempt + 1))
                    continue
                if not self._reader.wait_until({0: offset + 1}, max(0.5, deadline - time.monotonic())):
                    raise unavailable(self.cfg, f"wrote {uuid} at offset {offset} but could not read it back",
                                      self._reader.problem())
                return offset
        raise AssertionError("unreachable")

    def _attempt(self, key: bytes, value: bytes | None, check: Callable[[Mapping[str, Entry]], None],
                 deadline: float) -> int:
        """One fenced compare-and-set; _Fenced when another writer took over, to be retried."""
        if not self._reader.running:
            raise ClusterError("configs", "the config log is not running", "start() it before writing")
        health = Health()
        producer = Producer(writer_settings(self.cfg, health, **{
            "transactional.id": self.cfg.writer_id, "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            "client.id": f"triggerfish-{self.cfg.replica_id}-writer", "linger.ms": 0,
            # connect to every broker at once: with sparse connections librdkafka finds the transaction
            # coordinator only on a 500 ms timer (measured: init 500 ms -> 5 ms)
            "enable.sparse.connections": False}))
        delivered: list[Message] = []
        in_transaction = committing = False
        try:
            self._init(producer, health, deadline)
            # Fenced: every earlier transaction is decided, so the end offset is final; read up to it.
            end = self._reader.end_offsets(self._left(deadline))
            if not self._reader.wait_until(end, self._left(deadline)):
                raise unavailable(self.cfg, "cannot read the config log to its end", self._reader.problem())
            check(self._entries.copy())
            producer.begin_transaction()
            in_transaction = True
            with _fatal_as_kafka_error():
                producer.produce(self.cfg.configs_topic, value, key, partition=0,
                                 on_delivery=lambda err, msg: delivered.append(msg))
                if producer.flush(self._left(deadline)) > 0:
                    raise unavailable(self.cfg, "the config record was not delivered", health.reason())
                committing = True
                producer.commit_transaction(self._left(deadline))
            in_transaction = False
        except KafkaException as exc:
            with contextlib.suppress(KafkaException):  # a fatal producer raises its error again
                producer.poll(0)  # serves error_cb: why it timed out (refused, TLS, SASL) arrives there
            err = error_of(exc)
            if err is None:
                raise
            # a missing ACL is fatal for the producer too: tell it apart from being fenced
            commands = precreate_commands(self.cfg)
            refused = refusal(self.cfg, "configs", err, commands) or (
                refusal(self.cfg, "configs", health.error, commands) if health.error is not None else None)
            if refused is not None:
                raise refused from None
            if err.fatal() or err.txn_requires_abort() or err.code() in _FENCING:
                if in_transaction and not err.fatal():
                    _quietly(producer.abort_transaction, 2.0)
                raise _Fenced(err.name()) from None
            # a commit that timed out may still complete: the caller must look before retrying
            what = "the config change may not have been written (get it again)" if committing else \
                "the config change was not written"
            raise unavailable(self.cfg, what, health.reason() or err.str()) from None
        except BaseException:
            if in_transaction:
                _quietly(producer.abort_transaction, 2.0)
            raise
        finally:
            _close(producer)
        msg = delivered[0] if delivered else None
        if msg is None or msg.error() is not None:
            raise unavailable(self.cfg, "the config record was not delivered",
                              str(msg.error()) if msg is not None else health.reason())
        offset = msg.offset()
        assert offset is not None
        return offset

    def _init(self, producer: Producer, health: Health, deadline: float) -> None:
        # The first init on a fresh broker may find the transaction coordinator loading: retriable.
        while True:
            try:
                producer.init_transactions(self._left(deadline))
                return
            except KafkaException as exc:
                err = error_of(exc)
                if err is not None and err.retriable() and time.monotonic() + 0.2 < deadline and \
                        err.code() != KafkaError._TIMED_OUT:
                    time.sleep(0.1)
                    continue
                raise

    @staticmethod
    def _left(deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "timed out"))
        return left


_FENCING = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH,
            KafkaError.CONCURRENT_TRANSACTIONS, KafkaError.INVALID_TXN_STATE}


class _Fenced(Exception):
    """Another replica's writer took over the transactional.id during this attempt."""


@contextlib.contextmanager
def _fatal_as_kafka_error() -> Iterator[None]:
    """Fenced mid-transaction, the client runs the delivery callback while raising the fatal
    KafkaException, which Python reports as a SystemError caused by it: give back the KafkaException."""
    try:
        yield
    except SystemError as exc:
        if isinstance(exc.__cause__, KafkaException):
            raise exc.__cause__ from None
        raise


def _close(producer: Producer) -> None:
    """Close without waiting on what an unreachable broker will never take."""
    with warnings.catch_warnings():  # "abort_transaction failed during close" of a fenced producer
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            producer.purge()
        except KafkaException:
            pass
        producer.close()


def _quietly(call: Callable[[float], Any], timeout: float) -> None:
    try:
        call(timeout)
    except KafkaException:
        pass


def read_configs(cfg: ClusterConfig, timeout: float = 15.0) -> dict[str, Entry]:
    """The cluster's mapping definitions now (for `triggerfish status`); never creates a topic."""
    entries = _Entries()
    reader = LogReader(cfg, cfg.configs_topic, entries.apply, commands=lambda: precreate_commands(cfg),
                       transactional=True)
    reader.start(timeout)
    reader.stop()
    return entries.copy()
