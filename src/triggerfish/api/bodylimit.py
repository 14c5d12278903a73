"""The control API's body limit: bodies larger than a limit are refused with Lambda's 413.

Lambda refuses Invoke payloads over 6 MB (``RequestTooLargeException``); this caps every request,
chunked or not, a little above that, so the precise per-operation checks can read bodies safely.
The guard itself (:mod:`triggerfish.body_limit`) is shared with the bridge.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from triggerfish import body_limit
from triggerfish.api.errors import lambda_response

_DEFAULT_LIMIT = 6_291_456 + 65_536


class BodyLimit(body_limit.BodyLimit):
    def __init__(self, app: ASGIApp, limit: int = _DEFAULT_LIMIT) -> None:
        super().__init__(app, limit, message="Request must be smaller than {limit} bytes.", respond=lambda_response)
