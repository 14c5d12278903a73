"""Where mapping definitions are kept, and how a change to one reaches the engine.

A catalog is the engine's source of truth for the mappings created through the control API, and the
place that gives mappings declared in the config file their stable UUID (hence consumer group):

- ``LocalCatalog``: the SQLite state file, for one process (or a few sharing the file) — the default.
- ``triggerfish.cluster.catalog.ClusterCatalog``: the cluster's compacted configs topic on Kafka, shared
  by every replica of a fleet.

Both follow one rule: a change is *written* first and *applied* when it comes back. ``write`` checks the
change against the current definitions (``check`` raises to refuse it), records it, and calls every
subscriber with the stored definition before it returns — in a fleet, every replica's subscribers are
called with the same changes in the same order, whichever replica wrote them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from triggerfish.esm.config import MappingConfig
from triggerfish.esm.store import Store

#: Where a definition came from: the config file, or the control API.
FILE = "config"
API = "api"
#: The state file's key for a resource's tags (its small-values table).
_TAGS_KEY = "tags/"


def summary(mapping: MappingConfig, origin: str) -> dict[str, Any]:
    """What a fleet's status shows of a mapping without its full definition."""
    return {"FunctionName": mapping.function, "Topics": list(mapping.topics), "Origin": origin,
            "ConsumerGroupId": mapping.group_id, "Enabled": mapping.enabled}


class Stored(Protocol):
    """A definition as a catalog holds it; ``version`` grows with every change to it."""

    @property
    def uuid(self) -> str: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def version(self) -> int: ...
    @property
    def origin(self) -> str: ...


Check = Callable[[Mapping[str, Stored]], None]
OnChange = Callable[[str, "Stored | None"], None]


class Catalog(Protocol):
    def declare(self, mapping: MappingConfig) -> str:
        """The UUID of a mapping declared in the config file: the same on every start (and replica)."""
        ...

    def definitions(self) -> dict[str, Stored]:
        """The definitions created through the API, by UUID."""
        ...

    def write(self, uuid: str, config: dict[str, Any] | None, check: Check) -> None:
        """Record a create/update (``config``) or a delete (None) if ``check`` allows it; subscribers
        have been called with it when this returns."""
        ...

    def subscribe(self, on_change: OnChange) -> None: ...

    def tags(self, arn: str) -> dict[str, str] | None:
        """The tags TagResource/UntagResource last left on ``arn`` (a mapping's or a function's), or None
        when they never touched it (then the tags are the ones its definition declares)."""
        ...

    def put_tags(self, arn: str, tags: dict[str, str]) -> None:
        """Record ``arn``'s whole tag set, where every process (replica) reading this catalog sees it."""
        ...


@dataclass(frozen=True)
class Definition:
    """A stored definition (``Stored``) of the local catalog."""

    uuid: str
    config: dict[str, Any]
    version: int
    origin: str


class LocalCatalog:
    """Definitions in the SQLite state file. Writes are serialized by a lock: one process, one order."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._version = 0
        self._versions: dict[str, int] = {}  # written by this process; rows read from the file are 0
        self._subscribers: list[OnChange] = []

    def declare(self, mapping: MappingConfig) -> str:
        uuid = mapping.uuid or self._store.uuid_for(mapping.identity(), FILE)
        self._store.save_mapping(uuid, mapping.identity(), FILE, mapping.replace(uuid=uuid).to_dict())
        return uuid

    def definitions(self) -> dict[str, Stored]:
        return {d.uuid: d for d in self._rows() if d.origin != FILE}

    def write(self, uuid: str, config: dict[str, Any] | None, check: Check) -> None:
        with self._lock:
            check({d.uuid: d for d in self._rows()})
            self._version += 1
            self._versions[uuid] = self._version
            stored: Definition | None = None
            if config is None:
                self._store.delete_mapping(uuid)
                self._versions.pop(uuid, None)
            else:
                mapping = MappingConfig.from_dict(config)
                self._store.save_mapping(uuid, mapping.identity(), API, config)
                stored = Definition(uuid, config, self._version, API)
            for on_change in list(self._subscribers):
                on_change(uuid, stored)

    def subscribe(self, on_change: OnChange) -> None:
        self._subscribers.append(on_change)

    def tags(self, arn: str) -> dict[str, str] | None:
        found = self._store.get(_TAGS_KEY + arn)
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None

    def put_tags(self, arn: str, tags: dict[str, str]) -> None:
        self._store.put(_TAGS_KEY + arn, tags)

    def _rows(self) -> list[Definition]:
        return [Definition(r["uuid"], r["config"], self._versions.get(r["uuid"], 0), r["origin"])
                for r in self._store.mappings()]
