"""An ASGI guard: a request body over a limit is refused with 413 while it streams, before it fills memory.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read; a chunked
body is counted as the app reads it, and the read that crosses the limit raises
``RequestTooLargeError``, which the app's exception handler answers (or, where none reaches, the
guard). The control API (:mod:`triggerfish.api.bodylimit`, Lambda's shape) and the bridge
(Strimzi's shape) configure it with their own message and response.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triggerfish.errors import RequestTooLargeError

#: Turns the refusal into the response the protocol answers it with.
Respond = Callable[[RequestTooLargeError], ASGIApp]


class BodyLimit:
    """Refuse bodies over ``limit`` bytes; ``message`` may name ``{limit}``."""

    def __init__(self, app: ASGIApp, limit: int, *, message: str, respond: Respond) -> None:
        self.app = app
        self.limit = limit
        self.message = message
        self.respond = respond

    def error(self) -> RequestTooLargeError:
        return RequestTooLargeError(self.message.format(limit=self.limit), self.limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        framed = False  # whether the request says it has a body (HTTP/1.1: Content-Length or Transfer-Encoding)
        for name, value in scope["headers"]:
            if name == b"content-length":
                framed = True
                if value.isdigit() and int(value) > self.limit:
                    await self.respond(self.error())(scope, receive, send)
                    return
            elif name == b"transfer-encoding":
                framed = True
        if not framed:  # no body to count (a GET, most DELETEs): nothing to wrap
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # a TriggerfishError, so the app's exception handler answers it in the app's shape
                    raise self.error()
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
                await self.respond(exc)(scope, receive, send)
