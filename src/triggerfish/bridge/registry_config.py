"""The bridge's ``schema.registry.*`` properties: where the Confluent-compatible schema registry is and how to log in.

Key names follow Confluent's REST proxy and serializers (``schema.registry.url``,
``schema.registry.basic.auth.user.info``) and librdkafka-style TLS files (``schema.registry.ssl.*``).
Values may be ``${env:...}`` / ``${file:...}`` placeholders like every other key. Without
``schema.registry.url`` the bridge serves only Strimzi's embedded formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from triggerfish.errors import ConfigError
from triggerfish.settings import Settings

PREFIX = "schema.registry."
URL = "schema.registry.url"

KEYS = {
    URL,
    "schema.registry.basic.auth.user.info",
    "schema.registry.basic.auth.credentials.source",
    "schema.registry.ssl.ca.location",
    "schema.registry.ssl.certificate.location",
    "schema.registry.ssl.key.location",
    "schema.registry.request.timeout.ms",
}


@dataclass(frozen=True)
class RegistryConfig:
    """How to reach the schema registry; ``user_info`` is ``user:password`` and never shown."""

    url: str
    user_info: str = field(default="", repr=False)
    ca_location: str | None = None
    certificate_location: str | None = None
    key_location: str | None = None
    timeout_seconds: float = 10.0

    @property
    def display_url(self) -> str:
        """The URL without any ``user:password@`` in it: safe for messages and logs."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return parts._replace(netloc=host).geturl()

    def client_conf(self) -> dict[str, object]:
        """confluent-kafka's ``SchemaRegistryClient`` configuration."""
        conf: dict[str, object] = {"url": self.url, "timeout": self.timeout_seconds}
        if self.user_info:
            conf["basic.auth.user.info"] = self.user_info
        if self.ca_location:
            conf["ssl.ca.location"] = self.ca_location
        if self.certificate_location:
            conf["ssl.certificate.location"] = self.certificate_location
            conf["ssl.key.location"] = self.key_location
        return conf


def check_key(key: str) -> None:
    if key not in KEYS:
        raise ConfigError(key, f"unknown schema registry setting; known: {', '.join(sorted(KEYS))}")


def registry_config(s: Settings) -> RegistryConfig | None:
    """The registry settings, or ``None`` when ``schema.registry.url`` is not set."""
    url = s.str_(URL)
    if not url:
        others = [k for k in sorted(KEYS - {URL}) if s.str_(k)]
        if others:
            raise ConfigError(others[0], f"is set but {URL} is not; set {URL} (e.g. http://registry:8081)")
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(URL, "must be an http:// or https:// URL, e.g. http://registry:8081")
    source = s.str_("schema.registry.basic.auth.credentials.source", "USER_INFO").upper()
    if source not in ("USER_INFO", "URL"):
        raise ConfigError("schema.registry.basic.auth.credentials.source",
                          f"{source!r} is not supported; use USER_INFO (with schema.registry.basic.auth.user.info) or URL")
    # taken as written: a password may hold spaces
    user_info = s.raw("schema.registry.basic.auth.user.info") or ""
    if parts.username is not None:
        if user_info:
            raise ConfigError(URL, "holds user:password and schema.registry.basic.auth.user.info is also set; keep one")
        user_info = f"{parts.username}:{parts.password or ''}"
        url = RegistryConfig(url).display_url
    if user_info and ":" not in user_info:
        raise ConfigError("schema.registry.basic.auth.user.info", "must be user:password")
    ca = _file(s, "schema.registry.ssl.ca.location")
    cert = _file(s, "schema.registry.ssl.certificate.location")
    key = _file(s, "schema.registry.ssl.key.location")
    if (cert is None) != (key is None):
        raise ConfigError("schema.registry.ssl.key.location",
                          "client TLS needs both schema.registry.ssl.certificate.location and schema.registry.ssl.key.location")
    timeout_ms = s.int_("schema.registry.request.timeout.ms", 10_000, 100, 600_000)
    return RegistryConfig(url, user_info, ca, cert, key, timeout_ms / 1000)


def _file(s: Settings, key: str) -> str | None:
    path = s.str_(key)
    if not path:
        return None
    if not Path(path).is_file():
        raise ConfigError(key, f"file {path!r} does not exist; give a PEM file")
    return path
