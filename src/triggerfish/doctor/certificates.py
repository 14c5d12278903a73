"""What each certificate in a Kafka TLS setup says: dates, key usage, issuer; and the checks built on it.

Covers the client's own material (client certificate, its key, the certificates sent with it) and every
CA in the configured bundle. The verdicts that need the broker (it rejected our certificate, it does
not trust our CA) are in :mod:`triggerfish.doctor.broker_tls`; the facts they name come from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from triggerfish.doctor.report import Check

STAGE = "certificates"
WARN_DAYS = 30
_MAX_CA_ROWS = 10  # a whole system bundle in ssl.ca.location gets one summary row, not 140

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}
_KU_FLAGS = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def day(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def common_name(name: x509.Name) -> str:
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return f"CN={cns[0].value!s}" if cns else name.rfc4514_string() or "(empty name)"


def extended_usages(cert: x509.Certificate) -> list[str] | None:
    """The extended key usages by name; None when the certificate has no such extension (any use allowed)."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return [_EKU_NAMES.get(oid, oid.dotted_string) for oid in eku]


def key_usages(cert: x509.Certificate) -> list[str] | None:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    names = [flag for flag in _KU_FLAGS if getattr(ku, flag)]
    return [n.title().replace("_", "")[0].lower() + n.title().replace("_", "")[1:] for n in names]


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return cert.subject == cert.issuer  # an old-style (v1) self-signed root


def describe(cert: x509.Certificate) -> str:
    """One line with everything that decides whether a TLS peer accepts this certificate."""
    eku, ku = extended_usages(cert), key_usages(cert)
    parts = [f"issued by {common_name(cert.issuer)}",
             f"valid {day(cert.not_valid_before_utc)} to {day(cert.not_valid_after_utc)}",
             f"EKU {', '.join(eku)}" if eku is not None else "no EKU (any use)"]
    if ku is not None:
        parts.append(f"KU {', '.join(ku)}")
    if is_ca(cert):
        parts.append("CA")
    return f"{common_name(cert.subject)} ({'; '.join(parts)})"


def validity_problem(cert: x509.Certificate, at: dt.datetime | None = None) -> str:
    """'' when valid at ``at`` (now), else what is wrong, with the dates."""
    at = at or now()
    if at < cert.not_valid_before_utc:
        return f"is not valid before {day(cert.not_valid_before_utc)} (now {day(at)})"
    if at > cert.not_valid_after_utc:
        return f"expired on {day(cert.not_valid_after_utc)} (now {day(at)})"
    return ""


def usage_problem(cert: x509.Certificate, role: str) -> str:
    """'' when ``cert`` may act as a TLS ``role`` ("client" or "server") end entity, else why not."""
    want = "clientAuth" if role == "client" else "serverAuth"
    eku = extended_usages(cert)
    if eku is not None and want not in eku and "anyExtendedKeyUsage" not in eku:
        return f"its extended key usage is {', '.join(eku) or 'empty'} only, without {want}"
    ku = key_usages(cert)
    if role == "client" and ku is not None and "digitalSignature" not in ku:
        # A TLS client always signs the handshake (CertificateVerify) with its key.
        return f"its key usage is {', '.join(ku) or 'empty'}, without digitalSignature"
    return ""


def same_key(cert: x509.Certificate, public_key_der: bytes) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(serialization.Encoding.DER, spki) == public_key_der


# --- the client's material ------------------------------------------------------------------------


@dataclass
class ClientMaterial:
    """The client certificate (leaf first, then what is sent with it) and whether its key belongs to it."""

    chain: list[x509.Certificate]
    source: str  # a file path, or "the CLIENT_CERTIFICATE_TLS_AUTH secret"
    key_source: str
    key_matches: bool | None = None  # None: the key could not be read (see error)
    error: str = ""

    @property
    def leaf(self) -> x509.Certificate | None:
        return self.chain[0] if self.chain else None

    @property
    def label(self) -> str:
        leaf = self.leaf
        return f"client certificate {common_name(leaf.subject) if leaf else '?'} ({self.source})"

    def key_problem(self) -> str:
        if self.error:
            return self.error
        if self.key_matches is False:
            return f"the private key in {self.key_source} does not belong to the certificate in {self.source}"
        return ""


def client_material(config: Mapping[str, Any]) -> ClientMaterial | None:
    """The client certificate and key the config names (files or PEM from a secret); None when there is none."""
    if config.get("ssl.certificate.pem"):
        cert_pem = str(config["ssl.certificate.pem"]).encode()
        key_pem = str(config.get("ssl.key.pem") or "").encode()
        source = key_source = "the CLIENT_CERTIFICATE_TLS_AUTH secret"
    elif config.get("ssl.certificate.location"):
        source, key_source = str(config["ssl.certificate.location"]), str(config.get("ssl.key.location") or "")
        try:
            cert_pem = Path(source).read_bytes()
            key_pem = Path(key_source).read_bytes() if key_source else b""
        except OSError as exc:
            return ClientMaterial([], source, key_source, error=f"cannot read {exc.filename}: {exc.strerror}")
    else:
        return None
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        return ClientMaterial([], source, key_source, error=f"{source} holds no PEM certificate")
    material = ClientMaterial(chain, source, key_source)
    if not key_pem:
        material.error = "no private key configured (ssl.key.location / privateKey)"
        return material
    password = config.get("ssl.key.password")
    try:
        key = serialization.load_pem_private_key(key_pem, str(password).encode() if password else None)
    except (ValueError, TypeError):
        material.error = f"the private key in {key_source} cannot be read (not PEM, or a wrong ssl.key.password)"
        return material
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    material.key_matches = same_key(chain[0], spki)
    return material


def ca_bundle(config: Mapping[str, Any]) -> tuple[list[x509.Certificate], str]:
    """The configured CA certificates and where they come from; ([], "") for the system trust store."""
    if config.get("ssl.ca.pem"):
        source, data = "the SERVER_ROOT_CA_CERTIFICATE secret", str(config["ssl.ca.pem"]).encode()
    elif config.get("ssl.ca.location") not in (None, "", "probe"):
        source = str(config["ssl.ca.location"])
        try:
            data = Path(source).read_bytes()
        except OSError:
            return [], source  # the tls stage says the file cannot be read
    else:
        return [], ""
    try:
        return x509.load_pem_x509_certificates(data), source
    except ValueError:
        return [], source


def client_verdict(material: ClientMaterial, at: dt.datetime | None = None) -> str:
    """'' when the client certificate is fit to be sent, else the first thing wrong with it."""
    if material.key_problem():
        return material.key_problem()
    leaf = material.leaf
    if leaf is None:
        return "no certificate"
    when = validity_problem(leaf, at)
    if when:
        return f"{common_name(leaf.subject)} {when}"
    usage = usage_problem(leaf, "client")
    return f"{common_name(leaf.subject)}: {usage}" if usage else ""


@dataclass
class LocalFindings:
    """The certificates rows for the client's own material, before any broker is contacted."""

    rows: list[Check] = field(default_factory=list)
    client: ClientMaterial | None = None


def check_local(config: Mapping[str, Any]) -> LocalFindings:
    """One row for the client certificate and one per CA in the bundle (none for a PLAINTEXT config)."""
    out = LocalFindings()
    if str(config.get("security.protocol", "PLAINTEXT")).upper() not in ("SSL", "SASL_SSL"):
        return out
    out.client = client_material(config)
    if out.client is not None:
        out.rows.append(_client_row(out.client))
    cas, source = ca_bundle(config)
    rows = [_ca_row(c, source) for c in cas]
    if len(rows) > _MAX_CA_ROWS:
        bad = [r for r in rows if r.status != "ok"]
        rows = [*bad, Check.of(STAGE, f"CA bundle {source}", "ok",
                               f"{len(cas) - len(bad)} of {len(cas)} CAs valid now and usable as CAs")]
    out.rows += rows
    return out


def _client_row(m: ClientMaterial) -> Check:
    if m.leaf is None or m.key_problem():
        return Check.of(STAGE, m.label, "fail", m.key_problem() or f"{m.source} holds no certificate", "",
                        "configure the client certificate and the private key it was issued for "
                        "(ssl.certificate.location + ssl.key.location, or the CLIENT_CERTIFICATE_TLS_AUTH secret)")
    leaf = m.leaf
    detail = describe(leaf) + "; the private key belongs to it"
    if len(m.chain) > 1:
        detail += "; sent with: " + ", ".join(common_name(c.subject) for c in m.chain[1:])
    when = validity_problem(leaf)
    if when:
        return Check.of(STAGE, m.label, "fail", f"the client certificate {when}", detail,
                        "renew the client certificate (a broker rejects a certificate outside its validity period)")
    usage = usage_problem(leaf, "client")
    if usage:
        return Check.of(STAGE, m.label, "fail", f"the client certificate cannot authenticate a TLS client: {usage}",
                        detail, "reissue the client certificate with extendedKeyUsage clientAuth (and keyUsage "
                        "digitalSignature)")
    days = (leaf.not_valid_after_utc - now()).days
    if days < WARN_DAYS:
        return Check.of(STAGE, m.label, "warn", f"the client certificate expires in {days} days", detail,
                        "renew the client certificate before it expires")
    return Check.of(STAGE, m.label, "ok", "fit for TLS client authentication", detail)


def _ca_row(cert: x509.Certificate, source: str) -> Check:
    label = f"CA {common_name(cert.subject)} ({source})"
    detail = describe(cert)
    when = validity_problem(cert)
    if when:
        # A warning, not a failure: an expired CA breaks the path only if it signed the broker's chain, and then
        # the tls stage fails with that verdict.
        return Check.of(STAGE, label, "warn", f"this CA {when}", detail,
                        "remove it from the bundle, or replace it with the CA's renewed certificate")
    if not is_ca(cert):
        return Check.of(STAGE, label, "warn", "this is not a CA certificate (basicConstraints CA:FALSE)", detail,
                        "put the issuing CA's certificate in the bundle, not a server or client certificate")
    ku = key_usages(cert)
    if ku is not None and "keyCertSign" not in ku:
        return Check.of(STAGE, label, "warn", "this CA may not sign certificates (keyUsage without keyCertSign)",
                        detail, "use a CA certificate whose keyUsage includes keyCertSign")
    return Check.of(STAGE, label, "ok", "valid CA", detail)
