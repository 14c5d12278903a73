"""What a broker shows in a TLS handshake before the client proves anything: its chain and its client CAs.

Python's ``ssl`` exposes only the leaf certificate a server presents (the chain needs 3.13) and not the
CA names a server lists for client certificates, so this module handshakes through pyOpenSSL without a
client certificate: ``get_peer_cert_chain`` is the chain as presented and ``get_client_ca_list`` the
names from the CertificateRequest (TLS 1.2) or its certificate_authorities extension (TLS 1.3, when the
broker sends one). An mTLS broker then refuses the handshake; what it showed before that is kept.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

from cryptography import x509
from OpenSSL import SSL

_MAX_BYTES = 1 << 20  # a broker's first flight is a few KB; stop reading a peer that never finishes it


@dataclass
class Handshake:
    """The broker's side of a TLS handshake made without a client certificate."""

    chain: list[x509.Certificate] = field(default_factory=list)  # as presented: leaf first
    client_ca_names: list[x509.Name] = field(default_factory=list)  # the CAs it accepts client certificates from


def capture(address: str, port: int, server_hostname: str, timeout: float) -> Handshake | None:
    """The broker's chain and client CA names, or None when it will not speak TLS.

    TLS 1.2 first: its CertificateRequest always carries the CA list, where TLS 1.3's extension is optional.
    """
    for newest in (SSL.TLS1_2_VERSION, None):
        shown = _handshake(address, port, server_hostname, timeout, newest)
        if shown is not None:
            return shown
    return None


def _handshake(address: str, port: int, server_hostname: str, timeout: float, newest: int | None) -> Handshake | None:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)  # verifies nothing: the tls stage does, this only reads
    if newest is not None:
        ctx.set_max_proto_version(newest)
    tls = SSL.Connection(ctx, None)  # memory BIOs: the socket keeps its timeout
    if not _is_address(server_hostname):
        tls.set_tlsext_host_name(server_hostname.encode("idna"))
    tls.set_connect_state()
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw:
            received = 0
            while received < _MAX_BYTES:
                try:
                    tls.do_handshake()
                    break
                except SSL.WantReadError:
                    pass
                _send_pending(tls, raw)
                data = raw.recv(65536)
                if not data:
                    break
                received += len(data)
                tls.bio_write(data)
    except (OSError, SSL.Error):
        pass  # a refusal (no client certificate, or no TLS at all): keep what was read before it
    chain = tls.get_peer_cert_chain(as_cryptography=True)
    if not chain:
        return None
    return Handshake(chain=list(chain), client_ca_names=list(tls.get_client_ca_list(as_cryptography=True)))


def _send_pending(tls: SSL.Connection, raw: socket.socket) -> None:
    while True:
        try:
            raw.sendall(tls.bio_read(65536))
        except SSL.WantReadError:
            return


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
