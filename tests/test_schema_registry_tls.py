"""A registry behind TLS with client certificates (a TLS front for the real Apicurio, certificates from
trustme): SERVER_ROOT_CA_CERTIFICATE and CLIENT_CERTIFICATE_TLS_AUTH secrets are read like the mapping's
other secrets, and a missing client certificate is a wait naming the registry, not a dropped record."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import trustme

from kafka_helpers import env_secret
from registry_helpers import pipe
from test_schema_registry_engine import ORDERS, serialize
from triggerfish.schemas import RegistryUnavailable, SchemaDecoder, open_registry

pytestmark = pytest.mark.kafka  # needs the registry, started like the broker


@pytest.fixture
def tls_front(schema_registry: str) -> Iterator[tuple[str, trustme.CA, trustme.LeafCert]]:
    """(https URL of the registry, the CA, a client certificate the front accepts)."""
    ca = trustme.CA()
    server_cert, client_cert = ca.issue_cert("127.0.0.1"), ca.issue_cert("registry-client")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    host, port = schema_registry.split("//", 1)[1].split("/", 1)[0].split(":")
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(raw: socket.socket) -> None:
        try:
            client = context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        upstream = socket.create_connection((host, int(port)))
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def accept() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(raw,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}/apis/ccompat/v7", ca, client_cert
    finally:
        listener.close()


def test_client_certificate_and_private_ca_from_secrets(
        tls_front: tuple[str, Any, Any], schema_registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url, ca, client = tls_front
    framed = serialize(schema_registry, "sr-tls", "AVRO", ORDERS[:1])[0]
    ca_secret = env_secret(monkeypatch, {"certificate": ca.cert_pem.bytes().decode()})
    cert_secret = env_secret(monkeypatch, {
        "certificate": "".join(b.bytes().decode() for b in client.cert_chain_pems),
        "privateKey": client.private_key_pem.bytes().decode()})
    access = [{"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": ca_secret},
              {"Type": "CLIENT_CERTIFICATE_TLS_AUTH", "URI": cert_secret}]
    decoded = SchemaDecoder(open_registry(url, access)).decode(framed)
    assert decoded.value == ORDERS[0]

    without_cert = SchemaDecoder(open_registry(url, access[:1]))
    with pytest.raises(RegistryUnavailable, match=f"schema registry {url}: schema id .*: unreachable") as caught:
        without_cert.decode(framed)
    assert "CLIENT_CERTIFICATE_TLS_AUTH" in str(caught.value)
    subjects = open_registry(url, access).subjects()
    assert "sr-tls-value" in subjects
