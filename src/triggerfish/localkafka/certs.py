"""Throw-away X.509 material for the local broker: a CA, a broker certificate and a client certificate.

Everything is PEM, keys are unencrypted PKCS#8 (the format Lambda's CLIENT_CERTIFICATE_TLS_AUTH
secret uses), and nothing here is fit for production: the CA lives next to the broker's data.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CLIENT_COMMON_NAME = "triggerfish-client"


@dataclass(frozen=True)
class CertFiles:
    ca_cert: Path
    ca_key: Path
    broker_cert: Path
    broker_key: Path
    broker_keystore: Path  # key + chain in one PEM file, as Kafka's PEM keystore wants
    client_cert: Path
    client_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "triggerfish local"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(common_name: str = "triggerfish local CA") -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    *,
    hosts: list[str] | None = None,
    client: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Issue a leaf certificate signed by the CA. ``hosts`` become DNS or IP SANs."""
    key = _key()
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=5))
        .not_valid_after(not_after or now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH] if client
                else [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if hosts:
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _write_pair(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, key_path: Path, cert_path: Path) -> None:
    key_path.write_bytes(_pem_key(key))
    key_path.chmod(0o600)
    cert_path.write_bytes(_pem_cert(cert))


def generate(directory: Path) -> CertFiles:
    """Create (or reuse) the CA, broker and client material under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = CertFiles(
        ca_cert=directory / "ca.pem",
        ca_key=directory / "ca-key.pem",
        broker_cert=directory / "broker.pem",
        broker_key=directory / "broker-key.pem",
        broker_keystore=directory / "broker-keystore.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
    )
    if all(p.exists() for p in files.__dict__.values()):
        return files
    ca_key, ca_cert = make_ca()
    _write_pair(ca_key, ca_cert, files.ca_key, files.ca_cert)
    broker_key, broker_cert = issue(ca_key, ca_cert, "localhost", hosts=["localhost", "127.0.0.1"])
    _write_pair(broker_key, broker_cert, files.broker_key, files.broker_cert)
    files.broker_keystore.write_bytes(_pem_key(broker_key) + _pem_cert(broker_cert) + _pem_cert(ca_cert))
    files.broker_keystore.chmod(0o600)
    client_key, client_cert = issue(ca_key, ca_cert, _CLIENT_COMMON_NAME, client=True)
    _write_pair(client_key, client_cert, files.client_key, files.client_cert)
    return files
