"""How a mapping logs in to Kafka: Lambda's SourceAccessConfigurations turned into librdkafka settings.

    BASIC_AUTH                    SASL_SSL + PLAIN          secret {"username", "password"}
    SASL_SCRAM_256_AUTH           SASL_SSL + SCRAM-SHA-256  secret {"username", "password"}
    SASL_SCRAM_512_AUTH           SASL_SSL + SCRAM-SHA-512  secret {"username", "password"}
    CLIENT_CERTIFICATE_TLS_AUTH   SSL with a client cert    secret {"certificate", "privateKey", "privateKeyPassword"?}
    SERVER_ROOT_CA_CERTIFICATE    the brokers' private CA   secret {"certificate"}
    VPC_SUBNET, VPC_SECURITY_GROUP  recorded for the doctor, not enforced
    (MSK, no secret)              SASL_SSL + OAUTHBEARER    MSK IAM, signed with the AWS credential chain
    OAUTHBEARER_AUTH, IAM_AUTH, IAM_OAUTHBEARER_AUTH (+ OAUTHBEARER_* settings)
                                  SASL_SSL + OAUTHBEARER    see :mod:`triggerfish.esm.oauthbearer`

Which types a mapping may combine is checked by :mod:`triggerfish.esm.access` (re-exported here).
Secrets are read through :mod:`triggerfish.secrets` and stay in memory: PEM goes to librdkafka inline
(``ssl.*.pem``), never to a file. :func:`redact` is what to show of a config; nothing here logs.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from triggerfish import json_input, secrets
from triggerfish.diagnosis import Diagnosis
from triggerfish.errors import ConfigError, SecretError, SetupError
from triggerfish.esm import oauthbearer, problems, secret_problems
from triggerfish.esm.access import Access, bootstrap_servers, parse_access
from triggerfish.esm.oauthbearer import msk_iam_oauth_cb

_MECHANISMS = {"BASIC_AUTH": "PLAIN", "SASL_SCRAM_256_AUTH": "SCRAM-SHA-256", "SASL_SCRAM_512_AUTH": "SCRAM-SHA-512"}
_SECRET_KEYS = ("sasl.password", "ssl.key.pem", "ssl.key.password", "oauth_cb", "sasl.oauthbearer.client.secret")


@dataclass
class Auth:
    """Everything resolved for one mapping: the librdkafka config plus what diagnostics need.

    ``config`` holds secrets; show :func:`redact` of it, never the dict itself.
    """

    bootstrap: list[str]
    config: dict[str, Any] = field(repr=False)
    login: str = "NONE"
    mechanism: str = ""
    user: str = ""
    principal: str = ""
    ca_pem: str = ""
    client_cert_pem: str = ""
    client_key_pem: str = field(default="", repr=False)
    client_key_password: str = field(default="", repr=False)
    access: Access = field(default_factory=Access)

    @property
    def token_endpoint(self) -> str:
        """The OAuth token endpoint librdkafka asks for tokens (OAUTHBEARER_AUTH), else ""."""
        return str(self.config.get("sasl.oauthbearer.token.endpoint.url") or "")


# --- secrets -----------------------------------------------------------------------------------------


def load_secret(kind: str, ref: str) -> dict[str, Any]:
    """Fetch one secret and check its JSON shape; failures are SetupErrors of stage "secret"."""
    try:
        text = secrets.read_text(ref)
    except SecretError as exc:
        raise _setup_error(secret_problems.secret_unreachable(ref, str(exc))) from None
    try:
        value = json_input.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        diagnosis = Diagnosis(
            problems.NOT_PEM if kind in ("CLIENT_CERTIFICATE_TLS_AUTH", "SERVER_ROOT_CA_CERTIFICATE")
            else problems.SASL_AUTHENTICATION,
            f"the {kind} secret {ref} is not a JSON object",
            f"store the secret as JSON {secret_problems.SECRET_SHAPES[kind]}",
            "SecretFormat",
        )
        raise _setup_error(diagnosis)
    required = {"CLIENT_CERTIFICATE_TLS_AUTH": ["certificate", "privateKey"], "SERVER_ROOT_CA_CERTIFICATE": ["certificate"],
                "OAUTHBEARER_AUTH": list(oauthbearer.SECRET_FIELDS)}
    for name in required.get(kind, ["username", "password"]):
        if not isinstance(value.get(name), str) or not value[name]:
            raise _setup_error(secret_problems.secret_field_missing(kind, ref, [name]))
    return value


def _load_secrets(access: Access) -> dict[str, dict[str, Any]]:
    return {kind: load_secret(kind, ref) for kind, ref in access.secrets.items()}


def _setup_error(d: Diagnosis) -> SetupError:
    return SetupError(d.at("secret"))


def _check_certificates(kind: str, ref: str, pem: str) -> list[Any]:
    from cryptography import x509

    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise _setup_error(secret_problems.not_pem(kind, ref, "certificate"))
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise _setup_error(secret_problems.invalid_certificate(kind, ref, str(exc) or "not a certificate")) from None


def _check_key(ref: str, pem: str, password: str | None, cert: Any) -> None:
    from cryptography.hazmat.primitives import serialization

    kind = "CLIENT_CERTIFICATE_TLS_AUTH"
    if "-----BEGIN" not in pem:
        raise _setup_error(secret_problems.not_pem(kind, ref, "private key"))
    if "-----BEGIN PRIVATE KEY-----" not in pem and "-----BEGIN ENCRYPTED PRIVATE KEY-----" not in pem:
        label = re.search(r"-----BEGIN ([A-Z ]+)-----", pem)
        raise _setup_error(secret_problems.invalid_key(kind, ref, f"it is {label.group(1) if label else 'not'} PEM, not PKCS#8"))
    encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem
    if encrypted and not password:
        raise _setup_error(secret_problems.invalid_key(kind, ref, "the key is encrypted and privateKeyPassword is missing"))
    try:
        key = serialization.load_pem_private_key(pem.encode(), password.encode() if encrypted and password else None)
    except (ValueError, TypeError):
        why = "wrong privateKeyPassword or a damaged key" if encrypted else "the PEM block does not hold a usable key"
        raise _setup_error(secret_problems.invalid_key(kind, ref, why)) from None
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise _setup_error(
            secret_problems.invalid_certificate(kind, ref, "the private key does not belong to the first certificate")
        )


def _common_name(cert: Any) -> str:
    from cryptography.x509.oid import NameOID

    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


# --- building the librdkafka config ------------------------------------------------------------------


def build(bootstrap: list[str], access: Access, loaded: dict[str, dict[str, Any]]) -> Auth:
    """Turn parsed access settings and loaded secrets into an :class:`Auth` (no I/O)."""
    config: dict[str, Any] = {"bootstrap.servers": ",".join(bootstrap)}
    auth = Auth(bootstrap=list(bootstrap), config=config, login=access.login, access=access)
    ca = loaded.get("SERVER_ROOT_CA_CERTIFICATE")
    if ca is not None:
        ref = access.secrets["SERVER_ROOT_CA_CERTIFICATE"]
        _check_certificates("SERVER_ROOT_CA_CERTIFICATE", ref, ca["certificate"])
        auth.ca_pem = ca["certificate"]
        config["ssl.ca.pem"] = auth.ca_pem
    login = access.login
    if login in _MECHANISMS:
        creds = loaded[login]
        auth.mechanism = _MECHANISMS[login]
        auth.user = creds["username"]
        auth.principal = f"User:{auth.user}"
        # Lambda never sends SASL over plaintext: SCRAM and PLAIN always run inside TLS.
        config.update({
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": auth.mechanism,
            "sasl.username": creds["username"],
            "sasl.password": creds["password"],
        })
    elif login == "CLIENT_CERTIFICATE_TLS_AUTH":
        creds = loaded[login]
        ref = access.secrets[login]
        chain = _check_certificates(login, ref, creds["certificate"])
        password = creds.get("privateKeyPassword") or None
        _check_key(ref, creds["privateKey"], password, chain[0])
        auth.client_cert_pem = creds["certificate"]
        auth.client_key_pem = creds["privateKey"]
        auth.client_key_password = password or ""
        auth.user = _common_name(chain[0])
        auth.principal = f"User:{auth.user}"
        config.update({
            "security.protocol": "SSL",
            "ssl.certificate.pem": creds["certificate"],
            "ssl.key.pem": creds["privateKey"],
        })
        if password:
            config["ssl.key.password"] = password
    elif login in ("OAUTHBEARER_AUTH", "IAM_AUTH", "IAM_OAUTHBEARER_AUTH"):
        oauth_creds = loaded.get(login)
        auth.mechanism = "OAUTHBEARER"
        auth.user = str(oauth_creds["clientId"]) if oauth_creds else ""
        auth.principal = "" if oauth_creds else "the IAM role"  # the broker names it from the token (its sub claim)
        config.update(oauthbearer.settings(access, oauth_creds, "" if oauth_creds else _aws_region()))
    elif login == "IAM":
        auth.mechanism = "OAUTHBEARER"
        auth.principal = "the IAM role"
        config.update({
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "OAUTHBEARER",
            "oauth_cb": msk_iam_oauth_cb(access.region),
        })
    elif ca is not None or access.msk_auth == "TLS":
        config["security.protocol"] = "SSL"  # TLS without a login (MSK brokers use public certificates)
    else:
        auth.principal = "User:ANONYMOUS"
    return auth


def _aws_region() -> str:
    """AWS_REGION (what Lambda's runtime sets), else the credential chain's region, or "" when none is set."""
    import boto3

    return os.environ.get("AWS_REGION") or boto3.session.Session().region_name or ""


_MSK_BROKERS = (  # Lambda's order: mTLS > SCRAM > IAM > unauthenticated TLS > plaintext; never a weaker fallback
    ("CLIENT_CERTIFICATE_TLS_AUTH", "BootstrapBrokerStringTls"),
    ("SASL_SCRAM_512_AUTH", "BootstrapBrokerStringSaslScram"),
    ("IAM", "BootstrapBrokerStringSaslIam"),
    ("TLS", "BootstrapBrokerStringTls"),
    ("PLAINTEXT", "BootstrapBrokerString"),
)


def msk_bootstrap(access: Access) -> tuple[list[str], Access]:
    """Ask MSK (kafka:GetBootstrapBrokers) for the brokers matching the login, in Lambda's order.

    Returns the brokers and the access settings with ``msk_auth`` set when no secret chose the login.
    """
    import boto3
    import botocore.exceptions

    client = boto3.session.Session().client("kafka", region_name=access.region or None)
    try:
        brokers = client.get_bootstrap_brokers(ClusterArn=access.msk_arn)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise SetupError(Diagnosis(
            problems.CONNECTION_ERROR_VPC, f"kafka:GetBootstrapBrokers for {access.msk_arn} failed: {exc}",
            "allow kafka:GetBootstrapBrokers to this identity, or give the brokers in BootstrapServers",
            stage="credentials",
        )) from None
    login = access.login
    candidates = [(kind, key) for kind, key in _MSK_BROKERS if kind == login] if login != "IAM" else [
        (kind, key) for kind, key in _MSK_BROKERS if kind in ("IAM", "TLS", "PLAINTEXT")
    ]
    for kind, key in candidates:
        value = brokers.get(key) or ""
        if value:
            chosen = access if login != "IAM" else dataclasses.replace(access, msk_auth=kind)
            return [b for b in value.split(",") if b], chosen
    wanted = " or ".join(key for _, key in candidates)
    raise SetupError(Diagnosis(
        problems.CONNECTION_ERROR, f"MSK cluster {access.msk_arn} offers no {wanted}",
        f"enable {login} authentication on the cluster, or use the authentication it has enabled",
        stage="credentials",
    ))


def resolve(mapping: Any) -> Auth:
    """Parse, fetch secrets and build the config for a mapping (raises ConfigError / SetupError)."""
    access = parse_access(mapping)
    bootstrap = bootstrap_servers(mapping)
    if not bootstrap and access.msk_arn:
        bootstrap, access = msk_bootstrap(access)
    if not bootstrap:
        raise ConfigError(
            "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS", "give at least one host:port (or an MSK EventSourceArn)"
        )
    return build(bootstrap, access, _load_secrets(access))


def kafka_config(mapping: Any) -> dict[str, Any]:
    """The librdkafka settings for a mapping: bootstrap servers, security protocol, SASL / TLS material."""
    return resolve(mapping).config


_PBES2_OID = bytes.fromhex("06092a864886f70d01050d")  # 1.2.840.113549.1.5.13, DER-encoded


def lambda_parity(built: Auth) -> list[Diagnosis]:
    """What works in triggerfish but Lambda would refuse (reported as warnings, never enforced)."""
    import base64

    found: list[Diagnosis] = []
    access = built.access
    key = built.client_key_pem
    if "-----BEGIN ENCRYPTED PRIVATE KEY-----" in key:
        body = "".join(line for line in key.splitlines() if line and not line.startswith("-----"))
        try:
            der = base64.b64decode(body)
        except ValueError:
            der = b""
        if _PBES2_OID in der[:64]:
            ref = access.secrets.get("CLIENT_CERTIFICATE_TLS_AUTH", "")
            found.append(Diagnosis(
                problems.INVALID_CERTIFICATE,
                f"the private key in {ref} is PBES2-encrypted; triggerfish can use it, Lambda accepts PBES1 only",
                "re-encrypt it with a PBES1 algorithm before moving to AWS Lambda: "
                "openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in key.pem -out key-pbes1.pem",
                "PBES2",
            ))
    scram = access.secrets.get("SASL_SCRAM_512_AUTH", "")
    if access.msk_arn and scram.startswith(secrets.SECRET_ARN_PREFIX):
        name = scram.split(":secret:", 1)[-1]
        if not name.startswith("AmazonMSK_"):
            found.append(Diagnosis(
                problems.SASL_AUTHENTICATION,
                f"MSK only accepts SCRAM secrets whose name starts with AmazonMSK_; {name!r} does not",
                "create the secret as AmazonMSK_<name> (with a customer-managed KMS key) and associate it with the cluster",
                "SecretName",
            ))
    return found


def principal_of(config: Mapping[str, Any]) -> str:
    """The Kafka principal a librdkafka config logs in as, as ACLs name it (best effort)."""
    protocol = str(config.get("security.protocol", "PLAINTEXT")).upper()
    if protocol.startswith("SASL") and config.get("sasl.username"):
        return f"User:{config['sasl.username']}"
    if protocol == "SSL" and (config.get("ssl.certificate.pem") or config.get("ssl.certificate.location")):
        from cryptography import x509

        pem = config.get("ssl.certificate.pem")
        if not pem:
            try:
                with open(str(config["ssl.certificate.location"]), "rb") as fh:
                    pem = fh.read().decode()
            except OSError:
                return ""
        try:
            return f"User:{_common_name(x509.load_pem_x509_certificates(str(pem).encode())[0])}"
        except ValueError:
            return ""
    return "User:ANONYMOUS" if protocol in ("PLAINTEXT", "SSL") else ""


def redact(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a librdkafka config fit to print: passwords, keys and callbacks replaced by ``***``."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key in _SECRET_KEYS or key.endswith((".password", ".secret")) or callable(value):
            out[key] = "***"
        elif key.endswith(".pem"):
            out[key] = f"<PEM {len(str(value))} chars>"
        else:
            out[key] = value
    return out


def expiry_ok(expiry: float, now: float | None = None) -> bool:
    """Whether an OAUTHBEARER expiry is seconds since the epoch in the near future (not milliseconds)."""
    now = time.time() if now is None else now
    return now < expiry < now + 24 * 3600
