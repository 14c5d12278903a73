"""The OAuth and IAM access types: Lambda's combination rules, the librdkafka settings each one becomes,
secret-shape errors and redaction (no broker needed; tests/test_oauth_login.py logs in for real)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

from esm_helpers import RECORDER, function_config, write_handler
from triggerfish import App
from triggerfish.errors import InvalidParameterError, SetupError
from triggerfish.esm import auth, problems
from triggerfish.esm.access import parse_access
from triggerfish.esm.config import MappingConfig

_TOKEN_URL = "https://idp.example.com/oauth2/token"


def _body(access: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"UUID": str(uuid.uuid4()), "FunctionName": "fn", "Topics": ["orders"],
                            "StartingPosition": "TRIM_HORIZON", "SourceAccessConfigurations": access, **extra}
    if "EventSourceArn" not in extra:
        body["SelfManagedEventSource"] = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["broker:9096"]}}
    return body


def _refusal(access: list[dict[str, str]], **extra: Any) -> str:
    with pytest.raises(InvalidParameterError) as exc:
        MappingConfig.from_dict(_body(access, **extra))
    return str(exc.value)


def _secret(tmp_path: Path, **value: str) -> dict[str, str]:
    path = tmp_path / f"oauth-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(value))
    return {"Type": "OAUTHBEARER_AUTH", "URI": f"file://{path}"}


def _oauth(tmp_path: Path, secret: str = "s3cret", url: str = _TOKEN_URL) -> dict[str, str]:
    return _secret(tmp_path, clientId="reader", clientSecret=secret, tokenEndpointUrl=url)


@pytest.mark.parametrize("setting", ["OAUTHBEARER_SCOPE", "OAUTHBEARER_LOGICAL_CLUSTER", "OAUTHBEARER_IDENTITY_POOL"])
def test_oauth_settings_require_oauthbearer_auth(setting: str) -> None:
    assert f"{setting} requires OAUTHBEARER_AUTH" in _refusal([{"Type": setting, "URI": "value"}])
    assert f"{setting} requires OAUTHBEARER_AUTH" in _refusal([{"Type": "IAM_OAUTHBEARER_AUTH"},
                                                               {"Type": "OAUTHBEARER_AUDIENCE", "URI": "kafka"},
                                                               {"Type": setting, "URI": "value"}])


def test_audience_requires_an_oauthbearer_login_and_iam_oauthbearer_requires_an_audience() -> None:
    assert "OAUTHBEARER_AUDIENCE requires OAUTHBEARER_AUTH or IAM_OAUTHBEARER_AUTH" in _refusal(
        [{"Type": "OAUTHBEARER_AUDIENCE", "URI": "kafka"}])
    assert "IAM_OAUTHBEARER_AUTH requires OAUTHBEARER_AUDIENCE" in _refusal([{"Type": "IAM_OAUTHBEARER_AUTH"}])
    access = parse_access(MappingConfig.from_dict(_body([{"Type": "IAM_OAUTHBEARER_AUTH"},
                                                         {"Type": "OAUTHBEARER_AUDIENCE", "URI": "kafka"}])))
    assert (access.login, access.oauth, access.needs_aws) == ("IAM_OAUTHBEARER_AUTH", {"OAUTHBEARER_AUDIENCE": "kafka"}, True)


def test_iam_types_take_no_uri_and_round_trip_without_one() -> None:
    assert "IAM_AUTH takes no URI" in _refusal([{"Type": "IAM_AUTH", "URI": "arn:aws:iam::123456789012:role/r"}])
    config = MappingConfig.from_dict(_body([{"Type": "IAM_AUTH"}]))
    assert config.to_dict()["SourceAccessConfigurations"] == [{"Type": "IAM_AUTH"}]
    assert parse_access(config).login == "IAM_AUTH"


def test_one_login_per_mapping_and_none_of_them_on_msk(tmp_path: Path) -> None:
    assert "OAUTHBEARER_AUTH and IAM_AUTH both set" in _refusal([_oauth(tmp_path), {"Type": "IAM_AUTH"}])
    assert "SASL_SCRAM_512_AUTH and OAUTHBEARER_AUTH both set" in _refusal(
        [{"Type": "SASL_SCRAM_512_AUTH", "URI": "env:SCRAM"}, _oauth(tmp_path)])
    msk = "arn:aws:kafka:us-east-1:123456789012:cluster/c/0f0f0f0f-0f0f-0f0f-0f0f-0f0f0f0f0f0f-1"
    for entry in ({"Type": "IAM_AUTH"}, _oauth(tmp_path), {"Type": "OAUTHBEARER_SCOPE", "URI": "s"}):
        assert "is for self-managed Kafka" in _refusal([entry], EventSourceArn=msk)
    assert "OAUTHBEARER_SCOPE is given twice" in _refusal(
        [_oauth(tmp_path), {"Type": "OAUTHBEARER_SCOPE", "URI": "a"}, {"Type": "OAUTHBEARER_SCOPE", "URI": "b"}])


def test_oauthbearer_auth_becomes_librdkafkas_oidc_settings(tmp_path: Path) -> None:
    mapping = MappingConfig.from_dict(_body([
        _oauth(tmp_path), {"Type": "OAUTHBEARER_SCOPE", "URI": "kafka:read"},
        {"Type": "OAUTHBEARER_AUDIENCE", "URI": "https://kafka.example.com"},
        {"Type": "OAUTHBEARER_LOGICAL_CLUSTER", "URI": "lkc-abc12"},
        {"Type": "OAUTHBEARER_IDENTITY_POOL", "URI": "pool-Xy9"},
    ]))
    built = auth.resolve(mapping)
    config = built.config
    assert {k: config[k] for k in ("security.protocol", "sasl.mechanism", "sasl.oauthbearer.method",
                                   "sasl.oauthbearer.client.id", "sasl.oauthbearer.scope",
                                   "sasl.oauthbearer.extensions")} == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.client.id": "reader", "sasl.oauthbearer.scope": "kafka:read",
        "sasl.oauthbearer.extensions": "logicalCluster=lkc-abc12,identityPoolId=pool-Xy9",
    }
    url = urlsplit(config["sasl.oauthbearer.token.endpoint.url"])
    assert url._replace(query="").geturl() == _TOKEN_URL
    assert parse_qs(url.query) == {"audience": ["https://kafka.example.com"]}
    assert (built.login, built.mechanism, built.user, built.token_endpoint) == (
        "OAUTHBEARER_AUTH", "OAUTHBEARER", "reader", config["sasl.oauthbearer.token.endpoint.url"])
    shown = auth.redact(config)
    assert shown["sasl.oauthbearer.client.secret"] == "***" and "s3cret" not in json.dumps(shown)
    assert "s3cret" not in repr(built)


def test_oauth_secret_shape_errors_name_the_field_never_the_value(tmp_path: Path) -> None:
    missing = _secret(tmp_path, clientId="reader", tokenEndpointUrl=_TOKEN_URL)
    with pytest.raises(SetupError) as exc:
        auth.resolve(MappingConfig.from_dict(_body([missing])))
    d = exc.value.diagnosis
    assert d.problem == problems.SASL_AUTHENTICATION and "'clientSecret'" in d.detail and "tokenEndpointUrl" in d.fix
    with pytest.raises(SetupError) as exc:
        auth.resolve(MappingConfig.from_dict(_body([_oauth(tmp_path, secret="hush-123", url="idp.example.com/token")])))
    assert "not an http(s) URL" in exc.value.diagnosis.detail and "hush-123" not in str(exc.value.diagnosis)


def test_iam_auth_signs_msk_iam_tokens_in_the_configured_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    built = auth.resolve(MappingConfig.from_dict(_body([{"Type": "IAM_AUTH"}])))
    assert (built.config["security.protocol"], built.config["sasl.mechanism"]) == ("SASL_SSL", "OAUTHBEARER")
    token, expiry = built.config["oauth_cb"]("")
    assert auth.expiry_ok(expiry)
    signed = urlsplit(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    assert signed.netloc == "kafka.eu-west-1.amazonaws.com"


def test_iam_oauthbearer_auth_uses_confluent_kafkas_aws_iam_oidc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    built = auth.resolve(MappingConfig.from_dict(_body([{"Type": "IAM_OAUTHBEARER_AUTH"},
                                                        {"Type": "OAUTHBEARER_AUDIENCE", "URI": "https://kafka.corp"}])))
    assert {k: v for k, v in built.config.items() if k.startswith("sasl.")} == {
        "sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.metadata.authentication.type": "aws_iam",
        "sasl.oauthbearer.config": "region=us-west-2,audience=https://kafka.corp",
    }
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(SetupError) as exc:
        auth.resolve(MappingConfig.from_dict(_body([{"Type": "IAM_OAUTHBEARER_AUTH"},
                                                    {"Type": "OAUTHBEARER_AUDIENCE", "URI": "k"}])))
    assert exc.value.diagnosis.problem == problems.ASSUME_ROLE and "AWS_REGION" in exc.value.diagnosis.fix


def test_token_endpoint_refusal_names_the_endpoint_and_its_answer() -> None:
    d = problems.from_kafka_error(
        "_AUTHENTICATION", 'Failed to acquire SASL OAUTHBEARER token: {"error":"invalid_client"}', target="b:9096",
        mechanism="OAUTHBEARER", user="reader", token_endpoint=_TOKEN_URL)
    assert d is not None and d.problem == problems.SASL_AUTHENTICATION
    assert d.detail == f"b:9096: no OAUTHBEARER token: the token endpoint {_TOKEN_URL} answered client 'reader': " \
                       '{"error":"invalid_client"}'


def test_the_lambda_api_takes_the_new_types_and_answers_lambdas_errors(tmp_path: Path) -> None:
    code = write_handler(tmp_path, "rec", RECORDER)
    app = App([function_config(code)], [], state=tmp_path / "state.db", port=0).start()
    try:
        assert app.url is not None
        client = boto3.client("lambda", endpoint_url=app.url, region_name="us-east-1", aws_access_key_id="x",
                              aws_secret_access_key="y")
        body = {"FunctionName": "f", "Topics": ["orders"], "StartingPosition": "TRIM_HORIZON",
                "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:1"]}}}
        with pytest.raises(ClientError) as info:
            client.create_event_source_mapping(**body, SourceAccessConfigurations=[{"Type": "IAM_OAUTHBEARER_AUTH"}])
        error = info.value.response["Error"]
        assert error["Code"] == "InvalidParameterValueException"
        assert "IAM_OAUTHBEARER_AUTH requires OAUTHBEARER_AUDIENCE" in error["Message"]
        access = [{"Type": "OAUTHBEARER_AUTH", "URI": "arn:aws:secretsmanager:us-east-1:123456789012:secret:oauth-AbCdEf"},
                  {"Type": "OAUTHBEARER_SCOPE", "URI": "kafka:read"}]
        created = client.create_event_source_mapping(**body, SourceAccessConfigurations=access)
        assert client.get_event_source_mapping(UUID=created["UUID"])["SourceAccessConfigurations"] == access
        client.delete_event_source_mapping(UUID=created["UUID"])
        iam = client.create_event_source_mapping(**{**body, "Topics": ["payments"]},  # the first is still deleting
                                                 SourceAccessConfigurations=[{"Type": "IAM_AUTH"}])
        assert client.get_event_source_mapping(UUID=iam["UUID"])["SourceAccessConfigurations"] == [{"Type": "IAM_AUTH"}]
        client.delete_event_source_mapping(UUID=iam["UUID"])
    finally:
        app.stop()
