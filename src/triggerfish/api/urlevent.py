"""The function-URL protocol: an HTTP request as Lambda's payload-2.0 event, and back.

Pure functions, no I/O: ``request_event`` builds the event a handler behind a function URL
receives, ``http_response`` turns what the handler returned into the HTTP response Lambda would
send (a ``statusCode``/``headers``/``body`` object, or any other JSON value as a 200 JSON body).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from triggerfish.errors import FunctionResponseError

# Bodies of these media types reach the handler as text; anything else is base64 (isBase64Encoded).
_TEXT_TYPES = ("text/",)
_TEXT_SUBTYPES = ("json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "csv")


@dataclass(frozen=True)
class UrlRequest:
    """What arrived on the function URL, already stripped of the URL's own path prefix."""

    method: str
    raw_path: str
    raw_query_string: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"


@dataclass(frozen=True)
class _UrlResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def is_text(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    if media.startswith(_TEXT_TYPES):
        return True
    subtype = media.rpartition("/")[2]
    return any(subtype == t or subtype.endswith("+" + t) for t in _TEXT_SUBTYPES)


def request_event(
    request: UrlRequest,
    *,
    url_id: str,
    domain_name: str,
    account_id: str,
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Lambda's function-URL event (payload format 2.0) for ``request``."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        lname = name.lower()
        if lname == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        # Repeated headers are joined with commas, as Lambda does.
        headers[lname] = f"{headers[lname]},{value}" if lname in headers else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(request.raw_query_string, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    moment = time.time() if now is None else now
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.raw_path or "/",
        "rawQueryString": request.raw_query_string,
        "headers": headers,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": "anonymous",
        "apiId": url_id,
        "domainName": domain_name,
        "domainPrefix": domain_name.split(".", 1)[0],
        "http": {
            "method": request.method.upper(),
            "path": request.raw_path or "/",
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id or str(uuid.uuid4()),
        "routeKey": "$default",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(moment)),
        "timeEpoch": int(moment * 1000),
    }
    if request.body:
        if is_text(headers.get("content-type", "")):
            try:
                event["body"] = request.body.decode("utf-8")
                event["isBase64Encoded"] = False
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(request.body).decode("ascii")
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


def http_response(result: Any) -> _UrlResponse:
    """Map a handler's return value (already JSON-decoded) to the HTTP response Lambda sends."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # Any other value is the body of a 200 JSON response; a string is sent as is.
        if result is None:
            body = b""
        elif isinstance(result, str):
            body = result.encode("utf-8")
        else:
            body = json.dumps(result).encode("utf-8")
        return _UrlResponse(200, [("content-type", "application/json")], body)
    status = result["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise FunctionResponseError(f"statusCode must be an integer HTTP status, got {result['statusCode']!r}")
    headers: list[tuple[str, str]] = []
    raw_headers = result.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise FunctionResponseError("headers must be an object of header names to values")
    for name, value in raw_headers.items():
        headers.append((str(name).lower(), _header_text(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in _as_list(values):
            headers.append((str(name).lower(), _header_text(value)))
    for cookie in _as_list(result.get("cookies") or []):
        headers.append(("set-cookie", str(cookie)))
    if not any(name == "content-type" for name, _ in headers):
        headers.append(("content-type", "application/json"))
    raw_body = result.get("body")
    if raw_body is None:
        body = b""
    elif isinstance(raw_body, str):
        if result.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw_body, validate=True)
            except ValueError as exc:
                raise FunctionResponseError("isBase64Encoded is true but body is not valid base64") from exc
        else:
            body = raw_body.encode("utf-8")
    else:
        body = json.dumps(raw_body).encode("utf-8")
    return _UrlResponse(status, headers, body)


def _as_list(value: Any) -> Iterable[Any]:
    return value if isinstance(value, list) else [value]


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
