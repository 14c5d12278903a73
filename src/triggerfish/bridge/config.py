"""The bridge's configuration: Strimzi's ``bridge.*`` / ``http.*`` / ``kafka.*`` keys, checked and translated.

Keys are routed exactly as Strimzi routes them (``kafka.`` applies to every client, ``kafka.producer.``,
``kafka.consumer.`` and ``kafka.admin.`` to one), environment variables with those prefixes override
the file, placeholders are resolved through ``config.providers`` (:mod:`.properties`), and Java client
keys are turned into librdkafka ones (:mod:`.kafka_config`). Values are read with
:class:`triggerfish.settings.Settings`; anything the bridge cannot honour is a ConfigError naming the key.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from triggerfish.bridge.kafka_config import translate_kafka
from triggerfish.bridge.properties import Providers, load
from triggerfish.bridge.registry_config import PREFIX as REGISTRY_PREFIX
from triggerfish.bridge.registry_config import RegistryConfig, check_key, registry_config
from triggerfish.bridge.replicas_config import KEYS as REPLICAS_KEYS
from triggerfish.bridge.replicas_config import ReplicasConfig, replicas_config
from triggerfish.crosssite import is_loopback
from triggerfish.errors import ConfigError
from triggerfish.settings import Settings

#: Strimzi's effective body limit: Vert.x's BodyHandler default, which Strimzi does not change.
MAX_BODY_BYTES = 10 * 1024 * 1024

_METRICS = ("", "jmxPrometheusExporter", "strimziMetricsReporter")

_BRIDGE_KEYS = {
    "bridge.id", "bridge.metrics", "bridge.metrics.exporter.config.path", "bridge.tracing",
    "bridge.executor.pool.size", "bridge.executor.queue.size",
    *REPLICAS_KEYS,  # triggerfish's own: consumers reachable through any replica
}
_HTTP_KEYS = {
    "http.host", "http.port", "http.management.port", "http.enabled",
    "http.cors.enabled", "http.cors.allowedOrigins", "http.cors.allowedMethods",
    "http.consumer.enabled", "http.producer.enabled", "http.timeoutSeconds",
    "http.max.body.bytes",  # triggerfish's own: Strimzi's limit is Vert.x's fixed 10 MB
    "http.ssl.enable", "http.ssl.certificate.location", "http.ssl.key.location",
    "http.ssl.certificate", "http.ssl.key", "http.ssl.enabled.protocols", "http.ssl.enabled.cipher.suites",
    # triggerfish's own: HTTP authentication of the bridge itself, and the Host names it answers to
    "http.allowedHosts",
    "http.auth.type", "http.auth.username", "http.auth.password", "http.auth.token",
}


@dataclass(frozen=True)
class AuthConfig:
    """HTTP authentication of the bridge's own clients (off unless ``http.auth.type`` is set)."""

    type: str = "none"  # none | basic | bearer
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)


@dataclass(frozen=True)
class BridgeConfig:
    """Everything the bridge needs, already validated."""

    bridge_id: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    management_port: int | None = 8081
    cors_enabled: bool = False
    cors_origins: str = "*"
    cors_methods: tuple[str, ...] = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
    allowed_hosts: tuple[str, ...] = ()  # Host names beyond the binding's (``*``: any)
    consumer_enabled: bool = True
    producer_enabled: bool = True
    timeout_seconds: int = -1
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    executor_threads: int = max(4, 2 * (os.cpu_count() or 1))
    auth: AuthConfig = AuthConfig()
    producer: dict[str, str] = field(default_factory=dict)
    consumer: dict[str, str] = field(default_factory=dict)
    admin: dict[str, str] = field(default_factory=dict)
    # librdkafka key -> the property the user wrote, so client errors name the user's key
    origins: dict[str, str] = field(default_factory=dict)
    max_poll_records: int = 500
    #: Request bodies over this many bytes are refused with 413 (``http.max.body.bytes``).
    max_body_bytes: int = MAX_BODY_BYTES
    #: The schema registry of the avro/protobuf/jsonschema formats (``schema.registry.*``), if any.
    registry: RegistryConfig | None = None
    #: The other replicas that consumer requests are forwarded to (``bridge.replicas.*``), if any.
    replicas: ReplicasConfig | None = None
    #: ``bridge.metrics``: the Kafka clients' metric names, Strimzi's reporter's or its JMX exporter's (blank: both).
    metrics: str = ""

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def from_file(path: str | Path, environ: Mapping[str, str] | None = None) -> BridgeConfig:
    """Load a Strimzi bridge properties file; env vars named ``bridge.*``/``http.*``/``kafka.*`` override it."""
    return from_properties(load(path), environ)


def from_properties(props: Mapping[str, str], environ: Mapping[str, str] | None = None) -> BridgeConfig:
    merged = dict(props)
    env = os.environ if environ is None else environ
    for k, v in env.items():
        if k.startswith(("bridge.", "http.", "kafka.", REGISTRY_PREFIX)):
            merged[k] = v
    providers = Providers(merged)
    resolved = {k: providers.resolve(k, v) for k, v in merged.items() if k not in providers.declared_keys}
    _check_keys(resolved)
    s = Settings(resolved)
    if s.str_("bridge.tracing"):
        raise ConfigError("bridge.tracing", "tracing is not supported by triggerfish's bridge; remove the key")
    metrics = s.enum_("bridge.metrics", _METRICS, "", shown=_METRICS[1:])
    ssl = s.bool_("http.ssl.enable", False)
    certfile = keyfile = None
    if ssl:
        certfile = _pem_file(s, "http.ssl.certificate.location", "http.ssl.certificate")
        keyfile = _pem_file(s, "http.ssl.key.location", "http.ssl.key")
    auth = _auth(s)
    clients, origins, max_poll = translate_kafka(resolved)
    mgmt = s.int_("http.management.port", 8081, -1, 65535)
    port = s.int_("http.port", 8443 if ssl else 8080, 0, 65535)
    return BridgeConfig(
        bridge_id=s.optional("bridge.id"),
        host=s.str_("http.host", "127.0.0.1"),
        port=port,
        management_port=None if mgmt < 0 else mgmt,
        cors_enabled=s.bool_("http.cors.enabled", False),
        cors_origins=s.str_("http.cors.allowedOrigins", "*"),
        cors_methods=tuple(m.upper() for m in s.list_("http.cors.allowedMethods", BridgeConfig.cors_methods)),
        allowed_hosts=tuple(s.list_("http.allowedHosts", ())),
        consumer_enabled=s.bool_("http.consumer.enabled", True),
        producer_enabled=s.bool_("http.producer.enabled", True),
        timeout_seconds=s.int_("http.timeoutSeconds", -1, -1, 10**9),
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        executor_threads=s.int_("bridge.executor.pool.size", max(4, 2 * (os.cpu_count() or 1)), 1, 1024),
        auth=auth,
        producer=clients["producer"],
        consumer=clients["consumer"],
        admin=clients["admin"],
        origins=origins,
        max_poll_records=max_poll,
        max_body_bytes=s.int_("http.max.body.bytes", MAX_BODY_BYTES, 1, 2**31 - 1),
        registry=registry_config(s),
        replicas=replicas_config(s, port, ssl, s.list_("http.allowedHosts", ())),
        metrics=metrics,
    )


def _check_keys(props: Mapping[str, str]) -> None:
    for k in props:
        if k.startswith("bridge.") and k not in _BRIDGE_KEYS:
            raise ConfigError(k, f"unknown bridge setting; known: {', '.join(sorted(_BRIDGE_KEYS))}")
        if k.startswith("http.") and k not in _HTTP_KEYS:
            raise ConfigError(k, f"unknown http setting; known: {', '.join(sorted(_HTTP_KEYS))}")
        if k.startswith(REGISTRY_PREFIX):
            check_key(k)
        elif not k.startswith(("bridge.", "http.", "kafka.")):
            raise ConfigError(k, "unknown key; bridge settings start with bridge., http., kafka. or schema.registry.")


def _auth(s: Settings) -> AuthConfig:
    auth_type = s.str_("http.auth.type", "none").lower()
    if auth_type not in ("none", "basic", "bearer"):
        raise ConfigError("http.auth.type", f"{auth_type!r} is not one of none, basic, bearer")
    # The password is taken as written: spaces may belong to it.
    auth = AuthConfig(auth_type, s.str_("http.auth.username"), s.raw("http.auth.password") or "", s.str_("http.auth.token"))
    if auth_type == "basic" and not (auth.username and auth.password):
        raise ConfigError("http.auth.password", "basic auth needs http.auth.username and http.auth.password")
    if auth_type == "bearer" and not auth.token:
        raise ConfigError("http.auth.token", "bearer auth needs http.auth.token (e.g. ${env:BRIDGE_TOKEN})")
    return auth


def _pem_file(s: Settings, location_key: str, inline_key: str) -> str:
    location = s.str_(location_key)
    if location:
        if not Path(location).is_file():
            raise ConfigError(location_key, f"file {location!r} does not exist")
        return location
    inline = s.str_(inline_key)
    if not inline:
        raise ConfigError(location_key, f"http.ssl.enable=true needs {location_key} or {inline_key}")
    fd, path = tempfile.mkstemp(prefix="triggerfish-bridge-", suffix=".pem")
    with os.fdopen(fd, "w") as f:
        f.write(inline + "\n")
    return path
