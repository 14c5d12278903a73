"""What every control-API operation shares: its body type and SigV4 checks, a request id, metrics, and a 500 for bugs.

``operation(name, endpoint)`` wraps one route: it names the operation in the ASGI scope and checks
the signature. ``Operations`` (middleware, so it also sees the answers the exception handlers give)
adds ``x-amzn-RequestId``, times and counts each named operation, and turns an exception that is
not a ``TriggerfishError`` into Lambda's ``ServiceException`` with the detail in the server log only.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message

from triggerfish.api import sigv4
from triggerfish.api.errors import lambda_response
from triggerfish.api.metrics import API_LATENCY, API_REQUESTS
from triggerfish.api.trust import check_content_type
from triggerfish.operations import OperationMetrics

_log = logging.getLogger("triggerfish.api")

Endpoint = Callable[[Request], Awaitable[Response]]

#: The ASGI scope key naming the control-API operation being served.
_OPERATION = "triggerfish.operation"


async def check_signature(request: Request) -> None:
    """Raise an AuthenticationError unless the request is signed with the app's key (when it has one)."""
    key: sigv4.AccessKey | None = request.app.state.access_key
    if key is not None:
        sigv4.verify_scope(key, request.scope, await request.body())


def signature_required(request: Request) -> bool:
    """Whether the app checks signatures (``--require-auth``)."""
    return request.app.state.access_key is not None


def operation(name: str, endpoint: Endpoint) -> Endpoint:
    """``endpoint`` as the control-API operation ``name``: signed (when a key is set) and measured."""

    async def handle(request: Request) -> Response:
        request.scope[_OPERATION] = name
        await check_content_type(request, name)
        await check_signature(request)
        return await endpoint(request)

    handle.__name__ = name
    return handle


class Operations(OperationMetrics):
    """ASGI middleware for named operations (function URLs, /health pass untouched): Lambda's
    ``x-amzn-RequestId`` on each answer, and ``ServiceException`` for a bug."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, key=_OPERATION, log=_log, observe=_observe,
                         bug_response=lambda _operation, exc: lambda_response(exc), on_start=_add_request_id)


def _add_request_id(message: Message) -> None:
    MutableHeaders(scope=message).setdefault("x-amzn-RequestId", str(uuid.uuid4()))


def _observe(operation: str, status: int, seconds: float) -> None:
    API_REQUESTS.labels(operation, str(status)).inc()
    API_LATENCY.labels(operation).observe(seconds)
