"""The control API's trust boundary, over real HTTP against a running ``App``: what a browser can send
cross-site (a foreign ``Host`` — DNS rebinding —, a foreign ``Origin``, a form/text body) is refused
with Lambda's error shape while boto3 keeps working; ``AWS_IAM`` function URLs always need a valid
signature; no unauthenticated control API off loopback without ``insecure``; secret references
created through the API are limited to configured roots and prefixes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from api_support import lambda_client
from esm_helpers import function_config, function_dict, write_config, write_handler
from triggerfish import App
from triggerfish.api import AccessKey, Trust
from triggerfish.errors import ConfigError
from triggerfish.secrets import ReferencePolicy

HANDLER = """
import json
def handler(event, context):
    if "requestContext" in event:
        return {"statusCode": 200, "body": "url-ok"}
    return {"echo": event}
"""

ESM = "/2015-03-31/event-source-mappings"
CREATE = {"FunctionName": "f", "Topics": ["copy-me"], "MaximumRecordAgeInSeconds": 60, "StartingPosition": "LATEST",
          "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:1"]}},
          "DestinationConfig": {"OnFailure": {"Destination": "kafka://stolen"}}}


def _functions(tmp_path: Path) -> list[Any]:
    code = write_handler(tmp_path, "h", HANDLER)
    return [
        function_config(code, "h.handler", "f"),
        function_config(code, "h.handler", "web", FunctionUrlConfig={"AuthType": "NONE"}),
        function_config(code, "h.handler", "iam", FunctionUrlConfig={"AuthType": "AWS_IAM"}),
        function_config(code, "h.handler", "cors", FunctionUrlConfig={
            "AuthType": "NONE", "Cors": {"AllowOrigins": ["https://app.example"], "AllowMethods": ["POST"]}}),
    ]


def _start(tmp_path: Path, **kwargs: Any) -> App:
    return App(_functions(tmp_path), [], state=tmp_path / "state.db", port=0, **kwargs).start()


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.delenv("TRIGGERFISH_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("TRIGGERFISH_SECRET_ACCESS_KEY", raising=False)
    a = _start(tmp_path)
    yield a
    a.stop()


def _port(app: App) -> int:
    assert app.url is not None
    return int(app.url.rsplit(":", 1)[1])


def _error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, response.headers.get("x-amzn-ErrorType", ""), body.get("message") or body.get("Message")


def test_the_browser_attack_of_the_issue_is_refused(app: App) -> None:
    """text/plain + Origin: http://evil.example + Host: evil.example created a mapping (202) and invoked (200)."""
    assert app.url is not None
    evil = {"content-type": "text/plain", "origin": "http://evil.example", "host": "evil.example"}
    create = httpx.post(app.url + ESM, content=json.dumps(CREATE), headers=evil)
    status, kind, message = _error(create)
    assert (status, kind) == (403, "AccessDeniedException")
    assert "Host" in message and "--allowed-host evil.example" in message
    invoke = httpx.post(app.url + "/2015-03-31/functions/f/invocations", content=b"{}", headers=evil)
    assert _error(invoke)[:2] == (403, "AccessDeniedException")
    assert app.engine.list() == []


def test_each_header_is_refused_on_its_own(app: App) -> None:
    assert app.url is not None
    url = app.url + ESM
    body = json.dumps(CREATE)
    # DNS rebinding: the right address, a foreign name
    status, kind, message = _error(httpx.get(url, headers={"host": f"evil.example:{_port(app)}"}))
    assert (status, kind) == (403, "AccessDeniedException") and "--allowed-host" in message
    # a page on another site, with the right Host
    status, kind, message = _error(httpx.post(url, content=body, headers={
        "origin": "http://evil.example", "content-type": "application/json"}))
    assert (status, kind) == (403, "AccessDeniedException")
    assert "Origin" in message and "--allowed-origin http://evil.example" in message
    # the body types a form or fetch() sends without a preflight
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, kind, message = _error(httpx.post(url, content=body, headers={"content-type": ctype}))
        assert (status, kind) == (415, "UnsupportedMediaTypeException"), ctype
        assert "Content-Type" in message and "application/json" in message
        refused = httpx.post(app.url + "/2015-03-31/functions/f/invocations", content=b"{}", headers={"content-type": ctype})
        assert _error(refused)[:2] == (415, "UnsupportedMediaTypeException"), ctype
    # a body with no Content-Type at all, for an operation whose SDKs always send application/json
    assert httpx.post(url, content=body).status_code == 415
    assert app.engine.list() == []


def test_loopback_names_and_boto3_pass(app: App) -> None:
    assert app.url is not None
    port = _port(app)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
        assert httpx.get(app.url + ESM, headers={"host": host}).status_code == 200, host
    client = lambda_client(app.url)
    assert json.loads(client.invoke(FunctionName="f", Payload=b'{"a": 1}')["Payload"].read()) == {"echo": {"a": 1}}
    assert client.invoke(FunctionName="f")["StatusCode"] == 200  # no payload, no Content-Type
    assert client.invoke(FunctionName="f", InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
    assert client.list_event_source_mappings()["EventSourceMappings"] == []
    with pytest.raises(ClientError) as info:
        client.delete_event_source_mapping(UUID="00000000-0000-0000-0000-000000000000")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"  # got past the guard
    # an invalid mapping still reaches validation (boto3 sends application/json)
    raw = lambda_client(app.url, parameter_validation=False)
    with pytest.raises(ClientError) as info:
        raw.create_event_source_mapping(FunctionName="f", Topics=["t"], BatchSize=0)
    assert info.value.response["Error"]["Code"] in ("ValidationException", "InvalidParameterValueException")


def test_configured_hosts_and_origins_pass(tmp_path: Path) -> None:
    app = _start(tmp_path, trust=Trust(allowed_hosts=("api.internal",), allowed_origins=("https://console.example",)))
    try:
        assert app.url is not None
        assert httpx.get(app.url + ESM, headers={"host": "api.internal:9000"}).status_code == 200
        assert httpx.get(app.url + ESM, headers={"host": "evil.example"}).status_code == 403
        assert httpx.get(app.url + ESM, headers={"origin": "https://console.example"}).status_code == 200
        assert httpx.get(app.url + ESM, headers={"origin": "https://evil.example"}).status_code == 403
    finally:
        app.stop()


def test_function_urls_refuse_foreign_hosts_and_origins(app: App) -> None:
    assert app.url is not None
    web, cors = app.url + "/lambda-url/web/", app.url + "/lambda-url/cors/"
    assert httpx.get(web).text == "url-ok"
    refused = httpx.get(web, headers={"host": "evil.example"})
    assert refused.status_code == 403 and "--allowed-host" in refused.json()["Message"]
    refused = httpx.post(web, content=b"x", headers={"origin": "http://evil.example", "content-type": "text/plain"})
    assert refused.status_code == 403 and "Cors" in refused.json()["Message"]
    # the URL's own pages may call it (same origin)
    assert httpx.post(web, content=b"x", headers={"origin": app.url}).text == "url-ok"
    # cross-site only where FunctionUrlConfig.Cors allows the origin
    assert httpx.post(cors, headers={"origin": "https://app.example"}).text == "url-ok"
    assert httpx.post(cors, headers={"origin": "https://evil.example"}).status_code == 403


def _signed(url: str, key: AccessKey, body: bytes = b"{}") -> httpx.Response:
    request = AWSRequest(method="POST", url=url, data=body, headers={"content-type": "application/json"})
    SigV4Auth(Credentials(key.access_key_id, key.secret_access_key), "lambda", "us-east-1").add_auth(request)
    return httpx.post(url, content=body, headers=dict(request.headers.items()))


def test_aws_iam_url_without_a_configured_key_refuses_everything(app: App) -> None:
    assert app.url is not None
    url = app.url + "/lambda-url/iam/"
    unsigned = httpx.post(url, content=b"{}")
    assert unsigned.status_code == 403
    message = unsigned.json()["Message"]
    assert "AWS_IAM" in message and "TRIGGERFISH_ACCESS_KEY_ID" in message and "--auth-secret" in message
    assert _signed(url, AccessKey("AKIDANY", "any")).status_code == 403


def test_aws_iam_url_takes_the_environment_key_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIGGERFISH_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("TRIGGERFISH_SECRET_ACCESS_KEY", "env-secret")
    app = _start(tmp_path)  # no --require-auth: the control API accepts any signature, the URL does not
    try:
        assert app.url is not None
        url = app.url + "/lambda-url/iam/"
        assert httpx.post(url, content=b"{}").status_code == 403
        assert _signed(url, AccessKey("AKIDENV", "wrong")).status_code == 403
        ok = _signed(url, AccessKey("AKIDENV", "env-secret"))
        assert ok.status_code == 200 and ok.text == "url-ok"
    finally:
        app.stop()


def test_control_api_off_loopback_needs_auth_or_insecure(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        App(_functions(tmp_path), [], state=tmp_path / "state.db", host="0.0.0.0", port=0)
    assert info.value.field == "--host" and "--insecure" in info.value.message and "--require-auth" in info.value.message
    App(_functions(tmp_path), [], state=tmp_path / "a.db", host="0.0.0.0", port=0, insecure=True)
    App(_functions(tmp_path), [], state=tmp_path / "b.db", host="0.0.0.0", port=0, access_key=AccessKey("a", "b"))
    App(_functions(tmp_path), [], state=tmp_path / "c.db", host="0.0.0.0", api=False)


def _create_with_secret(app: App, uri: str) -> httpx.Response:
    assert app.url is not None
    body = {**CREATE, "Topics": [f"t{len(app.engine.list())}"],
            "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": uri}]}
    del body["DestinationConfig"]
    return httpx.post(app.url + ESM, json=body)


def test_api_secret_references_are_refused_without_revealing_existence(app: App, tmp_path: Path) -> None:
    existing = tmp_path / "exists.json"
    existing.write_text('{"username": "u", "password": "p"}')
    answers = {}
    for uri in (f"file://{existing}", f"file://{tmp_path}/missing.json", "env:HOME", "env:TRIGGERFISH_NO_SUCH_VAR"):
        response = _create_with_secret(app, uri)
        status, kind, message = _error(response)
        assert (status, kind) == (400, "InvalidParameterValueException"), uri
        assert "SourceAccessConfigurations" in message
        answers[uri] = message.replace(uri, "REF")
    file_messages = {answers[u] for u in answers if u.startswith("file:")}
    env_messages = {answers[u] for u in answers if u.startswith("env:")}
    assert len(file_messages) == 1 and "--secret-file-root" in file_messages.pop()
    assert len(env_messages) == 1 and "--secret-env-prefix" in env_messages.pop()
    assert app.engine.list() == []


def test_api_secret_references_under_configured_roots_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "secrets"
    root.mkdir()
    monkeypatch.setenv("KAFKA_SECRET_X", '{"username": "u", "password": "p"}')
    policy = ReferencePolicy(file_roots=(str(root),), env_prefixes=("KAFKA_",))
    app = _start(tmp_path, trust=Trust(secrets=policy))
    try:
        assert _create_with_secret(app, f"file://{root}/kafka.json").status_code == 202
        assert _create_with_secret(app, "env:KAFKA_SECRET_X").status_code == 202
        escape = _create_with_secret(app, f"file://{root}/../{os.path.basename(tmp_path)}/state.db")
        assert escape.status_code == 400
        assert _create_with_secret(app, "env:HOME").status_code == 400
        assert len(app.engine.list()) == 2
    finally:
        app.stop()


def _run(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIGGERFISH_")}
    return subprocess.Popen([sys.executable, "-m", "triggerfish", "run", "--config", str(config), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**env, "COLUMNS": "250"})


def test_triggerfish_run_options(tmp_path: Path) -> None:
    code = write_handler(tmp_path, "h", HANDLER)
    config = write_config(tmp_path / "triggerfish.yaml", [function_dict(code, "h.handler", "f")], [])
    refused = _run(config, "--host", "0.0.0.0")
    out, _ = refused.communicate(timeout=60)
    assert refused.returncode == 1 and "--insecure" in out and "Traceback" not in out
    proc = _run(config, "--allowed-host", "api.internal", "--allowed-origin", "https://console.example",
                "--secret-env-prefix", "KAFKA_")
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if match := re.search(r"control API on (http://127\.0\.0\.1:\d+)", line):
                url = match.group(1)
                break
        else:
            raise AssertionError("".join(lines))
        assert httpx.get(url + ESM, headers={"host": "api.internal"}).status_code == 200
        assert httpx.get(url + ESM, headers={"host": "evil.example"}).status_code == 403
        assert httpx.get(url + ESM, headers={"origin": "https://console.example"}).status_code == 200
        body = {**CREATE, "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": "env:HOME"}]}
        assert "--secret-env-prefix" in httpx.post(url + ESM, json=body).json()["message"]
        body["SourceAccessConfigurations"] = [{"Type": "BASIC_AUTH", "URI": "env:KAFKA_X"}]
        assert httpx.post(url + ESM, json=body).status_code == 202
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_aws_cli_passes_the_guard(app: App, tmp_path: Path) -> None:
    assert app.url is not None
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}

    def aws(*args: str) -> Any:
        done = subprocess.run(["aws", "lambda", *args, "--endpoint-url", app.url or "", "--output", "json"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    out = tmp_path / "out.json"
    assert aws("invoke", "--function-name", "f", "--payload", '{"a": 1}', str(out))["StatusCode"] == 200
    assert json.loads(out.read_text()) == {"echo": {"a": 1}}
    created = aws("create-event-source-mapping", "--function-name", "f", "--topics", "cli-topic",
                  "--starting-position", "LATEST", "--self-managed-event-source",
                  '{"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:1"]}}')
    aws("update-event-source-mapping", "--uuid", created["UUID"], "--batch-size", "5")
    assert [m["UUID"] for m in aws("list-event-source-mappings")["EventSourceMappings"]] == [created["UUID"]]
    aws("delete-event-source-mapping", "--uuid", created["UUID"])
