"""The TLS probe: a handshake with the broker as librdkafka would do it, and what its certificate says.

librdkafka prints one message for an unknown CA, a wrong host name and an expired certificate;
Python's ``ssl`` tells them apart, so this probe runs outside librdkafka with the same settings
(CA, client certificate, host name check). After the handshake it asks Kafka's ApiVersions, so a
TLS 1.3 broker that rejects the client certificate gets to say so.
"""

from __future__ import annotations

import os
import secrets as _random
import socket
import ssl
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from triggerfish.checks import Check, timed
from triggerfish.diagnosis import Diagnosis
from triggerfish.esm import problems
from triggerfish.esm.probes.kafka_wire import NotKafka, api_versions
from triggerfish.esm.probes.network import DEFAULT_TIMEOUT_S


def check_tls(host: str, port: int, config: dict[str, Any], address: str | None = None,
              timeout: float = DEFAULT_TIMEOUT_S) -> Check:
    """Handshake with the broker as librdkafka would (same CA, client cert and host name check), then ask
    ApiVersions so a TLS 1.3 broker that rejects the client certificate gets to say so."""
    started = time.monotonic()
    if str(config.get("security.protocol", "PLAINTEXT")).upper() not in ("SSL", "SASL_SSL"):
        return _check_plaintext(host, port, address, timeout, started)
    attempt = _Handshake(host, port, config, address, timeout)
    try:
        version = attempt.run()
    except (OSError, NotKafka, ValueError) as exc:  # ssl.SSLError is an OSError
        return timed("tls", attempt.target, started, _handshake_failure(attempt, exc))
    detail = f"{version}, certificate verified" + (" (host name not checked)" if not _verify_hostname(config) else "")
    return timed("tls", attempt.target, started, detail=detail)


@dataclass
class _Handshake:
    """One TLS connection attempt to a broker, and how far it got."""

    host: str
    port: int
    config: dict[str, Any]
    address: str | None
    timeout: float
    handshaken: bool = False  # a peer that hangs up before its ServerHello is no TLS listener; after it, it refused us

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def has_client_cert(self) -> bool:
        return bool(self.config.get("ssl.certificate.pem") or self.config.get("ssl.certificate.location"))

    def run(self) -> str:
        """Handshake, then ApiVersions over TLS; the negotiated protocol version."""
        with _client_context(self.config) as ctx:
            with socket.create_connection((self.address or self.host, self.port), timeout=self.timeout) as raw:
                with ctx.wrap_socket(raw, server_hostname=self.host) as tls:
                    self.handshaken = True
                    version = tls.version() or "TLS"
                    api_versions(tls)
        return version


def _handshake_failure(attempt: _Handshake, exc: OSError | NotKafka | ValueError) -> Diagnosis:
    """Most specific exception first: an ``ssl.SSLCertVerificationError`` is an ``ssl.SSLError`` is an ``OSError``."""
    host, port = attempt.host, attempt.port
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _server_cert_diagnosis(host, port, exc, attempt.config, attempt.address, attempt.timeout)
    if isinstance(exc, ssl.SSLError):
        return _ssl_error_diagnosis(attempt, exc)
    if isinstance(exc, NotKafka):
        return problems.not_kafka(host, port, str(exc))
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        if attempt.handshaken:
            return problems.client_cert_rejected(attempt.target, "", attempt.has_client_cert)
        return problems.not_tls(host, port, exc.strerror or type(exc).__name__)
    if isinstance(exc, OSError):
        return problems.tcp_failed(host, port, attempt.address or host, exc, attempt.timeout)
    # unusable key material handed to ssl
    return Diagnosis(
        problems.INVALID_CERTIFICATE, f"{attempt.target}: the client certificate or key cannot be loaded ({exc})",
        "check the CLIENT_CERTIFICATE_TLS_AUTH secret", "InvalidKey")


def _ssl_error_diagnosis(attempt: _Handshake, exc: ssl.SSLError) -> Diagnosis:
    """OpenSSL's reason code tells a refused client certificate from a port that does not speak TLS."""
    reason = exc.reason or ""
    if "ALERT" in reason or (attempt.handshaken and reason == "UNEXPECTED_EOF_WHILE_READING"):
        return problems.client_cert_rejected(attempt.target, reason, attempt.has_client_cert)
    if reason in ("WRONG_VERSION_NUMBER", "UNEXPECTED_EOF_WHILE_READING", "RECORD_LAYER_FAILURE"):
        return problems.not_tls(attempt.host, attempt.port, reason)
    return Diagnosis(
        problems.TLS_AUTHENTICATION, f"{attempt.target}: TLS failed: {reason or exc}", "check the listener's TLS settings",
        reason,
    )


def _check_plaintext(host: str, port: int, address: str | None, timeout: float, started: float) -> Check:
    """No TLS configured: make sure the port answers Kafka in plaintext (a TLS listener hangs up at once)."""
    target = f"{host}:{port}"
    try:
        with socket.create_connection((address or host, port), timeout=timeout) as raw:
            api_versions(raw)
    except NotKafka as exc:
        return timed("tls", target, started, problems.not_kafka(host, port, str(exc)))
    except TimeoutError:
        return timed("tls", target, started, problems.not_kafka(host, port, f"no answer to ApiVersions within {timeout:g}s"))
    except OSError as exc:
        d = Diagnosis(
            problems.CONNECTION_ERROR,
            f"{target} hung up on a plaintext Kafka request ({exc.strerror or exc or type(exc).__name__}): it is probably a "
            "TLS or SASL_SSL listener",
            "add the listener's login (BASIC_AUTH / SASL_SCRAM_*_AUTH / CLIENT_CERTIFICATE_TLS_AUTH) or, for TLS "
            "without a login, a SERVER_ROOT_CA_CERTIFICATE secret; or use the broker's PLAINTEXT port",
            "_TRANSPORT",
        )
        return timed("tls", target, started, d)
    return timed("tls", target, started, status="skip", detail="no TLS (PLAINTEXT); Kafka answered ApiVersions")


def _verify_hostname(config: dict[str, Any]) -> bool:
    return str(config.get("ssl.endpoint.identification.algorithm", "https")).lower() != "none"


@contextmanager
def _client_context(config: dict[str, Any]) -> Iterator[ssl.SSLContext]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = _verify_hostname(config)
    if config.get("enable.ssl.certificate.verification", True) in (False, "false"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if config.get("ssl.ca.pem"):
        ctx.load_verify_locations(cadata=str(config["ssl.ca.pem"]))
    elif config.get("ssl.ca.location") and config["ssl.ca.location"] != "probe":
        ctx.load_verify_locations(cafile=str(config["ssl.ca.location"]))
    else:
        ctx.load_default_certs()
    if config.get("ssl.certificate.location") and config.get("ssl.key.location"):
        ctx.load_cert_chain(config["ssl.certificate.location"], config["ssl.key.location"], config.get("ssl.key.password"))
        yield ctx
    elif config.get("ssl.certificate.pem") and config.get("ssl.key.pem"):
        # Python's ssl loads keys from files only: write the key re-encrypted under a one-time password,
        # so the plain key never touches the disk, and delete it as soon as it is loaded.
        from cryptography.hazmat.primitives import serialization

        password = config.get("ssl.key.password")
        key = serialization.load_pem_private_key(
            str(config["ssl.key.pem"]).encode(), password.encode() if password else None
        )
        once = _random.token_urlsafe(24)
        sealed = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(once.encode()),
        )
        fd, path = tempfile.mkstemp(prefix="tf-key-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(str(config["ssl.certificate.pem"]).encode() + b"\n" + sealed)
            ctx.load_cert_chain(path, password=once)
        finally:
            os.unlink(path)
        yield ctx
    else:
        yield ctx


def _server_cert_diagnosis(host: str, port: int, exc: ssl.SSLCertVerificationError, config: dict[str, Any],
                           address: str | None, timeout: float) -> Diagnosis:
    info = peer_certificate(address or host, port, host, timeout)
    if config.get("ssl.ca.pem"):
        ca_source = "the SERVER_ROOT_CA_CERTIFICATE secret"
    elif config.get("ssl.ca.location") and config["ssl.ca.location"] != "probe":
        ca_source = str(config["ssl.ca.location"])
    else:
        ca_source = "the system trust store"
    return problems.server_cert_rejected(
        host, port, exc.verify_code, exc.verify_message or str(exc.reason), ca_source=ca_source, **info,
    )


def peer_certificate(address: str, port: int, host: str, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """Fetch the broker's certificate without verifying it, to say what is in it."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((address, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                der = tls.getpeercert(binary_form=True)
    except OSError:
        return {}
    if not der:
        return {}
    cert = x509.load_der_x509_certificate(der)
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        names = [str(cns[0].value)] if cns else []
    issuer = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return {
        "cert_names": names,
        "issuer": str(issuer[0].value) if issuer else cert.issuer.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC"),
        "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%d %H:%M UTC"),
    }
