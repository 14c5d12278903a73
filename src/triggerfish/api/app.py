"""The HTTP server's Starlette app: Lambda's control API, function URLs, ``/metrics``, the dashboard
(``GET /``, ``triggerfish.dashboard``), ``/healthz`` (liveness)
and ``/readyz`` (readiness: 503 until the state is loaded and every enabled mapping passed its setup
stages and joined its consumer group; also served as ``/health`` and ``/ready``).

Control-API operations are wrapped by ``operations.operation`` (SigV4, request id, metrics); every
``TriggerfishError`` they raise is answered in Lambda's shape by one exception handler
(``api.errors.handle_error``), and anything else by ``operations.Operations`` as ``ServiceException``.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from triggerfish.api import functions, mappings, sigv4, tags, urls
from triggerfish.api.backend import Backend
from triggerfish.api.bodylimit import BodyLimit
from triggerfish.api.concurrency import ConcurrencyLimits
from triggerfish.api.errors import handle_error
from triggerfish.api.metrics import metrics_endpoint
from triggerfish.api.operations import Endpoint, Operations, check_signature, operation, signature_required
from triggerfish.api.trust import URL_PREFIX, HostAndOrigin, Trust
from triggerfish.api.wire import json_response
from triggerfish.dashboard import routes as dashboard
from triggerfish.errors import TriggerfishError, UnknownOperationError


async def _health(request: Request) -> Response:
    backend: Backend = request.app.state.backend
    try:
        detail = backend.health()
    except Exception as exc:  # health must answer even when the engine is broken
        return json_response({"status": "error", "detail": str(exc)}, 503)
    status = 200 if detail.get("status", "ok") == "ok" else 503
    return json_response({"status": "ok", **detail} if status == 200 else detail, status)


async def _ready(request: Request) -> Response:
    """Kubernetes' readiness: 503 while any enabled mapping cannot poll (``/health`` stays liveness)."""
    backend: Backend = request.app.state.backend
    try:
        detail = backend.health()
    except Exception as exc:  # noqa: BLE001 - a broken engine is not ready
        return json_response({"ready": False, "detail": str(exc)}, 503)
    ready = bool(detail.get("ready", True)) and detail.get("status", "ok") == "ok"
    return json_response({**detail, "ready": ready}, 200 if ready else 503)


async def _unknown_operation(request: Request) -> Response:
    raise UnknownOperationError(
        f"triggerfish does not implement {request.method} {request.url.path}. Supported: event source "
        "mappings, GetFunction(Configuration), ListFunctions, Invoke, GetFunctionConcurrency, "
        "GetFunctionUrlConfig, ListFunctionUrlConfigs, TagResource, UntagResource, ListTags."
    )


_ESM = "/2015-03-31/event-source-mappings"
_FN = "/2015-03-31/functions"
_TAGS = "/2017-03-31/tags/{resource:path}"


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
        (_TAGS, "GET", "ListTags", tags.list_tags),
        (_TAGS, "POST", "TagResource", tags.tag_resource),
        (_TAGS, "DELETE", "UntagResource", tags.untag_resource),
    ]
    table = [Route(path, operation(op, endpoint), methods=[method], name=f"{op}:{path}") for path, method, op, endpoint in ops]
    url_methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    table += [
        Route(URL_PREFIX + "/{name}", urls.serve_url, methods=url_methods),
        Route(URL_PREFIX + "/{name}/{path:path}", urls.serve_url, methods=url_methods),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/healthz", _health, methods=["GET"]),
        Route("/readyz", _ready, methods=["GET"]),
        Route("/health", _health, methods=["GET"]),
        Route("/ready", _ready, methods=["GET"]),
        *dashboard.routes(check_signature, signature_required),
        Route("/{rest:path}", _unknown_operation, methods=url_methods),
    ]
    return table


def create_app(
    backend: Backend,
    *,
    access_key: sigv4.AccessKey | None = None,
    url_key: sigv4.AccessKey | None = None,
    trust: Trust | None = None,
    host: str = "127.0.0.1",
) -> Starlette:
    """The app serving ``backend`` on ``host``. With ``access_key`` every control-API call must be signed
    with it; ``AWS_IAM`` function URLs check signatures with ``url_key`` (default: ``access_key``) and
    refuse everything without one. ``trust`` names the hosts, origins and secret references accepted."""
    trust = trust or Trust()
    app = Starlette(
        routes=routes(),
        middleware=[Middleware(HostAndOrigin, trust=trust, bound=host), Middleware(BodyLimit),
                    Middleware(Operations)],
        exception_handlers={TriggerfishError: handle_error},
    )
    app.state.backend = backend
    app.state.access_key = access_key
    app.state.url_key = url_key or access_key
    app.state.trust = trust
    app.state.limits = ConcurrencyLimits()
    app.state.background = set()  # Event invocations in flight, kept referenced until done
    dashboard.start(app)
    return app
