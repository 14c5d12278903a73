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
``triggerfish.errors`` classes (MappingNotFound, MappingConflict, ConcurrentChange, MappingInUse) the
control API maps to Lambda's.

Definitions live in a catalog (``esm/catalog.py``): the SQLite state file by default, or a fleet's
configs topic. A change made here is written to the catalog and applied when the catalog hands it back
(``_apply``), exactly like a change another replica of the fleet made. Each mapping's status goes to the
store and, in a fleet, to the status board (``status_sink``) that every replica reads.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from triggerfish.errors import ConcurrentChange, MappingInUse, MappingNotFound
from triggerfish.esm import metrics
from triggerfish.esm.catalog import FILE, Catalog, LocalCatalog, Stored
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.definitions import api_defined, check_unique, mapping_of, transition, writer
from triggerfish.esm.entry import Entry, StatusSink
from triggerfish.esm.runner import MappingRunner
from triggerfish.esm.state import (
    CREATING,
    DELETING,
    DISABLED,
    DISABLING,
    ENABLED,
    ENABLING,
    TRANSITIONAL,
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


class Engine:
    """All mappings of one process. Thread-safe."""

    def __init__(self, runtime: FunctionRuntime, store: Store, *, catalog: Catalog | None = None,
                 status_sink: StatusSink | None = None) -> None:
        self.runtime = runtime
        self.store = store
        self.catalog: Catalog = catalog or LocalCatalog(store)
        self._status_sink = status_sink
        self._entries: dict[str, Entry] = {}
        self._lock = threading.RLock()
        self._started = False
        self._stopping = False
        self.catalog.subscribe(self._apply)

    # -- loading -------------------------------------------------------------------------------
    def load(self, mappings: Iterable[MappingConfig]) -> list[EventSourceMapping]:
        """Register the config file's mappings (stable UUIDs) and the API-created ones in the store.

        Config rows this config does not name are kept: another process sharing the state file may
        run them, and a mapping's UUID is its consumer group; deleting the row would re-mint it on the
        next start and deliver the whole topic again.
        """
        for mapping in mappings:
            self._register(mapping.replace(uuid=self.catalog.declare(mapping)), FILE)
        for uuid, stored in self.catalog.definitions().items():
            with self._lock:
                if uuid in self._entries:
                    continue  # already applied from the catalog's feed
                defined = mapping_of(uuid, stored)
                if defined is not None:
                    self._register(defined, stored.origin, stored.version)
        return self.list()

    def _register(self, mapping: MappingConfig, origin: str, version: int = 0) -> Entry:
        status = MappingStatus(CREATING)
        previous = self.store.status(mapping.uuid or "")
        if previous is not None:
            old = MappingStatus.from_dict(previous[0])
            status.partitions = old.partitions
            for p in status.partitions.values():
                p.assigned = False
        entry = Entry(mapping, status, origin, version)
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
    def add(self, mapping: MappingConfig) -> EventSourceMapping:
        """Create a mapping; returns at once in State ``Creating``."""
        if mapping.function not in self.runtime:
            raise InvalidParameterError("FunctionName", f"Function does not exist: {mapping.function_name}",
                                        "create the function first")
        mapping = mapping.replace(uuid=mapping.uuid or str(uuidlib.uuid4()))
        self._check_new(mapping, None)  # what this process knows: refuse before touching the catalog
        self.catalog.write(mapping.uuid or "", mapping.to_dict(), lambda defs: self._check_new(mapping, defs))
        return self._view(self._entry(mapping.uuid or ""), state=CREATING)

    def _check_new(self, mapping: MappingConfig, definitions: Mapping[str, Stored] | None) -> None:
        """Lambda's uniqueness rules against this process's mappings, or (with the catalog's current
        ``definitions``) against this process's file mappings and every definition made through an API."""
        with self._lock:
            known = {u: e.config for u, e in self._entries.items() if definitions is None or e.origin == FILE}
        known.update(api_defined(definitions or {}))
        check_unique(mapping, known)

    def update(self, uuid: str, changes: dict[str, Any]) -> EventSourceMapping:
        """Apply an UpdateEventSourceMapping body; returns at once (``Updating``/``Enabling``/``Disabling``)."""
        entry = self._entry(uuid)
        old, version = entry.config, entry.version
        # An invalid request is refused for what it asks whatever the state, so the caller is not told
        # to retry something that can never succeed.
        new = old.updated(changes)
        if new.function != old.function and new.function not in self.runtime:
            raise InvalidParameterError("FunctionName", f"Function does not exist: {new.function_name}",
                                        "create the function first")
        # A mapping retrying a failed setup (Enabling + PROBLEM) stays updatable: an update is how
        # the PROBLEM gets fixed (new secret, Enabled=false), as with Lambda.
        retrying_setup = entry.status.state == ENABLING and entry.status.problem is not None
        if entry.status.state in TRANSITIONAL and not retrying_setup:
            raise MappingInUse(
                f"Cannot update the event source mapping because it is in use (State {entry.status.state}). "
                "Retry when it is Enabled or Disabled."
            )
        state = transition(old, new)
        if entry.origin == FILE:  # the file owns it: a change made here lasts until the next start
            self.store.save_mapping(uuid, new.identity(), FILE, new.to_dict())
            self._change(entry, new, version)
        else:
            def check(definitions: Mapping[str, Stored]) -> None:
                current = definitions.get(uuid)
                if current is None:
                    raise MappingNotFound(uuid)
                if current.version != version:
                    raise ConcurrentChange(
                        f"The event source mapping {uuid} was changed by another request "
                        f"({writer(current)}) while this update was applied; get it again and retry.", uuid)

            self.catalog.write(uuid, new.to_dict(), check)
        return self._view(entry, state=state)

    def remove(self, uuid: str) -> EventSourceMapping:
        """Delete a mapping; returns at once in State ``Deleting``."""
        entry = self._entry(uuid)
        if entry.status.state == DELETING:
            raise MappingInUse("The event source mapping is already being deleted.")
        if entry.origin == FILE:
            self._delete(entry)
        else:
            def check(definitions: Mapping[str, Stored]) -> None:
                if uuid not in definitions:
                    raise MappingNotFound(uuid)

            self.catalog.write(uuid, None, check)
        return self._view(entry, state=DELETING)

    # -- changes coming back from the catalog (ours and other replicas') -------------------------
    def _apply(self, uuid: str, stored: Stored | None) -> None:
        with self._lock:
            entry = self._entries.get(uuid)
            if stored is None:
                if entry is not None and entry.status.state != DELETING:
                    self._delete(entry)
                return
            if entry is not None and entry.version == stored.version:
                return  # seen already (loaded, or our own write)
            mapping = mapping_of(uuid, stored)
            if mapping is None:
                return
            if entry is None:
                if mapping.function not in self.runtime:
                    _log.error("mapping %s invokes function %s, which this process does not run; it is not "
                               "started here (declare the function in this replica's config file)",
                               uuid, mapping.function)
                entry = self._register(mapping, stored.origin, stored.version)
                self._save(entry)
                if self._started and mapping.function in self.runtime:
                    self._background(entry, lambda: self._start_entry(entry))
                return
        self._change(entry, mapping, stored.version)

    def _change(self, entry: Entry, new: MappingConfig, version: int) -> None:
        entry.status.set_state(transition(entry.config, new))
        with self._lock:
            entry.config = new
            entry.version = version
            self._save(entry)
        if not self._started:
            return

        def apply() -> None:
            self._stop_entry(entry)
            self._start_entry(entry)

        self._background(entry, apply)

    def _delete(self, entry: Entry) -> None:
        uuid = entry.config.uuid or ""
        entry.status.set_state(DELETING)
        self._save(entry)

        def delete() -> None:
            self._stop_entry(entry)
            with self._lock:
                self._entries.pop(uuid, None)
            self.store.delete_mapping(uuid)
            if self._status_sink is not None:
                self._status_sink.forget(uuid)
            metrics.forget(uuid, entry.config.function)

        self._background(entry, delete)

    def not_ready(self) -> list[dict[str, str]]:
        """The enabled mappings that cannot poll (starting, failing setup, brokers unreachable, stopped
        on an error, consumer group not joined yet), with their State and LastProcessingResult; empty
        when the engine is ready."""
        with self._lock:
            entries = list(self._entries.values())
        out = []
        for e in entries:
            state = e.status.state
            if not e.config.enabled or state in (DISABLING, DISABLED, UPDATING, DELETING):
                continue  # user-initiated: not a reason to take the instance out of service
            runner = e.runner
            if state == ENABLED and runner is not None and runner.polling and runner.joined:
                continue
            out.append({"UUID": e.config.uuid or "", "State": state,
                        "LastProcessingResult": e.status.last_processing_result})
        return out

    def uuids(self) -> list[str]:
        """The UUIDs of this process's mappings (what its heartbeat records: no status is copied)."""
        with self._lock:
            return list(self._entries)

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
    def _entry(self, uuid: str) -> Entry:
        with self._lock:
            entry = self._entries.get(uuid)
        if entry is None:
            raise MappingNotFound(uuid)
        return entry

    def _view(self, entry: Entry, *, state: str | None = None) -> EventSourceMapping:
        # A snapshot: an API response must show the state at the time of the call (or the one Lambda
        # answers a change with, whatever the background work has reached since).
        status = MappingStatus.from_dict(entry.status.to_dict())
        if state is not None:
            status.state = state
        return EventSourceMapping(entry.config, status, entry.origin)

    def _save(self, entry: Entry) -> None:
        entry.save(self.store, self._status_sink)

    def _background(self, entry: Entry, work: Callable[[], None]) -> None:
        def run() -> None:
            with entry.lock:
                try:
                    work()
                except Exception:  # noqa: BLE001
                    _log.exception("mapping %s: state change failed", entry.config.uuid)

        threading.Thread(target=run, name=f"esm-change-{entry.config.uuid}", daemon=True).start()

    def _start_entry(self, entry: Entry) -> None:
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

    def _stop_entry(self, entry: Entry) -> None:
        runner, entry.runner = entry.runner, None
        if runner is not None:
            runner.stop(_STOP_TIMEOUT_S)


def _bare(function_name: str) -> str:
    if function_name.startswith("arn:"):
        parts = function_name.split(":")
        return parts[6] if len(parts) > 6 else parts[-1]
    return function_name.split(":")[0]
