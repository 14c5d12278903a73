"""Bridge configuration: Strimzi properties, config providers, Java-to-librdkafka keys, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from triggerfish.bridge import properties
from triggerfish.bridge.config import from_file, from_properties
from triggerfish.bridge.server import check_exposure
from triggerfish.bridge.services import Services
from triggerfish.errors import ConfigError

BASE = {"kafka.bootstrap.servers": "127.0.0.1:9092"}


def test_properties_syntax() -> None:
    text = (
        "# comment\n! also a comment\n"
        "a=1\n b : two words \nc three\n"
        "long=first\\\n    second\n"
        "esc=tab\\there\\u0041\n"
        "empty=\n"
    )
    assert properties.parse(text) == {
        "a": "1", "b": "two words ", "c": "three", "long": "firstsecond", "esc": "tab\thereA", "empty": "",
    }


def test_defaults_are_loopback_and_strimzi_ports() -> None:
    cfg = from_properties(BASE, environ={})
    assert (cfg.host, cfg.port, cfg.management_port, cfg.timeout_seconds) == ("127.0.0.1", 8080, 8081, -1)
    assert cfg.producer["bootstrap.servers"] == "127.0.0.1:9092"
    assert cfg.producer_enabled and cfg.consumer_enabled


def test_routing_specific_wins_and_env_overrides_file() -> None:
    props = {**BASE, "kafka.client.id": "common", "kafka.producer.client.id": "prod", "kafka.producer.acks": "1",
             "kafka.consumer.auto.offset.reset": "earliest", "bridge.id": "from-file"}
    cfg = from_properties(props, environ={"bridge.id": "from-env", "PATH": "/bin"})
    assert cfg.bridge_id == "from-env"
    assert cfg.producer["client.id"] == "prod" and cfg.consumer["client.id"] == "common"
    assert cfg.producer["acks"] == "1" and "acks" not in cfg.consumer
    assert cfg.consumer["auto.offset.reset"] == "earliest" and "auto.offset.reset" not in cfg.admin


def test_sidecar_blog_config_with_strimzi_env_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOOTSTRAP_SERVERS", "kafka:9093")
    monkeypatch.setenv("USER_CRT", "-----BEGIN CERTIFICATE-----\nUSER\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("USER_KEY", "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n")
    monkeypatch.setenv("CA_CRT", "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n")
    props = {
        "bridge.id": "bridge-sidecar", "http.host": "127.0.0.1", "http.port": "8080",
        "kafka.config.providers": "env",
        "kafka.config.providers.env.class": "io.strimzi.kafka.EnvVarConfigProvider",
        "kafka.bootstrap.servers": "${env:BOOTSTRAP_SERVERS}",
        "kafka.security.protocol": "SSL",
        "kafka.ssl.keystore.type": "PEM",
        "kafka.ssl.keystore.certificate.chain": "${env:USER_CRT}",
        "kafka.ssl.keystore.key": "${env:USER_KEY}",
        "kafka.ssl.truststore.type": "PEM",
        "kafka.ssl.truststore.certificates": "${env:CA_CRT}",
        "kafka.ssl.endpoint.identification.algorithm": "HTTPS",
        "kafka.producer.acks": "1",
        "kafka.consumer.auto.offset.reset": "earliest",
    }
    cfg = from_properties(props)
    for conf in (cfg.producer, cfg.consumer, cfg.admin):
        assert conf["bootstrap.servers"] == "kafka:9093"
        assert "USER" in conf["ssl.certificate.pem"] and "KEY" in conf["ssl.key.pem"] and "CA" in conf["ssl.ca.pem"]
        assert conf["ssl.endpoint.identification.algorithm"] == "https"
        assert not any(k.startswith(("config.providers", "ssl.keystore", "ssl.truststore")) for k in conf)


def test_operator_style_file_and_directory_providers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "creds.properties").write_text("password=s3cr3t\n")
    (tmp_path / "init").mkdir()
    (tmp_path / "init" / "rack.id").write_text("zone-a")
    monkeypatch.setenv("KAFKA_BRIDGE_SASL_USERNAME", "alice")
    props = {
        **BASE,
        "kafka.config.providers": "strimzienv,strimzifile,strimzidir",
        "kafka.config.providers.strimzienv.class": "org.apache.kafka.common.config.provider.EnvVarConfigProvider",
        "kafka.config.providers.strimzienv.param.allowlist.pattern": ".*",
        "kafka.config.providers.strimzifile.class": "org.apache.kafka.common.config.provider.FileConfigProvider",
        "kafka.config.providers.strimzifile.param.allowed.paths": str(tmp_path),
        "kafka.config.providers.strimzidir.class": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
        "kafka.config.providers.strimzidir.param.allowed.paths": str(tmp_path),
        "kafka.security.protocol": "SASL_SSL",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                                  'username="${strimzienv:KAFKA_BRIDGE_SASL_USERNAME}" '
                                  f'password="${{strimzifile:{tmp_path}/creds.properties:password}}";',
        "kafka.consumer.client.rack": f"${{strimzidir:{tmp_path}/init:rack.id}}",
    }
    cfg = from_properties(props, environ={})
    assert cfg.producer["sasl.username"] == "alice" and cfg.producer["sasl.password"] == "s3cr3t"
    assert cfg.consumer["client.rack"] == "zone-a"


def test_java_keys_translated_or_dropped() -> None:
    props = {**BASE, "kafka.producer.key.serializer": "org.apache.kafka.common.serialization.StringSerializer",
             "kafka.producer.max.request.size": "2000000", "kafka.producer.buffer.memory": "33554432",
             "kafka.producer.max.block.ms": "10000",
             "kafka.consumer.partition.assignment.strategy": "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
             "kafka.consumer.max.poll.records": "50", "kafka.consumer.auto.offset.reset": "none"}
    cfg = from_properties(props, environ={})
    assert "key.serializer" not in cfg.producer
    assert cfg.producer["message.max.bytes"] == "2000000"
    assert cfg.producer["queue.buffering.max.kbytes"] == "32768"
    assert cfg.producer["topic.metadata.propagation.max.ms"] == "10000"
    assert cfg.consumer["partition.assignment.strategy"] == "cooperative-sticky"
    assert cfg.consumer["auto.offset.reset"] == "error"
    assert cfg.max_poll_records == 50 and "max.poll.records" not in cfg.consumer
    Services.build(cfg).close()  # librdkafka accepts every translated key


@pytest.mark.parametrize(
    ("props", "key", "words"),
    [
        ({**BASE, "bridge.colour": "blue"}, "bridge.colour", "unknown bridge setting"),
        ({**BASE, "http.prot": "80"}, "http.prot", "unknown http setting"),
        ({**BASE, "http.port": "eighty"}, "http.port", "not an integer"),
        ({**BASE, "http.cors.enabled": "yes"}, "http.cors.enabled", "not a boolean"),
        ({**BASE, "kafka.ssl.truststore.password": "x", "kafka.ssl.truststore.location": "/nope.jks"},
         "kafka.ssl.truststore.location", "JKS is not supported"),
        ({"http.port": "8080"}, "kafka.bootstrap.servers", "required"),
        ({**BASE, "kafka.sasl.jaas.config": "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"},
         "kafka.sasl.jaas.config", "not supported"),
        ({**BASE, "kafka.ssl.keystore.certificate.chain": "${env:USER_CRT}"}, "kafka.ssl.keystore.certificate.chain",
         "not declared in kafka.config.providers"),
        ({**BASE, "kafka.config.providers": "k8s",
          "kafka.config.providers.k8s.class": "io.strimzi.kafka.KubernetesSecretConfigProvider"},
         "kafka.config.providers.k8s.class", "DirectoryConfigProvider"),
        ({**BASE, "kafka.config.providers": "env", "kafka.config.providers.env.class": "com.example.Nope"},
         "kafka.config.providers.env.class", "unknown config provider class"),
        ({**BASE, "kafka.config.providers": "env",
          "kafka.config.providers.env.class": "io.strimzi.kafka.EnvVarConfigProvider",
          "kafka.sasl.password": "${env:TRIGGERFISH_SURELY_UNSET}"}, "kafka.sasl.password", "is not set"),
        ({**BASE, "http.auth.type": "basic", "http.auth.username": "u"}, "http.auth.password", "basic auth needs"),
    ],
)
def test_bad_config_names_the_key(props: dict[str, str], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_properties(props, environ={})
    assert info.value.field == key
    assert words in info.value.message


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [("kafka.producer.no.such.thing", "1", "No such configuration property"),
     ("kafka.security.protocol", "CARRIER_PIGEON", "Invalid value")],
)
def test_librdkafka_rejections_name_the_users_key(key: str, value: str, words: str) -> None:
    cfg = from_properties({**BASE, key: value}, environ={})
    with pytest.raises(ConfigError) as info:
        Services.build(cfg)
    assert info.value.field == key
    assert words in info.value.message


def test_secret_values_never_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    props = {**BASE, "kafka.sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required '
                                               'username="bob" password="hunter2-secret";',
             "kafka.security.protocol": "SASL_PLAINTEXT", "kafka.sasl.mechanism": "PLAIN",
             "kafka.producer.bogus": "1"}
    cfg = from_properties(props, environ={})
    assert cfg.producer["sasl.password"] == "hunter2-secret"
    with pytest.raises(ConfigError) as info:
        Services.build(cfg)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(cfg.auth)


def test_file_loading_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bridge.properties"
    path.write_text("kafka.bootstrap.servers=127.0.0.1:9092\nhttp.timeoutSeconds=5\n")
    assert from_file(path, environ={}).timeout_seconds == 5
    with pytest.raises(ConfigError) as info:
        from_file(tmp_path / "missing.properties", environ={})
    assert "does not exist" in str(info.value)


def test_non_loopback_needs_auth_or_insecure() -> None:
    exposed = from_properties({**BASE, "http.host": "0.0.0.0"}, environ={})
    with pytest.raises(ConfigError) as info:
        check_exposure(exposed, insecure=False)
    assert info.value.field == "http.host" and "--insecure" in info.value.message
    check_exposure(exposed, insecure=True)
    check_exposure(from_properties({**BASE, "http.host": "0.0.0.0", "http.auth.type": "bearer",
                                    "http.auth.token": "t0k"}, environ={}), insecure=False)
    check_exposure(from_properties({**BASE, "http.host": "::1"}, environ={}), insecure=False)


def test_provider_paths_are_confined(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("x")
    props = {**BASE, "kafka.config.providers": "dir",
             "kafka.config.providers.dir.class": "org.apache.kafka.common.config.provider.DirectoryConfigProvider",
             "kafka.config.providers.dir.param.allowed.paths": str(tmp_path / "allowed"),
             "kafka.sasl.password": f"${{dir:{outside}:secret}}"}
    with pytest.raises(ConfigError) as info:
        from_properties(props, environ={})
    assert info.value.field == "kafka.sasl.password" and "outside allowed.paths" in info.value.message


def test_pkcs12_truststore_becomes_pem(tmp_path: Path) -> None:
    import trustme
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    ca = trustme.CA()
    cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    store = tmp_path / "truststore.p12"
    store.write_bytes(pkcs12.serialize_key_and_certificates(b"ca", None, None, [cert], BestAvailableEncryption(b"changeit")))
    props = {**BASE, "kafka.ssl.truststore.type": "PKCS12", "kafka.ssl.truststore.location": str(store),
             "kafka.ssl.truststore.password": "changeit"}
    cfg = from_properties(props, environ={})
    assert x509.load_pem_x509_certificate(cfg.admin["ssl.ca.pem"].encode()) == cert
    with pytest.raises(ConfigError) as info:
        from_properties({**props, "kafka.ssl.truststore.password": "wrong"}, environ={})
    assert info.value.field == "kafka.ssl.truststore.location" and "changeit" not in str(info.value)
