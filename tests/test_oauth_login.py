"""OAUTHBEARER_AUTH end to end: a private broker (port base 19860) validating JWTs against the JWKS of a local
OAuth 2.0 server (tests/oauth_server.py, port 19864), and a mapping that logs in with the client-credentials grant.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # no __all__

import oauth_broker
from esm_helpers import RECORDER, RunningEngine, delivered, function_config, produce, wait_until, write_handler
from oauth_server import AUDIENCE, ISSUER, OAuthServer
from triggerfish import MappingConfig
from triggerfish.esm import problems

pytestmark = pytest.mark.kafka

#: No other test uses this port base (test_queue_mode 19820, test_fleet 19790, test_esm_outage 19780).
_PORT_BASE = 19860
_TOKEN_PORT = _PORT_BASE + 4
_CLIENT, _SECRET = "orders-reader", "correct-horse-battery"


@pytest.fixture(scope="module")
def idp() -> Iterator[OAuthServer]:
    with OAuthServer(_TOKEN_PORT, {_CLIENT: _SECRET}) as server:
        yield server


@pytest.fixture(scope="module")
def oauth_kafka(idp: OAuthServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[oauth_broker.OAuthKafka]:
    env = oauth_broker.start(tmp_path_factory.mktemp("oauth-kafka"), _PORT_BASE, jwks_url=idp.jwks_url,
                             token_url=idp.token_url, audience=AUDIENCE, issuer=ISSUER)
    yield env
    oauth_broker.stop(env)


def _topic(env: oauth_broker.OAuthKafka) -> str:
    name = f"oauth-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": env.bootstrap})  # kept alive until the result is in
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=60)
    return name


def _secret(path: Path, value: dict[str, Any]) -> str:
    path.write_text(json.dumps(value))
    return f"file://{path}"


def _mapping(tmp_path: Path, env: oauth_broker.OAuthKafka, idp: OAuthServer, topic: str, secret: str,
             *extra: dict[str, str]) -> MappingConfig:
    oauth = _secret(tmp_path / "oauth.json", {"clientId": _CLIENT, "clientSecret": secret,
                                              "tokenEndpointUrl": idp.token_url})
    ca = _secret(tmp_path / "ca.json", {"certificate": env.ca_file.read_text()})
    return MappingConfig.from_dict({
        "FunctionName": "f", "Topics": [topic], "StartingPosition": "TRIM_HORIZON", "MaximumBatchingWindowInSeconds": 0,
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [env.oauth_bootstrap]}},
        "SourceAccessConfigurations": [{"Type": "OAUTHBEARER_AUTH", "URI": oauth},
                                       {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": ca}, *extra],
    })


def _engine(tmp_path: Path, mapping: MappingConfig, out: Path) -> RunningEngine:
    code = write_handler(tmp_path, "rec", RECORDER)
    return RunningEngine([function_config(code, Environment={"Variables": {"OUT": str(out)}})], [mapping], tmp_path)


def test_oauthbearer_mapping_reads_records_and_invokes_the_function(
        oauth_kafka: oauth_broker.OAuthKafka, idp: OAuthServer, tmp_path: Path) -> None:
    topic = _topic(oauth_kafka)
    produce(oauth_kafka.bootstrap, topic, [b"a", b"b", b"c"])
    out = tmp_path / "out.jsonl"
    mapping = _mapping(tmp_path, oauth_kafka, idp, topic, _SECRET, {"Type": "OAUTHBEARER_SCOPE", "URI": "kafka:read"},
                       {"Type": "OAUTHBEARER_LOGICAL_CLUSTER", "URI": "lkc-test1"})
    with _engine(tmp_path, mapping, out) as running:
        wait_until(lambda: len(delivered(out)) >= 3, timeout=90, message=f"3 records; status {running.status()}")
        assert [v for _, _, v in delivered(out)] == [b"a", b"b", b"c"]
        wait_until(lambda: running.status()["LastProcessingResult"] == "OK", timeout=30)
    asked = [r for r in idp.requests if r["client_id"] == _CLIENT]
    assert asked and all(r["grant_type"] == "client_credentials" for r in asked)
    assert {r.get("scope") for r in asked} == {"kafka:read"}


def test_wrong_client_secret_is_a_sasl_problem_naming_the_token_endpoints_answer(
        oauth_kafka: oauth_broker.OAuthKafka, idp: OAuthServer, tmp_path: Path) -> None:
    topic = _topic(oauth_kafka)
    produce(oauth_kafka.bootstrap, topic, [b"never"])
    out = tmp_path / "out.jsonl"
    wrong = "not-the-secret-42"
    with _engine(tmp_path, _mapping(tmp_path, oauth_kafka, idp, topic, wrong), out) as running:
        status = wait_until(lambda: (s := running.status())["Problem"] and s, timeout=90,
                            message="a problem in the status")
        assert status["LastProcessingResult"] == problems.SASL_AUTHENTICATION
        detail = status["Problem"]["detail"]
        assert idp.token_url in detail and "invalid_client" in detail and repr(_CLIENT) in detail
        assert wrong not in json.dumps(status)
        assert not delivered(out)


def test_a_token_for_another_audience_is_refused_by_the_broker(
        oauth_kafka: oauth_broker.OAuthKafka, idp: OAuthServer, tmp_path: Path) -> None:
    topic = _topic(oauth_kafka)
    out = tmp_path / "out.jsonl"
    mapping = _mapping(tmp_path, oauth_kafka, idp, topic, _SECRET, {"Type": "OAUTHBEARER_AUDIENCE", "URI": "billing"})
    with _engine(tmp_path, mapping, out) as running:
        status = wait_until(lambda: (s := running.status())["Problem"] and s, timeout=90,
                            message="a problem in the status")
        assert status["LastProcessingResult"] == problems.SASL_AUTHENTICATION
        assert "audience" in status["Problem"]["fix"], status["Problem"]
    assert any(r.get("audience") == "billing" for r in idp.requests)
