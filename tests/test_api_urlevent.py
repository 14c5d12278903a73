"""Function-URL protocol: the payload-2.0 event and the handler-return-to-HTTP mapping."""

from __future__ import annotations

import base64
import json

import pytest

from triggerfish.api.urlevent import UrlRequest, http_response, is_text, request_event
from triggerfish.errors import FunctionResponseError


def event_for(**changes) -> dict:
    request = dict(
        method="post",
        raw_path="/hooks/alert",
        raw_query_string="a=1&a=2&b=x%20y",
        headers=[("Host", "127.0.0.1:9000"), ("Content-Type", "application/json"), ("X-Multi", "one"),
                 ("X-Multi", "two"), ("Cookie", "s=1; t=2"), ("User-Agent", "alertmanager/0.27")],
        body=b'{"alerts": []}',
    )
    request.update(changes)
    return request_event(UrlRequest(**request), url_id="fence", domain_name="127.0.0.1:9000",
                         account_id="000000000000", request_id="rid-1", now=1_700_000_000.5)


def test_event_has_lambda_payload_2_fields() -> None:
    event = event_for()
    assert event["version"] == "2.0"
    assert event["routeKey"] == "$default"
    assert event["rawPath"] == "/hooks/alert"
    assert event["rawQueryString"] == "a=1&a=2&b=x%20y"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y"}
    assert event["headers"]["content-type"] == "application/json"
    assert event["headers"]["x-multi"] == "one,two"
    assert all(name == name.lower() for name in event["headers"])
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["s=1", "t=2"]
    http = event["requestContext"]["http"]
    assert http == {"method": "POST", "path": "/hooks/alert", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                    "userAgent": "alertmanager/0.27"}
    assert event["requestContext"]["requestId"] == "rid-1"
    assert event["requestContext"]["timeEpoch"] == 1_700_000_000_500
    assert event["requestContext"]["time"] == "14/Nov/2023:22:13:20 +0000"
    assert event["body"] == '{"alerts": []}'
    assert event["isBase64Encoded"] is False


def test_binary_body_is_base64() -> None:
    event = event_for(headers=[("content-type", "application/octet-stream")], body=b"\x00\xff")
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\xff"


def test_no_body_no_query() -> None:
    event = event_for(method="GET", raw_query_string="", body=b"")
    assert "body" not in event and "queryStringParameters" not in event
    assert event["isBase64Encoded"] is False


@pytest.mark.parametrize("ctype,text", [("text/plain; charset=utf-8", True), ("application/json", True),
                                        ("application/vnd.api+json", True), ("application/xml", True),
                                        ("image/png", False), ("", False)])
def test_is_text(ctype: str, text: bool) -> None:
    assert is_text(ctype) is text


def test_structured_response() -> None:
    out = http_response({"statusCode": 201, "headers": {"X-Id": "7", "Content-Type": "text/plain"},
                         "cookies": ["a=1", "b=2"], "body": "made"})
    assert out.status == 201
    assert ("x-id", "7") in out.headers and ("content-type", "text/plain") in out.headers
    assert [v for k, v in out.headers if k == "set-cookie"] == ["a=1", "b=2"]
    assert out.body == b"made"


def test_base64_response_body_is_decoded() -> None:
    out = http_response({"statusCode": 200, "body": base64.b64encode(b"\x89PNG").decode(), "isBase64Encoded": True})
    assert out.body == b"\x89PNG"


def test_bare_value_is_a_json_200() -> None:
    out = http_response({"message": "hi"})
    assert out.status == 200 and ("content-type", "application/json") in out.headers
    assert json.loads(out.body) == {"message": "hi"}
    assert http_response("plain").body == b"plain"
    assert http_response(None).body == b""
    assert http_response([1, 2]).body == b"[1, 2]"


def test_status_code_without_body_defaults_to_json_type() -> None:
    out = http_response({"statusCode": 204})
    assert out.status == 204 and out.body == b""


@pytest.mark.parametrize("bad", [{"statusCode": "abc"}, {"statusCode": 99}, {"statusCode": True},
                                 {"statusCode": 200, "headers": ["x"]},
                                 {"statusCode": 200, "body": "%%%", "isBase64Encoded": True}])
def test_invalid_responses_are_refused(bad: dict) -> None:
    with pytest.raises(FunctionResponseError):
        http_response(bad)
