"""Helpers shared by the Kafka tests: SCRAM users, ACL grants, env secrets, produce/consume roundtrips,
a loopback TLS server and a closed port. Plain functions; the fixtures built on them are in conftest.py."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from cryptography.hazmat.primitives import serialization


def env_secret(monkeypatch: pytest.MonkeyPatch, value: object) -> str:
    """Put ``value`` (JSON-encoded unless already a string) in a fresh env variable; return its ``env:`` reference."""
    name = f"TF_TEST_SECRET_{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.setenv(name, value if isinstance(value, str) else json.dumps(value))
    return f"env:{name}"


def root_ca_access(monkeypatch: pytest.MonkeyPatch, ca_file: str) -> dict[str, str]:
    """The local broker's private CA as a SERVER_ROOT_CA_CERTIFICATE entry (its certificates are not public)."""
    return {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": env_secret(monkeypatch, {"certificate": Path(ca_file).read_text()})}


def create_scram_user(admin: AdminClient, *mechanisms: ScramMechanism) -> tuple[str, str]:
    """Create a fresh SCRAM user (SCRAM-SHA-512 unless mechanisms are given) with no ACLs; return (user, password)."""
    user, password = f"tf-{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    upserts = [UserScramCredentialUpsertion(user, ScramCredentialInfo(m, 4096), password.encode())
               for m in mechanisms or (ScramMechanism.SCRAM_SHA_512,)]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(timeout=30)
    return user, password


def delete_scram_user(admin: AdminClient, user: str, *mechanisms: ScramMechanism) -> None:
    """Remove every ACL of ``User:<user>`` and the user's SCRAM credentials (SCRAM-SHA-512 unless given)."""
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, f"User:{user}", None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    for future in admin.delete_acls([everything]).values():
        future.result(timeout=30)
    deletions = [UserScramCredentialDeletion(user, m) for m in mechanisms or (ScramMechanism.SCRAM_SHA_512,)]
    for future in admin.alter_user_scram_credentials(deletions).values():
        future.result(timeout=30)


def allow(rtype: ResourceType, name: str, principal: str, op: AclOperation) -> AclBinding:
    """An ALLOW binding for ``principal`` on the literal resource ``name`` from any host."""
    return AclBinding(rtype, name, ResourcePatternType.LITERAL, principal, "*", op, AclPermissionType.ALLOW)


def create_acls(admin: AdminClient, bindings: list[AclBinding]) -> None:
    """Create the bindings and wait until the broker has them."""
    for future in admin.create_acls(bindings).values():
        future.result(timeout=30)


def delete_acls(admin: AdminClient, bindings: list[AclBinding]) -> None:
    """Delete exactly these bindings."""
    filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                b.permission_type) for b in bindings]
    for future in admin.delete_acls(filters).values():
        future.result(timeout=30)


def grant(admin: AdminClient, principal: str, rtype: ResourceType, name: str, *ops: AclOperation) -> None:
    """Allow ``principal`` each of ``ops`` on one resource."""
    create_acls(admin, [allow(rtype, name, principal, op) for op in ops])


def grant_client(admin: AdminClient, principal: str, topic: str, group: str,
                 *topic_ops: AclOperation) -> None:
    """What a producing and consuming client needs: ``topic_ops`` (default Read, Write) on the topic, Read on the group."""
    grant(admin, principal, ResourceType.TOPIC, topic, *(topic_ops or (AclOperation.READ, AclOperation.WRITE)))
    grant(admin, principal, ResourceType.GROUP, group, AclOperation.READ)


def roundtrip(config: dict[str, object], topic: str, group: str, timeout: float = 60.0) -> bytes:
    """Produce one fresh record with ``config`` and consume it back in ``group``; fail unless it is the same."""
    producer = Producer(config)
    payload = uuid.uuid4().hex.encode()
    producer.produce(topic, payload, key=b"k")
    assert producer.flush(30) == 0
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            assert msg.value() == payload
            return msg.value()
        raise AssertionError(f"no record consumed within {timeout:g} s")
    finally:
        consumer.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed again at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pem(obj: object) -> str:
    """A certificate or private key (PKCS#8, unencrypted) as PEM text."""
    if hasattr(obj, "public_bytes"):
        return obj.public_bytes(serialization.Encoding.PEM).decode()  # type: ignore[attr-defined]
    return obj.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


class TLSServer:
    """A real TLS server on 127.0.0.1 (port 0) presenting ``cert`` (then ``chain``); accepts until closed.

    Each connection is handed to ``respond`` after the handshake; subclasses answer a protocol there."""

    def __init__(self, tmp: Path, key: object, cert: object, *chain: object) -> None:
        bundle = tmp / f"srv-{uuid.uuid4().hex[:6]}.pem"
        bundle.write_text(pem(key) + pem(cert) + "".join(pem(c) for c in chain))
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(bundle)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    self.respond(tls)
            except (OSError, ssl.SSLError):
                pass

    def respond(self, tls: ssl.SSLSocket) -> None:
        """Read what the client sends first and answer nothing."""
        tls.recv(64)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> TLSServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
