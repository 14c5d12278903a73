"""The HTTP server's Starlette app: Lambda's control API, function URLs, ``/metrics`` and ``/health``.

Every control-API operation goes through ``operation()``, which checks the SigV4 signature (when
an access key is configured), times and counts the call, and turns every failure into Lambda's
error shape; an unexpected exception becomes ``ServiceException`` with the detail in the server log
only.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from triggerfish.api import functions, mappings, sigv4, urls
from triggerfish.api.backend import Backend
from triggerfish.api.bodylimit import BodyLimit
from triggerfish.api.concurrency import ConcurrencyLimits
from triggerfish.api.errors import (
    InvalidParameterValueException,
    LambdaAPIError,
    ResourceConflictException,
    ResourceInUseException,
    ResourceNotFoundException,
    ServiceException,
    TooManyRequestsException,
    UnknownOperationException,
    ValidationException,
)
from triggerfish.api.metrics import API_LATENCY, API_REQUESTS, metrics_endpoint
from triggerfish.api.wire import json_response
from triggerfish.errors import ConfigError, TriggerfishError

log = logging.getLogger("triggerfish.api")

Endpoint = Callable[[Request], Awaitable[Response]]


_BY_CODE: dict[str, type[LambdaAPIError]] = {
    cls.code: cls
    for cls in (
        InvalidParameterValueException, ValidationException, ResourceNotFoundException,
        ResourceConflictException, ResourceInUseException, TooManyRequestsException,
    )
}


def lambda_error(exc: Exception) -> LambdaAPIError:
    """Lambda's error for anything an operation raised.

    The engine's errors name their Lambda exception in ``.exception``; validation errors
    (``triggerfish.validation.InvalidParameterError``) carry Lambda's text in ``.lambda_message``
    and the fix in ``.hint``, which is appended so the client learns what to change.
    """
    if isinstance(exc, LambdaAPIError):
        return exc
    if isinstance(exc, TriggerfishError):
        cls = _BY_CODE.get(getattr(exc, "exception", ""), InvalidParameterValueException)
        message = getattr(exc, "lambda_message", None) or (exc.message if isinstance(exc, ConfigError) else str(exc))
        hint = getattr(exc, "hint", "")
        if isinstance(exc, ConfigError) and exc.field and cls is InvalidParameterValueException and exc.field not in message:
            message = f"{exc.field}: {message}"
        return cls(f"{message} ({hint})" if hint else message)
    return ServiceException("An internal error occurred in triggerfish; the server log has the details.")


def operation(name: str, endpoint: Endpoint) -> Endpoint:
    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        try:
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
            response = await endpoint(request)
        except Exception as exc:  # every failure leaves in Lambda's shape
            error = lambda_error(exc)
            if isinstance(error, ServiceException) and error is not exc:
                log.exception("%s failed", name)
            response = error.response()
        response.headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
        API_REQUESTS.labels(name, str(response.status_code)).inc()
        API_LATENCY.labels(name).observe(time.perf_counter() - started)
        return response

    return handle


async def health(request: Request) -> Response:
    backend: Backend = request.app.state.backend
    try:
        detail = backend.health()
    except Exception as exc:  # health must answer even when the engine is broken
        return json_response({"status": "error", "detail": str(exc)}, 503)
    status = 200 if detail.get("status", "ok") == "ok" else 503
    return json_response({"status": "ok", **detail} if status == 200 else detail, status)


async def unknown_operation(request: Request) -> Response:
    return UnknownOperationException(
        f"triggerfish does not implement {request.method} {request.url.path}. Supported: event source "
        "mappings, GetFunction(Configuration), ListFunctions, Invoke, GetFunctionConcurrency, "
        "GetFunctionUrlConfig, ListFunctionUrlConfigs."
    ).response()


_ESM = "/2015-03-31/event-source-mappings"
_FN = "/2015-03-31/functions"


def routes() -> list[Route]:
    ops: list[tuple[str, str, str, Endpoint]] = [
        (_ESM, "POST", "CreateEventSourceMapping", mappings.create),
        (_ESM + "/", "POST", "CreateEventSourceMapping", mappings.create),
        (_ESM, "GET", "ListEventSourceMappings", mappings.list_),
        (_ESM + "/", "GET", "ListEventSourceMappings", mappings.list_),
        (_ESM + "/{uuid}", "GET", "GetEventSourceMapping", mappings.get),
        (_ESM + "/{uuid}", "PUT", "UpdateEventSourceMapping", mappings.update),
        (_ESM + "/{uuid}", "DELETE", "DeleteEventSourceMapping", mappings.delete),
        (_FN, "GET", "ListFunctions", functions.list_functions),
        (_FN + "/", "GET", "ListFunctions", functions.list_functions),
        (_FN + "/{name}", "GET", "GetFunction", functions.get_function),
        (_FN + "/{name}/configuration", "GET", "GetFunctionConfiguration", functions.get_function_configuration),
        (_FN + "/{name}/invocations", "POST", "Invoke", functions.invoke),
        ("/2019-09-30/functions/{name}/concurrency", "GET", "GetFunctionConcurrency", functions.get_function_concurrency),
        ("/2021-10-31/functions/{name}/url", "GET", "GetFunctionUrlConfig", urls.get_function_url_config),
        ("/2021-10-31/functions/{name}/urls", "GET", "ListFunctionUrlConfigs", urls.list_function_url_configs),
    ]
    table = [Route(path, operation(op, endpoint), methods=[method], name=f"{op}:{path}") for path, method, op, endpoint in ops]
    url_methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    table += [
        Route(urls.URL_PREFIX + "/{name}", urls.serve_url, methods=url_methods),
        Route(urls.URL_PREFIX + "/{name}/{path:path}", urls.serve_url, methods=url_methods),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/{rest:path}", unknown_operation, methods=url_methods),
    ]
    return table


def create_app(backend: Backend, *, access_key: sigv4.AccessKey | None = None) -> Starlette:
    """The app serving ``backend``. With ``access_key`` every control-API call must be signed with it."""
    app = Starlette(routes=routes(), middleware=[Middleware(BodyLimit)])
    app.state.backend = backend
    app.state.access_key = access_key
    app.state.limits = ConcurrencyLimits()
    app.state.background = set()  # Event invocations in flight, kept referenced until done
    return app
