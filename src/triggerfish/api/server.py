"""Running the app with uvicorn inside this process, on its own thread and event loop.

``triggerfish run`` and the tests both use ``ApiServer``: ``start()`` returns once the socket is
bound (port 0 picks a free port; ``url`` tells which), ``stop()`` shuts it down gracefully.
It runs on ``ticking_server.TickingServer``: uvicorn's housekeeping once a second rather than ten times.
"""

from __future__ import annotations

import socket
import threading

import uvicorn
from starlette.types import ASGIApp

from triggerfish.diagnosis import Diagnosis
from triggerfish.errors import SetupError
from triggerfish.ticking_server import TickingServer


class ApiServer:
    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 9000) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: TickingServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        """Bind and serve in a background thread; return the base URL."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise SetupError(Diagnosis(
                f"cannot listen on {self.host}:{self.port}",
                f"{exc.strerror or exc}: pick another --port (0 = any free port), or stop whatever uses it",
                "pick another --port, or stop whatever already uses it", stage="http",
            )) from None
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = TickingServer(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="triggerfish-http", daemon=True
        )
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.02)):
            if self._server.started or not self._thread.is_alive():
                break
            deadline.wait(0.02)
        if not self._server.started:
            raise SetupError(Diagnosis(f"HTTP server on {self.url} did not start", "", "see the log above", stage="http"))
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None:
            self._server.exit_soon()
        if self._thread is not None:
            self._thread.join(timeout)
        self._server = None
        self._thread = None

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
