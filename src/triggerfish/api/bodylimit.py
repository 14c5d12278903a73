"""An ASGI guard: request bodies larger than a limit are refused with 413 before they fill memory.

Lambda refuses Invoke payloads over 6 MB (``RequestTooLargeException``); this caps every request,
chunked or not, a little above that, so the precise per-operation checks can read bodies safely.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triggerfish.api.errors import lambda_response
from triggerfish.errors import RequestTooLargeError

_DEFAULT_LIMIT = 6_291_456 + 65_536


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int = _DEFAULT_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(scope, receive, send)
                return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # a TriggerfishError, so the app's exception handler answers it in Lambda's shape
                    raise RequestTooLargeError(f"Request must be smaller than {self.limit} bytes.", self.limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except RequestTooLargeError as exc:  # raised where no exception handler reaches
            if not started:
                await lambda_response(exc)(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = RequestTooLargeError(f"Request must be smaller than {self.limit} bytes.", self.limit)
        await lambda_response(error)(scope, receive, send)
