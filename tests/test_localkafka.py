"""The local broker's three listeners, its ACL authorizer and the `triggerfish kafka` commands, for real."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AclOperation, AdminClient, ResourceType, ScramMechanism

from kafka_helpers import create_scram_user, grant, grant_client, roundtrip
from triggerfish.localkafka import KafkaEnv, broker

pytestmark = pytest.mark.kafka


def test_cli_status_prints_the_same_lines(kafka: KafkaEnv) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "triggerfish", "kafka", "status"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == kafka.lines()
    assert [line.split("=")[0] for line in out] == [
        "KAFKA_BOOTSTRAP", "KAFKA_SASL_BOOTSTRAP", "KAFKA_MTLS_BOOTSTRAP", "KAFKA_CA_FILE",
        "KAFKA_CLIENT_CERT_FILE", "KAFKA_CLIENT_KEY_FILE", "KAFKA_ADMIN_USER", "KAFKA_ADMIN_PASSWORD",
    ]


def test_cli_up_is_idempotent(kafka: KafkaEnv) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "triggerfish", "kafka", "up"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == kafka.lines()


def test_cli_status_on_a_port_base_with_no_broker_exits_1() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "triggerfish", "kafka", "status", "--port-base", "19992"], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "down" in result.stderr


def test_plaintext_listener(kafka: KafkaEnv, make_topic) -> None:
    roundtrip(kafka.plaintext(), make_topic(), f"g-{uuid.uuid4().hex}")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"])
def test_sasl_ssl_listener(kafka: KafkaEnv, make_topic, mechanism: str) -> None:
    roundtrip(kafka.sasl(mechanism), make_topic(), f"g-{uuid.uuid4().hex}")


def test_mtls_listener_with_acls_for_the_certificate_principal(kafka: KafkaEnv, admin: AdminClient, make_topic) -> None:
    topic, group = make_topic(), f"g-{uuid.uuid4().hex}"
    grant_client(admin, "User:triggerfish-client", topic, group, AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE)
    roundtrip(kafka.mtls(), topic, group)


def test_mtls_listener_refuses_a_client_without_certificate(kafka: KafkaEnv) -> None:
    errors: list[KafkaError] = []
    producer = Producer({
        "bootstrap.servers": kafka.mtls_bootstrap, "security.protocol": "SSL", "ssl.ca.location": kafka.ca_file,
        "error_cb": errors.append, "log_level": 0,
    })
    for _ in range(20):
        producer.poll(0.5)
        if errors:
            break
    assert errors and errors[0].code() in (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN), errors
    assert "certificate" in errors[0].str().lower()


def test_scram_user_without_acls_is_denied_until_granted(kafka: KafkaEnv, admin: AdminClient, make_topic) -> None:
    user, password = create_scram_user(admin, ScramMechanism.SCRAM_SHA_512)
    topic, group = make_topic(), f"g-{uuid.uuid4().hex}"
    p = Producer(kafka.plaintext())
    p.produce(topic, b"hello")
    p.flush(30)

    principal = f"User:{user}"
    # Group Read first, so the only thing missing is the topic ACL.
    grant(admin, principal, ResourceType.GROUP, group, AclOperation.READ)
    config = {**kafka.sasl("SCRAM-SHA-512", user, password), "group.id": group, "auto.offset.reset": "earliest"}
    consumer = Consumer(config)
    consumer.subscribe([topic])
    denied = None
    for _ in range(30):
        msg = consumer.poll(1.0)
        if msg is not None and msg.error():
            denied = msg.error()
            break
    consumer.close()
    assert denied is not None and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, denied

    grant(admin, principal, ResourceType.TOPIC, topic, AclOperation.READ, AclOperation.DESCRIBE)

    consumer = Consumer(config)
    consumer.subscribe([topic])
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error() and msg.error().code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
                continue  # ACL propagation to the authorizer is quick but not instant
            assert not msg.error(), msg.error()
            assert msg.value() == b"hello"
            break
        else:
            raise AssertionError("consume still failing after granting ACLs")
    finally:
        consumer.close()


def test_up_without_java_or_maven_says_what_to_install(tmp_path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "triggerfish", "kafka", "up", "--port-base", "19900"],
        capture_output=True, text=True,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path), "TRIGGERFISH_CACHE": str(tmp_path / "cache")},
    )
    assert result.returncode == 1
    assert "java was not found" in result.stderr
    assert "apt-get install openjdk-17-jre-headless maven" in result.stderr
    assert "any existing Kafka works" in result.stderr
    assert "Traceback" not in result.stderr


def test_down_keep_data_then_up_keeps_records_and_down_removes_everything(kafka: KafkaEnv) -> None:
    """A second, private broker on other ports, so the shared one is untouched."""
    from triggerfish import localkafka
    from triggerfish.localkafka.broker import Instance

    base = 19700
    env = localkafka.up(base)
    try:
        topic = f"keep-{uuid.uuid4().hex[:8]}"
        producer = Producer(env.plaintext())
        producer.produce(topic, b"survives")
        assert producer.flush(30) == 0
        assert localkafka.down(base, keep_data=True) is True
        assert localkafka.status(base) is None
        again = localkafka.up(base)
        assert again.admin_password == env.admin_password
        assert _roundtrip_existing(again.plaintext(), topic) == b"survives"
    finally:
        localkafka.down(base)
    assert not Instance(base).home.exists()


def _roundtrip_existing(config: dict[str, str], topic: str) -> bytes:
    consumer = Consumer({**config, "group.id": f"g-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                return msg.value()
        raise AssertionError("record not found after restart")
    finally:
        consumer.close()


def test_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0xf8 encodes to "-" in URL-safe base64: kafka-storage format would take such an id for an option.
    ids = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(bytes=b"\x04" + bytes(15))])
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: next(ids))
    assert broker.cluster_id() == "BAAAAAAAAAAAAAAAAAAAAA"


def test_broker_is_node_0_and_an_older_node_1_data_dir_is_kept(kafka: KafkaEnv, caplog: pytest.LogCaptureFixture) -> None:
    """A private broker whose home holds the data dir an older triggerfish formatted as node 1: the broker
    starts as node 0 on a fresh data dir, leaves the old one as it was and says so."""
    from triggerfish import localkafka
    from triggerfish.localkafka.broker import Instance

    base = 19800
    inst = Instance(base)
    legacy = inst.home / "data"
    legacy.mkdir(parents=True, exist_ok=True)
    (legacy / "meta.properties").write_text("node.id=1\nversion=1\n")
    (legacy / "some-topic-0").mkdir(exist_ok=True)
    try:
        with caplog.at_level("WARNING", logger="triggerfish.localkafka"):
            env = localkafka.up(base)
        md = AdminClient(env.plaintext()).list_topics(timeout=30)
        assert list(md.brokers) == [0] and md.controller_id == 0
        assert (legacy / "some-topic-0").is_dir() and "node.id=1" in (legacy / "meta.properties").read_text()
        assert "node.id=0" in (inst.data_dir / "meta.properties").read_text()
        assert f"stays in {legacy}" in caplog.text and f"stays in {legacy}" in inst.log_file.read_text()
    finally:
        localkafka.down(base)
    assert not inst.home.exists()
