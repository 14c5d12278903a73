"""``ClusterCatalog``: a fleet's mapping definitions, kept in the cluster's configs topic.

The engine's ``Catalog`` (``esm/catalog.py``) for cluster mode. Mappings created through the control API
of any replica are written to the configs topic (``ConfigLog``: one partition, one total order) and applied
by every replica as it reads them back. Mappings declared in the config file are not written anywhere:
every replica reads the same file, and each one's UUID (its consumer group) is derived from the cluster
name and the mapping's identity, so every replica, and every restart, agrees on it.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from triggerfish.cluster.config import ClusterConfig
from triggerfish.cluster.configlog import ConfigLog, Entry
from triggerfish.esm.catalog import Check, OnChange, Stored
from triggerfish.esm.config import MappingConfig


def file_mapping_uuid(cluster: str, mapping: MappingConfig) -> str:
    """The UUID every replica of ``cluster`` gives a mapping its config file declares without one."""
    return str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"triggerfish:{cluster}:{mapping.identity()}"))


class ClusterCatalog:
    """Definitions in the configs topic; ``start`` returns once this replica has read all of them."""

    def __init__(self, cfg: ClusterConfig) -> None:
        self._cfg = cfg
        self._subscribers: list[OnChange] = []
        self.log = ConfigLog(cfg, on_change=self._changed)

    def start(self, timeout: float = 30.0) -> None:
        self.log.start(timeout)

    def stop(self) -> None:
        self.log.stop()

    def declare(self, mapping: MappingConfig) -> str:
        return mapping.uuid or file_mapping_uuid(self._cfg.name, mapping)

    def definitions(self) -> dict[str, Stored]:
        return dict(self.log.entries())  # a copy already; dict() widens its type to the protocol's

    def write(self, uuid: str, config: dict[str, Any] | None, check: Check) -> None:
        self.log.write(uuid, config, check)

    def subscribe(self, on_change: OnChange) -> None:
        self._subscribers.append(on_change)

    def tags(self, arn: str) -> dict[str, str] | None:
        return self.log.tags(arn)

    def put_tags(self, arn: str, tags: dict[str, str]) -> None:
        self.log.write_tags(arn, tags)

    def _changed(self, uuid: str, entry: Entry | None) -> None:
        for on_change in list(self._subscribers):
            on_change(uuid, entry)
