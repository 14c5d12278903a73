"""What every control-API operation shares: its body type and SigV4 checks, a request id, metrics, and a 500 for bugs.

``operation(name, endpoint)`` wraps one route: it names the operation in the ASGI scope and checks
the signature. ``Operations`` (middleware, so it also sees the answers the exception handlers give)
adds ``x-amzn-RequestId``, times and counts each named operation, and turns an exception that is
not a ``TriggerfishError`` into Lambda's ``ServiceException`` with the detail in the server log only.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triggerfish.api import sigv4
from triggerfish.api.errors import lambda_response
from triggerfish.api.metrics import API_LATENCY, API_REQUESTS
from triggerfish.api.trust import check_content_type

_log = logging.getLogger("triggerfish.api")

Endpoint = Callable[[Request], Awaitable[Response]]

#: The ASGI scope key naming the control-API operation being served.
_OPERATION = "triggerfish.operation"


def operation(name: str, endpoint: Endpoint) -> Endpoint:
    """``endpoint`` as the control-API operation ``name``: signed (when a key is set) and measured."""

    async def handle(request: Request) -> Response:
        request.scope[_OPERATION] = name
        await check_content_type(request, name)
        key = request.app.state.access_key
        if key is not None:
            sigv4.verify(
                key,
                method=request.method,
                raw_path=request.scope.get("raw_path", request.url.path.encode()).decode("latin-1"),
                query_string=request.scope.get("query_string", b"").decode("latin-1"),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
                body=await request.body(),
            )
        return await endpoint(request)

    handle.__name__ = name
    return handle


class Operations:
    """ASGI middleware for named operations; other routes (function URLs, /health) pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start" and _OPERATION in scope:
                status = message["status"]
                MutableHeaders(scope=message).setdefault("x-amzn-RequestId", str(uuid.uuid4()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Starlette's own 500 would be plain text and would skip the metrics; Lambda answers ServiceException
            if _OPERATION not in scope or status:
                raise
            _log.exception("%s failed", scope[_OPERATION])
            await lambda_response(exc)(scope, receive, send_with_id)
        if _OPERATION in scope:
            API_REQUESTS.labels(scope[_OPERATION], str(status)).inc()
            API_LATENCY.labels(scope[_OPERATION]).observe(time.perf_counter() - started)
