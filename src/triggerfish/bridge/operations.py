"""What every bridge operation shares: the Kafka health check, metrics, and Strimzi's error body.

``operation(name, handler)`` turns a handler into a route endpoint that names the operation in the
ASGI scope and, for operations that need Kafka, first raises the 503 that names a refused login.
``handle_error`` (a Starlette exception handler) answers every ``TriggerfishError`` with the status
``bridge.errors`` maps its class to. ``Operations`` (middleware, so it sees those answers too)
times and counts each operation, and answers an exception that is not a ``TriggerfishError`` with
Strimzi's 500 body, logging the traceback once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from triggerfish.bridge.errors import error_response, internal_error, response_of, status_of
from triggerfish.bridge.formats import media_type
from triggerfish.bridge.guard import REFUSED_ORIGIN
from triggerfish.bridge.query import query_params
from triggerfish.bridge.services import Services
from triggerfish.bridge.validation import check_body, check_parameters
from triggerfish.errors import TriggerfishError
from triggerfish.operations import OperationMetrics

_log = logging.getLogger("triggerfish.bridge")

_Handler = Callable[[Request, Services], Awaitable[Response]]
_Endpoint = Callable[[Request], Awaitable[Response]]

#: The ASGI scope key naming the bridge operation being served.
_OPERATION = "triggerfish.bridge.operation"


def operation(name: str, handler: _Handler, *, kafka: bool = True, handler_validates: bool = False) -> _Endpoint:
    """``handler`` as the operation ``name``; ``kafka=False`` for the ones that answer without Kafka.

    ``handler_validates``: a non-empty body is checked by the handler as it parses it (the produce path,
    where a second walk over every record would cost more than the parse), which asks
    ``validation.check_body`` for Strimzi's error list only for a body it refuses.
    """

    async def endpoint(request: Request) -> Response:
        request.scope[_OPERATION] = name
        services: Services = request.app.state.services
        # Strimzi validates before anything else runs; a page's refused Origin is answered only after
        # that, so the answer for a request that could never work is Strimzi's own
        check_parameters(name, request.path_params, query_params(request))
        if request.method in ("POST", "PUT"):
            body = await request.body()
            if not (handler_validates and body.strip()):
                check_body(name, media_type(request.headers.get("content-type")), body)
        refused = request.scope.get(REFUSED_ORIGIN)
        if refused is not None:
            return error_response(403, refused)
        if services.forwarder is not None and "name" in request.path_params:
            # a consumer instance another replica holds: its answer (this replica's Kafka is not needed)
            forwarded = await services.forwarder.answer(request, services.consumers)
            if forwarded is not None:
                return forwarded
        if kafka:
            services.health.check()
        return await handler(request, services)

    endpoint.__name__ = name
    return endpoint


async def handle_error(request: Request, exc: Exception) -> Response:
    """Strimzi's body for a ``TriggerfishError``; one the bridge gives no status is a bug (500)."""
    assert isinstance(exc, TriggerfishError)
    if status_of(exc) is None:
        name = request.scope.get(_OPERATION, request.url.path)
        _log.error("%s failed", name, exc_info=exc)
        return internal_error(name, exc)
    return response_of(exc)


async def handle_http_error(request: Request, exc: Exception) -> Response:
    """Routing's 404 and 405 in Strimzi's body."""
    assert isinstance(exc, HTTPException)
    message = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, str(exc.detail))
    response = error_response(exc.status_code, message)
    if exc.status_code == 405:
        # several Routes share a path (one per method); Allow must list all of them
        allowed: set[str] = set()
        for route in request.app.router.routes:
            if isinstance(route, Route) and route.methods and route.path_regex.match(request.url.path):
                allowed |= route.methods
        response.headers["allow"] = ", ".join(sorted(allowed))
    return response


class Operations(OperationMetrics):
    """ASGI middleware: metrics per operation, and Strimzi's 500 for an exception no handler took."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        super().__init__(app, key=_OPERATION, log=_log, observe=services.metrics.observe,
                         bug_response=internal_error)

