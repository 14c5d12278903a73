"""Deeply nested JSON over real HTTP to the control API: Create, Update and Invoke answer Lambda's 400
(InvalidRequestContentException) instead of a 500 and a traceback; a function URL whose function
returns JSON too deep to read answers 502 as for any unusable response; the fencing webhook 400."""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Iterator

import httpx
import pytest

from fencing_support import WEBHOOK_PASSWORD, WEBHOOK_USER
from triggerfish import App
from triggerfish.api.app import create_app
from triggerfish.api.engine import EngineBackend
from triggerfish.api.server import ApiServer
from triggerfish.functions.config import FunctionConfig
from triggerfish.functions.runtime import FunctionRuntime
from triggerfish.json_input import MAX_DEPTH

DEEP = 100_000
ESM = "/2015-03-31/event-source-mappings"

HANDLERS = '''
def echo(event, context):
    return {"got": event}

def deep(event, context):
    out = 1
    for _ in range(int(event["rawQueryString"] or 0)):
        out = [out]
    return out
'''


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("bounded")
    (root / "handlers.py").write_text(textwrap.dedent(HANDLERS))

    def fn(name: str, handler: str) -> FunctionConfig:
        return FunctionConfig.from_dict({"FunctionName": name, "Handler": f"handlers.{handler}", "CodeUri": str(root),
                                         "FunctionUrlConfig": {"AuthType": "NONE"}})

    with App([fn("echo", "echo"), fn("deep", "deep")], [], state=root / "state.db", port=0) as app:
        assert app.url is not None
        yield app.url


def assert_invalid_content(response: httpx.Response, *prefix: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    message = response.json()["message"]
    assert message == ": ".join(["Could not parse request body into json", *prefix,
                                 f"JSON nesting depth exceeds the maximum allowed ({MAX_DEPTH})"])


@pytest.mark.parametrize("body", [deep_array(DEEP), deep_object(DEEP), deep_array(MAX_DEPTH + 1)],
                         ids=["array", "object", "just-over"])
def test_create_update_and_invoke_refuse_deep_json_with_lambdas_400(stack: str, body: bytes,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    headers = {"content-type": "application/json"}
    with caplog.at_level(logging.ERROR), httpx.Client(base_url=stack, timeout=60) as http:
        assert_invalid_content(http.post(f"{ESM}/", content=body, headers=headers))
        assert_invalid_content(http.put(f"{ESM}/6f1c2a4e-0000-4000-8000-00000000abcd", content=body, headers=headers))
        assert_invalid_content(http.post("/2015-03-31/functions/echo/invocations", content=body, headers=headers),
                               "Could not parse payload into json")
        # the server is fine afterwards, and logged no traceback
        ok = http.post("/2015-03-31/functions/echo/invocations", content=b'{"k": 1}', headers=headers)
        assert ok.status_code == 200 and ok.json() == {"got": {"k": 1}}
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]


def test_deep_but_allowed_payloads_still_work(stack: str) -> None:
    with httpx.Client(base_url=stack, timeout=60) as http:
        out = http.post("/2015-03-31/functions/echo/invocations", content=deep_array(MAX_DEPTH - 1))
        assert out.status_code == 200, out.text
        assert out.content.startswith(b'{"got": [[[')


def test_function_url_whose_function_returns_too_deep_json_is_a_502(stack: str) -> None:
    with httpx.Client(timeout=60) as http:
        fine = http.get(f"{stack}/lambda-url/deep/?3")
        assert fine.status_code == 200 and fine.json() == [[[1]]]
        deep = http.get(f"{stack}/lambda-url/deep/?900")
        assert deep.status_code == 502 and deep.json() == {"Message": "Internal Server Error"}
        # the body of a request is a string to the function, however deep it is
        echoed = http.post(f"{stack}/lambda-url/echo/", content=deep_array(DEEP), headers={"content-type": "application/json"})
        assert echoed.status_code == 200 and echoed.json()["got"]["body"] == deep_array(DEEP).decode()


@pytest.mark.timeout(90)
def test_fencing_webhook_refuses_deep_json_with_400(make_world) -> None:
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    function = FunctionConfig.from_dict({
        "FunctionName": "site-fencing", "Handler": "triggerfish.functions.fencing.handler", "Timeout": 30,
        "Environment": {"Variables": world.env}, "FunctionUrlConfig": {"AuthType": "NONE"},
    })
    runtime = FunctionRuntime([function])
    server = ApiServer(create_app(EngineBackend(runtime)), port=0)
    base = server.start()
    try:
        response = httpx.post(f"{base}/lambda-url/site-fencing/", content=deep_object(DEEP), timeout=60,
                              headers={"content-type": "application/json"}, auth=(WEBHOOK_USER, WEBHOOK_PASSWORD))
        assert response.status_code == 400, response.text
        assert "nesting depth exceeds the maximum allowed" in json.dumps(response.json())
        assert world.sites_left() == ["site-a", "site-b"]
    finally:
        server.stop()
        runtime.close()
