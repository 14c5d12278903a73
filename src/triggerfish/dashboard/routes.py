"""The dashboard's HTTP routes on the control API's app: the page, its assets and its document.

    GET /                          the page: an HTML shell; its script fills it from the document
    GET /dashboard/state.json      the document (``dashboard.state``): the page polls it, scripts may too
    GET /dashboard/static/<name>   the page's script, style sheet and icon, from this package's data

Every answer forbids framing and sniffing, and the page's Content-Security-Policy allows only its own
script and styles (no inline code, no other origin). ``start`` begins sampling lag for the charts.
Who may read the document is the control API's policy, handed in (``routes(check, required)``): with
``--require-auth`` a SigV4 signature with the configured key, which the page makes in the browser from the
key typed into its sign-in form (kept in the tab's ``sessionStorage``; the secret never crosses the wire).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from triggerfish.dashboard import state
from triggerfish.dashboard.history import INTERVAL_S, LagHistory, Sampler
from triggerfish.dashboard.lags import LagSampling

#: The document's path, for the page and for scripts.
STATE_PATH = "/dashboard/state.json"
STATIC_PATH = "/dashboard/static"
_ASSETS = {"dashboard.js": "text/javascript; charset=utf-8", "dashboard.css": "text/css; charset=utf-8",
           "icon.svg": "image/svg+xml"}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY"}


#: Raises (an authentication error the app answers) unless the request may read the document.
Check = Callable[[Request], Awaitable[None]]
#: Whether the document needs a signature (the page then shows its sign-in form).
Required = Callable[[Request], bool]


@dataclass
class Dashboard:
    """This app's lag history and the thread sampling it (``app.state.dashboard``)."""

    history: LagHistory
    sampler: Sampler


def _asset(name: str) -> bytes:
    return (resources.files("triggerfish.dashboard") / "static" / name).read_bytes()


def _page(required: Required) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        mode = "sigv4" if required(request) else "none"
        body = _asset("index.html").decode().replace("{{auth}}", mode).replace("{{state}}", STATE_PATH)
        return Response(body, media_type="text/html; charset=utf-8", headers={**_HEADERS, "Cache-Control": "no-store"})

    return page


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _ASSETS:
        return Response("not found", 404, media_type="text/plain", headers=_HEADERS)
    return Response(_asset(name), media_type=_ASSETS[name], headers={**_HEADERS, "Cache-Control": "no-cache"})


def _document(check: Check) -> Callable[[Request], Awaitable[Response]]:
    async def document(request: Request) -> Response:
        await check(request)
        backend: state.Source = request.app.state.backend
        dashboard: Dashboard = request.app.state.dashboard
        body = await state.build(backend, dashboard.history, time.time())
        return Response(json.dumps(body), media_type="application/json",
                        headers={**_HEADERS, "Cache-Control": "no-store"})

    return document


def routes(check: Check, required: Required) -> list[Route]:
    """The dashboard's routes; ``check`` and ``required`` are the control API's authentication policy."""
    return [
        Route("/", _page(required), methods=["GET"]),
        Route(STATE_PATH, _document(check), methods=["GET"]),
        Route(STATIC_PATH + "/{name}", asset, methods=["GET"]),
    ]


def start(app: Starlette, interval_s: float = INTERVAL_S) -> Dashboard:
    """Keep lag history for ``app``'s backend (sampled while the backend lives) and put it on ``app.state``."""
    history = LagHistory(interval_s=interval_s)
    sampler = Sampler(app.state.backend, history, LagSampling(), interval_s)
    app.state.dashboard = dashboard = Dashboard(history, sampler)
    if getattr(app.state.backend, "engine", None) is not None:
        sampler.start()
    return dashboard
