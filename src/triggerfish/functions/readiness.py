"""How a function's start went: ``InitReport``, what a worker says after importing its handler.

The worker sends it as its first frame (``worker._init_report``), before any request; ``App.start``
waits for one per function, fails the start when the handler could not be loaded (a malformed
environment variable, a missing module), and ``GET /ready`` lists a function that loaded but said it
cannot work yet: a handler says so with the ``NOT_READY_ATTRIBUTE`` attribute, a reason text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: A handler may carry this attribute, a reason text, to be reported not ready at start (``GET /ready``).
NOT_READY_ATTRIBUTE = "triggerfish_not_ready"


@dataclass(frozen=True)
class InitReport:
    """``error`` is ``"ErrorType: message"`` when the handler failed to load; ``not_ready`` the handler's own reason."""

    error: str | None = None
    not_ready: str | None = None

    @classmethod
    def from_frame(cls, head: dict[str, Any]) -> InitReport:
        if not head.get("ok", False):
            return cls(error=f"{head.get('errorType', 'Error')}: {head.get('errorMessage', '')}")
        reason = head.get("notReady")
        return cls(not_ready=str(reason) if reason else None)


def init_frame(handler: Any, error_type: str | None, error_message: str) -> dict[str, Any]:
    """The worker's first frame's header, for a handler that loaded (``error_type`` None) or failed to."""
    if error_type is not None:
        return {"init": True, "ok": False, "errorType": error_type, "errorMessage": error_message}
    reason = getattr(handler, NOT_READY_ATTRIBUTE, None)
    return {"init": True, "ok": True, "notReady": str(reason) if reason else None}
