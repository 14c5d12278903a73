"""Prometheus metrics of the HTTP server, and the ``/metrics`` endpoint.

``/metrics`` serves prometheus-client's default registry, so the engine's own metrics appear next
to these without any wiring.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

API_REQUESTS = Counter(
    "triggerfish_api_requests_total",
    "Control API requests by Lambda operation and HTTP status.",
    ["operation", "status"],
)
API_LATENCY = Histogram(
    "triggerfish_api_request_seconds",
    "Control API request handling time by Lambda operation.",
    ["operation"],
)
URL_REQUESTS = Counter(
    "triggerfish_function_url_requests_total",
    "Function URL requests by function and HTTP status (429 = throttled by ReservedConcurrentExecutions).",
    ["function", "status"],
)
INVOCATIONS = Counter(
    "triggerfish_api_invocations_total",
    "Invocations made through Invoke and function URLs, by function and outcome (ok, error, throttled).",
    ["function", "outcome"],
)


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
