"""Strimzi's ``kafka.*`` properties turned into librdkafka settings, one dict per client.

``kafka.`` applies to every client, ``kafka.producer.``, ``kafka.consumer.`` and ``kafka.admin.`` to
one (the specific key wins). Java client keys are renamed, translated (JAAS lines, keystores,
assignor class names) or dropped when they mean nothing to librdkafka; anything that cannot be
honoured is a ``ConfigError`` naming the user's key.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

from triggerfish.errors import ConfigError
from triggerfish.settings import read_int

_CLIENTS = ("producer", "consumer", "admin")

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
    # PEM material given inline
    "ssl.keystore.certificate.chain": "ssl.certificate.pem",
    "ssl.keystore.key": "ssl.key.pem",
    "ssl.truststore.certificates": "ssl.ca.pem",
}
_ASSIGNORS = {
    "org.apache.kafka.clients.consumer.RangeAssignor": "range",
    "org.apache.kafka.clients.consumer.RoundRobinAssignor": "roundrobin",
    "org.apache.kafka.clients.consumer.CooperativeStickyAssignor": "cooperative-sticky",
}
_JAAS = re.compile(r'^\s*(\S+)\s+(required|requisite|sufficient|optional)\s*(.*?);?\s*$', re.S)
_JAAS_OPTION = re.compile(r'(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"|(\w+)\s*=\s*(\S+)')
# Handled by the bridge itself, not by librdkafka.
_BRIDGE_CONSUMER_KEYS = {"max.poll.records"}
# Read while translating another key (the store types, the truststore's password), or by the bridge itself.
_SKIPPED = _DROPPED | {"ssl.keystore.type", "ssl.truststore.type", "ssl.truststore.password"} | _BRIDGE_CONSUMER_KEYS


def translate_kafka(props: Mapping[str, str]) -> tuple[dict[str, dict[str, str]], dict[str, str], int]:
    """Split ``kafka.*`` into per-client librdkafka dicts (common first, specific wins)."""
    common: dict[str, str] = {}
    specific: dict[str, dict[str, str]] = {c: {} for c in _CLIENTS}
    for k, v in props.items():
        if not k.startswith("kafka."):
            continue
        rest = k[len("kafka."):]
        client = rest.split(".", 1)[0]
        if client in _CLIENTS and "." in rest:
            specific[client][rest.split(".", 1)[1]] = v
        else:
            common[rest] = v
    origins: dict[str, str] = {}
    out: dict[str, dict[str, str]] = {}
    max_poll = 500
    for client in _CLIENTS:
        java = {**common, **specific[client]}
        where = {**{k: f"kafka.{k}" for k in common}, **{k: f"kafka.{client}.{k}" for k in specific[client]}}
        if client == "consumer" and "max.poll.records" in java:
            max_poll = read_int(where["max.poll.records"], java.pop("max.poll.records"), 1, 100_000)
        out[client] = _java_to_librdkafka(java, where, origins)
    if "bootstrap.servers" not in out["admin"]:
        raise ConfigError("kafka.bootstrap.servers", "is required (the Kafka brokers to connect to, host:port[,host:port])")
    return out, origins, max_poll


def _java_to_librdkafka(java: Mapping[str, str], where: Mapping[str, str], origins: dict[str, str]) -> dict[str, str]:
    """Translate one client's Java Kafka properties to librdkafka's; ``where`` maps keys to the user's names."""
    conf: dict[str, str] = {}
    for key, value in java.items():
        for target, translated in _translate(key, value, where.get(key, key), java):
            conf[target] = translated
            origins.setdefault(target, where.get(key, key))
    return conf


def _translate(key: str, value: str, name: str, java: Mapping[str, str]) -> list[tuple[str, str]]:
    """The librdkafka settings for one Java property (none when it is dropped)."""
    if key in _SKIPPED:
        return []
    if key in _RENAMED:
        return [(_RENAMED[key], value)]
    special = _SPECIAL.get(key)
    return special(name, value, java) if special is not None else [(key, value)]


def _keystore(name: str, value: str, java: Mapping[str, str]) -> list[tuple[str, str]]:
    store_type = java.get("ssl.keystore.type", "JKS").upper()
    if store_type == "PEM":
        return [("ssl.certificate.location", value), ("ssl.key.location", value)]
    if store_type == "PKCS12":
        return [("ssl.keystore.location", value)]
    raise ConfigError(name, f"keystore type {store_type} is not supported by librdkafka; convert it to "
                      "PKCS12 or PEM and set ssl.keystore.type accordingly")


def _truststore(name: str, value: str, java: Mapping[str, str]) -> list[tuple[str, str]]:
    trust_type = java.get("ssl.truststore.type", "JKS").upper()
    if trust_type == "PEM":
        return [("ssl.ca.location", value)]
    return [("ssl.ca.pem", _truststore_pem(name, value, java.get("ssl.truststore.password", ""), trust_type))]


def _assignors(name: str, value: str, java: Mapping[str, str]) -> list[tuple[str, str]]:
    names = [_ASSIGNORS.get(cls.strip(), cls.strip()) for cls in value.split(",")]
    return [("partition.assignment.strategy", ",".join(names))]


def _buffer_memory(name: str, value: str, java: Mapping[str, str]) -> list[tuple[str, str]]:
    return [("queue.buffering.max.kbytes", str(max(1, read_int(name, value, 1, 2**42) // 1024)))]


_Special = Callable[[str, str, Mapping[str, str]], list[tuple[str, str]]]
_SPECIAL: dict[str, _Special] = {
    "ssl.keystore.location": _keystore,
    "ssl.truststore.location": _truststore,
    "ssl.endpoint.identification.algorithm": lambda name, value, java: [
        ("ssl.endpoint.identification.algorithm", "https" if value.strip().lower() == "https" else "none")
    ],
    "sasl.jaas.config": lambda name, value, java: list(_jaas(name, value).items()),
    "partition.assignment.strategy": _assignors,
    "buffer.memory": _buffer_memory,
    "auto.offset.reset": lambda name, value, java: [("auto.offset.reset", "error" if value.strip() == "none" else value)],
}


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
