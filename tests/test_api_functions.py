"""GetFunction, ListFunctions, Invoke and function URLs, driven with boto3 and httpx against a
running server whose functions run in real worker processes."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from api_support import lambda_client
from triggerfish.api.app import create_app
from triggerfish.api.engine import EngineBackend
from triggerfish.api.server import ApiServer
from triggerfish.functions.config import FunctionConfig
from triggerfish.functions.runtime import FunctionRuntime

HANDLERS = '''
import json, os, time

def echo(event, context):
    print("echo got", json.dumps(event))
    return {"got": event, "request_id": context.aws_request_id}

def fail(event, context):
    print("about to fail")
    raise ValueError("bad order " + str(event.get("id")))

def chatty(event, context):
    for i in range(2000):
        print(f"line {i:05d}")
    return "done"

def web(event, context):
    return {
        "statusCode": 201,
        "headers": {"X-Raw-Path": event["rawPath"], "Content-Type": "application/json"},
        "cookies": ["session=abc"],
        "body": json.dumps({"event": event}),
    }

def bare(event, context):
    return {"hello": "world"}

def slow(event, context):
    open(os.environ["MARKER"], "w").write("started")
    time.sleep(1.5)
    return {"statusCode": 200, "body": "slow done"}

def record(event, context):
    with open(os.environ["OUT"], "a") as fh:
        fh.write(json.dumps(event) + "\\n")
    return None

def own_cors(event, context):
    return {"statusCode": 200, "headers": {"Access-Control-Allow-Origin": "*"}, "body": "ok"}

def overlap(event, context):
    start = time.time()
    time.sleep(0.3)
    with open(os.environ["OUT"], "a") as fh:
        fh.write(json.dumps([event["n"], start, time.time()]) + "\\n")

def broken_url(event, context):
    return {"statusCode": "not-a-status"}
'''


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fncode")
    (root / "handlers.py").write_text(textwrap.dedent(HANDLERS))
    return root


@pytest.fixture(scope="module")
def server(code: Path) -> Iterator[str]:
    def fn(name: str, handler: str, **extra: object) -> FunctionConfig:
        return FunctionConfig.from_dict({"FunctionName": name, "Handler": f"handlers.{handler}",
                                         "CodeUri": str(code), **extra})

    runtime = FunctionRuntime([
        fn("echo", "echo", Environment={"Variables": {"STAGE": "test"}}, Description="echoes"),
        fn("fail", "fail"),
        fn("chatty", "chatty"),
        fn("web", "web", FunctionUrlConfig={"AuthType": "NONE"}),
        fn("bare", "bare", FunctionUrlConfig={"AuthType": "NONE"}),
        fn("broken-url", "broken_url", FunctionUrlConfig={"AuthType": "NONE"}),
        fn("single", "slow", FunctionUrlConfig={"AuthType": "NONE"}, ReservedConcurrentExecutions=1,
           Environment={"Variables": {"MARKER": str(code / "single.marker")}}),
        fn("recorder", "record", Environment={"Variables": {"OUT": str(code / "recorded.jsonl")}}),
        fn("throttled", "echo", ReservedConcurrentExecutions=0),
        fn("queued", "overlap", ReservedConcurrentExecutions=1,
           Environment={"Variables": {"OUT": str(code / "queued.jsonl")}}),
        fn("cors", "own_cors", FunctionUrlConfig={"AuthType": "NONE", "Cors": {
            "AllowOrigins": ["https://app.example"], "AllowMethods": ["POST", "GET"], "AllowHeaders": ["content-type"],
            "ExposeHeaders": ["x-request"], "MaxAge": 300}}),
    ])
    api = ApiServer(create_app(EngineBackend(runtime)), port=0)
    url = api.start()
    yield url
    api.stop()
    runtime.close()


@pytest.fixture(scope="module")
def client(server: str):
    return lambda_client(server)


def test_list_functions(client) -> None:
    names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
    assert sorted(names) == names and {"echo", "fail", "web", "single"} <= set(names)


def test_list_functions_pages(client) -> None:
    first = client.list_functions(MaxItems=4)
    assert len(first["Functions"]) == 4 and first["NextMarker"]
    rest = client.list_functions(Marker=first["NextMarker"], MaxItems=100)
    assert "NextMarker" not in rest
    everything = [f["FunctionName"] for f in first["Functions"] + rest["Functions"]]
    assert everything == [f["FunctionName"] for f in client.list_functions()["Functions"]]


def test_get_function_by_name_and_arn(client) -> None:
    out = client.get_function(FunctionName="echo")
    config = out["Configuration"]
    assert config["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:echo"
    assert config["Handler"] == "handlers.echo" and config["Environment"]["Variables"] == {"STAGE": "test"}
    assert config["Description"] == "echoes" and config["Timeout"] == 3
    assert out["Code"]["Location"].startswith("file://")
    by_arn = client.get_function(FunctionName=config["FunctionArn"])
    assert by_arn["Configuration"] == config
    assert client.get_function_configuration(FunctionName="000000000000:function:echo")["FunctionName"] == "echo"
    assert client.get_function(FunctionName="single")["Concurrency"] == {"ReservedConcurrentExecutions": 1}
    assert client.get_function_concurrency(FunctionName="single")["ReservedConcurrentExecutions"] == 1


def test_function_configuration_has_lambdas_fields(client, code: Path) -> None:
    config = client.get_function_configuration(FunctionName="echo")
    config.pop("ResponseMetadata")
    assert len(base64.b64decode(config["CodeSha256"])) == 32 and config["CodeSize"] > 0  # exact: the next test
    assert config["Role"] == "arn:aws:iam::000000000000:role/service-role/echo-role"  # the documented default
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", config["LastModified"])
    assert uuid.UUID(config["RevisionId"])
    assert config["PackageType"] == "Zip" and config["State"] == "Active" and config["Architectures"] == ["x86_64"]
    bare = client.get_function(FunctionName="fail")["Configuration"]
    assert "Environment" not in bare  # Lambda leaves it out when there are no variables
    assert bare["CodeSha256"] == config["CodeSha256"]  # same directory, same digest
    assert bare["RevisionId"] != config["RevisionId"]  # a different config
    listed = {f["FunctionName"]: f for f in client.list_functions()["Functions"]}
    assert listed["echo"] == config and "Environment" not in listed["fail"]


def test_revision_and_digest_follow_the_config_and_the_code(tmp_path: Path) -> None:
    (tmp_path / "handlers.py").write_text("def echo(event, context):\n    return event\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "handlers.cpython-311.pyc").write_bytes(b"bytecode")

    def shown(code_dir: Path, **extra: object) -> dict:
        fn = FunctionConfig.from_dict({"FunctionName": "echo", "Handler": "handlers.echo",
                                       "CodeUri": str(code_dir), **extra})
        runtime = FunctionRuntime([fn])
        try:
            info = EngineBackend(runtime, account_id="123456789012").get_function("echo")
            assert info is not None
            return info.configuration
        finally:
            runtime.close()

    first = shown(tmp_path)
    digest = hashlib.sha256(b"handlers.py\0" + str((tmp_path / "handlers.py").stat().st_size).encode() + b"\0"
                            + (tmp_path / "handlers.py").read_bytes())
    assert first["CodeSha256"] == base64.b64encode(digest.digest()).decode()
    again = shown(tmp_path)
    assert {**again, "LastModified": None} == {**first, "LastModified": None}  # deterministic
    copy = tmp_path.parent / (tmp_path.name + "-copy")
    copy.mkdir()
    shutil.copy(tmp_path / "handlers.py", copy / "handlers.py")
    moved = shown(copy)
    assert (moved["CodeSha256"], moved["RevisionId"]) == (first["CodeSha256"], first["RevisionId"])  # not the path
    assert moved["CodeSize"] == len((tmp_path / "handlers.py").read_bytes())  # bytecode left out
    assert shown(tmp_path, Tags={"team": "orders"})["RevisionId"] == first["RevisionId"]  # tags are no config change
    changed = shown(tmp_path, Timeout=30)
    assert changed["RevisionId"] != first["RevisionId"] and changed["CodeSha256"] == first["CodeSha256"]
    role = "arn:aws:iam::123456789012:role/orders-consumer"
    assert shown(tmp_path, Role=role)["Role"] == role
    (copy / "handlers.py").write_text("def echo(event, context):\n    return {}\n")
    edited = shown(copy)
    assert edited["CodeSha256"] != first["CodeSha256"] and edited["RevisionId"] != first["RevisionId"]


def test_unknown_function_is_resource_not_found(client) -> None:
    with pytest.raises(ClientError) as info:
        client.get_function(FunctionName="nope")
    error = info.value.response
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "function:nope" in error["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        client.invoke(FunctionName="echo", Qualifier="prod", Payload=b"{}")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_invoke_request_response(client) -> None:
    out = client.invoke(FunctionName="echo", Payload=json.dumps({"order": 7}))
    assert out["StatusCode"] == 200 and "FunctionError" not in out
    assert out["ExecutedVersion"] == "$LATEST"
    result = json.loads(out["Payload"].read())
    assert result["got"] == {"order": 7} and result["request_id"]


def test_invoke_tail_returns_the_log(client) -> None:
    out = client.invoke(FunctionName="echo", Payload=b'{"k": "v"}', LogType="Tail")
    log = base64.b64decode(out["LogResult"]).decode()
    assert log.startswith("START RequestId:") and 'echo got {"k": "v"}' in log and "REPORT RequestId:" in log


def test_invoke_tail_is_the_last_4kb(client) -> None:
    out = client.invoke(FunctionName="chatty", LogType="Tail")
    log = base64.b64decode(out["LogResult"])
    assert len(log) == 4096
    text = log.decode()
    assert "line 01999" in text and "line 00000" not in text and "REPORT RequestId:" in text
    assert json.loads(out["Payload"].read()) == "done"


def test_handler_error_sets_function_error(client) -> None:
    out = client.invoke(FunctionName="fail", Payload=b'{"id": 3}', LogType="Tail")
    assert out["StatusCode"] == 200
    assert out["FunctionError"] == "Unhandled"
    error = json.loads(out["Payload"].read())
    assert error["errorType"] == "ValueError" and error["errorMessage"] == "bad order 3"
    assert isinstance(error["stackTrace"], list)
    assert "about to fail" in base64.b64decode(out["LogResult"]).decode()


def test_invoke_rejects_bad_payload(client) -> None:
    with pytest.raises(ClientError) as info:
        client.invoke(FunctionName="echo", Payload=b"{not json")
    assert info.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_invoke_event_runs_in_background(client, code: Path) -> None:
    out = client.invoke(FunctionName="recorder", InvocationType="Event", Payload=b'{"async": 1}')
    assert out["StatusCode"] == 202
    target = code / "recorded.jsonl"
    deadline = time.time() + 20
    while time.time() < deadline and not (target.exists() and target.read_text().endswith("\n")):
        time.sleep(0.05)  # the handler creates the file before it writes the line
    assert json.loads(target.read_text().splitlines()[0]) == {"async": 1}


def test_dry_run(client) -> None:
    assert client.invoke(FunctionName="echo", InvocationType="DryRun")["StatusCode"] == 204


def test_zero_reserved_concurrency_throttles(client) -> None:
    with pytest.raises(ClientError) as info:
        client.invoke(FunctionName="throttled", Payload=b"{}")
    error = info.value.response
    assert error["Error"]["Code"] == "TooManyRequestsException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert error["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_get_function_url_config(client, server: str) -> None:
    out = client.get_function_url_config(FunctionName="web")
    assert out["FunctionUrl"] == f"{server}/lambda-url/web/"
    assert out["AuthType"] == "NONE" and out["FunctionArn"].endswith(":function:web")
    with pytest.raises(ClientError) as info:
        client.get_function_url_config(FunctionName="echo")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    listed = client.list_function_url_configs(FunctionName="web")["FunctionUrlConfigs"]
    assert [c["FunctionUrl"] for c in listed] == [out["FunctionUrl"]]
    assert client.list_function_url_configs(FunctionName="echo")["FunctionUrlConfigs"] == []


def test_function_url_event_and_response(client) -> None:
    url = client.get_function_url_config(FunctionName="web")["FunctionUrl"]
    response = httpx.post(url + "orders/7?x=1&x=2", content=b'{"a": 1}',
                          headers={"Content-Type": "application/json", "X-Custom": "yes", "Cookie": "c=1"})
    assert response.status_code == 201
    assert response.headers["x-raw-path"] == "/orders/7"
    assert response.headers["set-cookie"] == "session=abc"
    event = response.json()["event"]
    assert event["version"] == "2.0" and event["rawPath"] == "/orders/7"
    assert event["rawQueryString"] == "x=1&x=2" and event["queryStringParameters"] == {"x": "1,2"}
    assert event["headers"]["x-custom"] == "yes" and event["cookies"] == ["c=1"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["body"] == '{"a": 1}' and event["isBase64Encoded"] is False


def test_function_url_binary_body_and_bare_return(server: str) -> None:
    response = httpx.put(f"{server}/lambda-url/bare", content=b"\x00\x01")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"hello": "world"}


def test_function_url_errors(server: str) -> None:
    assert httpx.get(f"{server}/lambda-url/broken-url/").status_code == 502
    assert httpx.get(f"{server}/lambda-url/echo/").status_code == 404  # no FunctionUrlConfig
    assert httpx.get(f"{server}/lambda-url/missing/").status_code == 404


def test_reserved_concurrency_makes_a_url_single_flight(server: str, code: Path) -> None:
    marker = code / "single.marker"
    marker.unlink(missing_ok=True)
    results: list[httpx.Response] = []
    first = threading.Thread(target=lambda: results.append(httpx.post(f"{server}/lambda-url/single/", timeout=30)))
    first.start()
    deadline = time.time() + 20
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "the first call never started"
    second = httpx.post(f"{server}/lambda-url/single/", timeout=30)
    first.join()
    assert second.status_code == 429
    assert second.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert results[0].status_code == 200 and results[0].text == "slow done"
    # once the first finished, the slot is free again
    marker.unlink()
    assert httpx.post(f"{server}/lambda-url/single/", timeout=30).status_code == 200


def test_metrics_and_health(server: str, client) -> None:
    client.list_functions()
    text = httpx.get(f"{server}/metrics").text
    assert 'triggerfish_api_requests_total{operation="ListFunctions",status="200"}' in text
    assert httpx.get(f"{server}/health").json()["status"] == "ok"


def test_unknown_operation(server: str) -> None:
    response = httpx.post(f"{server}/2015-03-31/functions")
    assert response.status_code == 404
    assert response.headers["x-amzn-ErrorType"] == "UnknownOperationException"


def test_payload_over_6mb_is_request_too_large(client, server: str) -> None:
    just_over = b'"' + b"x" * (6_291_456 - 1) + b'"'
    with pytest.raises(ClientError) as info:
        client.invoke(FunctionName="echo", Payload=just_over)
    assert info.value.response["Error"]["Code"] == "RequestTooLargeException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413

    def chunks():  # no Content-Length: the body is counted as it streams in
        for _ in range(8):
            yield b"x" * 1_000_000

    for path in ("/lambda-url/web/", "/2015-03-31/functions/echo/invocations"):
        response = httpx.post(server + path, content=chunks())
        assert response.status_code == 413
        assert response.headers["x-amzn-ErrorType"] == "RequestTooLargeException"


def test_every_response_has_a_request_id(client) -> None:
    out = client.list_functions()
    assert out["ResponseMetadata"]["RequestId"]
    with pytest.raises(ClientError) as info:
        client.get_function(FunctionName="nope")
    assert info.value.response["ResponseMetadata"]["RequestId"]


def test_function_url_cors(client, server: str) -> None:
    assert client.get_function_url_config(FunctionName="cors")["Cors"]["AllowOrigins"] == ["https://app.example"]
    url = f"{server}/lambda-url/cors/"
    preflight = httpx.options(url, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert preflight.headers["access-control-allow-methods"] == "POST, GET"
    assert preflight.headers["access-control-max-age"] == "300"
    refused = httpx.options(url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in refused.headers
    # the URL's CORS headers replace the function's own "*"
    response = httpx.post(url, headers={"Origin": "https://app.example"})
    assert response.text == "ok"
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["access-control-expose-headers"] == "x-request"
    other = httpx.post(url, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_event_invocations_over_the_limit_queue_one_at_a_time(client, code: Path) -> None:
    for n in range(3):
        assert client.invoke(FunctionName="queued", InvocationType="Event", Payload=json.dumps({"n": n}))["StatusCode"] == 202
    target = code / "queued.jsonl"
    deadline = time.time() + 30
    while time.time() < deadline and (not target.exists() or target.read_text().count("\n") < 3):
        time.sleep(0.05)
    runs = sorted(json.loads(line) for line in target.read_text().splitlines())
    assert [n for n, _, _ in runs] == [0, 1, 2]  # none dropped
    spans = sorted((start, end) for _, start, end in runs)
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))  # never two at once
