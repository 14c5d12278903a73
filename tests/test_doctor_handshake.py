"""What the doctor reads from a broker's TLS handshake: its presented chain and the CA names it accepts.

Real TLS servers (OpenSSL, through pyOpenSSL) on loopback that require a client certificate and list
their client CAs: in TLS 1.2's CertificateRequest, and in TLS 1.3's certificate_authorities extension.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from cryptography import x509
from OpenSSL import SSL

from triggerfish.doctor.handshake import capture
from triggerfish.localkafka.certs import issue, make_ca


@contextmanager
def mtls_server(version: int, client_cas: list[x509.Certificate]) -> Iterator[tuple[int, list[x509.Certificate]]]:
    """A server that presents leaf + intermediate and asks for a client certificate from ``client_cas``."""
    root_key, root = make_ca("handshake root CA")
    key, leaf = issue(root_key, root, "localhost", hosts=["localhost"])
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(version)
    ctx.set_max_proto_version(version)
    ctx.use_certificate(leaf)
    ctx.use_privatekey(key)
    ctx.add_extra_chain_cert(root)
    for ca in client_cas:
        ctx.add_client_ca(ca)
    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *_: True)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            raw.setblocking(True)  # pyOpenSSL on a socket with a timeout would raise WantReadError
            conn = SSL.Connection(ctx, raw)
            conn.set_accept_state()
            try:
                conn.do_handshake()
                conn.recv(1)  # TLS 1.3: the refusal of an empty client certificate comes after the handshake
            except (SSL.Error, OSError):
                pass
            raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], [leaf, root]
    finally:
        stop.set()
        thread.join(2)
        listener.close()


@pytest.mark.parametrize("version", [SSL.TLS1_2_VERSION, SSL.TLS1_3_VERSION], ids=["TLSv1.2", "TLSv1.3"])
def test_chain_and_client_ca_names_in_both_versions(version: int) -> None:
    accepted = [make_ca("handshake clients A")[1], make_ca("handshake clients B")[1]]
    with mtls_server(version, accepted) as (port, presented):
        shown = capture("127.0.0.1", port, "localhost", timeout=3)
    assert shown is not None
    assert shown.chain == presented  # leaf first, as sent
    assert shown.client_ca_names == [ca.subject for ca in accepted]


def test_a_peer_that_does_not_speak_tls_gives_nothing() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_http() -> None:
        for _ in range(2):  # capture tries TLS 1.2, then any version
            conn, _ = listener.accept()
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            conn.close()

    threading.Thread(target=answer_http, daemon=True).start()
    try:
        assert capture("127.0.0.1", listener.getsockname()[1], "localhost", timeout=2) is None
    finally:
        listener.close()
