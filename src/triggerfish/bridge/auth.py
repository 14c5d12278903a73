"""Optional HTTP authentication of the bridge itself: basic or bearer, off by default.

Strimzi has none and tells users to put a proxy in front. Here one ASGI middleware checks the
``Authorization`` header against ``http.auth.*`` in constant time. Probes (``/healthy``, ``/ready``)
stay open so Kubernetes can call them. Credentials never appear in responses or logs.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from triggerfish.bridge.config import AuthConfig
from triggerfish.bridge.errors import body_of, encode
from triggerfish.errors import AuthenticationError

_OPEN_PATHS = frozenset(("/healthy", "/ready"))


class AuthMiddleware:
    def __init__(self, app: ASGIApp, auth: AuthConfig) -> None:
        self.app = app
        self.auth = auth
        if auth.type == "basic":
            self._expected = b"Basic " + base64.b64encode(f"{auth.username}:{auth.password}".encode())
        else:
            self._expected = b"Bearer " + auth.token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _OPEN_PATHS or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        if self._ok(given):
            await self.app(scope, receive, send)
            return
        challenge = b'Basic realm="triggerfish-bridge"' if self.auth.type == "basic" else b'Bearer realm="triggerfish-bridge"'
        err = AuthenticationError(f"Authentication required: send an Authorization: {self.auth.type.capitalize()} "
                                  "header with the credentials configured in http.auth.*")
        body = encode(body_of(err))
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/vnd.kafka.v2+json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", challenge)]})
        await send({"type": "http.response.body", "body": body})

    def _ok(self, given: bytes) -> bool:
        if self.auth.type == "basic" and given[:6].lower() == b"basic ":
            # normalise the scheme's case and re-encode so equivalent base64 compares equal
            try:
                decoded = base64.b64decode(given[6:].strip(), validate=True)
            except (binascii.Error, ValueError):
                return False
            given = b"Basic " + base64.b64encode(decoded)
        elif self.auth.type == "bearer" and given[:7].lower() == b"bearer ":
            given = b"Bearer " + given[7:].strip()
        return hmac.compare_digest(given, self._expected)
