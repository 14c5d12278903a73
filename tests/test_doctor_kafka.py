"""doctor kafka against the real broker's listeners, with real misconfigurations.

The stages are the ESM's own (triggerfish.esm.stages); these tests check the doctor's per-broker
orchestration, the advertised-listener check, the single poll, and its three kinds of input.
"""

from __future__ import annotations

import json
import socket
import struct
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AclOperation, AdminClient, ResourceType
from typer.testing import CliRunner

from kafka_helpers import TLSServer, closed_port, env_secret, grant
from triggerfish.cli import app
from triggerfish.doctor import kafka as doctor
from triggerfish.doctor.report import exit_code
from triggerfish.localkafka import KafkaEnv
from triggerfish.localkafka.certs import make_ca

pytestmark = pytest.mark.kafka


def statuses(checks) -> dict[str, str]:
    """stage -> status of the first check of each stage."""
    out: dict[str, str] = {}
    for c in checks:
        out.setdefault(c.stage, c.status)
    return out


def first_failure(checks):
    failed = [c for c in checks if c.status == "fail"]
    assert failed, checks
    # The run stops at a failed stage: nothing after it passes, and the poll never runs. (Topic and group
    # are both checked: missing ACLs on each are reported together.)
    after = checks[checks.index(failed[0]) + 1:]
    assert all(c.status != "ok" or c.stage == "advertised" for c in after), checks
    assert checks[-1].stage == "first_poll" and checks[-1].status == "skip"
    return failed[0]


def test_plaintext_every_stage_passes_and_one_record_is_fetched(kafka: KafkaEnv, make_topic, unique_name) -> None:
    topic = make_topic(partitions=2)
    p = Producer(kafka.plaintext())
    p.produce(topic, b"hello", partition=1)
    p.flush(10)
    plan = doctor.plan_from_options([kafka.bootstrap], topic=topic, group=unique_name("g"))
    checks = doctor.diagnose(plan)
    assert statuses(checks) == {"credentials": "skip", "secret": "skip", "dns": "ok", "tcp": "ok", "tls": "skip",
                                "sasl": "skip", "advertised": "ok", "topic": "ok", "group": "ok", "first_poll": "ok"}
    poll = checks[-1]
    assert poll.problem == "fetched a record" and "partition 1 offset 0, 5 bytes" in poll.detail
    assert exit_code(checks) == 0


def test_wrong_port_is_refused_and_later_stages_are_skipped(kafka: KafkaEnv) -> None:
    port = closed_port()
    checks = doctor.diagnose(doctor.plan_from_options([f"127.0.0.1:{port}"], topic="t"))
    failed = first_failure(checks)
    assert failed.stage == "tcp" and failed.target == f"127.0.0.1:{port} (bootstrap)"
    assert "refused" in failed.detail and str(port) in failed.fix
    assert [c.status for c in checks if c.stage in ("sasl", "topic", "group", "first_poll")] == ["skip"] * 4


def test_one_bad_bootstrap_among_good_ones_is_named(kafka: KafkaEnv, make_topic) -> None:
    topic = make_topic()
    bad = f"127.0.0.1:{closed_port()}"
    checks = doctor.diagnose(doctor.plan_from_options([kafka.bootstrap, bad], topic=topic), poll=False)
    assert [c.target for c in checks if c.status == "fail"] == [f"{bad} (bootstrap)"]
    assert statuses(checks)["topic"] == "ok"  # the good bootstrap still gets the run through


def test_wrong_ca_is_told_apart_from_a_hostname_problem(kafka: KafkaEnv, monkeypatch, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    _, other = make_ca("some other CA")
    ca = tmp_path / "other-ca.pem"
    ca.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    login = env_secret(monkeypatch, {"username": kafka.admin_user, "password": kafka.admin_password})
    plan = doctor.plan_from_options([kafka.sasl_bootstrap], access=[f"SASL_SCRAM_512_AUTH={login}"],
                                    properties=[f"ssl.ca.location={ca}"], topic="t")
    failed = first_failure(doctor.diagnose(plan))
    assert failed.stage == "tls" and "Lambda failed to authenticate server" in failed.problem
    assert "not signed by a CA in" in failed.detail and str(ca) in failed.detail
    assert "triggerfish local CA" in failed.detail  # who did issue it


def test_hostname_mismatch_against_the_real_broker(kafka: KafkaEnv, monkeypatch) -> None:
    # Any other name of this machine that resolves to 127.0.0.1 is not in the broker certificate's SANs.
    name = next((n for n in (socket.gethostname(), "vm", "runsc") if n != "localhost" and _loopback(n)), None)
    if name is None:
        pytest.skip("no second loopback host name on this machine")
    port = kafka.sasl_bootstrap.rsplit(":", 1)[1]
    login = env_secret(monkeypatch, {"username": kafka.admin_user, "password": kafka.admin_password})
    plan = doctor.plan_from_options([f"{name}:{port}"], access=[f"SASL_SCRAM_512_AUTH={login}"],
                                    properties=[f"ssl.ca.location={kafka.ca_file}"], topic="t")
    failed = first_failure(doctor.diagnose(plan))
    assert failed.stage == "tls" and "the broker certificate is for host localhost, 127.0.0.1" in failed.detail


def _loopback(name: str) -> bool:
    try:
        return socket.gethostbyname(name) == "127.0.0.1"
    except OSError:
        return False


def test_scram_bad_password_keeps_the_password_out_of_the_report(kafka: KafkaEnv, monkeypatch) -> None:
    password = f"wrong-{uuid.uuid4().hex}"
    login = env_secret(monkeypatch, {"username": kafka.admin_user, "password": password})
    plan = doctor.plan_from_options([kafka.sasl_bootstrap], access=[f"SASL_SCRAM_512_AUTH={login}"],
                                    properties=[f"ssl.ca.location={kafka.ca_file}"], topic="t")
    checks = doctor.diagnose(plan)
    failed = first_failure(checks)
    assert failed.stage == "sasl" and failed.problem == "PROBLEM: SASL authentication failed."
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in failed.detail
    assert statuses(checks)["tls"] == "ok"
    assert password not in json.dumps([c.to_dict() for c in checks])


def test_missing_topic_acl_then_missing_group_acl_then_all_good(kafka: KafkaEnv, admin: AdminClient, make_topic,
                                                              unique_name, scram_user, monkeypatch) -> None:
    topic, group = make_topic(), unique_name("grp")
    user, password = scram_user
    login = env_secret(monkeypatch, {"username": user, "password": password})

    def run():
        plan = doctor.plan_from_options([kafka.sasl_bootstrap], access=[f"SASL_SCRAM_512_AUTH={login}"],
                                        properties=[f"ssl.ca.location={kafka.ca_file}"], topic=topic, group=group)
        return doctor.diagnose(plan, kafka_timeout=10)

    checks = run()
    failed = first_failure(checks)
    assert failed.stage == "topic" and failed.problem == "PROBLEM: Cluster failed to authorize Lambda."
    assert f"User:{user}" in failed.detail and f"--topic {topic}" in failed.fix
    assert statuses(checks)["group"] == "fail"  # both missing ACLs reported in one run
    grant(admin, f"User:{user}", ResourceType.TOPIC, topic, AclOperation.READ)
    checks = run()
    failed = first_failure(checks)
    assert failed.stage == "group" and f"consumer group {group!r}" in failed.detail and f"--group {group}" in failed.fix
    assert statuses(checks)["topic"] == "ok"
    grant(admin, f"User:{user}", ResourceType.GROUP, group, AclOperation.READ)
    checks = run()
    assert exit_code(checks) == 0, checks
    assert checks[-1].stage == "first_poll" and checks[-1].problem == "fetch allowed; the topic is empty"


def test_mtls_listener_without_a_client_certificate(kafka: KafkaEnv) -> None:
    plan = doctor.plan_from_options([kafka.mtls_bootstrap], properties=["security.protocol=SSL",
                                                                         f"ssl.ca.location={kafka.ca_file}"], topic="t")
    failed = first_failure(doctor.diagnose(plan))
    assert failed.stage == "tls" and "requires a client certificate and none was sent" in failed.detail


def test_advertised_listener_trap(kafka: KafkaEnv) -> None:
    host, port = kafka.bootstrap.rsplit(":", 1)
    dead = closed_port()
    brokers = [
        doctor.Broker(1, host, int(port)),  # the bootstrap itself
        doctor.Broker(2, "kafka-2.kafka-headless.kafka.svc.cluster.local", 9092),  # in-cluster name, no DNS here
        doctor.Broker(3, "127.0.0.1", dead),  # resolvable, nothing listening
    ]
    checks = doctor.check_advertised(brokers, [kafka.bootstrap], kafka.plaintext(), timeout=2)
    traps = [c for c in checks if c.problem.startswith("advertised-listener trap")]
    assert [c.target for c in traps] == ["broker 2 kafka-2.kafka-headless.kafka.svc.cluster.local:9092 (advertised)",
                                         f"broker 3 127.0.0.1:{dead} (advertised)"]
    assert "fails at DNS" in traps[0].problem and "fails at TCP" in traps[1].problem
    assert "advertised.listeners" in traps[0].fix
    assert checks[0].status == "ok" and "bootstrap" in checks[0].problem


def test_real_metadata_lists_the_advertised_broker(kafka: KafkaEnv) -> None:
    from confluent_kafka.admin import AdminClient as Admin

    brokers = doctor.advertised_brokers(Admin(kafka.plaintext()), 10)
    assert [(b.host, b.port) for b in brokers] == [tuple([kafka.bootstrap.rsplit(":", 1)[0], int(kafka.bootstrap.rsplit(":", 1)[1])])]


def write_orders_project(directory: Path, mappings_yaml: str) -> Path:
    """A triggerfish.yaml with a no-op ``orders`` function and the given EventSourceMappings entries."""
    (directory / "fn").mkdir()
    (directory / "fn" / "app.py").write_text("def handler(event, context):\n    return None\n")
    config = directory / "triggerfish.yaml"
    config.write_text("Functions:\n  - FunctionName: orders\n    CodeUri: ./fn\n    Handler: app.handler\n"
                      "EventSourceMappings:" + mappings_yaml)
    return config


def test_mapping_from_a_config_file(kafka: KafkaEnv, make_topic, monkeypatch, tmp_path: Path) -> None:
    topic = make_topic()
    login = env_secret(monkeypatch, {"username": kafka.admin_user, "password": kafka.admin_password})
    ca = env_secret(monkeypatch, {"certificate": Path(kafka.ca_file).read_text()})
    mapping_uuid = str(uuid.uuid4())
    config = write_orders_project(tmp_path, f"""
  - UUID: {mapping_uuid}
    FunctionName: orders
    Topics: [{topic}]
    StartingPosition: TRIM_HORIZON
    SelfManagedEventSource:
      Endpoints:
        KAFKA_BOOTSTRAP_SERVERS: ["{kafka.sasl_bootstrap}"]
    SourceAccessConfigurations:
      - Type: SASL_SCRAM_512_AUTH
        URI: {login}
      - Type: SERVER_ROOT_CA_CERTIFICATE
        URI: {ca}
""")
    plan = doctor.plan_from_mapping(config, "orders")
    assert plan.group == mapping_uuid  # an ESM's group is its UUID
    checks = doctor.diagnose(plan, poll=False)
    assert exit_code(checks) == 0, checks
    assert [c.status for c in checks if c.stage == "secret"] == ["ok", "ok"]
    tls = next(c for c in checks if c.stage == "tls")
    assert "certificate for localhost, 127.0.0.1; issued by triggerfish local CA; valid until" in tls.detail
    assert tls.detail.endswith("chain: 127.0.0.1 <- triggerfish local CA (root, from the CA secret)")


def test_bridge_properties(kafka: KafkaEnv, make_topic, tmp_path: Path) -> None:
    topic = make_topic()
    props = tmp_path / "bridge.properties"
    props.write_text(
        f"bridge.id=doctor-test\n"
        f"kafka.bootstrap.servers={kafka.sasl_bootstrap}\n"
        f"kafka.security.protocol=SASL_SSL\n"
        f"kafka.sasl.mechanism=SCRAM-SHA-512\n"
        f"kafka.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{kafka.admin_user}" password="{kafka.admin_password}";\n'
        f"kafka.ssl.truststore.type=PEM\n"
        f"kafka.ssl.truststore.location={kafka.ca_file}\n"
    )
    checks = doctor.diagnose(doctor.plan_from_bridge(props, topic=topic), poll=False)
    assert exit_code(checks) == 0, checks
    assert next(c for c in checks if c.stage == "sasl").detail.startswith("SCRAM-SHA-512 login")


def test_cli_json_and_exit_codes(kafka: KafkaEnv, make_topic) -> None:
    topic = make_topic()
    runner = CliRunner()
    ok = runner.invoke(app, ["doctor", "kafka", "-b", kafka.bootstrap, "-t", topic, "--no-poll", "--json"])
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.stdout)
    assert {c["stage"] for c in body["checks"]} >= {"dns", "tcp", "tls", "sasl", "advertised", "topic", "group", "first_poll"}
    bad = runner.invoke(app, ["doctor", "kafka", "-b", f"127.0.0.1:{closed_port()}", "--json"])
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["checks"][3]["stage"] == "tcp"


def test_cli_rejects_bad_options(kafka: KafkaEnv) -> None:
    from triggerfish.errors import ConfigError

    r = CliRunner().invoke(app, ["doctor", "kafka", "-b", kafka.bootstrap, "--auth", "SASL_SCRAM_512_AUTH"])
    assert isinstance(r.exception, ConfigError) and "TYPE=SECRET_REF" in str(r.exception)
    r = CliRunner().invoke(app, ["doctor", "kafka"])
    assert isinstance(r.exception, ConfigError) and "--bootstrap" in str(r.exception)


class KafkaTlsListener(TLSServer):
    """A TLS listener that answers Kafka's ApiVersions with a minimal, well-formed v0 response."""

    def respond(self, tls) -> None:
        head = tls.recv(12)  # size, api key, api version, correlation id
        if len(head) >= 12:
            correlation = struct.unpack(">i", head[8:12])[0]
            body = struct.pack(">ihi", correlation, 0, 0)  # error_code 0, no api keys
            tls.sendall(struct.pack(">i", len(body)) + body)


def test_certificate_expiring_soon_is_a_warning(tmp_path: Path) -> None:
    import datetime as dt

    from cryptography.hazmat.primitives import serialization

    from triggerfish.localkafka.certs import issue

    ca_key, ca_cert = make_ca("expiry test CA")
    key, cert = issue(ca_key, ca_cert, "broker", hosts=["127.0.0.1"],
                      not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=9, hours=12))
    (tmp_path / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server = KafkaTlsListener(tmp_path, key, cert)
    try:
        config = {"security.protocol": "SSL", "ssl.ca.location": str(tmp_path / "ca.pem")}
        checks = doctor.broker_checks(f"127.0.0.1:{server.port}", config, "b", timeout=3)
    finally:
        server.close()
    tls = checks[-1]
    assert tls.stage == "tls" and tls.status == "warn", checks
    assert tls.problem == "the broker certificate expires in 9 days" and "renew" in tls.fix
    assert "chain: 127.0.0.1 <- expiry test CA (root, from" in tls.detail


def test_mapping_without_uuid_takes_it_from_the_state_file(kafka: KafkaEnv, make_topic, tmp_path: Path) -> None:
    from triggerfish import config as project
    from triggerfish.esm.store import Store

    topic = make_topic()
    config = write_orders_project(tmp_path, f"""
  - FunctionName: orders
    Topics: [{topic}]
    StartingPosition: LATEST
    SelfManagedEventSource:
      Endpoints:
        KAFKA_BOOTSTRAP_SERVERS: ["{kafka.bootstrap}"]
""")
    plan = doctor.plan_from_mapping(config, topic)
    assert plan.group == doctor.DEFAULT_GROUP and plan.setup[0].status == "warn"
    loaded = project.load(config)
    assert not loaded.state_path.exists()  # the doctor never creates the engine's state file
    store = Store(loaded.state_path)
    store.save_mapping("6f1c2a4e-0000-4000-8000-00000000abcd", loaded.mappings[0].identity(), "config", {})
    store.close()
    plan = doctor.plan_from_mapping(config, "orders")
    assert plan.group == "6f1c2a4e-0000-4000-8000-00000000abcd"
    assert exit_code(doctor.diagnose(plan, poll=False)) == 0


def test_an_advertised_broker_is_checked_through_sasl_on_its_own(kafka: KafkaEnv, monkeypatch) -> None:
    # The same broker under another name: a separate advertised address, so it gets its own DNS/TCP/TLS/SASL rows.
    port = int(kafka.sasl_bootstrap.rsplit(":", 1)[1])
    config = {**kafka.sasl("SCRAM-SHA-512", kafka.admin_user, kafka.admin_password), "ssl.ca.location": kafka.ca_file}
    checks = doctor.check_advertised([doctor.Broker(7, "localhost", port)], [kafka.sasl_bootstrap], config, timeout=3,
                                     kafka_timeout=10)
    assert [(c.stage, c.status) for c in checks] == [("dns", "ok"), ("tcp", "ok"), ("tls", "ok"), ("sasl", "ok"),
                                                     ("advertised", "ok")]
    assert all(c.target == f"broker 7 localhost:{port} (advertised)" for c in checks)
    bad = {**config, "sasl.password": "wrong"}
    checks = doctor.check_advertised([doctor.Broker(7, "localhost", port)], [kafka.sasl_bootstrap], bad, timeout=3,
                                     kafka_timeout=10)
    assert checks[3].stage == "sasl" and checks[3].status == "fail"
    assert checks[-1].problem.startswith("advertised-listener trap") and "fails at SASL" in checks[-1].problem
