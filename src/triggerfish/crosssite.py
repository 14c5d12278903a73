"""What a browser can send to a local server from another site, and the checks that refuse it.

A web page can make the user's browser send requests to ``127.0.0.1``: through DNS rebinding (its
own name resolving to the server's address, so ``Host`` carries the page's name), or directly
(``Origin`` names the page's site). Without a CORS preflight it can only send the bodies a form or
``fetch()`` sends: ``text/plain``, ``application/x-www-form-urlencoded``, ``multipart/form-data``.
The control API and the bridge share these pure checks; each answers a refusal in its own shape.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection

#: Names a loopback connection may carry in ``Host``.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

#: The media types a browser sends cross-site without asking the server first (CORS "simple" requests).
_SIMPLE_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable only from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a ``Host`` header, lowercased, without port or IPv6 brackets."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def host_allowed(header: str | None, *, local_address: str, bound: str, configured: Collection[str]) -> bool:
    """Whether ``Host: header`` names this server: the address the connection arrived on, the address
    it is bound to, the loopback names on a loopback connection, or a name the operator configured
    (``*`` accepts any). Ports are not compared: rebinding changes the name, not the port."""
    if "*" in configured:
        return True
    if not header:
        return False  # HTTP/1.1 requires Host; a request without one is not from a browser or an SDK
    name = host_name(header)
    if name in {n.lower() for n in configured}:
        return True
    local = local_address.strip("[]").lower()
    if name in (local, bound.strip("[]").lower()):
        return True
    return name in LOOPBACK_NAMES and is_loopback(local)


def media_type(content_type: str | None) -> str:
    """``text/plain`` from ``Text/Plain; charset=utf-8``; empty when there is no Content-Type."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_simple_type(content_type: str | None) -> bool:
    """Whether a browser may send this Content-Type cross-site without a preflight."""
    return media_type(content_type) in _SIMPLE_TYPES


def is_json_type(content_type: str | None) -> bool:
    """``application/json``, ``application/x-amz-json-1.1``, ``application/vnd.kafka.v2+json`` and the like."""
    media = media_type(content_type)
    return media == "application/json" or media.startswith("application/x-amz-json") or media.endswith("+json")
