"""The rules on a mapping's definition: Lambda's uniqueness checks for a new one, the transitional State a
change shows, a stored catalog row read back as a :class:`MappingConfig`, and who wrote a row.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from triggerfish.errors import MappingConflict, TriggerfishError
from triggerfish.esm.catalog import FILE, Stored
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.state import DISABLING, ENABLING, UPDATING

_log = logging.getLogger("triggerfish.esm")


def check_unique(mapping: MappingConfig, known: Mapping[str, MappingConfig]) -> None:
    """Lambda's uniqueness rules: raise MappingConflict when ``mapping`` clashes with a ``known`` one
    (same UUID; same event source, function and topics; same ConsumerGroupId)."""
    for uuid, other in known.items():
        if uuid == mapping.uuid:
            raise MappingConflict(f"An event source mapping with UUID {uuid} already exists.")
        if other.identity() == mapping.identity():
            raise MappingConflict(
                f'An event source mapping with event source ("{mapping.event_source_arn or ",".join(mapping.bootstrap_servers)}"), '
                f'function ("{other.function_name}"), topics ("{mapping.topic}") already exists. '
                f"Please update or delete the existing mapping with UUID {uuid}"
            )
        gid = mapping.consumer_group_id
        if gid and other.consumer_group_id == gid:
            raise MappingConflict(f"ConsumerGroupId {gid} is already used by another event source mapping")


def api_defined(definitions: Mapping[str, Stored]) -> dict[str, MappingConfig]:
    """The valid definitions made through an API (not a config file's), by UUID."""
    out = {}
    for uuid, stored in definitions.items():
        if stored.origin != FILE:
            mapping = mapping_of(uuid, stored)
            if mapping is not None:
                out[uuid] = mapping
    return out


def transition(old: MappingConfig, new: MappingConfig) -> str:
    """Lambda's state while a change is applied: Enabling/Disabling for a flip of Enabled alone."""
    before, after = old.to_dict(), new.to_dict()
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    if changed == {"Enabled"}:
        return ENABLING if new.enabled else DISABLING
    return UPDATING


def mapping_of(uuid: str, stored: Stored) -> MappingConfig | None:
    """A stored definition as a mapping; None (and logged) once it is no longer valid."""
    try:
        return MappingConfig.from_dict(stored.config).replace(uuid=uuid)
    except TriggerfishError as exc:
        _log.error("stored mapping %s is no longer valid (%s); skipped", uuid, exc)
        return None


def writer(stored: Stored) -> str:
    """Who wrote a stored definition, for a ConcurrentChange message."""
    name = getattr(stored, "writer", None)
    return f"replica {name}" if name else "another request"
