"""Every fencing decision as one structured (JSON) log line: site, reporter, action, result.

The lines are also returned in the response body, so the caller (or ``curl``) sees what happened.
Nothing recorded here may hold a secret: callers pass names, ids and error texts only.
"""

from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger("triggerfish.functions.fencing")

_WARN = {"failed", "rejected", "busy", "invalid", "no-caches", "truncated", "refused", "restored"}


class Decisions:
    """The decisions of one invocation, logged as they are made."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def record(self, action: str, result: str, *, site: str | None = None, reporter: str | None = None, **detail: Any) -> None:
        entry: dict[str, Any] = {"site": site, "reporter": reporter, "action": action, "result": result}
        entry.update({k: v for k, v in detail.items() if v is not None})
        self.records.append(entry)
        level = logging.WARNING if result in _WARN else logging.INFO
        logger.log(level, json.dumps(entry, default=str, separators=(",", ":")))


def ensure_output() -> None:
    """Make decision lines visible when nobody configured logging (AWS Lambda's runtime does)."""
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
