"""Lambda's ``PROBLEM:`` texts for a Kafka event source mapping, and the detail and fix triggerfish adds.

Lambda reports a failing mapping with one fixed sentence in ``LastProcessingResult`` (and, when it
stops, a code in ``StateTransitionReason``). triggerfish shows the same sentence, so runbooks and search
results still apply, and adds a :class:`Diagnosis`: where it failed, the client's error code, what the
error means and one line saying how to fix it.

The builders here are pure: they turn an observation (a resolver error, a certificate verification
code, a librdkafka error) into a diagnosis. Detecting the failure is :mod:`triggerfish.esm.stages`'s job.
Secrets never reach this module: builders get names, addresses and codes, not credentials.
"""

from __future__ import annotations

import errno
import re

from triggerfish.diagnosis import Diagnosis

# Lambda's exact texts (lambda-kafka-esm.md §4). Lambda's console ends each sentence with a full stop.
CONNECTION_ERROR = "PROBLEM: Connection error. Please check your event source connection configuration."
CONNECTION_ERROR_VPC = (
    "PROBLEM: Connection error. Your VPC must be able to connect to Lambda and STS, as well as Secrets "
    "Manager if authentication is required. You can provide access by configuring PrivateLink or a NAT Gateway."
)
ENDPOINTS_UNRESOLVED = "PROBLEM: The provided Kafka broker endpoints cannot be resolved."
NOT_PEM = "PROBLEM: Certificate and/or private key must be in PEM format."
INVALID_CERTIFICATE = "PROBLEM: Provided certificate or private key is invalid."
TLS_AUTHENTICATION = "PROBLEM: Server failed to authenticate Lambda or Lambda failed to authenticate server."
SASL_AUTHENTICATION = "PROBLEM: SASL authentication failed."
AUTHORIZATION = "PROBLEM: Cluster failed to authorize Lambda."
ASSUME_ROLE = "PROBLEM: Lambda failed to assume your function execution role."
FUNCTION_CALL = "PROBLEM: Function call failed."
INTERNAL = "PROBLEM: Lambda internal error. Please contact Lambda customer support."

# StateTransitionReason codes Lambda sets when a Kafka mapping stops on an unrecoverable error.
_ESM_CONFIG_NOT_VALID = "ESM_CONFIG_NOT_VALID"
_EVENT_SOURCE_AUTHN_ERROR = "EVENT_SOURCE_AUTHN_ERROR"
_EVENT_SOURCE_AUTHZ_ERROR = "EVENT_SOURCE_AUTHZ_ERROR"
_FUNCTION_CONFIG_NOT_VALID = "FUNCTION_CONFIG_NOT_VALID"

_REASONS = {
    CONNECTION_ERROR: _ESM_CONFIG_NOT_VALID,
    CONNECTION_ERROR_VPC: _ESM_CONFIG_NOT_VALID,
    ENDPOINTS_UNRESOLVED: _ESM_CONFIG_NOT_VALID,
    NOT_PEM: _ESM_CONFIG_NOT_VALID,
    INVALID_CERTIFICATE: _ESM_CONFIG_NOT_VALID,
    TLS_AUTHENTICATION: _EVENT_SOURCE_AUTHN_ERROR,
    SASL_AUTHENTICATION: _EVENT_SOURCE_AUTHN_ERROR,
    AUTHORIZATION: _EVENT_SOURCE_AUTHZ_ERROR,
    ASSUME_ROLE: _EVENT_SOURCE_AUTHN_ERROR,
    FUNCTION_CALL: _FUNCTION_CONFIG_NOT_VALID,
}


def reason_for(problem: str) -> str:
    """The ``StateTransitionReason`` code Lambda pairs with a ``PROBLEM:`` text."""
    return _REASONS.get(problem, _ESM_CONFIG_NOT_VALID)


# --- DNS, TCP --------------------------------------------------------------------------------------


def unresolvable(host: str, port: int, error: str) -> Diagnosis:
    return Diagnosis(
        ENDPOINTS_UNRESOLVED,
        f"{host}:{port}: DNS lookup of {host!r} failed: {error}",
        f"check the spelling of {host} in KAFKA_BOOTSTRAP_SERVERS and that this machine's DNS can resolve it "
        "(private names need the VPC's or cluster's resolver)",
        "_RESOLVE",
    )


def tcp_failed(host: str, port: int, address: str, error: OSError | str, timeout_s: float) -> Diagnosis:
    code = errno.errorcode.get(error.errno, "") if isinstance(error, OSError) and error.errno else ""
    text = error.strerror if isinstance(error, OSError) and error.strerror else str(error) or "timed out"
    if code == "ECONNREFUSED":
        detail = f"{host}:{port} ({address}) refused the connection"
        fix = f"port {port} refused: is the broker running and is a listener (TLS/SASL as configured) enabled on port {port}?"
    elif isinstance(error, TimeoutError) or code in ("ETIMEDOUT", ""):
        code = code or "ETIMEDOUT"
        detail = f"{host}:{port} ({address}) did not answer within {timeout_s:g}s"
        fix = (
            f"something drops the traffic to port {port}: allow it in the broker's security group / firewall "
            "and network ACLs (both directions), and check the route to the broker's subnet"
        )
    else:
        detail = f"{host}:{port} ({address}): {text}"
        fix = f"check that {host} is reachable from this machine on port {port}"
    return Diagnosis(CONNECTION_ERROR, detail, fix, code)


# --- TLS -------------------------------------------------------------------------------------------

# OpenSSL X509_V_ERR_* codes that Python's ssl reports in SSLCertVerificationError.verify_code.
_VERIFY_HOSTNAME_MISMATCH = 62
_VERIFY_IP_MISMATCH = 64
_VERIFY_EXPIRED = 10
_VERIFY_NOT_YET_VALID = 9


def server_cert_rejected(
    host: str, port: int, verify_code: int, verify_message: str, *, cert_names: list[str] | None = None,
    issuer: str = "", not_after: str = "", not_before: str = "", ca_source: str = "",
) -> Diagnosis:
    """The client did not accept the broker's certificate: tell hostname, CA and validity apart."""
    where = f"{host}:{port}"
    code = f"verify {verify_code}"
    if verify_code in (_VERIFY_HOSTNAME_MISMATCH, _VERIFY_IP_MISMATCH):
        names = ", ".join(cert_names or []) or "no names"
        return Diagnosis(
            TLS_AUTHENTICATION,
            f"{where}: the broker certificate is for host {names}, you connected to {host} ({verify_message})",
            f"connect with a name the certificate covers ({names}) or reissue the broker certificate with {host} "
            "in its subjectAltName",
            code,
        )
    if verify_code == _VERIFY_EXPIRED:
        return Diagnosis(
            TLS_AUTHENTICATION,
            f"{where}: the broker certificate expired on {not_after or 'an earlier date'} ({verify_message})",
            "renew the broker's certificate (and check this machine's clock)",
            code,
        )
    if verify_code == _VERIFY_NOT_YET_VALID:
        return Diagnosis(
            TLS_AUTHENTICATION,
            f"{where}: the broker certificate is not valid before {not_before or 'a later date'} ({verify_message})",
            "check the clocks of this machine and of the CA that issued the broker certificate",
            code,
        )
    trusted = ca_source or "the system trust store"
    by = f" (issued by {issuer})" if issuer else ""
    return Diagnosis(
        TLS_AUTHENTICATION,
        f"{where}: the broker certificate{by} is not signed by a CA in {trusted} ({verify_message})",
        "put the root CA that issued the broker certificates into a SERVER_ROOT_CA_CERTIFICATE secret "
        '{"certificate": "<root CA PEM>"}',
        code,
    )


_ALERT_CLIENT_CERT = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the broker requires a client certificate and none was sent",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the broker ended the handshake (it probably requires a client certificate)",
    "TLSV1_ALERT_UNKNOWN_CA": "the broker does not trust the CA that issued the client certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the broker rejected the client certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the broker rejected the client certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the broker says the client certificate has expired",
}


def client_cert_rejected(target: str, reason: str, has_client_cert: bool) -> Diagnosis:
    """The broker did not accept us (mTLS): its TLS alert says why."""
    what = _ALERT_CLIENT_CERT.get(reason, f"the broker ended the TLS session ({reason or 'no alert'})")
    if not has_client_cert:
        what = f"the broker requires a client certificate and none was sent ({reason or 'connection closed'})"
    if has_client_cert:
        fix = "make the broker trust the CA that issued the client certificate (its ssl.truststore), or use a " \
              "client certificate from the CA it trusts"
    else:
        fix = 'add a CLIENT_CERTIFICATE_TLS_AUTH secret {"certificate": ..., "privateKey": ...} for this listener'
    return Diagnosis(TLS_AUTHENTICATION, f"{target}: {what}", fix, reason or "_SSL")


def not_tls(host: str, port: int, error: str) -> Diagnosis:
    return Diagnosis(CONNECTION_ERROR, f"{host}:{port} does not speak TLS ({error})",
                     f"port {port} looks like a PLAINTEXT listener: use the broker's TLS/SASL_SSL port, or no TLS for "
                     "this one", "_SSL")


def not_kafka(host: str, port: int, what: str) -> Diagnosis:
    return Diagnosis(CONNECTION_ERROR, f"{host}:{port} is not a Kafka listener: {what}",
                     f"check the port: {port} answers, but not with the Kafka protocol (an HTTP server or a proxy?)",
                     "_BAD_MSG")


# --- Kafka client errors (SASL, authorization, topic) ----------------------------------------------

_STATE = re.compile(r"\s*\(after \d+ms in state [A-Z_]+(, \d+ identical error\(s\) suppressed)?\)")


def clean(text: str) -> str:
    """A librdkafka message without its trailing ``(after Nms in state X)`` and ``N identical error(s)`` noise."""
    text = _STATE.sub("", text)
    return re.sub(r"\s*\(\d+ identical error\(s\) suppressed\)", "", text).strip()


def _sasl_failed(target: str, mechanism: str, user: str, message: str, token_endpoint: str = "") -> Diagnosis:
    """A SASL login was refused; ``message`` is librdkafka's text (never holds the password)."""
    text = clean(message)
    if token_endpoint and "OAUTHBEARER" in text and "token" in text:
        return oauth_token_failed(target, user, token_endpoint, text)
    if "Unsupported SASL mechanism" in text:
        supported = text.rsplit("supported mechanisms:", 1)[-1].strip() if "supported mechanisms:" in text else "?"
        fix = f"use a secret type the broker enables (broker offers: {supported})"
    elif mechanism.startswith("SCRAM"):
        other = "SCRAM-SHA-256" if mechanism == "SCRAM-SHA-512" else "SCRAM-SHA-512"
        fix = (
            f"check the password of {user!r} in the secret, and that {user!r} has {mechanism} credentials on the "
            f"cluster (a user created with {other} only cannot log in with {mechanism}): "
            f"kafka-configs --alter --add-config '{mechanism}=[password=...]' --entity-type users --entity-name {user}"
        )
    elif token_endpoint:
        fix = ("the broker refused the token: check that its audience and issuer are what the broker expects "
               "(sasl.oauthbearer.expected.audience / .issuer) and that the broker's JWKS endpoint has the signing key")
    elif mechanism == "OAUTHBEARER":
        fix = "grant the role kafka-cluster:Connect on the cluster ARN and check the region and credentials used to sign"
    else:
        fix = f"check the username and password of {user!r} in the BASIC_AUTH secret"
    return Diagnosis(SASL_AUTHENTICATION, f"{target}: {mechanism} login as {user!r} refused: {text}", fix, "_AUTHENTICATION")


_TOKEN_PREFIXES = re.compile(r"^(Failed to acquire SASL OAUTHBEARER token|OAUTHBEARER cannot log in because there is "
                             r"no token available; last error)\s*:\s*")


def oauth_token_failed(target: str, client: str, token_endpoint: str, message: str) -> Diagnosis:
    """The identity provider's token endpoint did not issue a token; ``message`` carries its answer."""
    answer = _TOKEN_PREFIXES.sub("", clean(message))
    return Diagnosis(
        SASL_AUTHENTICATION,
        f"{target}: no OAUTHBEARER token: the token endpoint {token_endpoint} answered client {client!r}: {answer}",
        "check clientId, clientSecret and tokenEndpointUrl in the OAUTHBEARER_AUTH secret, and that the client "
        "may use the client_credentials grant (and the scope / audience the mapping asks for)",
        "_AUTHENTICATION",
    )


def topic_missing(target: str, topic: str) -> Diagnosis:
    return Diagnosis(CONNECTION_ERROR, f"{target}: topic {topic!r} does not exist",
                     f"create topic {topic!r} or fix Topics in the mapping (automatic topic creation is not used)",
                     "UNKNOWN_TOPIC_OR_PART")


def acl_fix(principal: str, topic: str = "", group: str = "", *, cluster: bool = False) -> str:
    parts = []
    if group:
        parts.append(f"Read on group {group}")
    if topic:
        parts.append(f"Read, Describe on topic {topic}")
    if cluster:
        parts.append("DescribeConfigs on the cluster")
    who = principal or "the mapping's principal"
    return f"grant {' and '.join(parts)} to {who}"


def topic_denied(target: str, topic: str, group: str, principal: str, missing: str = "Describe") -> Diagnosis:
    return Diagnosis(
        AUTHORIZATION,
        f"{target}: {principal or 'the client'} is not allowed {missing} on topic {topic!r}",
        acl_fix(principal, topic=topic, group=group)
        + f" (kafka-acls --add --allow-principal {principal or 'User:NAME'} --operation Read --operation Describe "
        f"--topic {topic})",
        "TOPIC_AUTHORIZATION_FAILED",
    )


def group_denied(target: str, topic: str, group: str, principal: str, missing: str = "Read") -> Diagnosis:
    return Diagnosis(
        AUTHORIZATION,
        f"{target}: {principal or 'the client'} is not allowed {missing} on consumer group {group!r}",
        acl_fix(principal, group=group)
        + f" (kafka-acls --add --allow-principal {principal or 'User:NAME'} --operation Read --group {group})",
        "GROUP_AUTHORIZATION_FAILED",
    )


def function_failed(function: str, error_type: str, message: str) -> Diagnosis:
    return Diagnosis(FUNCTION_CALL, f"function {function} failed: {error_type}: {message}"[:500],
                     f"fix the handler of {function} (see its log); the batch is retried as the mapping's retry "
                     "settings say", error_type)


def from_kafka_error(
    name: str, message: str, *, target: str, topic: str = "", group: str = "", principal: str = "",
    mechanism: str = "", user: str = "", token_endpoint: str = "",
) -> Diagnosis | None:
    """Map a librdkafka error (``KafkaError.name()`` and ``.str()``) seen while consuming to a diagnosis.

    Returns None for errors that are transient or not about setup (the consumer retries them itself).
    Certificate problems come back as generic text; :mod:`stages` re-probes with Python's ssl for detail.
    """
    text = clean(message)
    if name == "_AUTHENTICATION":
        if "SSL" in text and "SASL" not in text:
            return Diagnosis(TLS_AUTHENTICATION, f"{target}: {text}", "check the client certificate and the broker's CA", name)
        return _sasl_failed(target, mechanism or "SASL", user or "?", text, token_endpoint)
    if name == "_SSL":
        if "certificate verify failed" in text:
            return Diagnosis(
                TLS_AUTHENTICATION,
                f"{target}: the broker certificate could not be verified ({text})",
                "run `triggerfish doctor kafka` to see whether the CA, the host name or the validity is wrong",
                name,
            )
        return client_cert_rejected(target, _alert_reason(text), True) if "alert" in text else Diagnosis(
            TLS_AUTHENTICATION, f"{target}: {text}", "check the TLS settings of the listener and the client", name
        )
    if name == "_TRANSPORT" and "alert" in text:
        return client_cert_rejected(target, _alert_reason(text), True)
    if name == "_RESOLVE":
        return Diagnosis(ENDPOINTS_UNRESOLVED, f"{target}: {text}", _resolve_fix(target, text), name)
    if name == "TOPIC_AUTHORIZATION_FAILED":
        return topic_denied(target, topic, group, principal, "Read/Describe")
    if name == "GROUP_AUTHORIZATION_FAILED":
        return group_denied(target, topic, group, principal)
    if name == "CLUSTER_AUTHORIZATION_FAILED":
        return Diagnosis(AUTHORIZATION, f"{target}: {text}", acl_fix(principal, cluster=True), name)
    if name in ("UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC") and topic:
        return topic_missing(target, topic)
    return None


_FAILED_TO_RESOLVE = re.compile(r"Failed to resolve '([^']+)'")


def _resolve_fix(target: str, text: str) -> str:
    """Name the host librdkafka could not resolve, else every host of the (comma-joined) bootstrap list."""
    named = _FAILED_TO_RESOLVE.search(text)
    servers = [named.group(1)] if named else [s for s in target.split(",") if s.strip()]
    hosts = list(dict.fromkeys(_host_of(s) for s in servers)) or [target]
    verb = "resolves" if len(hosts) == 1 else "resolve"
    return f"check that {' and '.join(hosts)} {verb} from this machine"


def _host_of(server: str) -> str:
    host, sep, port = server.strip().rpartition(":")
    return (host if sep and port.isdigit() else server.strip()).strip("[]")


def _alert_reason(text: str) -> str:
    lowered = text.lower()
    if "certificate required" in lowered:
        return "TLSV13_ALERT_CERTIFICATE_REQUIRED"
    if "unknown ca" in lowered:
        return "TLSV1_ALERT_UNKNOWN_CA"
    if "bad certificate" in lowered:
        return "SSLV3_ALERT_BAD_CERTIFICATE"
    if "handshake failure" in lowered:
        return "SSLV3_ALERT_HANDSHAKE_FAILURE"
    return ""
