"""A local OAuth 2.0 authorization server for tests: a client-credentials token endpoint and a JWKS endpoint.

Tokens are RS256 JWTs signed with joserfc (a maintained JOSE library); Kafka's
``OAuthBearerValidatorCallbackHandler`` checks them against ``/jwks``. The server keeps every token request's
form parameters (never the secret) so tests can see what the client asked for (scope, audience, ...).
It runs on 127.0.0.1 with uvicorn in a thread: ``with OAuthServer(port, clients={"id": "secret"}) as s: ...``.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

AUDIENCE = "triggerfish-kafka"
ISSUER = "http://127.0.0.1/triggerfish-test-issuer"


class OAuthServer:
    """Client-credentials token endpoint (``/token``) and its signing keys (``/jwks``) on 127.0.0.1:``port``."""

    def __init__(self, port: int, clients: dict[str, str], audience: str = AUDIENCE) -> None:
        self.port = port
        self.clients = dict(clients)
        self.audience = audience
        self.requests: list[dict[str, str]] = []  # form parameters of each token request, secrets removed
        self._key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig", "alg": "RS256"})
        app = Starlette(routes=[Route("/token", self._token, methods=["POST"]), Route("/jwks", self._jwks)])
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks"

    def __enter__(self) -> OAuthServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the test OAuth server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    async def _jwks(self, request: Request) -> JSONResponse:
        return JSONResponse(KeySet([self._key]).as_dict(private=False))

    async def _token(self, request: Request) -> JSONResponse:
        # x-www-form-urlencoded body; query parameters count too (triggerfish sends the audience there)
        form = dict(request.query_params) | dict(parse_qsl((await request.body()).decode(errors="replace")))
        client_id, secret = _basic_credentials(request.headers.get("authorization", ""))
        client_id = client_id or form.get("client_id", "")
        secret = secret or form.get("client_secret", "")
        self.requests.append({k: v for k, v in form.items() if k != "client_secret"} | {"client_id": client_id})
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if self.clients.get(client_id) != secret or not secret:
            return JSONResponse({"error": "invalid_client", "error_description": "client authentication failed"},
                                status_code=401)
        now = int(time.time())
        audience = form.get("audience") or self.audience  # the audience asked for, as identity providers do
        claims: dict[str, Any] = {"sub": client_id, "iss": ISSUER, "aud": audience, "iat": now, "exp": now + 3600}
        if form.get("scope"):
            claims["scope"] = form["scope"]
        token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, self._key)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 3600})


def _basic_credentials(header: str) -> tuple[str, str]:
    if not header.lower().startswith("basic "):
        return "", ""
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password
