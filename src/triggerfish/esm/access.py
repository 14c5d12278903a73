"""SourceAccessConfigurations read into :class:`Access`: login type, secret references, VPC settings.

Only the configuration is checked here (types, URIs, combinations); no secret is read. Turning the
result into librdkafka settings, secrets included, is :mod:`triggerfish.esm.auth`'s job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from triggerfish import secrets
from triggerfish.errors import ConfigError, InvalidParameterError

#: Types whose URI names a secret (a Secrets Manager ARN, or locally a file or env: reference).
SECRET_TYPES = (
    "BASIC_AUTH",
    "SASL_SCRAM_256_AUTH",
    "SASL_SCRAM_512_AUTH",
    "CLIENT_CERTIFICATE_TLS_AUTH",
    "SERVER_ROOT_CA_CERTIFICATE",
    "OAUTHBEARER_AUTH",
)
#: Logins that need no URI: the function's execution role signs (IAM_AUTH) or asks STS for a web identity
#: token (IAM_OAUTHBEARER_AUTH). The model's words: "Omit the URI field for this type."
IAM_TYPES = ("IAM_AUTH", "IAM_OAUTHBEARER_AUTH")
_LOGIN_TYPES = SECRET_TYPES[:4] + ("OAUTHBEARER_AUTH",) + IAM_TYPES
#: OAUTHBEARER settings whose URI is the value itself, not a secret, and the login(s) each one needs.
OAUTH_SETTINGS = {
    "OAUTHBEARER_SCOPE": ("OAUTHBEARER_AUTH",),
    "OAUTHBEARER_AUDIENCE": ("OAUTHBEARER_AUTH", "IAM_OAUTHBEARER_AUTH"),
    "OAUTHBEARER_LOGICAL_CLUSTER": ("OAUTHBEARER_AUTH",),
    "OAUTHBEARER_IDENTITY_POOL": ("OAUTHBEARER_AUTH",),
}
_VPC_TYPES = ("VPC_SUBNET", "VPC_SECURITY_GROUP")
_ACCESS_TYPES = SECRET_TYPES + _VPC_TYPES + ("VIRTUAL_HOST",) + tuple(OAUTH_SETTINGS) + IAM_TYPES
#: An MSK mapping's ``BootstrapServers`` override cannot ask the cluster which logins it offers, but MSK's
#: ports say it: 9092 plaintext, 9094/9194 TLS; its SCRAM (9096/9196) and IAM (9098/9198) ports keep the
#: IAM default. A port MSK never uses is a broker outside MSK (a local one the events were redirected to):
#: plaintext, as that broker's listener is.
_MSK_PORT_AUTH = {"9092": "PLAINTEXT", "9094": "TLS", "9194": "TLS", "9096": "", "9196": "", "9098": "", "9198": ""}
_MSK_ONLY_NOT = ("BASIC_AUTH", "SASL_SCRAM_256_AUTH", "SERVER_ROOT_CA_CERTIFICATE", *_VPC_TYPES, "OAUTHBEARER_AUTH",
                 *OAUTH_SETTINGS, *IAM_TYPES)


@dataclass(frozen=True)
class Access:
    """The parsed SourceAccessConfigurations of one mapping (no secret values yet)."""

    secrets: dict[str, str] = field(default_factory=dict)  # Type -> secret reference
    subnets: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    msk_arn: str = ""
    #: For MSK without a secret: "IAM" (default), "TLS" or "PLAINTEXT", as the cluster's brokers offer.
    msk_auth: str = ""
    #: OAUTHBEARER_SCOPE / _AUDIENCE / _LOGICAL_CLUSTER / _IDENTITY_POOL -> the value its URI holds.
    oauth: dict[str, str] = field(default_factory=dict)
    #: IAM_AUTH or IAM_OAUTHBEARER_AUTH when the mapping logs in with its AWS identity (self-managed Kafka).
    iam: str = ""

    @property
    def login(self) -> str:
        """The login type: one of _LOGIN_TYPES, "IAM" (MSK without a secret) or "NONE"."""
        for kind in _LOGIN_TYPES:
            if kind in self.secrets or kind == self.iam:
                return kind
        return "IAM" if self.msk_arn and self.msk_auth in ("", "IAM") else "NONE"

    @property
    def region(self) -> str:
        return self.msk_arn.split(":")[3] if self.msk_arn.count(":") >= 5 else ""

    @property
    def needs_aws(self) -> bool:
        """Whether setup needs AWS credentials (a Secrets Manager secret, MSK bootstrap lookup or IAM)."""
        msk_lookup = bool(self.msk_arn) and not self.msk_auth  # GetBootstrapBrokers, or IAM
        return msk_lookup or bool(self.iam) or any(ref.startswith(secrets.SECRET_ARN_PREFIX) for ref in self.secrets.values())



def lambda_field(obj: Any, name: str, default: Any = None) -> Any:
    """A Lambda-named field from a MappingConfig-like object or a plain dict."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    value = getattr(obj, name, None)
    if value is None:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        value = getattr(obj, snake, None)
    return default if value is None else value


def bootstrap_servers(mapping: Any) -> list[str]:
    """The configured bootstrap list: SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS (or MSK's override)."""
    if not isinstance(mapping, Mapping) and getattr(mapping, "bootstrap_servers", None):
        return list(mapping.bootstrap_servers)
    if isinstance(mapping, Mapping) and mapping.get("BootstrapServers"):
        return list(mapping["BootstrapServers"])
    source = lambda_field(mapping, "SelfManagedEventSource") or {}
    endpoints = lambda_field(source, "Endpoints") or {}
    servers = endpoints.get("KAFKA_BOOTSTRAP_SERVERS") if isinstance(endpoints, Mapping) else None
    if isinstance(servers, str):
        servers = [s.strip() for s in servers.split(",") if s.strip()]
    return list(servers or [])


def parse_access(mapping: Any) -> Access:
    """Validate SourceAccessConfigurations (types, URIs, combinations) without reading any secret."""
    entries = lambda_field(mapping, "SourceAccessConfigurations") or []
    msk_arn = str(lambda_field(mapping, "EventSourceArn") or "")
    found: dict[str, str] = {}
    oauth: dict[str, str] = {}
    iam: list[str] = []
    subnets: list[str] = []
    groups: list[str] = []
    for i, entry in enumerate(entries):
        kind = str(lambda_field(entry, "Type") or "")
        uri = str(lambda_field(entry, "URI") or "")
        where = f"SourceAccessConfigurations[{i}]"
        if kind not in _ACCESS_TYPES:
            raise ConfigError(f"{where}.Type", f"{kind!r} is not one of {', '.join(_ACCESS_TYPES)}")
        if kind == "VIRTUAL_HOST":
            raise ConfigError(f"{where}.Type", "VIRTUAL_HOST is for RabbitMQ, not Kafka; remove it")
        if msk_arn and kind in _MSK_ONLY_NOT:
            raise ConfigError(f"{where}.Type", f"{kind} is for self-managed Kafka; MSK accepts SASL_SCRAM_512_AUTH, "
                              "CLIENT_CERTIFICATE_TLS_AUTH or no secret (IAM)")
        if kind == "VPC_SUBNET":
            if not uri.startswith("subnet:subnet-"):
                raise ConfigError(f"{where}.URI", f"{uri!r} must look like subnet:subnet-0123abcd")
            subnets.append(uri.split(":", 1)[1])
            continue
        if kind == "VPC_SECURITY_GROUP":
            if not uri.startswith("security_group:sg-"):
                raise ConfigError(f"{where}.URI", f"{uri!r} must look like security_group:sg-0123abcd")
            groups.append(uri.split(":", 1)[1])
            continue
        if kind in found or kind in oauth or kind in iam:
            raise ConfigError(f"{where}.Type", f"{kind} is given twice; keep one")
        if kind in OAUTH_SETTINGS:
            if not uri:
                raise ConfigError(f"{where}.URI", f"{kind} needs its value in URI (the value itself, not a secret ARN)")
            oauth[kind] = uri
            continue
        if kind in IAM_TYPES:
            if uri:
                raise ConfigError(f"{where}.URI", f"{kind} takes no URI: the execution role's credentials sign in; "
                                  "remove URI")
            iam.append(kind)
            continue
        if not secrets.is_reference(uri):
            raise ConfigError(
                f"{where}.URI", "must be a secret reference: arn:aws:secretsmanager:..., file:///path.json or env:VAR"
            )
        found[kind] = uri
    logins = [k for k in _LOGIN_TYPES if k in found or k in iam]
    if len(logins) > 1:
        raise ConfigError("SourceAccessConfigurations", f"{' and '.join(logins)} both set; a mapping logs in one way")
    _check_oauth_settings(oauth, logins[0] if logins else "")
    ports = {server.rsplit(":", 1)[-1] for server in bootstrap_servers(mapping)} if msk_arn and not logins else set()
    msk_auth = _MSK_PORT_AUTH.get(ports.pop(), "PLAINTEXT") if len(ports) == 1 else ""
    return Access(secrets=found, subnets=subnets, security_groups=groups, msk_arn=msk_arn, msk_auth=msk_auth,
                  oauth=oauth, iam=iam[0] if iam else "")


def _check_oauth_settings(oauth: dict[str, str], login: str) -> None:
    """Lambda's rules for the OAUTHBEARER settings (the service model's words for each type)."""
    for kind in oauth:
        needs = OAUTH_SETTINGS[kind]
        if login not in needs:
            raise ConfigError("SourceAccessConfigurations", f"{kind} requires {' or '.join(needs)}; add it or "
                              f"remove {kind}")
    if login == "IAM_OAUTHBEARER_AUTH" and "OAUTHBEARER_AUDIENCE" not in oauth:
        raise ConfigError("SourceAccessConfigurations", "IAM_OAUTHBEARER_AUTH requires OAUTHBEARER_AUDIENCE: add "
                          "{Type: OAUTHBEARER_AUDIENCE, URI: <the audience the brokers expect>}")


def validate_access(mapping: Any, where: str = "") -> None:
    """MappingConfig's deep check of SourceAccessConfigurations (called at load and on API create/update)."""
    try:
        parse_access(mapping)
    except ConfigError as exc:
        path = f"{where}.{exc.field}" if where else exc.field
        raise InvalidParameterError(path, exc.message) from None


