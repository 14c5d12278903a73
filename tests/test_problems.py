"""Lambda's PROBLEM texts and the detail/fix builders, fed with real librdkafka and OpenSSL messages."""

from __future__ import annotations

import errno

import pytest

from triggerfish.errors import SetupError
from triggerfish.esm import problems


def test_lambda_texts_are_exact() -> None:
    assert problems.ENDPOINTS_UNRESOLVED == "PROBLEM: The provided Kafka broker endpoints cannot be resolved."
    assert problems.CONNECTION_ERROR == "PROBLEM: Connection error. Please check your event source connection configuration."
    assert problems.NOT_PEM == "PROBLEM: Certificate and/or private key must be in PEM format."
    assert problems.TLS_AUTHENTICATION == (
        "PROBLEM: Server failed to authenticate Lambda or Lambda failed to authenticate server."
    )
    assert problems.SASL_AUTHENTICATION == "PROBLEM: SASL authentication failed."
    assert problems.AUTHORIZATION == "PROBLEM: Cluster failed to authorize Lambda."
    assert problems.FUNCTION_CALL == "PROBLEM: Function call failed."
    assert problems.CONNECTION_ERROR_VPC.startswith("PROBLEM: Connection error. Your VPC must be able to connect to Lambda and STS")


@pytest.mark.parametrize(
    ("problem", "reason"),
    [
        (problems.SASL_AUTHENTICATION, "EVENT_SOURCE_AUTHN_ERROR"),
        (problems.TLS_AUTHENTICATION, "EVENT_SOURCE_AUTHN_ERROR"),
        (problems.AUTHORIZATION, "EVENT_SOURCE_AUTHZ_ERROR"),
        (problems.NOT_PEM, "ESM_CONFIG_NOT_VALID"),
        (problems.ENDPOINTS_UNRESOLVED, "ESM_CONFIG_NOT_VALID"),
        (problems.FUNCTION_CALL, "FUNCTION_CONFIG_NOT_VALID"),
    ],
)
def test_state_transition_reason_codes(problem: str, reason: str) -> None:
    assert problems.reason_for(problem) == reason


def test_clean_strips_librdkafka_state_suffix() -> None:
    text = ("sasl_ssl://b1:9093/bootstrap: SASL authentication error: Authentication failed during authentication due to "
            "invalid credentials with SASL mechanism SCRAM-SHA-512 (after 12ms in state AUTH_REQ, 4 identical error(s) suppressed)")
    cleaned = problems.clean(text)
    assert cleaned.endswith("SCRAM-SHA-512")
    assert problems.clean("Connect to ipv4#10.0.0.1:9092 failed: Connection refused (after 0ms in state CONNECT)") == (
        "Connect to ipv4#10.0.0.1:9092 failed: Connection refused"
    )


def test_wrong_scram_password_from_librdkafka_text() -> None:
    d = problems.from_kafka_error(
        "_AUTHENTICATION",
        "sasl_ssl://b1:9096/bootstrap: SASL authentication error: Authentication failed during authentication due to "
        "invalid credentials with SASL mechanism SCRAM-SHA-512 (after 5ms in state AUTH_REQ)",
        target="b1:9096", mechanism="SCRAM-SHA-512", user="alice",
    )
    assert d is not None and d.problem == problems.SASL_AUTHENTICATION and d.code == "_AUTHENTICATION"
    assert "'alice'" in d.detail and "after 5ms" not in d.detail
    assert "SCRAM-SHA-256 only cannot log in with SCRAM-SHA-512" in d.fix


def test_unsupported_mechanism_lists_what_the_broker_offers() -> None:
    d = problems.from_kafka_error(
        "_AUTHENTICATION",
        "SASL SCRAM-SHA-256 mechanism handshake failed: Broker: Unsupported SASL mechanism: broker's supported "
        "mechanisms: SCRAM-SHA-512",
        target="b-1.msk:9096", mechanism="SCRAM-SHA-256", user="bob",
    )
    assert d is not None and "broker offers: SCRAM-SHA-512" in d.fix


def test_acl_errors_name_principal_topic_and_group() -> None:
    d = problems.from_kafka_error(
        "TOPIC_AUTHORIZATION_FAILED", "Subscribed topic not available: orders: Broker: Topic authorization failed",
        target="b1:9093", topic="orders", group="0f1e-uuid", principal="User:alice",
    )
    assert d is not None and d.problem == problems.AUTHORIZATION
    assert "grant Read on group 0f1e-uuid and Read, Describe on topic orders to User:alice" in d.fix
    g = problems.from_kafka_error("GROUP_AUTHORIZATION_FAILED", "JoinGroup failed: Broker: Group authorization failed",
                                  target="b1:9093", topic="orders", group="0f1e-uuid", principal="User:alice")
    assert g is not None and g.code == "GROUP_AUTHORIZATION_FAILED"
    assert "grant Read on group 0f1e-uuid to User:alice" in g.fix


def test_certificate_verify_failed_points_to_the_doctor() -> None:
    d = problems.from_kafka_error(
        "_SSL",
        "ssl://b1:9094/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker "
        "certificate could not be verified, verify that ssl.ca.location is correctly configured or root CA certificates "
        "are installed (install ca-certificates package) (after 1ms in state SSL_HANDSHAKE)",
        target="b1:9094",
    )
    assert d is not None and d.problem == problems.TLS_AUTHENTICATION and "doctor" in d.fix


def test_tls13_client_certificate_rejection_seen_as_transport_error() -> None:
    d = problems.from_kafka_error(
        "_TRANSPORT",
        "ssl://b1:9094/1: Receive failed: error:0A000418:SSL routines::tlsv1 alert unknown ca: SSL alert number 48 "
        "(after 0ms in state APIVERSION_QUERY)",
        target="b1:9094",
    )
    assert d is not None and d.problem == problems.TLS_AUTHENTICATION
    assert d.detail.startswith("b1:9094: ") and "does not trust the CA" in d.detail


def test_transient_errors_are_not_setup_problems() -> None:
    assert problems.from_kafka_error("_PARTITION_EOF", "Broker: No more messages", target="b") is None
    assert problems.from_kafka_error("_TRANSPORT", "b1:9092/1: Disconnected (after 9000ms in state UP)", target="b") is None
    assert problems.from_kafka_error("_ALL_BROKERS_DOWN", "1/1 brokers are down", target="b") is None


def test_tcp_refused_vs_silently_dropped() -> None:
    refused = problems.tcp_failed("b1", 9094, "10.0.0.5", ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), 5)
    assert refused.code == "ECONNREFUSED" and "port 9094 refused: is" in refused.fix
    assert refused.problem == problems.CONNECTION_ERROR
    dropped = problems.tcp_failed("b1", 9096, "10.0.0.5", TimeoutError("timed out"), 5)
    assert dropped.code == "ETIMEDOUT" and "did not answer within 5s" in dropped.detail
    assert "security group" in dropped.fix


def test_server_certificate_cases_are_told_apart() -> None:
    mismatch = problems.server_cert_rejected("10.0.0.5", 9094, 64, "IP address mismatch", cert_names=["b-1.kafka.internal"])
    assert "is for host b-1.kafka.internal, you connected to 10.0.0.5" in mismatch.detail
    expired = problems.server_cert_rejected("b1", 9094, 10, "certificate has expired", not_after="2024-01-01 00:00 UTC")
    assert "expired on 2024-01-01" in expired.detail and "renew" in expired.fix
    unknown = problems.server_cert_rejected("b1", 9094, 20, "unable to get local issuer certificate", issuer="Corp CA",
                                            ca_source="the system trust store")
    assert "issued by Corp CA" in unknown.detail and "SERVER_ROOT_CA_CERTIFICATE" in unknown.fix
    assert {mismatch.problem, expired.problem, unknown.problem} == {problems.TLS_AUTHENTICATION}
    assert len({mismatch.code, expired.code, unknown.code}) == 3


def test_function_failed_is_bounded() -> None:
    d = problems.function_failed("fn", "ValueError", "x" * 5000)
    assert d.problem == problems.FUNCTION_CALL and len(d.detail) <= 500


def test_setup_error_keeps_the_diagnosis() -> None:
    d = problems.topic_missing("b1:9092", "orders")
    err = SetupError(d.at("topic"))
    assert err.stage == "topic" and err.problem == problems.CONNECTION_ERROR
    assert err.diagnosis == d.at("topic") and err.diagnosis.code == "UNKNOWN_TOPIC_OR_PART"
    assert "orders" in str(err)


def test_dns_fix_names_the_broker_that_did_not_resolve() -> None:
    """librdkafka names the broker it could not resolve; the fix names its host, not a piece of the bootstrap list."""
    d = problems.from_kafka_error(
        "_RESOLVE", "b2.example:9092/bootstrap: Failed to resolve 'b2.example:9092': Name or service not known "
        "(after 0ms in state CONNECT)", target="b1.example:9092,b2.example:9092",
    )
    assert d is not None and d.problem == problems.ENDPOINTS_UNRESOLVED and d.code == "_RESOLVE"
    assert d.fix == "check that b2.example resolves from this machine"


def test_dns_fix_without_a_named_broker_lists_each_host() -> None:
    d = problems.from_kafka_error("_RESOLVE", "Local: Host resolution failure",
                                  target="b1.example:9092,b2.example:9092,[fd00::1]:9092")
    assert d is not None and d.fix == "check that b1.example and b2.example and fd00::1 resolve from this machine"
    one = problems.from_kafka_error("_RESOLVE", "Local: Host resolution failure", target="b1.example:9092")
    assert one is not None and one.fix == "check that b1.example resolves from this machine"
