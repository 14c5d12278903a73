"""Routes that answer without Kafka: ``/`` (info), ``/openapi``, and the management ``/healthy``,
``/ready`` and ``/metrics``. ``openapi.json`` is Strimzi's own spec (Apache-2.0,
strimzi/strimzi-kafka-bridge), served as is."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from triggerfish import __version__
from triggerfish.bridge.formats import APPLICATION_JSON
from triggerfish.bridge.metrics import CONTENT_TYPE as METRICS_TYPE
from triggerfish.bridge.operations import operation
from triggerfish.bridge.services import Services
from triggerfish.bridge.validation import spec_bytes
from triggerfish.bridge.wire import json_response


def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(spec_bytes())  # a fresh copy: a request may set its basePath
    return spec


async def _info(request: Request, s: Services) -> Response:
    return json_response({"bridge_version": __version__, "implementation": "triggerfish"}, media_type=APPLICATION_JSON)


async def _openapi(request: Request, s: Services) -> Response:
    spec = _spec()
    base = request.headers.get("x-forwarded-path") or request.headers.get("x-forwarded-prefix")
    if base:
        spec["basePath"] = base
    return json_response(spec, media_type=APPLICATION_JSON)


async def _healthy(request: Request, s: Services) -> Response:
    return Response(status_code=200)


async def _ready(request: Request, s: Services) -> Response:
    # not ready while Kafka refuses the bridge's credentials: a probe then shows the misconfiguration
    return Response(status_code=200 if s.ready and s.health.rejected() is None else 500)


async def _metrics(request: Request, s: Services) -> Response:
    s.metrics.consumers.set(len(s.consumers))
    return Response(s.metrics.render(), media_type=METRICS_TYPE)


INFO_ROUTES = [
    Route("/", operation("info", _info, kafka=False), methods=["GET"]),
    Route("/openapi", operation("openapi", _openapi, kafka=False), methods=["GET"]),
    Route("/openapi/v3", operation("openapiv3", _openapi, kafka=False), methods=["GET"]),
]

MANAGEMENT_ROUTES = [
    Route("/healthy", operation("healthy", _healthy, kafka=False), methods=["GET"]),
    Route("/ready", operation("ready", _ready, kafka=False), methods=["GET"]),
    Route("/metrics", operation("metrics", _metrics, kafka=False), methods=["GET"]),
]
