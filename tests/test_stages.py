"""Setup stages against real misconfigurations: one test per Lambda PROBLEM message, on the real broker
(SASL_SSL 9093, mTLS 9094) or, for certificates the broker cannot be given, a real TLS server on loopback.

Every test also checks that no secret value reaches the logs, stdout/stderr or the stage results.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramMechanism,
)

from http_fake import Reply, serve
from kafka_helpers import TLSServer, closed_port, create_scram_user, env_secret, grant, pem, root_ca_access
from triggerfish.checks import Check
from triggerfish.esm import problems, stages
from triggerfish.esm.config import MappingConfig
from triggerfish.localkafka import KafkaEnv, certs

pytestmark = pytest.mark.kafka


# --- helpers -----------------------------------------------------------------------------------------


@pytest.fixture
def leak_check(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Iterator[Callable[..., None]]:
    """Register secret values; after the test none may appear in logs, stdout/stderr or given outputs."""
    caplog.set_level("DEBUG")
    watched: list[str] = []
    outputs: list[str] = []

    def watch(*values: str, output: object = None) -> None:
        watched.extend(v for v in values if v)
        if output is not None:
            outputs.append(json.dumps(output, default=str))

    yield watch
    out, err = capfd.readouterr()
    # caplog.text in teardown holds only teardown's records: read the call phase's explicitly
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for phase in ("setup", "call")
                       for r in caplog.get_records(phase))
    seen = logged + out + err + "".join(outputs)
    for value in watched:
        assert value not in seen, "a secret value leaked into logs or output"


def _mapping(bootstrap: list[str], topic: str, access: list[dict[str, str]], group: str | None = None) -> MappingConfig:
    body: dict[str, object] = {
        "UUID": str(uuid.uuid4()),
        "FunctionName": "fn",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": bootstrap}},
        "Topics": [topic],
        "StartingPosition": "TRIM_HORIZON",
        "SourceAccessConfigurations": access,
    }
    if group:
        body["SelfManagedKafkaEventSourceConfig"] = {"ConsumerGroupId": group}
    return MappingConfig.from_dict(body)


def _failure(results: list[Check]) -> Check:
    failed = stages.first_failure(results)
    assert failed is not None, results
    # every stage after the failed one is reported as skipped, none is silently missing
    after = results[results.index(failed) + 1:]
    assert all(r.status == "skip" for r in after), results
    return failed


# --- one test per PROBLEM message ---------------------------------------------------------------------


def test_unresolvable_host_is_found_among_every_bootstrap_host(kafka: KafkaEnv, leak_check) -> None:
    bad = f"w2-{uuid.uuid4().hex[:8]}.invalid:9093"
    config = kafka.sasl("SCRAM-SHA-512")
    leak_check(kafka.admin_password)
    results = stages.check_cluster([kafka.sasl_bootstrap, bad], config, "t", "g")
    failed = _failure(results)
    assert failed.stage == "dns" and failed.target == bad
    assert failed.problem == problems.ENDPOINTS_UNRESOLVED == "PROBLEM: The provided Kafka broker endpoints cannot be resolved."
    assert bad.split(":")[0] in failed.detail and failed.code == "_RESOLVE"
    # the good host was fully checked first: DNS, TCP and TLS all passed
    assert [(r.stage, r.status) for r in results[:3]] == [("dns", "ok"), ("tcp", "ok"), ("tls", "ok")]
    leak_check(output=[r.to_dict() for r in results])


def test_closed_port_says_which_port_refused(kafka: KafkaEnv) -> None:
    port = closed_port()
    results = stages.check_cluster([f"127.0.0.1:{port}"], kafka.sasl(), "t", "g")
    failed = _failure(results)
    assert failed.stage == "tcp"
    assert failed.problem == "PROBLEM: Connection error. Please check your event source connection configuration."
    assert failed.code == "ECONNREFUSED"
    assert f"port {port} refused" in failed.fix


def test_wrong_root_ca_secret_against_the_real_broker(kafka: KafkaEnv, monkeypatch, leak_check) -> None:
    _, other_ca = certs.make_ca("some other CA")
    mapping = _mapping([kafka.sasl_bootstrap], "tt", [
        {"Type": "SASL_SCRAM_512_AUTH", "URI": env_secret(monkeypatch, {"username": kafka.admin_user, "password": kafka.admin_password})},
        {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": env_secret(monkeypatch, {"certificate": pem(other_ca)})},
    ])
    leak_check(kafka.admin_password)
    results, _ = stages.check_mapping(mapping)
    failed = _failure(results)
    assert failed.stage == "tls" and failed.target == kafka.sasl_bootstrap
    assert failed.problem == "PROBLEM: Server failed to authenticate Lambda or Lambda failed to authenticate server."
    assert failed.code in ("verify 19", "verify 20")
    assert "issued by triggerfish local CA" in failed.detail and "SERVER_ROOT_CA_CERTIFICATE secret" in failed.detail
    assert "SERVER_ROOT_CA_CERTIFICATE" in failed.fix
    leak_check(output=[r.to_dict() for r in results])


def _tls_failure(tmp: Path, host: str, key: object, cert: object, ca_cert: object) -> Check:
    """The failed stage when a loopback TLS server presents ``cert`` and is reached as ``host``, trusting ``ca_cert``."""
    with TLSServer(tmp, key, cert, ca_cert) as server:
        config = {"security.protocol": "SSL", "ssl.ca.pem": pem(ca_cert)}
        return _failure(stages.check_cluster([f"{host}:{server.port}"], config, "t", "g"))


def test_hostname_mismatch_names_the_certificate_hosts(tmp_path: Path) -> None:
    ca_key, ca_cert = certs.make_ca()
    key, cert = certs.issue(ca_key, ca_cert, "kafka.wrong.example", hosts=["kafka.wrong.example"])
    failed = _tls_failure(tmp_path, "localhost", key, cert, ca_cert)
    assert failed.stage == "tls" and failed.problem == problems.TLS_AUTHENTICATION
    assert failed.code == "verify 62"
    assert "the broker certificate is for host kafka.wrong.example, you connected to localhost" in failed.detail


def test_expired_broker_certificate(tmp_path: Path) -> None:
    ca_key, ca_cert = certs.make_ca()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    key, cert = certs.issue(ca_key, ca_cert, "localhost", hosts=["localhost", "127.0.0.1"],
                            not_before=past - dt.timedelta(days=365), not_after=past)
    failed = _tls_failure(tmp_path, "127.0.0.1", key, cert, ca_cert)
    assert failed.stage == "tls" and failed.problem == problems.TLS_AUTHENTICATION
    assert failed.code == "verify 10"
    assert f"expired on {past:%Y-%m-%d}" in failed.detail


def test_non_pem_client_certificate_secret(kafka: KafkaEnv, monkeypatch, leak_check) -> None:
    key_pem = Path(kafka.client_key_file).read_text()
    der = Path(kafka.client_cert_file).read_text().split("-----")[2].replace("\n", "")  # base64 DER, no PEM armour
    uri = env_secret(monkeypatch, {"certificate": der, "privateKey": key_pem})
    mapping = _mapping([kafka.mtls_bootstrap], "tt", [{"Type": "CLIENT_CERTIFICATE_TLS_AUTH", "URI": uri}])
    leak_check(key_pem.splitlines()[1])
    results, built = stages.check_mapping(mapping)
    failed = _failure(results)
    assert built is None
    assert failed.stage == "secret" and failed.target == uri
    assert failed.problem == "PROBLEM: Certificate and/or private key must be in PEM format."
    assert "certificate" in failed.detail and "-----BEGIN CERTIFICATE-----" in failed.fix
    leak_check(output=[r.to_dict() for r in results])


def test_wrong_scram_password(kafka: KafkaEnv, monkeypatch, leak_check) -> None:
    wrong = uuid.uuid4().hex
    uri = env_secret(monkeypatch, {"username": kafka.admin_user, "password": wrong})
    mapping = _mapping([kafka.sasl_bootstrap], "tt", [{"Type": "SASL_SCRAM_512_AUTH", "URI": uri}, root_ca_access(monkeypatch, kafka.ca_file)])
    leak_check(wrong, kafka.admin_password)
    results, _ = stages.check_mapping(mapping, kafka_timeout=10)
    failed = _failure(results)
    assert failed.stage == "sasl" and failed.problem == "PROBLEM: SASL authentication failed."
    assert failed.code == "_AUTHENTICATION"
    assert "SCRAM-SHA-512 login as 'admin' refused" in failed.detail and "invalid credentials" in failed.detail
    leak_check(output=[r.to_dict() for r in results])


def test_scram_256_user_configured_as_512(kafka: KafkaEnv, admin: AdminClient, monkeypatch, leak_check) -> None:
    user, password = create_scram_user(admin, ScramMechanism.SCRAM_SHA_256)
    uri = env_secret(monkeypatch, {"username": user, "password": password})
    leak_check(password)
    mapping = _mapping([kafka.sasl_bootstrap], "tt", [{"Type": "SASL_SCRAM_512_AUTH", "URI": uri}, root_ca_access(monkeypatch, kafka.ca_file)])
    failed = _failure(stages.check_mapping(mapping, kafka_timeout=10)[0])
    assert failed.stage == "sasl" and failed.problem == problems.SASL_AUTHENTICATION
    assert "SCRAM-SHA-256 only cannot log in with SCRAM-SHA-512" in failed.fix
    # the same secret as SASL_SCRAM_256_AUTH logs in
    ok = _mapping([kafka.sasl_bootstrap], "tt", [{"Type": "SASL_SCRAM_256_AUTH", "URI": uri}, root_ca_access(monkeypatch, kafka.ca_file)])
    results, _ = stages.check_mapping(ok, kafka_timeout=10)
    assert [r.status for r in results if r.stage == "sasl"] == ["ok"]


def test_missing_topic_acl_then_missing_group_acl(kafka: KafkaEnv, admin: AdminClient, make_topic, monkeypatch, leak_check) -> None:
    user, password = create_scram_user(admin, ScramMechanism.SCRAM_SHA_512)
    topic = make_topic()
    uri = env_secret(monkeypatch, {"username": user, "password": password})
    mapping = _mapping([kafka.sasl_bootstrap], topic, [{"Type": "SASL_SCRAM_512_AUTH", "URI": uri}, root_ca_access(monkeypatch, kafka.ca_file)])
    group = mapping.group_id  # the mapping's UUID, as Lambda
    leak_check(password)
    principal = f"User:{user}"

    failed = _failure(stages.check_mapping(mapping)[0])
    assert failed.stage == "topic" and failed.problem == "PROBLEM: Cluster failed to authorize Lambda."
    assert failed.code == "TOPIC_AUTHORIZATION_FAILED"
    assert f"grant Read on group {group} and Read, Describe on topic {topic} to {principal}" in failed.fix

    grant(admin, principal, ResourceType.TOPIC, topic, AclOperation.READ, AclOperation.DESCRIBE)
    failed = _failure(stages.check_mapping(mapping)[0])
    assert failed.stage == "group" and failed.problem == problems.AUTHORIZATION
    assert failed.code == "GROUP_AUTHORIZATION_FAILED"
    assert f"grant Read on group {group} to {principal}" in failed.fix

    grant(admin, principal, ResourceType.GROUP, group, AclOperation.READ)
    results, built = stages.check_mapping(mapping)
    assert stages.first_failure(results) is None, results
    assert list(dict.fromkeys(r.stage for r in results)) == ["credentials", "secret", "dns", "tcp", "tls", "sasl", "topic", "group"]
    assert built is not None and built.principal == principal
    assert all(r.duration_ms >= 0 for r in results)
    # works here, but Lambda would also want DescribeConfigs on the cluster for a SCRAM login: a warning
    [parity] = [r for r in results if r.status == "warn"]
    assert parity.target == "cluster" and parity.problem == problems.AUTHORIZATION
    assert f"DescribeConfigs on the cluster to {principal}" in parity.fix
    grant(admin, principal, ResourceType.BROKER, "kafka-cluster", AclOperation.DESCRIBE_CONFIGS)
    results, _ = stages.check_mapping(mapping)
    assert [r.status for r in results if r.status not in ("ok", "skip")] == []
    leak_check(output=[r.to_dict() for r in results])


def test_every_advertised_broker_is_checked_too(kafka: KafkaEnv, make_topic) -> None:
    # bootstrap by name; the broker advertises 127.0.0.1, which clients use afterwards
    port = kafka.sasl_bootstrap.rsplit(":", 1)[1]
    config = {k: v for k, v in kafka.sasl("SCRAM-SHA-512").items() if k != "bootstrap.servers"}  # the list is enough
    results = stages.check_cluster([f"localhost:{port}"], config, make_topic(), "g-any")
    assert stages.first_failure(results) is None, results
    advertised = [r for r in results if r.target == kafka.sasl_bootstrap]
    assert [r.stage for r in advertised] == ["dns", "tcp", "tls"]
    assert all(re.match(rf"broker \d+ advertises {re.escape(kafka.sasl_bootstrap)}: ", r.detail) for r in advertised)


def test_mtls_without_client_certificate(kafka: KafkaEnv, monkeypatch) -> None:
    ca = env_secret(monkeypatch, {"certificate": Path(kafka.ca_file).read_text()})
    mapping = _mapping([kafka.mtls_bootstrap], "tt", [{"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": ca}])
    failed = _failure(stages.check_mapping(mapping)[0])
    assert failed.stage == "tls" and failed.problem == problems.TLS_AUTHENTICATION
    assert "requires a client certificate and none was sent" in failed.detail
    assert "CLIENT_CERTIFICATE_TLS_AUTH" in failed.fix


def test_mtls_client_certificate_from_an_untrusted_ca(kafka: KafkaEnv, monkeypatch, leak_check) -> None:
    ca_key, ca_cert = certs.make_ca("rogue CA")
    key, cert = certs.issue(ca_key, ca_cert, "rogue-client", client=True)
    key_pem = pem(key)
    access = [
        {"Type": "CLIENT_CERTIFICATE_TLS_AUTH", "URI": env_secret(monkeypatch, {"certificate": pem(cert), "privateKey": key_pem})},
        {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": env_secret(monkeypatch, {"certificate": Path(kafka.ca_file).read_text()})},
    ]
    leak_check(key_pem.splitlines()[1])
    results, _ = stages.check_mapping(_mapping([kafka.mtls_bootstrap], "tt", access))
    failed = _failure(results)
    assert failed.stage == "tls" and failed.problem == problems.TLS_AUTHENTICATION
    assert "client certificate" in failed.detail and "trust" in failed.fix
    leak_check(output=[r.to_dict() for r in results])


def test_mtls_secret_all_stages_pass_with_acls(kafka: KafkaEnv, admin: AdminClient, make_topic, monkeypatch, leak_check) -> None:
    topic = make_topic()
    key_pem = Path(kafka.client_key_file).read_text()
    access = [
        {"Type": "CLIENT_CERTIFICATE_TLS_AUTH",
         "URI": env_secret(monkeypatch, {"certificate": Path(kafka.client_cert_file).read_text(), "privateKey": key_pem})},
        {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": env_secret(monkeypatch, {"certificate": Path(kafka.ca_file).read_text()})},
    ]
    mapping = _mapping([kafka.mtls_bootstrap], topic, access, group=f"g-{uuid.uuid4().hex[:8]}")
    leak_check(key_pem.splitlines()[1])
    failed = _failure(stages.check_mapping(mapping)[0])
    assert failed.stage == "topic" and "User:triggerfish-client" in failed.fix
    grant(admin, "User:triggerfish-client", ResourceType.TOPIC, topic, AclOperation.READ)
    grant(admin, "User:triggerfish-client", ResourceType.GROUP, mapping.group_id, AclOperation.READ)
    results, _ = stages.check_mapping(mapping)
    assert stages.first_failure(results) is None, results
    tls = next(r for r in results if r.stage == "tls")
    assert "certificate verified" in tls.detail
    assert next(r for r in results if r.stage == "sasl").status == "skip"  # mTLS has no SASL step
    leak_check(output=[r.to_dict() for r in results])


@pytest.mark.parametrize("client_cert", [False, True])
def test_plaintext_port_with_tls_config(kafka: KafkaEnv, client_cert: bool) -> None:
    config = {"security.protocol": "SSL", "ssl.ca.location": kafka.ca_file}
    if client_cert:  # a hang-up before the handshake is not a rejected certificate
        config.update({"ssl.certificate.location": kafka.client_cert_file, "ssl.key.location": kafka.client_key_file})
    failed = _failure(stages.check_cluster([kafka.bootstrap], config, "t", "g"))
    assert failed.stage == "tls" and failed.problem == problems.CONNECTION_ERROR
    assert "PLAINTEXT listener" in failed.fix


def test_plaintext_config_against_a_tls_listener_fails_fast(kafka: KafkaEnv) -> None:
    mapping = _mapping([kafka.sasl_bootstrap], "tt", [])  # no SourceAccessConfigurations: PLAINTEXT
    results, _ = stages.check_mapping(mapping)
    failed = _failure(results)
    assert failed.stage == "tls" and failed.problem == problems.CONNECTION_ERROR
    assert "probably a TLS or SASL_SSL listener" in failed.detail and "SERVER_ROOT_CA_CERTIFICATE" in failed.fix
    assert failed.duration_ms < 5000  # not librdkafka's metadata timeout
    ok = stages.check_cluster([kafka.bootstrap], {}, "tt", "g")
    assert [r.status for r in ok if r.stage == "tls"] == ["skip"]


def test_an_http_server_is_not_a_kafka_listener() -> None:
    with serve(lambda request: Reply(200)) as server:  # a Kafka request gets http.server's 400 before reaching it
        failed = _failure(stages.check_cluster([f"{server.host}:{server.port}"], {}, "tt", "g"))
    assert failed.stage == "tls" and failed.problem == problems.CONNECTION_ERROR and failed.code == "_BAD_MSG"
    assert "answered with HTTP" in failed.detail


# --- credentials (moto) -------------------------------------------------------------------------------


def test_secrets_manager_secret_through_moto(kafka: KafkaEnv, moto_server: str, make_topic, leak_check) -> None:
    import boto3

    sm = boto3.client("secretsmanager", region_name="us-east-1")
    arn = sm.create_secret(Name=f"AmazonMSK_w2_{uuid.uuid4().hex[:6]}",
                           SecretString=json.dumps({"username": kafka.admin_user, "password": kafka.admin_password}))["ARN"]
    ca = sm.create_secret(Name=f"ca_{uuid.uuid4().hex[:6]}",
                          SecretString=json.dumps({"certificate": Path(kafka.ca_file).read_text()}))["ARN"]
    mapping = _mapping([kafka.sasl_bootstrap], make_topic(), [
        {"Type": "SASL_SCRAM_512_AUTH", "URI": arn}, {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": ca},
    ])
    leak_check(kafka.admin_password)
    results, _ = stages.check_mapping(mapping)
    assert stages.first_failure(results) is None, results
    assert results[0].stage == "credentials" and results[0].status == "ok" and "arn:aws:" in results[0].detail
    assert [r.target for r in results if r.stage == "secret"] == [arn, ca]
    leak_check(output=[r.to_dict() for r in results])


def test_unreachable_sts_gives_lambdas_vpc_message(monkeypatch) -> None:
    port = closed_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-AbCdEf"
    mapping = _mapping(["127.0.0.1:9093"], "tt", [{"Type": "SASL_SCRAM_512_AUTH", "URI": arn}])
    failed = _failure(stages.check_mapping(mapping)[0])
    assert failed.stage == "credentials"
    assert failed.problem.startswith("PROBLEM: Connection error. Your VPC must be able to connect to Lambda and STS")


def test_no_aws_credentials_at_all(monkeypatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-AbCdEf"
    mapping = _mapping(["127.0.0.1:9093"], "tt", [{"Type": "BASIC_AUTH", "URI": arn}])
    failed = _failure(stages.check_mapping(mapping)[0])
    assert failed.stage == "credentials"
    assert failed.problem == "PROBLEM: Lambda failed to assume your function execution role."
    assert "AWS credentials" in failed.fix


# --- through the engine: PROBLEM, then recovery without a restart ------------------------------------


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_missing_group_acl_recovers_through_the_engine_without_restart(
    kafka: KafkaEnv, admin: AdminClient, make_topic, monkeypatch, tmp_path: Path, leak_check
) -> None:
    from confluent_kafka import Producer

    from triggerfish.esm.engine import Engine
    from triggerfish.esm.store import Store
    from triggerfish.functions.config import FunctionConfig
    from triggerfish.functions.runtime import FunctionRuntime

    code = tmp_path / "fn"
    code.mkdir()
    seen = tmp_path / "seen.jsonl"
    (code / "app.py").write_text(
        "import json\n"
        "def handler(event, context):\n"
        f"    with open({str(seen)!r}, 'a') as fh:\n"
        "        for records in event['records'].values():\n"
        "            fh.write(json.dumps(records) + '\\n')\n"
        "    return 'ok'\n"
    )
    user, password = create_scram_user(admin, ScramMechanism.SCRAM_SHA_512)
    topic = make_topic()
    producer = Producer(kafka.plaintext())
    producer.produce(topic, b"first")
    assert producer.flush(30) == 0
    grant(admin, f"User:{user}", ResourceType.TOPIC, topic, AclOperation.READ)
    uri = env_secret(monkeypatch, {"username": user, "password": password})
    mapping = MappingConfig.from_dict({
        "FunctionName": "recover", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.sasl_bootstrap]}},
        "SourceAccessConfigurations": [{"Type": "SASL_SCRAM_512_AUTH", "URI": uri}, root_ca_access(monkeypatch, kafka.ca_file)],
        "MaximumBatchingWindowInSeconds": 0,
    })
    leak_check(password)
    runtime = FunctionRuntime([FunctionConfig.from_dict({"FunctionName": "recover", "Handler": "app.handler",
                                                         "CodeUri": str(code)})])
    store = Store(tmp_path / "state.db")
    engine = Engine(runtime, store)
    try:
        [esm] = engine.load([mapping])
        engine.start()
        status = engine._entry(esm.uuid).status  # the live status the control API and `status` read

        _wait(lambda: status.last_processing_result == problems.AUTHORIZATION, 30, "the PROBLEM")
        _wait(lambda: status.state == "Enabling", 5, "State Enabling")
        view = status.to_dict()
        assert view["StateTransitionReason"] == "EVENT_SOURCE_AUTHZ_ERROR"
        assert view["Problem"]["stage"] == "group"
        assert f"grant Read on group {esm.uuid} to User:{user}" in view["Problem"]["fix"]
        assert [s["status"] for s in view["Stages"] if s["stage"] == "group"] == ["fail"]
        assert not seen.exists()
        import subprocess
        import sys

        cli = [sys.executable, "-m", "triggerfish", "status", "--state", str(tmp_path / "state.db")]
        doc = json.loads(subprocess.run([*cli, "--json"], capture_output=True, text=True, check=True).stdout)
        [shown] = [m for m in doc["EventSourceMappings"] if m["UUID"] == esm.uuid]
        assert shown["LastProcessingResult"] == problems.AUTHORIZATION and shown["Problem"]["stage"] == "group"
        table = subprocess.run(cli, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
        assert "fix:" in table.stdout and "Read on group" in table.stdout
        leak_check(output=[doc, table.stdout, table.stderr])

        grant(admin, f"User:{user}", ResourceType.GROUP, esm.uuid, AclOperation.READ)
        _wait(lambda: status.state == "Enabled" and status.last_processing_result == "OK", 60, "recovery to Enabled/OK")
        view = status.to_dict()
        assert view["StateTransitionReason"] == "USER_INITIATED" and view["Problem"] is None
        assert list(dict.fromkeys(s["stage"] for s in view["Stages"])) == list(stages.STAGES)
        assert all(s["status"] in ("ok", "skip") or s["target"] == "cluster" for s in view["Stages"])
        assert "first" in seen.read_text() or "Zmlyc3Q=" in seen.read_text()  # base64 of b"first"
        api = engine.get(esm.uuid).to_api(runtime.get("recover").arn())
        assert api["State"] == "Enabled" and api["LastProcessingResult"] == "OK"
        leak_check(output=[view, api])

        # while polling: the topic ACL is revoked, the consumer's error gets the same Lambda message
        from confluent_kafka.admin import AclBindingFilter

        topic_acl = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, f"User:{user}", "*",
                                     AclOperation.ANY, AclPermissionType.ANY)
        for future in admin.delete_acls([topic_acl]).values():
            future.result(timeout=30)
        _wait(lambda: status.last_processing_result == problems.AUTHORIZATION, 30, "the polling PROBLEM")
        problem = status.to_dict()["Problem"]
        assert problem["stage"] == "poll" and f"Read, Describe on topic {topic} to User:{user}" in problem["fix"]
        grant(admin, f"User:{user}", ResourceType.TOPIC, topic, AclOperation.READ)
        producer.produce(topic, b"second")
        assert producer.flush(30) == 0
        _wait(lambda: status.last_processing_result == "OK", 60, "OK again after re-granting")
        leak_check(output=[status.to_dict()])
    finally:
        engine.stop()
        runtime.close()


def test_missing_secrets_manager_secret(kafka: KafkaEnv, moto_server: str) -> None:
    arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:absent-{uuid.uuid4().hex[:6]}"
    mapping = _mapping([kafka.sasl_bootstrap], "tt", [{"Type": "SASL_SCRAM_512_AUTH", "URI": arn}])
    results, _ = stages.check_mapping(mapping)
    assert results[0].stage == "credentials" and results[0].status == "ok"
    failed = _failure(results)
    assert failed.stage == "secret" and failed.target == arn
    assert failed.problem == problems.CONNECTION_ERROR_VPC and "ResourceNotFoundException" in failed.detail
    assert "secretsmanager:GetSecretValue" in failed.fix


def test_login_failure_while_polling_runs_setup_again_with_the_secret_reread(
    kafka: KafkaEnv, admin: AdminClient, make_topic, monkeypatch, tmp_path: Path, leak_check
) -> None:
    from confluent_kafka import KafkaError, Producer

    from triggerfish.esm.engine import Engine
    from triggerfish.esm.store import Store
    from triggerfish.functions.config import FunctionConfig
    from triggerfish.functions.runtime import FunctionRuntime

    code = tmp_path / "fn"
    code.mkdir()
    (code / "app.py").write_text("def handler(event, context):\n    return 'ok'\n")
    user, password = create_scram_user(admin, ScramMechanism.SCRAM_SHA_512)
    topic, uuid_ = make_topic(), str(uuid.uuid4())
    grant(admin, f"User:{user}", ResourceType.TOPIC, topic, AclOperation.READ)
    grant(admin, f"User:{user}", ResourceType.GROUP, uuid_, AclOperation.READ)
    name = f"TF_TEST_SECRET_{uuid.uuid4().hex[:8].upper()}"
    monkeypatch.setenv(name, json.dumps({"username": user, "password": password}))
    mapping = MappingConfig.from_dict({
        "UUID": uuid_, "FunctionName": "relogin", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka.sasl_bootstrap]}},
        "SourceAccessConfigurations": [{"Type": "SASL_SCRAM_512_AUTH", "URI": f"env:{name}"}, root_ca_access(monkeypatch, kafka.ca_file)],
        "MaximumBatchingWindowInSeconds": 0,
    })
    stale = uuid.uuid4().hex
    leak_check(password, stale)
    runtime = FunctionRuntime([FunctionConfig.from_dict({"FunctionName": "relogin", "Handler": "app.handler",
                                                         "CodeUri": str(code)})])
    engine = Engine(runtime, Store(tmp_path / "state.db"))
    producer = Producer(kafka.plaintext())
    try:
        engine.load([mapping])
        engine.start()
        status = engine._entry(uuid_).status
        producer.produce(topic, b"one")
        producer.flush(30)
        _wait(lambda: status.state == "Enabled" and status.last_processing_result == "OK", 30, "OK")

        # The secret is rotated to a password the broker does not know, and the consumer's next login fails
        # (here the failure is handed to the runner's error callback: existing Kafka sessions stay logged in).
        monkeypatch.setenv(name, json.dumps({"username": user, "password": stale}))
        engine.runner(uuid_)._client_error(KafkaError(
            KafkaError._AUTHENTICATION, "sasl_ssl://127.0.0.1:9093/1: SASL authentication error: Authentication failed "
            "during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 2ms in state AUTH_REQ)"))
        # setup runs again, re-reads the secret and gets the real refusal from the broker
        _wait(lambda: status.state == "Enabling" and (status.problem is not None and status.problem.stage == "sasl"),
              30, "setup to fail at the sasl stage")
        assert status.last_processing_result == problems.SASL_AUTHENTICATION
        assert status.state_transition_reason == "EVENT_SOURCE_AUTHN_ERROR"

        monkeypatch.setenv(name, json.dumps({"username": user, "password": password}))  # the fix
        producer.produce(topic, b"two")
        producer.flush(30)
        _wait(lambda: status.state == "Enabled" and status.last_processing_result == "OK" and status.records >= 2,
              60, "recovery after the secret was fixed")
        leak_check(output=status.to_dict())
    finally:
        engine.stop()
        runtime.close()


def test_group_stage_waits_for_the_coordinator_of_a_new_cluster(kafka: KafkaEnv) -> None:
    # A brand-new cluster answers NOT_COORDINATOR until __consumer_offsets exists: a transient state,
    # not a misconfiguration. A private broker (other ports), because the shared one already has it.
    from confluent_kafka.admin import AdminClient, NewTopic

    from triggerfish import localkafka

    base = 19710
    env = localkafka.up(base)
    try:
        topic = f"fresh-{uuid.uuid4().hex[:8]}"
        admin = AdminClient(env.plaintext())
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        results = stages.check_cluster([env.bootstrap], {}, topic, "fresh-group")
        group = next(r for r in results if r.stage == "group")
        assert group.status == "ok", group
        assert "the group does not exist yet" in group.detail
    finally:
        localkafka.down(base)
