"""DNS and TCP probes for one broker ``host:port``, with the standard library (outside librdkafka)."""

from __future__ import annotations

import socket
import time

from triggerfish.checks import Check, timed
from triggerfish.errors import ConfigError
from triggerfish.esm import problems

DEFAULT_TIMEOUT_S = 5.0


def split_hostport(server: str) -> tuple[str, int]:
    host, _, port = server.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS", f"{server!r} is not host:port")
    return host, int(port)


def check_dns(host: str, port: int) -> tuple[Check, list[str]]:
    """Resolve one broker host; returns the result and its addresses."""
    started = time.monotonic()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return timed("dns", f"{host}:{port}", started, problems.unresolvable(host, port, exc.strerror or str(exc))), []
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return timed("dns", f"{host}:{port}", started, detail=", ".join(addresses)), addresses


def check_tcp(host: str, port: int, addresses: list[str], timeout: float = DEFAULT_TIMEOUT_S) -> Check:
    """Connect to the first address that answers (as librdkafka's use_all_dns_ips does)."""
    started = time.monotonic()
    error: OSError | None = None
    tried = addresses or [host]
    for address in tried:
        try:
            with socket.create_connection((address, port), timeout=timeout):
                return timed("tcp", f"{host}:{port}", started, detail=f"connected to {address}")
        except OSError as exc:
            error = exc
    return timed("tcp", f"{host}:{port}", started, problems.tcp_failed(host, port, tried[-1], error or OSError(), timeout))
