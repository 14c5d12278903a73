"""One local HTTP(S) server for the test fakes: a function from request to reply, served on 127.0.0.1.

``serve(respond)`` binds a free port, answers every GET/POST/PUT/PATCH/DELETE on a daemon thread
(HTTP/1.1 with keep-alive; each reply gets its Content-Length) and returns a ``LocalServer`` to
read the port or URL from and to ``close()``. ``respond`` returning ``None`` hangs up without an
answer. Pass ``tls`` to serve HTTPS with that server-side context.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as sent, query string included
    headers: Mapping[str, str]  # names lower-cased
    body: bytes


class Reply(NamedTuple):
    status: int
    headers: Mapping[str, str] = {}
    body: bytes = b""


class LocalServer:
    def __init__(self, server: ThreadingHTTPServer, scheme: str) -> None:
        self._server = server
        self.host = HOST
        self.port: int = server.server_address[1]
        self.url = f"{scheme}://{HOST}:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(respond: Callable[[Request], Reply | None], tls: ssl.SSLContext | None = None) -> LocalServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            reply = respond(Request(self.command, self.path, headers, body))
            if reply is None:
                self.close_connection = True
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return LocalServer(server, "https" if tls else "http")
