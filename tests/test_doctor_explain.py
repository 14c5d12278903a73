"""doctor explain: every PROBLEM text, the librdkafka signatures per stage, bridge and AWS SDK errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from triggerfish.cli import app
from triggerfish.doctor.explain import explain
from triggerfish.esm import problems

PROBLEMS = [problems.CONNECTION_ERROR, problems.CONNECTION_ERROR_VPC, problems.ENDPOINTS_UNRESOLVED, problems.NOT_PEM,
            problems.INVALID_CERTIFICATE, problems.TLS_AUTHENTICATION, problems.SASL_AUTHENTICATION,
            problems.AUTHORIZATION, problems.ASSUME_ROLE, problems.FUNCTION_CALL, problems.INTERNAL]


def targets(text: str) -> list[str]:
    return [c.target for c in explain(text)]


@pytest.mark.parametrize("text", PROBLEMS)
def test_every_lambda_problem_text_is_recognised_exactly_once(text: str) -> None:
    found = explain(text)
    assert len(found) == 1, [c.target for c in found]
    assert found[0].status == "warn" and found[0].problem and "causes: (1)" in found[0].detail
    # Also as the console shows it in LastProcessingResult, and without the prefix.
    assert [c.target for c in explain(f"LastProcessingResult: {text}")] == [found[0].target]
    assert [c.target for c in explain(text.removeprefix("PROBLEM: "))] == [found[0].target]


def test_newer_vpc_wording_and_the_split_tls_texts() -> None:
    assert targets("PROBLEM: Connection error. Your event source VPC must be able to connect to Lambda and STS, "
                   "Secrets Manager (if event source authentication is required), and the OnFailure Destination "
                   "(if one is configured).") == ["PROBLEM: connection error (VPC endpoints)"]
    assert targets("Server failed to authenticate Lambda") == ["Server failed to authenticate Lambda"]
    assert targets("Lambda failed to authenticate server") == ["Lambda failed to authenticate server"]


LIBRDKAFKA = [
    ("b-1.kafka.internal:9092/bootstrap: Failed to resolve 'b-1.kafka.internal:9092': Name or service not known "
     "(after 0ms in state CONNECT)", "librdkafka _RESOLVE", "--bootstrap b-1.kafka.internal:9092"),
    ("Connect to ipv4#10.0.1.5:9092 failed: Connection refused (after 0ms in state CONNECT)",
     "librdkafka connection refused", "--bootstrap 10.0.1.5:9092"),
    ("Connection setup timed out in state CONNECT (after 30029ms in state CONNECT)", "librdkafka connection timed out",
     "aws-network"),
    ("SSL handshake failed: Disconnected: connection reset by peer: connecting to a PLAINTEXT broker listener? "
     "(after 0ms in state SSL_HANDSHAKE)", "TLS client to plaintext listener", ""),
    ("Receive failed: Invalid response size 1213486160 (0..100000000): increase receive.message.max.bytes",
     "HTTP server, not Kafka", ""),
    ("SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be "
     "verified, verify that ssl.ca.location is correctly configured or root CA certificates are installed (install "
     "ca-certificates package) (after 1ms in state SSL_HANDSHAKE)", "TLS certificate verify failed", "ssl.ca.location"),
    ("Receive failed: error:0A00045C:SSL routines::tlsv13 alert certificate required: SSL alert number 116 "
     "(after 0ms in state APIVERSION_QUERY)", "client certificate required", "ssl.certificate.location"),
    ("SSL handshake failed: error:0A000418:SSL routines::tlsv1 alert unknown ca: SSL alert number 48 "
     "(after 2ms in state SSL_HANDSHAKE)", "client certificate rejected", ""),
    ("SASL SCRAM-SHA-256 mechanism handshake failed: Broker: Unsupported SASL mechanism: broker's supported "
     "mechanisms: SCRAM-SHA-512", "SASL mechanism not enabled", ""),
    ("sasl_ssl://b-2.orders.abc.c2.kafka.us-east-1.amazonaws.com:9096/bootstrap: SASL authentication error: "
     "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 "
     "(after 312ms in state AUTH_REQ)", "SCRAM bad credentials", "--auth SASL_SCRAM_512_AUTH="),
    ("SASL authentication error: [5e3b2a10-8f3c-4d2e-9b1a-0c7d6e5f4a3b]: Access denied", "MSK IAM access denied", ""),
    ("Failed to acquire SASL OAUTHBEARER token: OAuth callback raised exception", "OAUTHBEARER token", ""),
    ("Subscribed topic not available: orders: Broker: Topic authorization failed", "topic authorization failed",
     "--topic orders"),
    ("Subscribed topic not available: orders: Broker: Unknown topic or partition", "unknown topic", "--topic orders"),
    ("KafkaError{code=GROUP_AUTHORIZATION_FAILED,val=30,str=\"JoinGroup failed: Broker: Group authorization failed\"}",
     "group authorization failed", ""),
    ("Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration "
     "(connecting to a SSL listener?) or broker version is < 0.10 (see api.version.request)",
     "plaintext client to TLS listener", ""),
    ("Disconnected: verify that security.protocol is correctly configured, broker might require SASL authentication",
     "SASL listener without SASL", ""),
    ("SSL handshake failed: error:0A000410:SSL routines::ssl/tls alert handshake failure: SSL alert number 40 "
     "(after 3ms in state SSL_HANDSHAKE)", "client certificate required", ""),
    ("SSL handshake failed: Broker did not provide a certificate", "broker sent no certificate", ""),
    ("SASL authentication error: Authentication failed: Invalid username or password (after 5ms in state AUTH_REQ)",
     "PLAIN bad credentials", ""),
    ("OAUTHBEARER cannot log in because there is no token available; last error: no credentials",
     "OAUTHBEARER token", ""),
    ("Broker: Leader not available", "leader not available", ""),
    ("CreateTopics failed: Broker: Cluster authorization failed", "cluster authorization failed", ""),
]


@pytest.mark.parametrize(("text", "target", "command_part"), LIBRDKAFKA)
def test_librdkafka_signatures(text: str, target: str, command_part: str) -> None:
    found = explain(text)
    assert found[0].target == target, [c.target for c in found]
    assert command_part in found[0].fix


def test_all_brokers_down_points_back_at_the_cause() -> None:
    found = explain("1/1 brokers are down")
    assert found[0].target == "all brokers down (a consequence)" and "consequence" in found[0].problem


@pytest.mark.parametrize(("text", "target"), [
    ('{"error_code":500,"message":"Not authorized to access topics: [shipments]"}', "bridge: topic authorization (Strimzi 500)"),
    ("Kafka denied Write on topic 'shipments' to principal User:bridge. Add the ACL: kafka-acls.sh ...",
     "bridge: Kafka denied an ACL"),
    ('{"error_code":404,"message":"The specified consumer instance was not found."}', "bridge: consumer instance not found"),
    ("Kafka rejected the bridge's own credentials (SASL authentication error)", "bridge: own credentials rejected"),
])
def test_bridge_errors(text: str, target: str) -> None:
    assert explain(text)[0].target == target


@pytest.mark.parametrize(("text", "target"), [
    ("botocore.exceptions.NoCredentialsError: Unable to locate credentials", "NoCredentialsError"),
    ('botocore.exceptions.EndpointConnectionError: Could not connect to the endpoint URL: "https://sts.amazonaws.com/"',
     "EndpointConnectionError"),
    ("An error occurred (AccessDenied) when calling the AssumeRoleWithWebIdentity operation: Not authorized to perform "
     "sts:AssumeRoleWithWebIdentity", "AccessDenied on AssumeRoleWithWebIdentity"),
    ("An error occurred (UnauthorizedOperation) when calling the DescribeInstances operation: You are not authorized "
     "to perform this operation.", "UnauthorizedOperation / AccessDenied on the call"),
    ("An error occurred (InvalidIdentityToken) when calling the AssumeRoleWithWebIdentity operation: No OpenIDConnect "
     "provider found in your account for https://oidc.eks.us-east-1.amazonaws.com/id/ABC", "no OIDC provider"),
    ("You have exceeded the maximum limit for Lambda HyperPlane ENIs for your VPC.", "Lambda Hyperplane ENI limit"),
    ("botocore.exceptions.PartialCredentialsError: Partial credentials found in env, missing: AWS_SECRET_ACCESS_KEY",
     "PartialCredentialsError"),
    ("botocore.exceptions.CredentialRetrievalError: Error when retrieving credentials from container-role: ...",
     "CredentialRetrievalError"),
    ('botocore.exceptions.ConnectTimeoutError: Connect timeout on endpoint URL: "https://sts.amazonaws.com/"',
     "connect/read timeout"),
    ("An error occurred (ExpiredTokenException) when calling the AssumeRoleWithWebIdentity operation: Token expired",
     "expired token"),
    ("An error occurred (InvalidIdentityToken) when calling the AssumeRoleWithWebIdentity operation: Incorrect token "
     "audience", "invalid identity token"),
    ("ValueError: Unsupported host '10.0.0.5'.  Can only retrieve metadata from a loopback address or one of these "
     "hosts: 169.254.170.2, 169.254.170.23, fd00:ec2::23, localhost", "unsupported container credentials host"),
    ("Task timed out after 10.00 seconds", "Lambda task timed out"),
])
def test_aws_sdk_errors(text: str, target: str) -> None:
    assert explain(text)[0].target == target


def test_access_denied_on_web_identity_is_not_a_permissions_problem() -> None:
    text = "An error occurred (AccessDenied) when calling the AssumeRoleWithWebIdentity operation: Not authorized"
    assert "UnauthorizedOperation / AccessDenied on the call" not in targets(text)


def test_cli_unrecognised_text_exits_1_and_reads_stdin() -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["doctor", "explain", "--json", "everything is fine"])
    assert r.exit_code == 1 and json.loads(r.stdout)["checks"][0]["target"] == "unrecognised"
    r = runner.invoke(app, ["doctor", "explain", "--json", "-"], input=problems.SASL_AUTHENTICATION + "\n")
    assert r.exit_code == 0 and json.loads(r.stdout)["checks"][0]["stage"] == "sasl"


# --- the Strimzi bridge's topic metadata, and warnings that need no action --------------------------------------

DESCRIBE_CONFIGS = "bridge: topic metadata needs DescribeConfigs (Strimzi 500)"


def test_bridge_topic_metadata_500_is_a_missing_describe_configs_acl() -> None:
    # What curl shows for GET /topics/<t> when the KafkaUser has Read and Write on the topic but no DescribeConfigs.
    body = '{"error_code":500,"message":"Topic authorization failed."}'
    first = explain(body)[0]
    assert first.target == DESCRIBE_CONFIGS and "DescribeConfigs" in first.problem
    assert "Read/Write (which imply Describe) but not DescribeConfigs" in first.detail
    found = explain(f"$ curl -i http://127.0.0.1:8080/topics/orders\n> GET /topics/orders HTTP/1.1\n< HTTP/1.1 500 "
                    f"Internal Server Error\n{body}")
    assert found[0].target == DESCRIBE_CONFIGS
    assert found[0].fix.endswith("run: triggerfish doctor kafka --bridge-config bridge.properties --topic orders")
    # A produce answer's per-record error is a Write/Describe ACL, not DescribeConfigs.
    produce = '{"offsets":[{"error_code":500,"message":"Not authorized to access topics: [orders]"}]}'
    assert DESCRIBE_CONFIGS not in targets(produce)


def _librdkafka_warnings(config: dict[str, object]) -> list[str]:
    """What librdkafka itself logs for a client config (no broker needed: the warnings come at creation)."""
    import logging

    from confluent_kafka import Producer

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("doctor-explain-test")
    logger.addHandler(Keep())
    producer = Producer({"bootstrap.servers": "127.0.0.1:1", "logger": logger, **config})
    producer.poll(0.5)
    return lines


def test_librdkafka_warning_for_a_consumer_property_is_harmless() -> None:
    [line] = [x for x in _librdkafka_warnings({"enable.auto.commit": False}) if "enable.auto.commit" in x]
    found = explain(line)
    assert [c.status for c in found] == ["ok"] and "harmless" in found[0].problem
    # Next to a real error, the error is still reported (and the warning is not mistaken for it).
    both = explain(line + "\nConnect to ipv4#10.0.1.5:9092 failed: Connection refused (after 0ms in state CONNECT)")
    assert {c.target: c.status for c in both} == {
        "librdkafka: property for the other client kind (harmless)": "ok", "librdkafka connection refused": "warn"}


def test_a_java_only_key_is_fatal_in_librdkafka_and_harmless_in_java() -> None:
    from confluent_kafka import KafkaException, Producer

    for key in ("sasl.jaas.config", "ssl.truststore.location", "key.serializer"):
        with pytest.raises(KafkaException) as refused:
            Producer({"bootstrap.servers": "127.0.0.1:1", key: "x"})
        found = explain(str(refused.value))
        assert found[0].target == "librdkafka: unknown property (fatal)" and found[0].status == "warn", refused.value
        assert "sasl.jaas.config -> sasl.mechanism + sasl.username + sasl.password" in found[0].detail
    # The Java client (the bridge, Kafka's tools) logs a key it does not use at INFO, and carries on.
    java = ("[2026-01-05 10:00:00,000] INFO These configurations '[sasl.username, sasl.password]' were supplied but "
            "are not used yet. (org.apache.kafka.clients.producer.ProducerConfig)")
    assert [(c.target, c.status) for c in explain(java)] == [("Java client: unused or unknown config (harmless)", "ok")]
    old = "WARN The configuration 'ssl.ca.location' was supplied but isn't a known config. (org.apache.kafka...)"
    assert explain(old)[0].status == "ok"
