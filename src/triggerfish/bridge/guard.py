"""The bridge's answer to browsers: refuse a ``Host`` that does not name it and an ``Origin`` CORS does not allow.

A web page can make a browser send requests to a bridge on ``127.0.0.1`` (see
:mod:`triggerfish.crosssite`). ``Host`` must name the bridge (its binding, the address the connection
arrived on, the loopback names on loopback, or ``http.allowedHosts``); ``Origin``, when sent, must be
allowed by Strimzi's ``http.cors.enabled`` / ``http.cors.allowedOrigins`` (one regex, ``*`` for any).
Writes already require Strimzi's JSON content types, so a form or ``text/plain`` body is refused too.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from triggerfish import crosssite
from triggerfish.bridge.config import BridgeConfig
from triggerfish.bridge.errors import error_response


def _origin_allowed(config: BridgeConfig, origin: str) -> bool:
    if not config.cors_enabled:
        return False
    pattern = config.cors_origins.strip()
    return pattern == "*" or re.fullmatch(pattern, origin) is not None


class HostAndOrigin:
    """ASGI middleware: 403 in Strimzi's body for a foreign ``Host`` or a disallowed ``Origin``."""

    def __init__(self, app: ASGIApp, config: BridgeConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host, origin = headers.get("host"), headers.get("origin")
        local = str((scope.get("server") or ("", 0))[0] or "")
        message = None
        if not crosssite.host_allowed(host, local_address=local, bound=self.config.host,
                                      configured=self.config.allowed_hosts):
            name = crosssite.host_name(host or "") or "NAME"
            message = (f"Host header {host!r} does not name this bridge: refused as a possible DNS-rebinding "
                       f"attack by a web page. If clients reach the bridge by that name, add it to "
                       f"http.allowedHosts (e.g. http.allowedHosts={name})")
        elif origin is not None and not _origin_allowed(self.config, origin):
            message = (f"Origin {origin} may not call the bridge: a browser sent this request for a web page. "
                       "To allow it, set http.cors.enabled=true and http.cors.allowedOrigins to a regex matching it")
        if message is None:
            await self.app(scope, receive, send)
            return
        await error_response(403, message)(scope, receive, send)
