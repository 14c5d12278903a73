"""SourceAccessConfigurations → librdkafka settings, proven by producing and consuming on the real broker;
secret format errors; MSK IAM's token callback against moto's STS."""

from __future__ import annotations

import base64
import json
import os
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from confluent_kafka.admin import AdminClient
from cryptography.hazmat.primitives import serialization

from kafka_helpers import env_secret, grant_client, root_ca_access, roundtrip
from triggerfish.errors import ConfigError, InvalidParameterError, SetupError
from triggerfish.esm import auth, problems, stages
from triggerfish.esm.access import parse_access
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.probes import aws as aws_probes
from triggerfish.esm.probes import tls as tls_probe
from triggerfish.localkafka import KafkaEnv, certs


def _mapping(access: list[dict[str, str]], bootstrap: str = "127.0.0.1:9093", topic: str = "orders", **extra: object) -> MappingConfig:
    body: dict[str, object] = {
        "UUID": str(uuid.uuid4()), "FunctionName": "fn", "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
        "SourceAccessConfigurations": access, **extra,
    }
    if "EventSourceArn" not in extra:
        body["SelfManagedEventSource"] = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}}
    return MappingConfig.from_dict(body)


# --- configs that work against the real broker -------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.parametrize(("kind", "mechanism"), [("BASIC_AUTH", "PLAIN"), ("SASL_SCRAM_256_AUTH", "SCRAM-SHA-256"),
                                                 ("SASL_SCRAM_512_AUTH", "SCRAM-SHA-512")])
def test_sasl_types_log_in_over_tls(kafka: KafkaEnv, make_topic, monkeypatch, kind: str, mechanism: str) -> None:
    uri = env_secret(monkeypatch, {"username": kafka.admin_user, "password": kafka.admin_password})
    config = auth.kafka_config(_mapping([{"Type": kind, "URI": uri}, root_ca_access(monkeypatch, kafka.ca_file)], kafka.sasl_bootstrap))
    assert config["security.protocol"] == "SASL_SSL"  # Lambda never sends SASL in plaintext
    assert config["sasl.mechanism"] == mechanism and config["sasl.username"] == kafka.admin_user
    assert config["ssl.ca.pem"].startswith("-----BEGIN CERTIFICATE-----") and "ssl.ca.location" not in config
    roundtrip(config, make_topic(), f"g-{uuid.uuid4().hex}", timeout=30)


@pytest.mark.kafka
@pytest.mark.parametrize("encrypted", [False, True])
def test_client_certificate_inline_pem(kafka: KafkaEnv, admin: AdminClient, make_topic, monkeypatch, encrypted: bool) -> None:
    key_pem = Path(kafka.client_key_file).read_text()
    secret: dict[str, str] = {"certificate": Path(kafka.client_cert_file).read_text(), "privateKey": key_pem}
    if encrypted:
        key = serialization.load_pem_private_key(key_pem.encode(), None)
        secret["privateKeyPassword"] = uuid.uuid4().hex
        secret["privateKey"] = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(secret["privateKeyPassword"].encode()),
        ).decode()
    mapping = _mapping([{"Type": "CLIENT_CERTIFICATE_TLS_AUTH", "URI": env_secret(monkeypatch, secret)}, root_ca_access(monkeypatch, kafka.ca_file)],
                       kafka.mtls_bootstrap)
    resolved = auth.resolve(mapping)
    assert resolved.principal == "User:triggerfish-client"
    config = resolved.config
    assert config["security.protocol"] == "SSL"
    assert not any(k.endswith(".location") for k in config)  # nothing read from or written to disk
    assert ("ssl.key.password" in config) is encrypted
    topic, group = make_topic(), f"g-{uuid.uuid4().hex}"
    grant_client(admin, resolved.principal, topic, group)
    roundtrip(config, topic, group, timeout=30)
    # and the TLS stage probes with the same in-memory material
    assert tls_probe.check_tls("127.0.0.1", int(kafka.mtls_bootstrap.rsplit(":", 1)[1]), config).status == "ok"


def test_tls_probe_never_writes_the_plain_key(kafka: KafkaEnv, monkeypatch) -> None:
    key_pem = Path(kafka.client_key_file).read_text()
    config = {"security.protocol": "SSL", "ssl.ca.pem": Path(kafka.ca_file).read_text(),
              "ssl.certificate.pem": Path(kafka.client_cert_file).read_text(), "ssl.key.pem": key_pem}
    written: list[str] = []
    real_unlink = os.unlink

    def spy(path: str) -> None:
        written.append(Path(path).read_text())
        real_unlink(path)

    monkeypatch.setattr(tls_probe.os, "unlink", spy)
    assert tls_probe.check_tls("127.0.0.1", int(kafka.mtls_bootstrap.rsplit(":", 1)[1]), config).status == "ok"
    assert len(written) == 1
    assert "-----BEGIN ENCRYPTED PRIVATE KEY-----" in written[0]
    assert key_pem.splitlines()[1] not in written[0]


# --- secret format errors ------------------------------------------------------------------------------


def _pem_key(key: object, fmt: serialization.PrivateFormat) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()  # type: ignore[attr-defined]


def _setup_error(monkeypatch: pytest.MonkeyPatch, secret: object, kind: str = "CLIENT_CERTIFICATE_TLS_AUTH") -> SetupError:
    with pytest.raises(SetupError) as info:
        auth.resolve(_mapping([{"Type": kind, "URI": env_secret(monkeypatch, secret)}]))
    assert info.value.stage == "secret"
    return info.value


def test_pkcs1_key_is_refused_like_lambda(monkeypatch) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    ca_key, ca_cert = certs.make_ca()
    _, cert = certs.issue(ca_key, ca_cert, "c", client=True)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    err = _setup_error(monkeypatch, {"certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
                                     "privateKey": _pem_key(rsa_key, serialization.PrivateFormat.TraditionalOpenSSL)})
    assert err.problem == problems.INVALID_CERTIFICATE == "PROBLEM: Provided certificate or private key is invalid."
    assert "RSA PRIVATE KEY PEM, not PKCS#8" in err.detail and "openssl pkcs8 -topk8" in err.fix


def test_key_that_does_not_match_the_certificate(monkeypatch) -> None:
    ca_key, ca_cert = certs.make_ca()
    other_key, cert = certs.issue(ca_key, ca_cert, "c", client=True)
    err = _setup_error(monkeypatch, {"certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
                                     "privateKey": _pem_key(ca_key, serialization.PrivateFormat.PKCS8)})
    assert err.problem == problems.INVALID_CERTIFICATE and "does not belong" in err.detail


def test_encrypted_key_without_or_with_wrong_password(monkeypatch) -> None:
    ca_key, ca_cert = certs.make_ca()
    key, cert = certs.issue(ca_key, ca_cert, "c", client=True)
    secret_pw = uuid.uuid4().hex
    sealed = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.BestAvailableEncryption(secret_pw.encode())).decode()
    chain = cert.public_bytes(serialization.Encoding.PEM).decode()
    missing = _setup_error(monkeypatch, {"certificate": chain, "privateKey": sealed})
    assert "privateKeyPassword is missing" in missing.detail
    wrong = _setup_error(monkeypatch, {"certificate": chain, "privateKey": sealed, "privateKeyPassword": "nope-" + secret_pw})
    assert "wrong privateKeyPassword" in wrong.detail
    assert secret_pw not in str(wrong) + wrong.fix


def test_sasl_secret_without_password_and_non_json_secret(monkeypatch) -> None:
    err = _setup_error(monkeypatch, {"username": "alice"}, "SASL_SCRAM_512_AUTH")
    assert err.problem == problems.SASL_AUTHENTICATION and "'password'" in err.detail
    assert '{"username": "...", "password": "..."}' in err.fix
    err = _setup_error(monkeypatch, "hunter2-not-json", "BASIC_AUTH")
    assert "not a JSON object" in err.detail and "hunter2" not in str(err) + err.fix


def test_missing_secret_file(tmp_path: Path) -> None:
    mapping = _mapping([{"Type": "BASIC_AUTH", "URI": f"file://{tmp_path}/absent.json"}])
    with pytest.raises(SetupError) as info:
        auth.resolve(mapping)
    assert info.value.problem == problems.CONNECTION_ERROR_VPC and "absent.json" in info.value.detail


# --- validation of SourceAccessConfigurations ---------------------------------------------------------


def test_two_logins_are_refused_at_load() -> None:
    with pytest.raises(InvalidParameterError) as info:
        _mapping([{"Type": "BASIC_AUTH", "URI": "env:A"}, {"Type": "SASL_SCRAM_512_AUTH", "URI": "env:B"}])
    assert "SourceAccessConfigurations" in info.value.field and "one way" in str(info.value)


def test_uri_must_be_a_secret_reference() -> None:
    with pytest.raises(InvalidParameterError) as info:
        _mapping([{"Type": "SASL_SCRAM_512_AUTH", "URI": "alice:password"}])
    assert info.value.field == "SourceAccessConfigurations[0].URI" and "file:///path.json" in str(info.value)


def test_vpc_entries_are_recorded_not_enforced() -> None:
    mapping = _mapping([{"Type": "VPC_SUBNET", "URI": "subnet:subnet-0abc"}, {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0def"},
                        {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-0123"}], "127.0.0.1:9092")
    resolved = auth.resolve(mapping)
    assert resolved.access.subnets == ["subnet-0abc", "subnet-0def"] and resolved.access.security_groups == ["sg-0123"]
    assert resolved.config == {"bootstrap.servers": "127.0.0.1:9092"}
    with pytest.raises(ConfigError, match="subnet:subnet-"):
        parse_access({"SourceAccessConfigurations": [{"Type": "VPC_SUBNET", "URI": "subnet-0abc"}]})


def test_msk_rejects_self_managed_only_types() -> None:
    with pytest.raises(InvalidParameterError, match="MSK accepts"):
        _mapping([{"Type": "BASIC_AUTH", "URI": "env:X"}], EventSourceArn="arn:aws:kafka:eu-west-1:123456789012:cluster/c/1",
                 BootstrapServers=["b-1.c.kafka.eu-west-1.amazonaws.com:9098"])


def test_redact_hides_every_secret(monkeypatch) -> None:
    password = uuid.uuid4().hex
    config = auth.kafka_config(_mapping([{"Type": "BASIC_AUTH", "URI": env_secret(monkeypatch, {"username": "u", "password": password})}]))
    shown = json.dumps(auth.redact({**config, "ssl.key.pem": "-----BEGIN PRIVATE KEY-----x", "ssl.key.password": "kp"}))
    assert password not in shown and "BEGIN PRIVATE KEY" not in shown and '"kp"' not in shown
    assert '"sasl.username": "u"' in shown
    resolved = auth.resolve(_mapping([{"Type": "BASIC_AUTH", "URI": env_secret(monkeypatch, {"username": "u", "password": password})}]))
    assert password not in repr(resolved) and password not in str(resolved)


# --- MSK IAM ---------------------------------------------------------------------------------------------


def _decode(token: str) -> dict[str, list[str]]:
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    parsed = urlparse(url)
    assert parsed.netloc == "kafka.eu-west-1.amazonaws.com"
    return parse_qs(parsed.query)


def test_msk_iam_mapping_uses_oauthbearer_with_a_signed_token(moto_server: str) -> None:
    mapping = _mapping([], EventSourceArn="arn:aws:kafka:eu-west-1:123456789012:cluster/c/1",
                       BootstrapServers=["b-1.c.kafka.eu-west-1.amazonaws.com:9098"])
    resolved = auth.resolve(mapping)
    config = resolved.config
    assert resolved.login == "IAM"
    assert config["security.protocol"] == "SASL_SSL" and config["sasl.mechanism"] == "OAUTHBEARER"
    token, expiry = config["oauth_cb"]("")
    query = _decode(token)
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("testing/") and "/eu-west-1/kafka-cluster/" in query["X-Amz-Credential"][0]
    assert auth.expiry_ok(expiry)  # seconds since the epoch, not the signer's milliseconds
    assert aws_probes.check_credentials(resolved.access).status == "ok"  # STS GetCallerIdentity on moto


def test_msk_iam_token_from_an_assumed_role_on_moto_sts(moto_server: str) -> None:
    import boto3

    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName=f"esm-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }))["Role"]["Arn"]
    token, expiry = auth.msk_iam_oauth_cb("eu-west-1", role)("")
    query = _decode(token)
    key_id = query["X-Amz-Credential"][0].split("/")[0]
    assert key_id != "testing" and key_id.startswith("ASIA")  # temporary credentials minted by moto's STS
    assert query["X-Amz-Security-Token"][0]
    assert auth.expiry_ok(expiry)


# --- MSK bootstrap brokers (GetBootstrapBrokers on a local fake; moto lacks it) -------------------------


@pytest.fixture
def fake_msk(monkeypatch: pytest.MonkeyPatch):
    from fake_msk import FakeMSK

    fake = FakeMSK()
    monkeypatch.setenv("AWS_ENDPOINT_URL_KAFKA", fake.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    yield fake
    fake.close()


MSK_ARN = "arn:aws:kafka:eu-west-1:123456789012:cluster/orders/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab-2"
BROKERS = {
    "BootstrapBrokerString": "b-1.orders.kafka.eu-west-1.amazonaws.com:9092",
    "BootstrapBrokerStringTls": "b-1.orders.kafka.eu-west-1.amazonaws.com:9094,b-2.orders.kafka.eu-west-1.amazonaws.com:9094",
    "BootstrapBrokerStringSaslScram": "b-1.orders.kafka.eu-west-1.amazonaws.com:9096",
    "BootstrapBrokerStringSaslIam": "b-1.orders.kafka.eu-west-1.amazonaws.com:9098",
}


def test_msk_brokers_follow_lambdas_auth_priority(fake_msk, monkeypatch) -> None:
    fake_msk.clusters[MSK_ARN] = dict(BROKERS)
    iam = auth.resolve(_mapping([], EventSourceArn=MSK_ARN))
    assert iam.bootstrap == ["b-1.orders.kafka.eu-west-1.amazonaws.com:9098"] and iam.config["sasl.mechanism"] == "OAUTHBEARER"
    scram = env_secret(monkeypatch, {"username": "u", "password": "p"})
    resolved = auth.resolve(_mapping([{"Type": "SASL_SCRAM_512_AUTH", "URI": scram}], EventSourceArn=MSK_ARN))
    assert resolved.bootstrap == ["b-1.orders.kafka.eu-west-1.amazonaws.com:9096"]
    assert fake_msk.requests and all("bootstrap-brokers" in r for r in fake_msk.requests)


def test_msk_without_iam_uses_unauthenticated_tls_not_plaintext(fake_msk) -> None:
    fake_msk.clusters[MSK_ARN] = {k: v for k, v in BROKERS.items() if k in ("BootstrapBrokerString", "BootstrapBrokerStringTls")}
    resolved = auth.resolve(_mapping([], EventSourceArn=MSK_ARN))
    assert resolved.login == "NONE" and resolved.config["security.protocol"] == "SSL"
    assert len(resolved.bootstrap) == 2 and all(b.endswith(":9094") for b in resolved.bootstrap)


def test_msk_cluster_without_the_secrets_auth_and_unknown_cluster(fake_msk, monkeypatch) -> None:
    fake_msk.clusters[MSK_ARN] = {"BootstrapBrokerStringSaslIam": BROKERS["BootstrapBrokerStringSaslIam"]}
    scram = env_secret(monkeypatch, {"username": "u", "password": "p"})
    with pytest.raises(SetupError) as info:
        auth.resolve(_mapping([{"Type": "SASL_SCRAM_512_AUTH", "URI": scram}], EventSourceArn=MSK_ARN))
    assert info.value.problem == problems.CONNECTION_ERROR and "BootstrapBrokerStringSaslScram" in info.value.detail
    other = MSK_ARN.replace("orders", "missing")
    with pytest.raises(SetupError) as info:
        auth.resolve(_mapping([], EventSourceArn=other))
    assert info.value.problem == problems.CONNECTION_ERROR_VPC and "NotFoundException" in info.value.detail


def test_pbes2_key_works_here_but_is_flagged_for_lambda(kafka: KafkaEnv, monkeypatch) -> None:
    key = serialization.load_pem_private_key(Path(kafka.client_key_file).read_bytes(), None)
    password = uuid.uuid4().hex
    sealed = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.BestAvailableEncryption(password.encode())).decode()  # PBES2 (AES)
    secret = {"certificate": Path(kafka.client_cert_file).read_text(), "privateKey": sealed, "privateKeyPassword": password}
    mapping = _mapping([{"Type": "CLIENT_CERTIFICATE_TLS_AUTH", "URI": env_secret(monkeypatch, secret)},
                        root_ca_access(monkeypatch, kafka.ca_file)], kafka.mtls_bootstrap)
    results, built = aws_probes.check_secrets(mapping, parse_access(mapping))
    assert built is not None
    [warning] = [r for r in results if r.status == "warn"]
    assert warning.code == "PBES2" and "Lambda accepts PBES1 only" in warning.detail and "-v1 PBE-SHA1-3DES" in warning.fix
    assert stages.first_failure(results) is None
    # the same key under PBES1 (what Lambda wants; cryptography cannot write it, openssl can) is not flagged
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    pbes1 = subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-in", kafka.client_key_file, "-passout", "stdin"],
        input=password, capture_output=True, text=True, check=True,
    ).stdout
    assert "-----BEGIN ENCRYPTED PRIVATE KEY-----" in pbes1
    mapping = _mapping([{"Type": "CLIENT_CERTIFICATE_TLS_AUTH", "URI": env_secret(monkeypatch, {**secret, "privateKey": pbes1})},
                        root_ca_access(monkeypatch, kafka.ca_file)], kafka.mtls_bootstrap)
    results, built = aws_probes.check_secrets(mapping, parse_access(mapping))
    assert built is not None and [r for r in results if r.status != "ok"] == []


def test_msk_scram_secret_name_is_checked_for_lambda(moto_server: str, fake_msk) -> None:
    import boto3

    fake_msk.clusters[MSK_ARN] = dict(BROKERS)
    sm = boto3.client("secretsmanager", region_name="eu-west-1")
    arns = [sm.create_secret(Name=f"{prefix}{uuid.uuid4().hex[:6]}", SecretString=json.dumps({"username": "u", "password": "p"}))["ARN"]
            for prefix in ("kafka_", "AmazonMSK_")]
    warned = []
    for arn in arns:
        mapping = _mapping([{"Type": "SASL_SCRAM_512_AUTH", "URI": arn}], EventSourceArn=MSK_ARN)
        results, built = aws_probes.check_secrets(mapping, parse_access(mapping))
        assert built is not None and built.bootstrap == [BROKERS["BootstrapBrokerStringSaslScram"]]
        warned.append([r.detail for r in results if r.status == "warn"])
    assert len(warned[0]) == 1 and "AmazonMSK_" in warned[0][0]
    assert warned[1] == []
