"""Named HTTP operations, as the control API and the bridge both serve them: an ASGI middleware that
times and counts each, and answers an exception no handler took with the app's own 500 body.

A route names its operation in the ASGI scope under ``key``; other routes pass through untouched. The
middleware sits outside Starlette's exception handlers, so it sees (and counts) what they answer, and
Starlette's own 500 — plain text, past the metrics — never reaches a client of a named operation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: (operation, HTTP status, seconds) once an operation answered.
Observe = Callable[[str, int, float], None]
#: The response to an exception no handler took: (operation, exception) -> an ASGI app.
BugResponse = Callable[[str, Exception], ASGIApp]
#: Called with a named operation's ``http.response.start`` message before it is sent.
OnStart = Callable[[Message], None]


class OperationMetrics:
    """ASGI middleware for the operations named under ``key`` in the scope."""

    def __init__(self, app: ASGIApp, *, key: str, log: logging.Logger, observe: Observe,
                 bug_response: BugResponse, on_start: OnStart | None = None) -> None:
        self.app = app
        self.key = key
        self.log = log
        self.observe = observe
        self.bug_response = bug_response
        self.on_start = on_start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start" and self.key in scope:
                status = message["status"]
                if self.on_start is not None:
                    self.on_start(message)
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        except Exception as exc:
            if self.key not in scope or status:  # not ours, or the answer has started: nothing to replace
                raise
            self.log.exception("%s failed", scope[self.key])
            await self.bug_response(scope[self.key], exc)(scope, receive, recording_send)
        if self.key in scope:
            self.observe(scope[self.key], status, time.perf_counter() - started)
