"""doctor kafka's SASL verdicts: a wrong password told apart from a mechanism mismatch, on the real broker.

The shared broker's SASL_SSL listener enables SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN; users made here
have credentials for one SCRAM mechanism only, so logging in with the other is a true mechanism
mismatch (Kafka answers it with the same generic text as a wrong password).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, ScramMechanism

import private_kafka
from kafka_helpers import create_scram_user, delete_scram_user, env_secret
from triggerfish.doctor import kafka as doctor
from triggerfish.doctor.report import exit_code
from triggerfish.localkafka import KafkaEnv

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


@pytest.fixture(scope="module")
def msk_like(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A second local broker (port base 19840): SASL_SSL enabling only SCRAM-SHA-512 (as MSK does), and a
    SASL_PLAINTEXT listener with SCRAM-SHA-512 and PLAIN (user ``plainonly`` exists only for PLAIN)."""
    p, scram_password = PRIVATE_PORT_BASE, uuid.uuid4().hex
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    settings = {
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
        "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": scram,
        "listener.name.sasl_plaintext.plain.sasl.jaas.config":
            f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{PLAIN_USER}="{PLAIN_PASSWORD}";',
    }
    env = private_kafka.start(tmp_path_factory.mktemp("msk-like"), p, {"SASL_SSL": 1, "SASL_PLAINTEXT": 2}, settings,
                              format_args=["--add-scram", f"SCRAM-SHA-512=[name=msk,password={scram_password}]"])
    try:
        yield {"sasl_ssl": env.listener(1), "sasl_plaintext": env.listener(2), "ca": str(env.ca_file),
               "user": "msk", "password": scram_password}
    finally:
        private_kafka.stop(env)


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
