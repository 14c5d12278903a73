"""Run a bridge: the API on ``http.host:http.port`` and the management endpoints on ``http.management.port``.

One uvicorn server listens on both sockets and dispatches by local port (with TLS on, a second, plain
one serves the management port), so the two share one event loop and one set of Kafka clients. Binding beyond
loopback without HTTP authentication is refused unless the caller says ``insecure``. The servers are
``TickingServer``s: an idle sidecar wakes once a second, not ten times, and stops at once when asked.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from triggerfish.bridge.app import create_app
from triggerfish.bridge.config import BridgeConfig
from triggerfish.bridge.one_write import OneWriteHttpToolsProtocol
from triggerfish.bridge.services import Services
from triggerfish.errors import ConfigError
from triggerfish.ticking_server import TickingServer


def check_exposure(config: BridgeConfig, insecure: bool) -> None:
    if not config.loopback and config.auth.type == "none" and not insecure:
        raise ConfigError("http.host", f"binding {config.host} exposes Kafka to the network without authentication; "
                          "set http.auth.type=basic|bearer (with http.auth.* credentials), bind 127.0.0.1, "
                          "or pass --insecure if a network policy or proxy protects the bridge")


class _PortDispatch:
    """Send each request to the app of the local port it arrived on (sockets are bound before start)."""

    def __init__(self, api: ASGIApp, management: ASGIApp, management_port: int) -> None:
        self.api, self.management, self.management_port = api, management, management_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.api(scope, receive, send)
            return
        server = scope.get("server") or ("", 0)
        app = self.management if server[1] == self.management_port else self.api
        await app(scope, receive, send)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError("http.port" if port else "http.host", f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


@dataclass
class _Prepared:
    """A bridge ready to run: its uvicorn servers and the sockets each serves (API first).

    One server when the API is plain HTTP (it dispatches the management port by local port); with TLS
    on, a second, plain one for the management port, as Strimzi keeps probes and metrics on plain HTTP.
    """

    servers: list[tuple[TickingServer, list[socket.socket]]]
    services: Services

    @property
    def server(self) -> TickingServer:
        return self.servers[0][0]

    @property
    def sockets(self) -> list[socket.socket]:
        return [sock for _, socks in self.servers for sock in socks]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [s.getsockname()[:2] for s in self.sockets]

    def run(self) -> None:
        if len(self.servers) == 1:
            self.server.run(sockets=self.sockets)
        else:
            asyncio.run(self._serve_all())

    async def _serve_all(self) -> None:
        servers = [server for server, _ in self.servers]

        async def stop_together() -> None:
            # a signal reaches one server's handler (the last to install its own); stopping one stops all
            waits = [asyncio.create_task(server.exiting()) for server in servers]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
            for server in servers:
                server.exit_soon()

        watcher = asyncio.create_task(stop_together())
        try:
            await asyncio.gather(*(server.serve(sockets=socks) for server, socks in self.servers))
        finally:
            watcher.cancel()

    def start_in_thread(self, timeout: float = 10.0) -> threading.Thread:
        """Serve from a background thread (embedding, tests); returns once requests are accepted."""
        thread = threading.Thread(target=self.run, name="triggerfish-bridge", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not all(server.started for server, _ in self.servers):
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the bridge did not start")
            time.sleep(0.02)
        return thread

    def stop(self, thread: threading.Thread, timeout: float = 30.0) -> None:
        for server, _ in self.servers:
            server.exit_soon()
        thread.join(timeout)


def prepare(config: BridgeConfig, insecure: bool = False) -> _Prepared:
    """Check exposure, bind the sockets and build the Kafka clients (errors surface here, not later)."""
    prepared = _prepare(config, insecure)
    # everything imported and built so far lives as long as the bridge: keep the collector from walking
    # it again on every full collection (a poll's records make several collections each)
    gc.freeze()
    return prepared


def _prepare(config: BridgeConfig, insecure: bool) -> _Prepared:
    check_exposure(config, insecure)
    sockets = [_bind(config.host, config.port)]
    management_port = None
    try:
        if config.management_port is not None and (config.management_port == 0 or config.management_port != config.port):
            sockets.append(_bind(config.host, config.management_port))
            management_port = sockets[1].getsockname()[1]
        services = Services.build(config)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    api = create_app(services)
    common: dict[str, Any] = {"log_level": "warning", "access_log": False, "timeout_keep_alive": 30, "server_header": False,
                              "http": OneWriteHttpToolsProtocol}
    if management_port is None or config.ssl_certfile is None:
        app: ASGIApp = api
        if management_port is not None:
            app = _PortDispatch(api, create_app(services, management=True), management_port)
        uv = uvicorn.Config(app, lifespan="on", ssl_certfile=config.ssl_certfile, ssl_keyfile=config.ssl_keyfile, **common)
        return _count_connections(_Prepared([(TickingServer(uv), sockets)], services))
    tls = uvicorn.Config(api, lifespan="on", ssl_certfile=config.ssl_certfile, ssl_keyfile=config.ssl_keyfile, **common)
    plain = uvicorn.Config(create_app(services, management=True), lifespan="off", **common)
    return _count_connections(_Prepared([(TickingServer(tls), sockets[:1]), (TickingServer(plain), sockets[1:])],
                                        services))


def _count_connections(prepared: _Prepared) -> _Prepared:
    """Let ``strimzi_bridge_http_server_active_connections`` read the servers' open connections."""
    if prepared.services.strimzi is not None:
        servers = [server for server, _ in prepared.servers]
        prepared.services.strimzi.connections = lambda: sum(len(s.server_state.connections) for s in servers)
    return prepared


def serve(config: BridgeConfig, insecure: bool = False, on_ready: Callable[[list[tuple[str, int]]], None] | None = None) -> None:
    """Build the Kafka clients, bind, and serve until interrupted."""
    prepared = prepare(config, insecure)
    if on_ready is not None:
        on_ready(prepared.addresses)
    prepared.run()
