"""A small local fake of Infinispan Server's cross-site REST endpoints, over HTTPS with Basic auth.

Serves what the fencing function and an operator use (Infinispan 15+ container paths):

    GET  /rest/v2/container/x-site/backups/                        {site: {"status": ...}}
    GET  /rest/v2/container/x-site/backups/{site}                  {"status": ...} or 404
    POST /rest/v2/container/x-site/backups/{site}?action=take-offline   200 {cache: "ok" | error}
    POST /rest/v2/container/x-site/backups/{site}?action=bring-online   same shape

Like the real server: 401 without valid credentials, 200 with a per-cache map even when some
caches fail, ``ok`` again for a backup that is already offline, ``{}`` when no cache backs up to
the site. Test hooks: ``fail_next(status)`` answers the next action with an HTTP error,
``cache_errors`` makes named caches fail their next action, ``actions`` records what was done.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import trustme

from http_fake import LocalServer, Reply, Request, serve

PREFIX = "/rest/v2/container/x-site/backups/"


class FakeInfinispan:
    def __init__(self, site: str, backups: list[str], caches: list[str], user: str, password: str, ca: trustme.CA) -> None:
        self.site = site
        self.user = user
        self.password = password
        self.ca = ca
        # cache -> backup site -> "online" | "offline"
        self.state: dict[str, dict[str, str]] = {cache: {b: "online" for b in backups} for cache in caches}
        self.actions: list[tuple[str, str]] = []  # (action, site) of every authorised action request
        self.rejected = 0
        self.cache_errors: dict[str, str] = {}
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._server: LocalServer | None = None
        self.endpoint = ""  # host:port once started

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        self._failures.extend([status] * times)

    def status(self, backup: str) -> str:
        states = {caches[backup] for caches in self.state.values() if backup in caches}
        return states.pop() if len(states) == 1 else ("mixed" if states else "unknown")

    def start(self) -> str:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self._server = serve(self._serve, tls=context)
        self.endpoint = f"{self._server.host}:{self._server.port}"
        return self.endpoint

    def stop(self) -> None:
        if self._server:
            self._server.close()

    def _serve(self, request: Request) -> Reply:
        status, body = self._handle(request.method, request.path, request.headers.get("authorization"))
        headers = {"Content-Type": "text/plain" if isinstance(body, str) else "application/json"}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="default"'
        data = b"" if body is None else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        return Reply(status, headers, data)

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.user and password == self.password

    def _handle(self, method: str, path: str, authorization: str | None) -> tuple[int, Any]:
        if not self._authorised(authorization):
            self.rejected += 1
            return 401, None
        parts = urlsplit(path)
        if not parts.path.startswith(PREFIX):
            return 404, f"no resource {parts.path}"
        site = unquote(parts.path[len(PREFIX) :]).strip("/")
        action = parse_qs(parts.query).get("action", [None])[0]
        with self._lock:
            if method == "GET" and not action:
                backups = {b for caches in self.state.values() for b in caches}
                if not site:
                    return 200, {b: {"status": self.status(b)} for b in sorted(backups)}
                return (200, {"status": self.status(site)}) if site in backups else (404, f"site {site} not found")
            if method != "POST" or action not in ("take-offline", "bring-online"):
                return 400, f"unsupported {method} action {action}"
            if self._failures:
                return self._failures.pop(0), "injected failure"
            self.actions.append((action, site))
            result: dict[str, str] = {}
            for cache, backups in self.state.items():
                if site not in backups:
                    continue
                if cache in self.cache_errors:
                    result[cache] = self.cache_errors.pop(cache)
                    continue
                backups[site] = "offline" if action == "take-offline" else "online"
                result[cache] = "ok"
            return 200, result
