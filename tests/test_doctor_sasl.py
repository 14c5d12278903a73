"""doctor kafka's SASL verdicts: a wrong password told apart from a mechanism mismatch, on the real broker.

The shared broker's SASL_SSL listener enables SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN; users made here
have credentials for one SCRAM mechanism only, so logging in with the other is a true mechanism
mismatch (Kafka answers it with the same generic text as a wrong password).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ScramMechanism

from kafka_helpers import create_scram_user, delete_scram_user, env_secret
from triggerfish.doctor import kafka as doctor
from triggerfish.doctor.report import exit_code
from triggerfish.localkafka import KafkaEnv, broker, certs, jars

pytestmark = pytest.mark.kafka


@pytest.fixture
def sha256_user(admin: AdminClient) -> Iterator[tuple[str, str]]:
    user, password = create_scram_user(admin, ScramMechanism.SCRAM_SHA_256)
    yield user, password
    delete_scram_user(admin, user, ScramMechanism.SCRAM_SHA_256)


@pytest.fixture
def sha512_user(admin: AdminClient) -> Iterator[tuple[str, str]]:
    user, password = create_scram_user(admin, ScramMechanism.SCRAM_SHA_512)
    yield user, password
    delete_scram_user(admin, user, ScramMechanism.SCRAM_SHA_512)


def sasl_row(kafka: KafkaEnv, monkeypatch: pytest.MonkeyPatch, kind: str, user: str, password: str):
    login = env_secret(monkeypatch, {"username": user, "password": password})
    plan = doctor.plan_from_options([kafka.sasl_bootstrap], access=[f"{kind}={login}"],
                                    properties=[f"ssl.ca.location={kafka.ca_file}"])
    checks = doctor.diagnose(plan, poll=False, kafka_timeout=10)
    assert exit_code(checks) == 1
    assert password not in json.dumps([c.to_dict() for c in checks])
    return next(c for c in checks if c.stage == "sasl")


def test_scram_512_for_a_scram_256_user_is_a_mechanism_mismatch(kafka: KafkaEnv, sha256_user, monkeypatch) -> None:
    user, password = sha256_user
    sasl = sasl_row(kafka, monkeypatch, "SASL_SCRAM_512_AUTH", user, password)
    assert sasl.status == "fail" and sasl.problem == "PROBLEM: SASL authentication failed."
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in sasl.detail  # what the broker said
    assert "the same credentials work with SCRAM-SHA-256" in sasl.detail
    assert "SCRAM-SHA-512 is wrong (a mechanism mismatch, not a wrong password)" in sasl.detail
    assert sasl.fix == ("the credentials work with SCRAM-SHA-256; set the SASL mechanism to SCRAM-SHA-256 (secret type "
                        "SASL_SCRAM_256_AUTH, or sasl.mechanism=SCRAM-SHA-256)")


def test_scram_256_for_a_scram_512_user(kafka: KafkaEnv, sha512_user, monkeypatch) -> None:
    user, password = sha512_user
    sasl = sasl_row(kafka, monkeypatch, "SASL_SCRAM_256_AUTH", user, password)
    assert sasl.fix.startswith("the credentials work with SCRAM-SHA-512; set the SASL mechanism to SCRAM-SHA-512")


def test_plain_for_a_scram_user_over_tls(kafka: KafkaEnv, sha512_user, monkeypatch) -> None:
    user, password = sha512_user
    sasl = sasl_row(kafka, monkeypatch, "BASIC_AUTH", user, password)
    assert "PLAIN login as" in sasl.detail and "Invalid username or password" in sasl.detail
    assert "(secret type SASL_SCRAM_512_AUTH, or sasl.mechanism=SCRAM-SHA-512)" in sasl.fix


def test_wrong_password_works_with_no_mechanism(kafka: KafkaEnv, sha512_user, monkeypatch) -> None:
    user, _ = sha512_user
    sasl = sasl_row(kafka, monkeypatch, "SASL_SCRAM_512_AUTH", user, f"wrong-{uuid.uuid4().hex}")
    assert "refused with SCRAM-SHA-256, PLAIN too" in sasl.detail
    enabled = sasl.detail.split("the broker enables ", 1)[1].split(")", 1)[0]
    assert sorted(enabled.split(", ")) == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]  # from the SaslHandshake
    assert "the user name or password is wrong (Kafka does not say which), not the mechanism" in sasl.detail
    assert sasl.fix.startswith(f"check the user name and password of {user!r}")


def test_unknown_user_is_the_same_verdict(kafka: KafkaEnv, monkeypatch) -> None:
    sasl = sasl_row(kafka, monkeypatch, "SASL_SCRAM_256_AUTH", f"nobody-{uuid.uuid4().hex[:8]}", "whatever-pw")
    assert "the user name or password is wrong" in sasl.detail and "work with" not in sasl.fix


# --- a private broker shaped like MSK: SCRAM-SHA-512 only over TLS, and a SASL_PLAINTEXT listener ---------

PRIVATE_PORT_BASE = 19840
PLAIN_USER, PLAIN_PASSWORD = "plainonly", "plain-only-password"
LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="out" target="SYSTEM_OUT"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="out"/></Root></Loggers>
</Configuration>
"""


def java(libs: Path, home: Path, *args: str) -> list[str]:
    return ["java", "-Xms256m", "-Xmx1g", f"-Dlog4j2.configurationFile={home / 'log4j2.xml'}", "-cp", f"{libs}/*",
            *args]


def wait_ready(bootstrap: str, proc: subprocess.Popen[bytes], log_file: Path, timeout: float = 120) -> None:
    """Until the broker serves metadata on ``bootstrap``; fails with its log when it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_file.read_text(errors="replace")[-3000:]
        try:
            AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2)
            return
        except KafkaException:  # accepting TCP before serving metadata
            time.sleep(0.5)
    raise AssertionError(f"the private broker did not start within {timeout:.0f}s; see {log_file}")


@pytest.fixture(scope="module")
def msk_like() -> Iterator[dict[str, str]]:
    """A second local broker (port base 19840): SASL_SSL enabling only SCRAM-SHA-512 (as MSK does), and a
    SASL_PLAINTEXT listener with SCRAM-SHA-512 and PLAIN (user ``plainonly`` exists only for PLAIN)."""

    inst = broker.Instance(PRIVATE_PORT_BASE)
    if inst.pid() is not None:  # left over from an interrupted run
        broker.down(PRIVATE_PORT_BASE)
    jars.require_tools()
    libs = jars.fetch()
    inst.home.mkdir(parents=True, exist_ok=True)
    files = certs.generate(inst.home / "certs")
    p, scram_password = PRIVATE_PORT_BASE, uuid.uuid4().hex
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    props = {
        "process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": f"1@127.0.0.1:{p + 3}",
        "listeners": f"PLAINTEXT://127.0.0.1:{p},SASL_SSL://127.0.0.1:{p + 1},SASL_PLAINTEXT://127.0.0.1:{p + 2},"
                     f"CONTROLLER://127.0.0.1:{p + 3}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{p},SASL_SSL://127.0.0.1:{p + 1},"
                                f"SASL_PLAINTEXT://127.0.0.1:{p + 2}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                                          "CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER", "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(inst.data_dir), "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1", "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1", "share.coordinator.state.topic.min.isr": "1",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": scram,
        "listener.name.sasl_plaintext.plain.sasl.jaas.config":
            f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{PLAIN_USER}="{PLAIN_PASSWORD}";',
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(files.broker_keystore),
        "ssl.truststore.type": "PEM", "ssl.truststore.location": str(files.ca_cert),
    }
    (inst.home / "log4j2.xml").write_text(LOG4J2)
    config = inst.home / "server.properties"
    config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    if not (inst.data_dir / "meta.properties").exists():
        subprocess.run(java(libs, inst.home, "kafka.tools.StorageTool", "format", "-t", broker.cluster_id(),
                            "-c", str(config), "--add-scram", f"SCRAM-SHA-512=[name=msk,password={scram_password}]"),
                       check=True, capture_output=True)
    with open(inst.log_file, "ab") as log:
        proc = subprocess.Popen(java(libs, inst.home, "kafka.Kafka", str(config)), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    inst.pid_file.write_text(str(proc.pid))
    try:
        wait_ready(f"127.0.0.1:{p}", proc, inst.log_file)
        yield {"sasl_ssl": f"127.0.0.1:{p + 1}", "sasl_plaintext": f"127.0.0.1:{p + 2}", "ca": str(files.ca_cert),
               "user": "msk", "password": scram_password}
    finally:
        broker.down(PRIVATE_PORT_BASE)


def test_mechanism_the_broker_does_not_enable(msk_like: dict[str, str], monkeypatch) -> None:
    # MSK enables SCRAM-SHA-512 only: SCRAM-SHA-256 fails at the SaslHandshake, before any password is checked.
    login = env_secret(monkeypatch, {"username": msk_like["user"], "password": msk_like["password"]})
    plan = doctor.plan_from_options([msk_like["sasl_ssl"]], access=[f"SASL_SCRAM_256_AUTH={login}"],
                                    properties=[f"ssl.ca.location={msk_like['ca']}"])
    checks = doctor.diagnose(plan, poll=False, kafka_timeout=10)
    sasl = next(c for c in checks if c.stage == "sasl")
    assert sasl.status == "fail" and "Unsupported SASL mechanism" in sasl.detail
    assert "the same credentials work with SCRAM-SHA-512" in sasl.detail and "the broker does not enable it" in sasl.detail
    assert sasl.fix.startswith("the credentials work with SCRAM-SHA-512; set the SASL mechanism to SCRAM-SHA-512")


def test_plain_is_never_tried_over_a_plaintext_listener(msk_like: dict[str, str]) -> None:
    # The PLAIN-only user logs in with SCRAM over SASL_PLAINTEXT: the doctor must not send its password in clear.
    config = {"bootstrap.servers": msk_like["sasl_plaintext"], "security.protocol": "SASL_PLAINTEXT",
              "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": PLAIN_USER, "sasl.password": PLAIN_PASSWORD}
    plan = doctor.Plan([msk_like["sasl_plaintext"]], config)
    checks = doctor.diagnose(plan, poll=False, kafka_timeout=10)
    sasl = next(c for c in checks if c.stage == "sasl")
    assert sasl.status == "fail"
    assert "PLAIN not tried: it would send the password in clear over this non-TLS listener" in sasl.detail
    assert "work with PLAIN" not in sasl.detail
    # The user chose PLAIN itself: its own login is tried, and SCRAM (which never reveals the password) is compared.
    plain = doctor.diagnose(doctor.Plan([msk_like["sasl_plaintext"]], {**config, "sasl.mechanism": "PLAIN"}),
                            poll=False, kafka_timeout=10)
    assert exit_code(plain) == 0, plain
