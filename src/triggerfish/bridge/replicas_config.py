"""The bridge's ``bridge.replicas.*`` properties: which other replicas serve the same consumers, and how long to wait.

Off unless ``bridge.replicas.peers`` (a list of base URLs) or ``bridge.replicas.dns`` (a name whose
addresses are every replica, such as a Kubernetes headless Service) is set; a single bridge, and
Strimzi's own tests, see no change.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from triggerfish.crosssite import LOOPBACK_NAMES
from triggerfish.errors import ConfigError
from triggerfish.settings import Settings

PEERS = "bridge.replicas.peers"
DNS = "bridge.replicas.dns"

KEYS = {
    PEERS,
    DNS,
    "bridge.replicas.port",
    "bridge.replicas.connect.timeout.ms",
    "bridge.replicas.locate.timeout.ms",
    "bridge.replicas.request.timeout.ms",
    "bridge.replicas.ssl.ca.location",
}


@dataclass(frozen=True)
class ReplicasConfig:
    """Where the other replicas are (a fixed list, or one DNS name and a port) and the forwarding timeouts."""

    peers: tuple[str, ...] = ()
    dns: str | None = None
    port: int = 8080
    scheme: str = "http"
    #: Connecting to a replica; a replica that cannot be reached in time owns nothing (its consumers are gone).
    connect_seconds: float = 1.0
    #: Asking every replica whether it owns a consumer instance.
    locate_seconds: float = 2.0
    #: Waiting for the owner's answer to a forwarded request, beyond the poll's own ``timeout``.
    request_seconds: float = 30.0
    ca_location: str | None = None


def replicas_config(s: Settings, port: int, ssl: bool, allowed_hosts: Collection[str] = ()) -> ReplicasConfig | None:
    """The replicas' settings, or ``None`` when forwarding is off.

    ``port``/``ssl``: this bridge's own, the default for DNS. ``allowed_hosts``: ``http.allowedHosts``,
    which must name every peer named by host name (replicas share a config, and each checks ``Host``).
    """
    peers = s.list_(PEERS, ())
    dns = s.optional(DNS)
    if not peers and dns is None:
        return None
    if peers and dns is not None:
        raise ConfigError(DNS, f"set either {PEERS} (a list of URLs) or {DNS} (a name resolving to every replica), not both")
    ca = s.optional("bridge.replicas.ssl.ca.location")
    if ca is not None and not Path(ca).is_file():
        raise ConfigError("bridge.replicas.ssl.ca.location", f"file {ca!r} does not exist")
    urls = tuple(_peer_url(url) for url in peers)
    _check_names(urls, allowed_hosts)
    return ReplicasConfig(
        peers=urls,
        dns=dns,
        port=s.int_("bridge.replicas.port", port, 1, 65535),
        scheme="https" if ssl else "http",
        connect_seconds=s.int_("bridge.replicas.connect.timeout.ms", 1000, 1, 600_000) / 1000,
        locate_seconds=s.int_("bridge.replicas.locate.timeout.ms", 2000, 1, 600_000) / 1000,
        request_seconds=s.int_("bridge.replicas.request.timeout.ms", 30_000, 1, 3_600_000) / 1000,
        ca_location=ca,
    )


def _peer_url(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None or parts.path.strip("/") \
            or parts.query or parts.username or parts.password:
        raise ConfigError(PEERS, f"{url!r} is not a replica's base URL; write http://HOST:PORT (or https://), "
                          "one per replica, comma-separated")
    return f"{parts.scheme}://{parts.netloc}"


def _check_names(urls: Collection[str], allowed_hosts: Collection[str]) -> None:
    """A forwarded request's ``Host`` is the peer's name in the list: the peer refuses a name it is not told about."""
    allowed = {h.lower() for h in allowed_hosts}
    if "*" in allowed:
        return
    for url in urls:
        name = (urlsplit(url).hostname or "").lower()
        try:
            ipaddress.ip_address(name)
            continue
        except ValueError:
            pass
        if name not in allowed and name not in LOOPBACK_NAMES:
            raise ConfigError(PEERS, f"{url} names a host the replicas refuse in Host headers; add {name} to "
                              "http.allowedHosts (or list the replicas by IP address)")
