"""The bridge's answer to browsers: refuse a ``Host`` that does not name it; Strimzi's CORS for an ``Origin``.

A web page can make a browser send requests to a bridge on ``127.0.0.1`` (see
:mod:`triggerfish.crosssite`). ``Host`` must name the bridge (its binding, the address the connection
arrived on, the loopback names on loopback, or ``http.allowedHosts``); ``Origin``, when sent, must be
allowed by Strimzi's ``http.cors.enabled`` / ``http.cors.allowedOrigins`` (one regex, ``*`` for any).
Writes already require Strimzi's JSON content types, so a form or ``text/plain`` body is refused too.
"""

from __future__ import annotations

import re

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triggerfish import crosssite
from triggerfish.bridge.config import BridgeConfig
from triggerfish.bridge.errors import error_response

#: The ASGI scope key holding the 403 message for a request from a page whose Origin is not allowed
#: while CORS is off; the operation answers it once Strimzi's own validation has passed.
REFUSED_ORIGIN = "triggerfish.bridge.refused_origin"

# Vert.x CorsHandler's answer for an Origin CORS does not allow (a plain-text body, as Strimzi sends it)
_CORS_REJECTED = b"CORS Rejected - Invalid origin"
# the request headers Strimzi's CORS preflight allows, in the order it lists them
_HOSTS_CACHED = 256
_ALLOW_HEADERS = ("access-control-allow-origin,content-length,x-forwarded-proto,x-forwarded-host,origin,"
                  "x-requested-with,content-type,access-control-allow-methods,accept")


def _origin_allowed(config: BridgeConfig, origin: str) -> bool:
    pattern = config.cors_origins.strip()
    return pattern == "*" or re.fullmatch(pattern, origin) is not None


class HostAndOrigin:
    """ASGI middleware: 403 for a foreign ``Host``; Strimzi's CORS (preflights, ``Access-Control-Allow-Origin``,
    403 for an Origin not allowed) when ``http.cors.enabled``, and a 403 after validation for any Origin when not."""

    def __init__(self, app: ASGIApp, config: BridgeConfig) -> None:
        self.app = app
        self.config = config
        self._allow_headers = _ALLOW_HEADERS + (",authorization" if config.auth.type != "none" else "")
        # (Host, local address) -> allowed: a client sends the same Host on every request
        self._hosts: dict[tuple[bytes | None, str], bool] = {}

    def _host_allowed(self, host: bytes | None, local: str) -> bool:
        key = (host, local)
        allowed = self._hosts.get(key)
        if allowed is None:
            allowed = crosssite.host_allowed(None if host is None else host.decode("latin-1"), local_address=local,
                                             bound=self.config.host, configured=self.config.allowed_hosts)
            if len(self._hosts) >= _HOSTS_CACHED:  # a client inventing names gets no memory from us
                self._hosts.clear()
            self._hosts[key] = allowed
        return allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_host = raw_origin = None
        for key, value in scope["headers"]:  # ASGI servers give names lowercased; the last of each counts
            if key == b"host":
                raw_host = value
            elif key == b"origin":
                raw_origin = value
        local = str((scope.get("server") or ("", 0))[0] or "")
        if not self._host_allowed(raw_host, local):
            host = None if raw_host is None else raw_host.decode("latin-1")
            name = crosssite.host_name(host or "") or "NAME"
            message = (f"Host header {host!r} does not name this bridge: refused as a possible DNS-rebinding "
                       f"attack by a web page. If clients reach the bridge by that name, add it to "
                       f"http.allowedHosts (e.g. http.allowedHosts={name})")
            await error_response(403, message)(scope, receive, send)
            return
        if raw_origin is None:
            await self.app(scope, receive, send)
            return
        origin = raw_origin.decode("latin-1")
        if not self.config.cors_enabled:
            scope[REFUSED_ORIGIN] = (
                f"Origin {origin} may not call the bridge: a browser sent this request for a web page. "
                "To allow it, set http.cors.enabled=true and http.cors.allowedOrigins to a regex matching it")
            await self.app(scope, receive, send)
        elif not _origin_allowed(self.config, origin):
            await Response(_CORS_REJECTED, status_code=403)(scope, receive, send)
        else:
            await self._cors(scope, receive, send, origin)

    async def _cors(self, scope: Scope, receive: Receive, send: Send, origin: str) -> None:
        allow_origin = "*" if self.config.cors_origins.strip() == "*" else origin
        if scope["method"] == "OPTIONS" and any(k.lower() == b"access-control-request-method" for k, _ in scope["headers"]):
            await Response(status_code=204, headers={
                "access-control-allow-origin": allow_origin,
                "access-control-allow-methods": ",".join(self.config.cors_methods),
                "access-control-allow-headers": self._allow_headers,
            })(scope, receive, send)
            return

        async def send_with_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("access-control-allow-origin", allow_origin)
            await send(message)

        await self.app(scope, receive, send_with_origin)
