"""The Kafka ApiVersions request, framed by hand, to tell a Kafka listener from anything else on a port.

Protocol only: the caller owns the socket (plain or TLS) and decides what a wrong answer means.
"""

from __future__ import annotations

import socket
import struct

_API_VERSIONS = 18
_CLIENT_ID = b"triggerfish-setup"
# CR LF CR LF: a line-based server (HTTP) answers instead of waiting for more
_CORRELATION_ID = 0x0D0A0D0A
_MAX_RESPONSE_BYTES = 1_000_000


class NotKafka(Exception):
    """The peer answered, but not with a Kafka response; the message says what it looked like."""


def _api_versions_request(correlation_id: int = _CORRELATION_ID, client_id: bytes = _CLIENT_ID) -> bytes:
    """ApiVersions v0, size-prefixed: api key, api version, correlation id, client id."""
    body = struct.pack(">hhih", _API_VERSIONS, 0, correlation_id, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


def _check_response_head(head: bytes, correlation_id: int = _CORRELATION_ID) -> None:
    """Raise :class:`NotKafka` unless the first 8 bytes are a Kafka response size and our correlation id."""
    size, got = struct.unpack(">ii", head)
    if head[:4] == b"HTTP" or head.lower().startswith((b"<!doc", b"<html")):
        raise NotKafka("it answered with HTTP")
    if got != correlation_id or not 0 < size < _MAX_RESPONSE_BYTES:
        text = head.decode("ascii", "replace")
        raise NotKafka(f"it answered {text!r}..." if text.isprintable() else "its answer is not a Kafka response")


def api_versions(sock: socket.socket) -> None:
    """Send ApiVersions v0 and check a Kafka-shaped answer comes back."""
    sock.sendall(_api_versions_request())
    _check_response_head(_read_exact(sock, 8))


def _read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionResetError("connection closed by the broker")
        data += chunk
    return data
