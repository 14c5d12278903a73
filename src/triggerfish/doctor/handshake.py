"""What a broker shows in a TLS 1.2 handshake before the client proves anything: its chain and its client CAs.

Python's ``ssl`` exposes only the leaf certificate a server presents (the chain needs 3.13) and not the
CA names a server lists in its CertificateRequest (OpenSSL's ``SSL_get_client_CA_list``; pyOpenSSL is
not a dependency). In TLS 1.2 both travel in clear, before the ChangeCipherSpec, so this module runs
the handshake through ``ssl`` on memory buffers, keeps the bytes the broker sent and reads the two
handshake messages from them (RFC 5246 §7.4.2 and §7.4.4). It stops at ServerHelloDone, before the
client would send a certificate. A broker that speaks TLS 1.3 only gives nothing here.
"""

from __future__ import annotations

import socket
import ssl
import struct
from dataclasses import dataclass, field

from cryptography import x509

_HANDSHAKE = 22
_CHANGE_CIPHER_SPEC = 20
_CERTIFICATE = 11
_CERTIFICATE_REQUEST = 13
_SERVER_HELLO_DONE = 14
_MAX_BYTES = 1 << 20  # a broker's first flight is a few KB; stop reading a peer that never finishes it


@dataclass
class Handshake:
    """The broker's side of a TLS 1.2 handshake, up to ServerHelloDone."""

    chain: list[x509.Certificate] = field(default_factory=list)  # as presented: leaf first
    asks_client_cert: bool = False  # the broker sent a CertificateRequest (mTLS listener)
    client_ca_names: list[bytes] = field(default_factory=list)  # DER-encoded DNs the broker accepts client certs from


def capture(address: str, port: int, server_hostname: str, timeout: float) -> Handshake | None:
    """The broker's first TLS 1.2 flight, or None when it will not speak TLS 1.2 (or not TLS at all)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # only reading what the broker sends; the tls stage verifies it
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    received = bytearray()
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw:
            while len(received) < _MAX_BYTES:
                try:
                    tls.do_handshake()
                    break  # no CertificateRequest and the handshake finished: everything was read
                except ssl.SSLWantReadError:
                    pass
                raw.sendall(outgoing.read())
                data = raw.recv(65536)
                if not data:
                    break
                received += data
                incoming.write(data)
                messages = _handshake_messages(bytes(received))
                if any(kind == _SERVER_HELLO_DONE for kind, _ in messages):
                    break
    except (OSError, ssl.SSLError):
        pass
    messages = _handshake_messages(bytes(received))
    if not messages:
        return None
    return _read(messages)


def _read(messages: list[tuple[int, bytes]]) -> Handshake:
    out = Handshake()
    for kind, body in messages:
        try:
            if kind == _CERTIFICATE:
                out.chain = [x509.load_der_x509_certificate(der) for der in _vectors(body[3:], 3)]
            elif kind == _CERTIFICATE_REQUEST:
                out.asks_client_cert = True
                types_len = body[0]
                rest = body[1 + types_len:]
                algs_len = struct.unpack(">H", rest[:2])[0]
                rest = rest[2 + algs_len:]
                cas_len = struct.unpack(">H", rest[:2])[0]
                out.client_ca_names = _vectors(rest[2:2 + cas_len], 2)
        except (ValueError, IndexError, struct.error):
            continue  # a message we cannot read says nothing; the tls stage still has its own verdict
    return out


def _vectors(data: bytes, width: int) -> list[bytes]:
    """Consecutive length-prefixed items (``width``-byte big-endian lengths)."""
    items = []
    i = 0
    while i + width <= len(data):
        size = int.from_bytes(data[i:i + width], "big")
        items.append(data[i + width:i + width + size])
        i += width + size
    return items


def _handshake_messages(stream: bytes) -> list[tuple[int, bytes]]:
    """The complete handshake messages in the clear part of a TLS record stream (before ChangeCipherSpec)."""
    payload = bytearray()
    i = 0
    while i + 5 <= len(stream):
        kind, length = stream[i], struct.unpack(">H", stream[i + 3:i + 5])[0]
        if kind == _CHANGE_CIPHER_SPEC or kind != _HANDSHAKE:
            break
        payload += stream[i + 5:i + 5 + length]
        i += 5 + length
    messages = []
    j = 0
    while j + 4 <= len(payload):
        kind, size = payload[j], int.from_bytes(payload[j + 1:j + 4], "big")
        if j + 4 + size > len(payload):
            break
        messages.append((kind, bytes(payload[j + 4:j + 4 + size])))
        j += 4 + size
    return messages
