"""The control API's trust boundary: which hosts, origins, body types and secret references it takes.

Browsers are the danger on a loopback binding: a web page can make one send requests to
``127.0.0.1`` (see :mod:`triggerfish.crosssite`). ``HostAndOrigin`` (middleware) refuses a ``Host``
that does not name the server and, on control-API routes, any ``Origin`` not configured; function URLs
check ``Origin`` against their own CORS configuration (``api.urls``). ``check_content_type`` makes
writes carry what SDKs send and forms cannot: JSON, or for Invoke no Content-Type or any type a
browser must preflight. ``check_secret_references`` applies the ``ReferencePolicy`` to a request body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from triggerfish import crosssite
from triggerfish.api.errors import lambda_response
from triggerfish.errors import RequestRefusedError, UnsupportedMediaTypeError
from triggerfish.secrets import ReferencePolicy

#: Function URLs live under this prefix; their Origin check is their CORS configuration's.
URL_PREFIX = "/lambda-url"

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Trust:
    """What the control API accepts beyond its own address: ``allowed_hosts`` (names in ``Host``,
    ``*`` for any), ``allowed_origins`` (exact ``Origin`` values, none by default) and ``secrets``
    (the ``file://`` / ``env:`` references mappings created through the API may name)."""

    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    secrets: ReferencePolicy = field(default_factory=ReferencePolicy)


def host_refusal(host: str) -> str:
    name = crosssite.host_name(host) or "NAME"
    return (f"Host header {host!r} does not name this server: refused as a possible DNS-rebinding attack "
            f"by a web page. If you reach triggerfish by that name, add --allowed-host {name}")


def origin_refusal(origin: str) -> str:
    return (f"Origin {origin} may not call the control API: a browser sent this request for a web page. "
            f"If that site is yours, add --allowed-origin {origin}")


class HostAndOrigin:
    """ASGI middleware refusing what a browser sends cross-site, before any route runs."""

    def __init__(self, app: ASGIApp, trust: Trust, bound: str) -> None:
        self.app = app
        self.trust = trust
        self.bound = bound

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        is_url = scope["path"].startswith(URL_PREFIX + "/")
        host = headers.get("host")
        local = (scope.get("server") or ("", 0))[0] or ""
        message = None
        if not crosssite.host_allowed(host, local_address=str(local), bound=self.bound,
                                      configured=self.trust.allowed_hosts):
            message = host_refusal(host or "")
        elif not is_url and "origin" in headers and headers["origin"] not in self.trust.allowed_origins:
            message = origin_refusal(headers["origin"])
        if message is None:
            await self.app(scope, receive, send)
            return
        response = (Response(json.dumps({"Message": message}), 403, media_type="application/json") if is_url
                    else lambda_response(RequestRefusedError(message)))
        await response(scope, receive, send)


async def check_content_type(request: Request, operation: str) -> None:
    """Raise UnsupportedMediaTypeError for a write a browser could have sent from a form or ``fetch()``."""
    if request.method not in _WRITES:
        return
    content_type = request.headers.get("content-type")
    if operation == "Invoke":
        # boto3 sends Invoke's raw payload with no Content-Type; other SDKs name a type forms cannot send
        if not crosssite.is_simple_type(content_type):
            return
    elif crosssite.is_json_type(content_type) or (content_type is None and not await request.body()):
        return
    shown = crosssite.media_type(content_type) or "none"
    raise UnsupportedMediaTypeError(
        f"Content-Type {shown} is not accepted for {operation}: send application/json (the AWS SDKs and CLI "
        "do); form and text bodies are refused because web pages can send them from a browser."
    )


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def check_secret_references(body: dict[str, Any], policy: ReferencePolicy) -> None:
    """Raise ConfigError (naming the field) for a ``file://`` or ``env:`` reference anywhere in ``body``
    that ``policy`` does not allow: SourceAccessConfigurations, schema-registry AccessConfigs, destinations."""
    for path, value in _strings(body, ""):
        if value.startswith(("file://", "env:")):
            policy.check(value, path)
