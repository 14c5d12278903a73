"""--require-auth: boto3 calls signed with the configured key pass, others get AWS's 403 codes."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from api_support import lambda_client
from triggerfish.api import AccessKey, ApiServer, EngineBackend, create_app, load_access_key
from triggerfish.errors import ConfigError
from triggerfish.functions.config import FunctionConfig
from triggerfish.functions.runtime import FunctionRuntime

KEY = AccessKey("AKIDLOCALTEST", "local/secret+key")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    code = tmp_path_factory.mktemp("authcode")
    (code / "h.py").write_text(textwrap.dedent("""
        def handler(event, context):
            return {"echo": event}
    """))
    runtime = FunctionRuntime([
        FunctionConfig.from_dict({"FunctionName": "f", "Handler": "h.handler", "CodeUri": str(code),
                                  "FunctionUrlConfig": {"AuthType": "NONE"}}),
        FunctionConfig.from_dict({"FunctionName": "iam", "Handler": "h.handler", "CodeUri": str(code),
                                  "FunctionUrlConfig": {"AuthType": "AWS_IAM"}}),
    ])
    with ApiServer(create_app(EngineBackend(runtime), access_key=KEY), port=0) as api:
        yield api.url
    runtime.close()


def test_right_key_passes(server: str) -> None:
    client = lambda_client(server, KEY.access_key_id, KEY.secret_access_key)
    assert client.get_function(FunctionName="arn:aws:lambda:us-east-1:000000000000:function:f")["Configuration"]["FunctionName"] == "f"
    out = client.invoke(FunctionName="f", Payload=json.dumps({"a": [1, 2]}))
    assert json.loads(out["Payload"].read()) == {"echo": {"a": [1, 2]}}
    # a query string ($ is percent-encoded) is part of the signature too
    assert client.get_function(FunctionName="f", Qualifier="$LATEST")["Configuration"]["FunctionName"] == "f"


def test_wrong_secret_is_rejected(server: str) -> None:
    client = lambda_client(server, KEY.access_key_id, "wrong")
    with pytest.raises(ClientError) as info:
        client.list_functions()
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_unknown_key_is_rejected(server: str) -> None:
    with pytest.raises(ClientError) as info:
        lambda_client(server, "AKIDSOMEONEELSE", KEY.secret_access_key).list_functions()
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_unsigned_request_is_rejected(server: str) -> None:
    response = httpx.get(f"{server}/2015-03-31/functions/")
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_public_url_health_and_metrics_need_no_signature(server: str) -> None:
    assert httpx.get(f"{server}/lambda-url/f/").status_code == 200
    assert httpx.get(f"{server}/health").status_code == 200
    assert httpx.get(f"{server}/metrics").status_code == 200


def test_load_access_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "key.json"
    secret.write_text(json.dumps({"AccessKeyId": "AKID1", "SecretAccessKey": "abc"}))
    assert load_access_key(f"file://{secret}") == AccessKey("AKID1", "abc")
    monkeypatch.setenv("TRIGGERFISH_ACCESS_KEY_ID", "AKID2")
    monkeypatch.setenv("TRIGGERFISH_SECRET_ACCESS_KEY", "def")
    assert load_access_key() == AccessKey("AKID2", "def")
    monkeypatch.delenv("TRIGGERFISH_SECRET_ACCESS_KEY")
    with pytest.raises(ConfigError, match="TRIGGERFISH_SECRET_ACCESS_KEY"):
        load_access_key()
    secret.write_text(json.dumps({"AccessKeyId": "AKID1"}))
    with pytest.raises(ConfigError, match="SecretAccessKey"):
        load_access_key(f"file://{secret}")


def test_aws_iam_function_url_needs_a_valid_signature(server: str) -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{server}/lambda-url/iam/path?q=1"
    assert httpx.post(url, content=b"{}").status_code == 403
    for secret, status in ((KEY.secret_access_key, 200), ("wrong", 403)):
        request = AWSRequest(method="POST", url=url, data=b'{"signed": true}', headers={"Content-Type": "application/json"})
        SigV4Auth(Credentials(KEY.access_key_id, secret), "lambda", "us-east-1").add_auth(request)
        response = httpx.post(url, content=b'{"signed": true}', headers=dict(request.headers))
        assert response.status_code == status
    assert response.status_code == 403 and "signature" in response.json()["Message"]
