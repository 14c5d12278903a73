"""The bridge's configuration: Strimzi's ``bridge.*`` / ``http.*`` / ``kafka.*`` keys, checked and translated.

Keys are routed exactly as Strimzi routes them (``kafka.`` applies to every client, ``kafka.producer.``,
``kafka.consumer.`` and ``kafka.admin.`` to one), environment variables with those prefixes override
the file, placeholders are resolved through ``config.providers``, and Java client keys are turned into
librdkafka ones. Anything the bridge cannot honour is a ConfigError naming the key.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from triggerfish.bridge.properties import Providers, load
from triggerfish.errors import ConfigError

CLIENTS = ("producer", "consumer", "admin")

_BRIDGE_KEYS = {
    "bridge.id", "bridge.metrics", "bridge.metrics.exporter.config.path", "bridge.tracing",
    "bridge.executor.pool.size", "bridge.executor.queue.size",
}
_HTTP_KEYS = {
    "http.host", "http.port", "http.management.port", "http.enabled",
    "http.cors.enabled", "http.cors.allowedOrigins", "http.cors.allowedMethods",
    "http.consumer.enabled", "http.producer.enabled", "http.timeoutSeconds",
    "http.ssl.enable", "http.ssl.certificate.location", "http.ssl.key.location",
    "http.ssl.certificate", "http.ssl.key", "http.ssl.enabled.protocols", "http.ssl.enabled.cipher.suites",
    # triggerfish's own: HTTP authentication of the bridge itself
    "http.auth.type", "http.auth.username", "http.auth.password", "http.auth.token",
}

# Java-only keys that have no meaning for librdkafka and change nothing observable: dropped.
_DROPPED = {
    "key.serializer", "value.serializer", "key.deserializer", "value.deserializer",
    "metric.reporters", "metrics.num.samples", "metrics.recording.level", "metrics.sample.window.ms",
    "ssl.protocol", "ssl.enabled.protocols", "ssl.keymanager.algorithm", "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation", "ssl.engine.factory.class", "auto.include.jmx.reporter",
    "prometheus.metrics.reporter.listener.enable", "prometheus.metrics.reporter.allowlist",
    "default.api.timeout.ms", "interceptor.classes", "security.providers",
}
# Same meaning, different name.
_RENAMED = {
    "max.request.size": "message.max.bytes",
    "max.block.ms": "topic.metadata.propagation.max.ms",
    "consumer.request.timeout.ms": "socket.timeout.ms",
}
_ASSIGNORS = {
    "org.apache.kafka.clients.consumer.RangeAssignor": "range",
    "org.apache.kafka.clients.consumer.RoundRobinAssignor": "roundrobin",
    "org.apache.kafka.clients.consumer.CooperativeStickyAssignor": "cooperative-sticky",
}
_JAAS = re.compile(r'^\s*(\S+)\s+(required|requisite|sufficient|optional)\s*(.*?);?\s*$', re.S)
_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"|(\w+)\s*=\s*(\S+)')
# Handled by the bridge itself, not by librdkafka.
BRIDGE_CONSUMER_KEYS = {"max.poll.records"}


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

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def from_file(path: str | Path, environ: Mapping[str, str] | None = None) -> BridgeConfig:
    """Load a Strimzi bridge properties file; env vars named ``bridge.*``/``http.*``/``kafka.*`` override it."""
    return from_properties(load(path), environ)


def from_properties(props: Mapping[str, str], environ: Mapping[str, str] | None = None) -> BridgeConfig:
    merged = dict(props)
    env = os.environ if environ is None else environ
    for k, v in env.items():
        if k.startswith(("bridge.", "http.", "kafka.")):
            merged[k] = v
    providers = Providers(merged)
    resolved = {k: providers.resolve(k, v) for k, v in merged.items() if k not in providers.declared_keys}

    for k in resolved:
        if k.startswith("bridge.") and k not in _BRIDGE_KEYS:
            raise ConfigError(k, f"unknown bridge setting; known: {', '.join(sorted(_BRIDGE_KEYS))}")
        if k.startswith("http.") and k not in _HTTP_KEYS:
            raise ConfigError(k, f"unknown http setting; known: {', '.join(sorted(_HTTP_KEYS))}")
        if not k.startswith(("bridge.", "http.", "kafka.")):
            raise ConfigError(k, "unknown key; bridge settings start with bridge., http. or kafka.")

    def get(key: str, default: str) -> str:
        return resolved.get(key, default).strip()

    if get("bridge.tracing", ""):
        raise ConfigError("bridge.tracing", "tracing is not supported by triggerfish's bridge; remove the key")
    metrics = get("bridge.metrics", "")
    if metrics not in ("", "jmxPrometheusExporter", "strimziMetricsReporter"):
        raise ConfigError("bridge.metrics", f"{metrics!r} is not one of jmxPrometheusExporter, strimziMetricsReporter")

    ssl = _bool(resolved, "http.ssl.enable", False)
    certfile = keyfile = None
    if ssl:
        certfile = _pem_file(resolved, "http.ssl.certificate.location", "http.ssl.certificate")
        keyfile = _pem_file(resolved, "http.ssl.key.location", "http.ssl.key")

    auth_type = get("http.auth.type", "none").lower()
    if auth_type not in ("none", "basic", "bearer"):
        raise ConfigError("http.auth.type", f"{auth_type!r} is not one of none, basic, bearer")
    auth = AuthConfig(auth_type, get("http.auth.username", ""), resolved.get("http.auth.password", ""),
                      resolved.get("http.auth.token", "").strip())
    if auth_type == "basic" and not (auth.username and auth.password):
        raise ConfigError("http.auth.password", "basic auth needs http.auth.username and http.auth.password")
    if auth_type == "bearer" and not auth.token:
        raise ConfigError("http.auth.token", "bearer auth needs http.auth.token (e.g. ${env:BRIDGE_TOKEN})")

    clients, origins, max_poll = translate_kafka(resolved)
    mgmt = _int(resolved, "http.management.port", 8081, lo=-1, hi=65535)
    return BridgeConfig(
        bridge_id=get("bridge.id", "") or None,
        host=get("http.host", "127.0.0.1"),
        port=_int(resolved, "http.port", 8443 if ssl else 8080, lo=0, hi=65535),
        management_port=None if mgmt < 0 else mgmt,
        cors_enabled=_bool(resolved, "http.cors.enabled", False),
        cors_origins=get("http.cors.allowedOrigins", "*"),
        cors_methods=tuple(m.strip().upper() for m in get("http.cors.allowedMethods", ",".join(BridgeConfig.cors_methods)).split(",")
                           if m.strip()),
        consumer_enabled=_bool(resolved, "http.consumer.enabled", True),
        producer_enabled=_bool(resolved, "http.producer.enabled", True),
        timeout_seconds=_int(resolved, "http.timeoutSeconds", -1, lo=-1, hi=10**9),
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        executor_threads=_int(resolved, "bridge.executor.pool.size", max(4, 2 * (os.cpu_count() or 1)), lo=1, hi=1024),
        auth=auth,
        producer=clients["producer"],
        consumer=clients["consumer"],
        admin=clients["admin"],
        origins=origins,
        max_poll_records=max_poll,
    )


def translate_kafka(props: Mapping[str, str]) -> tuple[dict[str, dict[str, str]], dict[str, str], int]:
    """Split ``kafka.*`` into per-client librdkafka dicts (common first, specific wins)."""
    common: dict[str, str] = {}
    specific: dict[str, dict[str, str]] = {c: {} for c in CLIENTS}
    for k, v in props.items():
        if not k.startswith("kafka."):
            continue
        rest = k[len("kafka."):]
        client = rest.split(".", 1)[0]
        if client in CLIENTS and "." in rest:
            specific[client][rest.split(".", 1)[1]] = v
        else:
            common[rest] = v
    origins: dict[str, str] = {}
    out: dict[str, dict[str, str]] = {}
    max_poll = 500
    for client in CLIENTS:
        java = {**common, **specific[client]}
        where = {**{k: f"kafka.{k}" for k in common}, **{k: f"kafka.{client}.{k}" for k in specific[client]}}
        if client == "consumer" and "max.poll.records" in java:
            max_poll = _int({"x": java.pop("max.poll.records")}, "x", 500, lo=1, hi=100_000, name=where["max.poll.records"])
        out[client] = java_to_librdkafka(java, where, origins)
    if "bootstrap.servers" not in out["admin"]:
        raise ConfigError("kafka.bootstrap.servers", "is required (the Kafka brokers to connect to, host:port[,host:port])")
    return out, origins, max_poll


def java_to_librdkafka(java: Mapping[str, str], where: Mapping[str, str], origins: dict[str, str]) -> dict[str, str]:
    """Translate one client's Java Kafka properties to librdkafka's; ``where`` maps keys to the user's names."""
    conf: dict[str, str] = {}

    def put(key: str, value: str, source: str) -> None:
        conf[key] = value
        origins.setdefault(key, where.get(source, source))

    store_type = java.get("ssl.keystore.type", "JKS" if "ssl.keystore.location" in java else "PEM").upper()
    trust_type = java.get("ssl.truststore.type", "JKS" if "ssl.truststore.location" in java else "PEM").upper()
    for key, value in java.items():
        name = where.get(key, key)
        if key in _DROPPED or key in ("ssl.keystore.type", "ssl.truststore.type"):
            continue
        if key in _RENAMED:
            put(_RENAMED[key], value, key)
        elif key == "ssl.keystore.certificate.chain":
            put("ssl.certificate.pem", value, key)
        elif key == "ssl.keystore.key":
            put("ssl.key.pem", value, key)
        elif key == "ssl.truststore.certificates":
            put("ssl.ca.pem", value, key)
        elif key == "ssl.keystore.location":
            if store_type == "PEM":
                put("ssl.certificate.location", value, key)
                put("ssl.key.location", value, key)
            elif store_type == "PKCS12":
                put("ssl.keystore.location", value, key)
            else:
                raise ConfigError(name, f"keystore type {store_type} is not supported by librdkafka; convert it to "
                                  "PKCS12 or PEM and set ssl.keystore.type accordingly")
        elif key == "ssl.keystore.password":
            put("ssl.keystore.password", value, key)
        elif key == "ssl.truststore.location":
            if trust_type == "PEM":
                put("ssl.ca.location", value, key)
            else:
                put("ssl.ca.pem", _truststore_pem(name, value, java.get("ssl.truststore.password", ""), trust_type), key)
        elif key == "ssl.truststore.password":
            continue  # used above to open a PKCS12 truststore
        elif key == "ssl.endpoint.identification.algorithm":
            put(key, "https" if value.strip().lower() == "https" else "none", key)
        elif key == "sasl.jaas.config":
            for k2, v2 in _jaas(name, value).items():
                put(k2, v2, key)
        elif key == "partition.assignment.strategy":
            names = []
            for cls in value.split(","):
                cls = cls.strip()
                names.append(_ASSIGNORS.get(cls, cls))
            put(key, ",".join(names), key)
        elif key == "buffer.memory":
            put("queue.buffering.max.kbytes", str(max(1, _int({"x": value}, "x", 0, lo=1, hi=2**42, name=name) // 1024)), key)
        elif key == "auto.offset.reset" and value.strip() == "none":
            put(key, "error", key)
        elif key in BRIDGE_CONSUMER_KEYS:
            continue
        else:
            put(key, value, key)
    return conf


def _jaas(name: str, value: str) -> dict[str, str]:
    m = _JAAS.match(value)
    if not m:
        raise ConfigError(name, "cannot parse the JAAS line; expected '<LoginModule> required username=\"...\" password=\"...\";'")
    module, options = m.group(1), m.group(3)
    opts: dict[str, str] = {}
    for om in _JAAS_OPTION.finditer(options):
        if om.group(1):
            opts[om.group(1)] = re.sub(r"\\(.)", r"\1", om.group(2))
        else:
            opts[om.group(3)] = om.group(4)
    if module.endswith(("PlainLoginModule", "ScramLoginModule")):
        if "username" not in opts or "password" not in opts:
            raise ConfigError(name, f"{module} needs username=\"...\" and password=\"...\"")
        return {"sasl.username": opts["username"], "sasl.password": opts["password"]}
    raise ConfigError(name, f"login module {module} is not supported; use PlainLoginModule or ScramLoginModule "
                      "(or librdkafka's own sasl.* keys)")


def _truststore_pem(name: str, location: str, password: str, store_type: str) -> str:
    if store_type != "PKCS12":
        raise ConfigError(name, f"truststore type {store_type} is not supported; use PEM or PKCS12 "
                          "(keytool -importkeystore -deststoretype PKCS12 converts JKS)")
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

    try:
        data = Path(location).read_bytes()
        store = pkcs12.load_pkcs12(data, password.encode() or None)
    except OSError as exc:
        raise ConfigError(name, f"cannot read truststore {location!r}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(name, f"cannot open PKCS12 truststore {location!r}; check ssl.truststore.password") from None
    certs = [c.certificate for c in store.additional_certs]
    if store.cert is not None:
        certs.append(store.cert.certificate)
    if not certs:
        raise ConfigError(name, f"truststore {location!r} holds no certificates")
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certs)


def _pem_file(props: Mapping[str, str], location_key: str, inline_key: str) -> str:
    location = props.get(location_key, "").strip()
    if location:
        if not Path(location).is_file():
            raise ConfigError(location_key, f"file {location!r} does not exist")
        return location
    inline = props.get(inline_key, "").strip()
    if not inline:
        raise ConfigError(location_key, f"http.ssl.enable=true needs {location_key} or {inline_key}")
    import tempfile

    fd, path = tempfile.mkstemp(prefix="triggerfish-bridge-", suffix=".pem")
    with os.fdopen(fd, "w") as f:
        f.write(inline + "\n")
    return path


def _bool(props: Mapping[str, str], key: str, default: bool) -> bool:
    raw = props.get(key)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("true", "false"):
        return value == "true"
    raise ConfigError(key, f"{raw!r} is not a boolean; use true or false")


def _int(props: Mapping[str, str], key: str, default: int, lo: int, hi: int, name: str | None = None) -> int:
    raw = props.get(key)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(name or key, f"{raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise ConfigError(name or key, f"{value} is out of range {lo}..{hi}")
    return value
