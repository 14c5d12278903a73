"""The bridge's HTTP API: one Starlette app for Strimzi's OpenAPI operations, one for management.

Route handlers live in ``bridge.routes`` (one module per resource) and translate HTTP to calls on
the shared producer, the consumer registry and the topic admin, which do the Kafka I/O in worker
threads. Errors are ``triggerfish.errors`` classes, answered in Strimzi's body by the exception
handlers and middleware of ``bridge.operations``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from triggerfish.body_limit import BodyLimit
from triggerfish.bridge.auth import AuthMiddleware
from triggerfish.bridge.errors import response_of
from triggerfish.bridge.guard import HostAndOrigin
from triggerfish.bridge.operations import Operations, handle_error, handle_http_error
from triggerfish.bridge.routes import consumers, management, producer, topics
from triggerfish.bridge.services import Services
from triggerfish.bridge.strimzi_metrics import HttpMetrics
from triggerfish.errors import TriggerfishError

_log = logging.getLogger("triggerfish.bridge")

_TOO_LARGE = ("Request Entity Too Large: the body is over the bridge's limit of {limit} bytes; "
              "send fewer records per request, or raise http.max.body.bytes")

_MANAGEMENT_ROUTES: list[Route] = management.MANAGEMENT_ROUTES
# routing tries each route's regex in turn: the consumers' come first (polls are the most frequent
# requests, and their route is first among them); no two paths overlap, so the order changes no answer
_API_ROUTES: list[Route] = [
    *consumers.ROUTES,
    *management.INFO_ROUTES,
    *topics.ROUTES,
    *producer.ROUTES,
    *_MANAGEMENT_ROUTES,
]


def create_app(services: Services, management: bool = False) -> Starlette:
    """The API app (``management=False``) or the management app (``/healthy``, ``/ready``, ``/metrics``)."""
    config = services.config

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        reaper = None
        if not management:
            if config.timeout_seconds >= 0:
                reaper = asyncio.create_task(_reap(services))
            services.ready = True
        try:
            yield
        finally:
            if reaper is not None:
                reaper.cancel()
            if not management:
                services.ready = False
                if services.forwarder is not None:
                    await services.forwarder.aclose()
                await run_in_threadpool(services.close)

    middleware = [Middleware(HostAndOrigin, config=config)]  # outermost: CORS preflights need no credentials
    if services.strimzi is not None:  # both servers, as Vert.x counts both (but /metrics, as Strimzi filters it)
        middleware.insert(0, Middleware(HttpMetrics, metrics=services.strimzi))
    if config.auth.type != "none":
        middleware.append(Middleware(AuthMiddleware, auth=config.auth))
    middleware.append(Middleware(BodyLimit, limit=config.max_body_bytes, message=_TOO_LARGE, respond=response_of))
    middleware.append(Middleware(Operations, services=services))
    app = Starlette(routes=_MANAGEMENT_ROUTES if management else _API_ROUTES, middleware=middleware,
                    exception_handlers={TriggerfishError: handle_error, HTTPException: handle_http_error},
                    lifespan=lifespan)
    app.state.services = services
    return app


async def _reap(services: Services) -> None:
    # Strimzi checks every timeout/2, so an idle consumer goes between T and 1.5T
    period = max(0.5, services.config.timeout_seconds / 2)
    while True:
        await asyncio.sleep(period)
        try:
            if await run_in_threadpool(services.consumers.reap):
                services.metrics.consumers.set(len(services.consumers))
        except Exception:  # keep reaping whatever one close did
            _log.exception("reaping idle consumers")
