"""The engine: runs every event source mapping, and changes them at runtime without a restart.

    engine = Engine(runtime, Store(path))
    engine.load(project.mappings)        # config-file mappings: stable UUIDs from the store
    engine.start()                       # also restarts mappings created earlier through the API
    engine.add(MappingConfig.from_dict(body))            -> EventSourceMapping (State "Creating")
    engine.update(uuid, {"BatchSize": 10})               -> EventSourceMapping (State "Updating")
    engine.remove(uuid)                                  -> EventSourceMapping (State "Deleting")
    engine.get(uuid), engine.list(function_name=None, event_source_arn=None)
    engine.stop()                        # graceful: in-flight batches finish and are committed

add/update/remove return at once with Lambda's transitional state and finish in the background
(Lambda answers 202 the same way); ``wait_for(uuid, states)`` waits for the outcome. Errors are
``triggerfish.errors`` classes (MappingNotFound, MappingConflict, MappingInUse) the control API maps to Lambda's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from triggerfish.errors import MappingConflict, MappingInUse, MappingNotFound, TriggerfishError
from triggerfish.esm import metrics
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.runner import MappingRunner
from triggerfish.esm.state import (
    CREATING,
    DELETING,
    DISABLED,
    DISABLING,
    ENABLED,
    ENABLING,
    UPDATING,
    USER_INITIATED,
    EventSourceMapping,
    MappingStatus,
)
from triggerfish.esm.store import Store
from triggerfish.functions.runtime import FunctionRuntime
from triggerfish.validation import InvalidParameterError

_log = logging.getLogger("triggerfish.esm")

_STOP_TIMEOUT_S = 60.0
_TRANSITIONAL = (CREATING, ENABLING, DISABLING, UPDATING, DELETING)


@dataclass
class _Entry:
    config: MappingConfig
    status: MappingStatus
    origin: str
    runner: MappingRunner | None = None
    lock: threading.Lock = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.lock = threading.Lock()


class Engine:
    """All mappings of one process. Thread-safe."""

    def __init__(self, runtime: FunctionRuntime, store: Store) -> None:
        self.runtime = runtime
        self.store = store
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.RLock()
        self._started = False
        self._stopping = False

    # -- loading -------------------------------------------------------------------------------
    def load(self, mappings: Iterable[MappingConfig]) -> list[EventSourceMapping]:
        """Register the config file's mappings (stable UUIDs) and the API-created ones in the store.

        Config rows this config does not name are kept: another process sharing the state file may
        run them, and a mapping's UUID is its consumer group; deleting the row would re-mint it on the
        next start and deliver the whole topic again.
        """
        for mapping in mappings:
            uuid = mapping.uuid or self.store.uuid_for(mapping.identity(), "config")
            mapping = mapping.replace(uuid=uuid)
            self.store.save_mapping(uuid, mapping.identity(), "config", mapping.to_dict())
            self._register(mapping, "config")
        for row in self.store.mappings():
            if row["origin"] != "config" and row["uuid"] not in self._entries:
                try:
                    mapping = MappingConfig.from_dict(row["config"])
                except TriggerfishError as exc:
                    _log.error("stored mapping %s is no longer valid (%s); skipped", row["uuid"], exc)
                    continue
                self._register(mapping.replace(uuid=row["uuid"]), row["origin"])
        return self.list()

    def _register(self, mapping: MappingConfig, origin: str) -> _Entry:
        status = MappingStatus(CREATING)
        previous = self.store.status(mapping.uuid or "")
        if previous is not None:
            old = MappingStatus.from_dict(previous[0])
            status.partitions = old.partitions
            for p in status.partitions.values():
                p.assigned = False
        entry = _Entry(mapping, status, origin)
        with self._lock:
            self._entries[mapping.uuid or ""] = entry
        return entry

    def start(self) -> None:
        """Start every enabled mapping."""
        with self._lock:
            self._started = True
            entries = list(self._entries.values())
        for entry in entries:
            with entry.lock:
                self._start_entry(entry)

    # -- runtime API (control API, tests) ------------------------------------------------------
    def add(self, mapping: MappingConfig, *, origin: str = "api") -> EventSourceMapping:
        """Create a mapping; returns at once in State ``Creating``."""
        if mapping.function not in self.runtime:
            raise InvalidParameterError("FunctionName", f"Function does not exist: {mapping.function_name}",
                                        "create the function first")
        with self._lock:
            for other in self._entries.values():
                if other.config.identity() == mapping.identity():
                    raise MappingConflict(
                        f'An event source mapping with event source ("{mapping.event_source_arn or ",".join(mapping.bootstrap_servers)}"), '
                        f'function ("{other.config.function_name}"), topics ("{mapping.topic}") already exists. '
                        f"Please update or delete the existing mapping with UUID {other.config.uuid}"
                    )
            gid = mapping.consumer_group_id
            if gid and any(o.config.consumer_group_id == gid for o in self._entries.values()):
                raise MappingConflict(f"ConsumerGroupId {gid} is already used by another event source mapping")
            uuid = mapping.uuid or self.store.uuid_for(f"new:{time.time_ns()}", origin)
            mapping = mapping.replace(uuid=uuid)
            self.store.save_mapping(uuid, mapping.identity(), origin, mapping.to_dict())
            entry = self._register(mapping, origin)
            self._save(entry)
            view = self._view(entry)
        if self._started:
            self._background(entry, lambda: self._start_entry(entry))
        return view

    def update(self, uuid: str, changes: dict[str, Any]) -> EventSourceMapping:
        """Apply an UpdateEventSourceMapping body; returns at once (``Updating``/``Enabling``/``Disabling``)."""
        entry = self._entry(uuid)
        # A mapping retrying a failed setup (Enabling + PROBLEM) stays updatable: an update is how
        # the PROBLEM gets fixed (new secret, Enabled=false), as with Lambda.
        retrying_setup = entry.status.state == ENABLING and entry.status.problem is not None
        if entry.status.state in _TRANSITIONAL and not retrying_setup:
            raise MappingInUse(
                f"Cannot update the event source mapping because it is in use (State {entry.status.state}). "
                "Retry when it is Enabled or Disabled."
            )
        new = entry.config.updated(changes)
        if new.function != entry.config.function and new.function not in self.runtime:
            raise InvalidParameterError("FunctionName", f"Function does not exist: {new.function_name}",
                                        "create the function first")
        only_enabled = {k for k in changes if changes[k] != entry.config.to_dict().get(k)} <= {"Enabled"}
        if only_enabled and new.enabled != entry.config.enabled:
            state = ENABLING if new.enabled else DISABLING
        else:
            state = UPDATING
        entry.status.set_state(state)
        with self._lock:
            entry.config = new
            self.store.save_mapping(uuid, new.identity(), entry.origin, new.to_dict())
            self._save(entry)
            view = self._view(entry)

        def apply() -> None:
            self._stop_entry(entry)
            self._start_entry(entry)

        self._background(entry, apply)
        return view

    def remove(self, uuid: str) -> EventSourceMapping:
        """Delete a mapping; returns at once in State ``Deleting``."""
        entry = self._entry(uuid)
        if entry.status.state == DELETING:
            raise MappingInUse("The event source mapping is already being deleted.")
        entry.status.set_state(DELETING)
        self._save(entry)
        view = self._view(entry)

        def delete() -> None:
            self._stop_entry(entry)
            with self._lock:
                self._entries.pop(uuid, None)
            self.store.delete_mapping(uuid)
            metrics.forget(uuid, entry.config.function)

        self._background(entry, delete)
        return view

    def not_ready(self) -> list[dict[str, str]]:
        """The enabled mappings that cannot poll (starting, failing setup, brokers unreachable, stopped
        on an error), with their State and LastProcessingResult; empty when the engine is ready."""
        with self._lock:
            entries = list(self._entries.values())
        out = []
        for e in entries:
            state = e.status.state
            if not e.config.enabled or state in (DISABLING, DISABLED, UPDATING, DELETING):
                continue  # user-initiated: not a reason to take the instance out of service
            runner = e.runner
            if state == ENABLED and runner is not None and runner.polling:
                continue
            out.append({"UUID": e.config.uuid or "", "State": state,
                        "LastProcessingResult": e.status.last_processing_result})
        return out

    def get(self, uuid: str) -> EventSourceMapping:
        return self._view(self._entry(uuid))

    def list(self, function_name: str | None = None, event_source_arn: str | None = None) -> list[EventSourceMapping]:
        with self._lock:
            entries = list(self._entries.values())
        out = []
        for e in entries:
            if function_name is not None and e.config.function != _bare(function_name):
                continue
            if event_source_arn is not None and e.config.event_source_arn != event_source_arn:
                continue
            out.append(self._view(e))
        return out

    def wait_for(self, uuid: str, states: Iterable[str] = (ENABLED, DISABLED), timeout: float = 30.0) -> EventSourceMapping | None:
        """Wait until a mapping reaches one of ``states`` (None once it is deleted)."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                entry = self._entries.get(uuid)
            if entry is None:
                return None
            if entry.status.state in wanted:
                return self._view(entry)
            time.sleep(0.05)
        raise TimeoutError(f"mapping {uuid} did not reach {sorted(wanted)} within {timeout} s")

    def runner(self, uuid: str) -> MappingRunner | None:
        return self._entry(uuid).runner

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> None:
        """Stop all mappings gracefully and in parallel."""
        with self._lock:
            self._stopping = True
            entries = list(self._entries.values())
        runners = [e.runner for e in entries if e.runner is not None]
        for r in runners:
            r._stop.set()
        deadline = time.monotonic() + timeout
        for r in runners:
            r.stop(max(0.0, deadline - time.monotonic()))
        for e in entries:
            e.runner = None
            self._save(e)

    # -- internals -----------------------------------------------------------------------------
    def _entry(self, uuid: str) -> _Entry:
        with self._lock:
            entry = self._entries.get(uuid)
        if entry is None:
            raise MappingNotFound(uuid)
        return entry

    def _view(self, entry: _Entry) -> EventSourceMapping:
        # A snapshot: an API response must show the state at the time of the call.
        return EventSourceMapping(entry.config, MappingStatus.from_dict(entry.status.to_dict()), entry.origin)

    def _save(self, entry: _Entry) -> None:
        if entry.config.uuid:
            try:
                self.store.save_status(entry.config.uuid, entry.status.to_dict())
            except Exception as exc:  # noqa: BLE001 - status is advisory; never stop processing for it
                _log.warning("could not save status of %s: %s", entry.config.uuid, exc)

    def _background(self, entry: _Entry, work: Callable[[], None]) -> None:
        def run() -> None:
            with entry.lock:
                try:
                    work()
                except Exception:  # noqa: BLE001
                    _log.exception("mapping %s: state change failed", entry.config.uuid)

        threading.Thread(target=run, name=f"esm-change-{entry.config.uuid}", daemon=True).start()

    def _start_entry(self, entry: _Entry) -> None:
        if self._stopping:
            return
        if not entry.config.enabled:
            entry.status.set_state(DISABLED, USER_INITIATED)
            self._save(entry)
            return
        runner = MappingRunner(entry.config, self.runtime, entry.status, save_status=lambda: self._save(entry))
        entry.runner = runner
        # Enabling until the runner's setup stages pass; the runner then sets Enabled itself.
        entry.status.set_state(ENABLING, USER_INITIATED)
        self._save(entry)
        runner.start()
        _log.info("mapping %s: %s <- %s (group %s) starting", entry.config.uuid, entry.config.function,
                 entry.config.topic, entry.config.group_id)

    def _stop_entry(self, entry: _Entry) -> None:
        runner, entry.runner = entry.runner, None
        if runner is not None:
            runner.stop(_STOP_TIMEOUT_S)


def _bare(function_name: str) -> str:
    if function_name.startswith("arn:"):
        parts = function_name.split(":")
        return parts[6] if len(parts) > 6 else parts[-1]
    return function_name.split(":")[0]
