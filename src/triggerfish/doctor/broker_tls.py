"""The tls row of one broker, told in certificates: what the broker presented, and why a handshake failed.

The TLS probe (:mod:`triggerfish.esm.probes.tls`) decides whether the handshake works. A Java broker
answers every client certificate it refuses with the same alert (``certificate_unknown``), whatever the
reason, so this module reads the certificates themselves to say which reason it is: our certificate
expired or is not yet valid, it lacks clientAuth, or the broker does not trust the CA that issued it
(from the CA names the broker lists in its CertificateRequest). It also names the broker's presented
chain with dates, and says when the broker's own certificate is the problem (not for server use, or an
expired CA in its chain).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from triggerfish.doctor import certificates as certs
from triggerfish.doctor.handshake import capture
from triggerfish.doctor.report import Check
from triggerfish.esm import problems
from triggerfish.esm.probes.network import split_hostport
from triggerfish.esm.probes.tls import peer_certificate

_UNSUPPORTED_PURPOSE = "verify 26"  # X509_V_ERR_INVALID_PURPOSE
_EXPIRY_CODES = ("verify 9", "verify 10")
_PATH_LENGTH = "verify 25"  # X509_V_ERR_PATH_LENGTH_EXCEEDED
_KEY_MISMATCH = "KEY_VALUES_MISMATCH"
_CLIENT_FIX_TARGET = "the client certificate (ssl.certificate.location, or the CLIENT_CERTIFICATE_TLS_AUTH secret)"


def explain(check: Check, server: str, config: Mapping[str, Any], timeout: float,
            client: certs.ClientMaterial | None) -> Check:
    """The tls row for ``server`` with the certificates' side of the story added."""
    if check.stage != "tls" or check.status == "skip":
        return check
    host, port = split_hostport(server)
    if check.status == "ok":
        return _with_certificate(check, host, port, config, timeout)
    if client is not None and (check.code == _KEY_MISMATCH or client.key_problem()):
        return check.replace(problem=problems.TLS_AUTHENTICATION,
                             detail=f"{check.target}: {client.key_problem() or 'the client key does not match'}",
                             fix="configure the private key that belongs to the client certificate (or the "
                                 "certificate that belongs to the key)", code=_KEY_MISMATCH)
    if client is not None and _client_refused(check):
        return _client_rejected(check, host, port, client, timeout)
    if check.code in (_UNSUPPORTED_PURPOSE, _PATH_LENGTH, *_EXPIRY_CODES):
        return _broker_chain_failure(check, host, port, config, timeout)
    return check


def _client_refused(check: Check) -> bool:
    """The broker ended the handshake after seeing our certificate (an alert, or a hang-up after ServerHello)."""
    # An OpenSSL TLS 1.3 server that refuses the client certificate may close without an alert the client reads:
    # Python then reports a bare EOF (no reason), after its own verification of the broker passed.
    eof = not check.code and "EOF occurred in violation of protocol" in check.detail
    return "ALERT" in check.code or eof or (check.code == "_SSL" and "client certificate" in check.detail)


def _client_rejected(check: Check, host: str, port: int, client: certs.ClientMaterial, timeout: float) -> Check:
    """Which of our certificate's faults made the broker refuse it; the CA's, when there is none."""
    leaf = client.leaf
    if leaf is None:
        return check
    seen = f"the broker refused the TLS handshake ({check.code or 'closed without an alert'})"
    facts = f"{seen}; sent {certs.describe(leaf)}"
    subject = certs.common_name(leaf.subject)
    when = certs.validity_problem(leaf)
    if when:
        return check.replace(
            problem=problems.TLS_AUTHENTICATION,
            detail=f"{check.target}: the broker rejected our client certificate {subject}: it {when}; {facts}",
            fix=f"renew {_CLIENT_FIX_TARGET}" if "expired" in when else
            "check the clock of the CA that issued the client certificate (and this machine's), or reissue it "
            "with a notBefore in the past")
    usage = certs.usage_problem(leaf, "client")
    if usage:
        return check.replace(
            problem=problems.TLS_AUTHENTICATION,
            detail=f"{check.target}: the broker rejected our client certificate {subject}: {usage}; {facts}",
            fix=f"reissue {_CLIENT_FIX_TARGET} with extendedKeyUsage clientAuth and keyUsage digitalSignature "
                "(a serverAuth-only certificate cannot log a client in)")
    shown = capture(host, port, host, timeout)
    if shown is not None and shown.client_ca_names:
        accepted = [certs.common_name(name) for name in shown.client_ca_names]
        if not {c.issuer for c in client.chain} & set(shown.client_ca_names):
            return check.replace(
                problem=problems.TLS_AUTHENTICATION,
                detail=(f"{check.target}: the broker does not trust the CA that issued our client certificate "
                        f"({certs.common_name(leaf.issuer)}); it accepts client certificates from: "
                        f"{', '.join(accepted)}; {facts}"),
                fix=(f"add the CA {certs.common_name(leaf.issuer)} to the broker's ssl.truststore for this "
                     f"listener, or use a client certificate issued by {' or '.join(accepted)}; if "
                     f"{certs.common_name(leaf.issuer)} is an intermediate under one of those, append it after the "
                     f"client certificate in {client.source}"))
        return check.replace(
            problem=problems.TLS_AUTHENTICATION,
            detail=(f"{check.target}: the broker trusts our client certificate's CA ({certs.common_name(leaf.issuer)}) "
                    f"and the certificate is valid and for client use, yet it was refused; {facts}"),
            fix="read the broker's log for the handshake failure (a revoked certificate, a missing intermediate "
                "in the certificate file, or a principal mapping rule)")
    return check.replace(
        problem=problems.TLS_AUTHENTICATION,
        detail=(f"{check.target}: the broker does not trust the CA that issued our client certificate "
                f"({certs.common_name(leaf.issuer)}): the certificate itself is valid now and for client use; {facts}"),
        fix=(f"add the CA {certs.common_name(leaf.issuer)} to the broker's ssl.truststore, or use a client "
             "certificate from a CA the broker trusts"))


def explain_login_refusal(check: Check, config: Mapping[str, Any], client: certs.ClientMaterial | None) -> Check:
    """librdkafka's handshake refused although the doctor's own TLS probe passed.

    Seen with the real broker: a client certificate issued by an intermediate that is in the CA bundle but
    not in the certificate file. OpenSSL (the probe) sends the intermediate from its trust store;
    librdkafka sends only what ssl.certificate.location holds, so the broker cannot build the chain.
    """
    if check.problem != problems.TLS_AUTHENTICATION or client is None or client.leaf is None:
        return check
    leaf = client.leaf
    if leaf.issuer == leaf.subject or any(c.subject == leaf.issuer for c in client.chain[1:]):
        return check
    bundle, source = certs.ca_bundle(config)
    intermediate = next((c for c in bundle if c.subject == leaf.issuer and c.issuer != c.subject), None)
    if intermediate is None:
        return check
    name = certs.common_name(intermediate.subject)
    return check.replace(
        detail=(f"{check.detail}: our client certificate {certs.common_name(leaf.subject)} is issued by the "
                f"intermediate {name}, which is in the CA bundle ({source}) but not in {client.source}; librdkafka "
                "sends only the certificates in that file, so the broker cannot build the chain (the tls row passed "
                "because Python's OpenSSL also sends intermediates from the CA bundle)"),
        fix=f"append the intermediate {name} (PEM) after the client certificate in {client.source}")


def _broker_chain_failure(check: Check, host: str, port: int, config: Mapping[str, Any], timeout: float) -> Check:
    """The broker's chain is the problem: name the certificate (leaf or CA) and what is wrong with it."""
    shown = capture(host, port, host, timeout)
    if shown is None or not shown.chain:
        return check
    chain = "; presented chain: " + " <- ".join(certs.describe(c) for c in shown.chain)
    leaf = shown.chain[0]
    if check.code == _UNSUPPORTED_PURPOSE:
        usage = certs.usage_problem(leaf, "server") or "it is not for TLS server use"
        return check.replace(
            detail=f"{check.target}: the broker certificate {certs.common_name(leaf.subject)} cannot identify a "
                   f"TLS server: {usage}{chain}",
            fix="reissue the broker certificate with extendedKeyUsage serverAuth (clients refuse a certificate for "
                "client authentication only)")
    if check.code == _PATH_LENGTH:
        strict = _too_deep(shown.chain, certs.ca_bundle(config)[0])
        limit = f" allows no intermediate CA below it (pathLenConstraint {_path_length(strict)})" if strict else ""
        return check.replace(
            detail=(f"{check.target}: the broker's chain is longer than a CA allows: "
                    f"{certs.common_name(strict.subject) + limit if strict else 'a pathLenConstraint is exceeded'}"
                    f"{chain}"),
            fix="reissue the CA with a larger pathLenConstraint (or none), or issue the broker certificate directly "
                "from it")
    bad = next((c for c in shown.chain if certs.validity_problem(c)), None)
    if bad is not None and bad is not leaf:
        return check.replace(
            detail=f"{check.target}: the broker's chain has a CA certificate {certs.common_name(bad.subject)} that "
                   f"{certs.validity_problem(bad)}{chain}",
            fix="install the CA's renewed certificate in the broker's keystore chain and in the clients' CA bundle")
    return check.replace(detail=check.detail + chain)


def _too_deep(chain: list[x509.Certificate], bundle: list[x509.Certificate]) -> x509.Certificate | None:
    """The CA whose pathLenConstraint the path (presented chain up to a root from the bundle) exceeds."""
    path = list(chain)
    root = next((c for c in bundle if path and c.subject == path[-1].issuer and path[-1].subject != path[-1].issuer),
                None)
    if root is not None:
        path.append(root)
    for below, ca in enumerate(path[1:]):  # ``below``: intermediate CAs between this CA and the leaf
        limit = _path_length(ca)
        if limit is not None and below > limit:
            return ca
    return None


def _path_length(cert: x509.Certificate | None) -> int | None:
    """A CA's pathLenConstraint, or None when it has none."""
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length if cert else None
    except x509.ExtensionNotFound:
        return None


def _with_certificate(check: Check, host: str, port: int, config: Mapping[str, Any], timeout: float) -> Check:
    """Add what the verified certificate says (names, issuer, expiry) and warn before it expires."""
    info = peer_certificate(host, port, host, timeout)
    if not info:
        return check
    detail = (f"{check.detail}; certificate for {', '.join(info.get('cert_names') or ['?'])}; issued by "
              f"{info.get('issuer', '?')}; valid until {info.get('not_after', '?')}")
    shown = capture(host, port, host, timeout)
    if shown is not None and shown.chain:
        detail += "; presented chain: " + " <- ".join(certs.describe(c) for c in shown.chain)
    chain = _chain_from_trust(str(info.get("issuer", "")), config)
    if chain:
        detail += f"; chain: {' <- '.join([host, *chain])}"
    try:
        not_after = datetime.strptime(info["not_after"], "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return check.replace(detail=detail)
    days = (not_after - datetime.now(UTC)).days
    if days < certs.WARN_DAYS:
        return check.replace(status="warn", problem=f"the broker certificate expires in {days} days", detail=detail,
                             fix="renew the broker certificate before it expires (clients will then fail the handshake)")
    return check.replace(detail=detail)


def _chain_from_trust(issuer_cn: str, config: Mapping[str, Any]) -> list[str]:
    """The verified path above the leaf, read from the configured CA bundle (Python's ssl doesn't expose it)."""
    bundle, source = certs.ca_bundle(config)
    if not source:
        return [f"{issuer_cn} (system trust store)"] if issuer_cn else []
    if config.get("ssl.ca.pem"):
        source = "the CA secret"
    chain: list[str] = []
    want = issuer_cn
    for _ in range(len(bundle)):
        cert = next((c for c in bundle if _cn(c.subject) == want), None)
        if cert is None:
            break
        root = cert.subject == cert.issuer
        chain.append(f"{want} ({'root' if root else 'intermediate'}, from {source})")
        if root:
            break
        want = _cn(cert.issuer)
    return chain


def _cn(name: x509.Name) -> str:
    return certs.common_name(name).removeprefix("CN=")

