"""Function URLs: ``GetFunctionUrlConfig`` and the URLs themselves.

A function with ``FunctionUrlConfig`` in the YAML is reachable at
``http://HOST:PORT/lambda-url/<FunctionName>/<any path>``; the handler sees ``rawPath`` without the
``/lambda-url/<FunctionName>`` prefix, as it would behind ``https://<id>.lambda-url.<region>.on.aws``.
``ReservedConcurrentExecutions`` is enforced: calls over it get 429 at once.

A request a browser sends from another site (an ``Origin`` other than the URL's own) is refused
unless the URL's ``Cors`` allows that origin. ``AuthType: AWS_IAM`` URLs always need a valid SigV4
signature made with the server's URL key (``create_app(url_key=...)``); with no key, they refuse
every request and say how to configure one.
"""

from __future__ import annotations

import json
import logging
import time

from starlette.requests import Request
from starlette.responses import Response

from triggerfish.api import cors, sigv4
from triggerfish.api.backend import Backend, FunctionInfo
from triggerfish.api.errors import NOT_FOUND_MESSAGE, lambda_response
from triggerfish.api.functions import find_function, run_invocation
from triggerfish.api.metrics import URL_REQUESTS
from triggerfish.api.names import function_arn
from triggerfish.api.trust import URL_PREFIX
from triggerfish.api.urlevent import UrlRequest, http_response, request_event
from triggerfish.api.wire import json_response
from triggerfish.errors import AuthenticationError, FunctionResponseError, NotFoundError, ThrottledError
from triggerfish.json_input import loads

_log = logging.getLogger("triggerfish.api")

_NO_KEY = ("function URL {name} has AuthType AWS_IAM but triggerfish has no access key to check signatures "
           "with: set TRIGGERFISH_ACCESS_KEY_ID and TRIGGERFISH_SECRET_ACCESS_KEY, or run with --require-auth "
           "--auth-secret REF, then sign requests with that key (or set AuthType: NONE)")


def _function_url(base_url: str, name: str) -> str:
    return f"{base_url.rstrip('/')}{URL_PREFIX}/{name}/"


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch or time.time()))


def _url_config(request: Request, function: FunctionInfo) -> dict[str, object]:
    backend: Backend = request.app.state.backend
    out: dict[str, object] = {
        "FunctionUrl": _function_url(str(request.base_url), function.name),
        "FunctionArn": function_arn(backend.region, backend.account_id, function.name),
        "AuthType": function.url_auth_type,
        "CreationTime": _iso(function.created),
        "LastModifiedTime": _iso(function.created),
        "InvokeMode": function.url_invoke_mode,
    }
    if function.url_cors:
        out["Cors"] = function.url_cors
    return out


async def get_function_url_config(request: Request) -> Response:
    function = find_function(request)
    if function.url_auth_type is None:
        raise NotFoundError(
            f"The resource you requested does not exist: function {function.name} has no FunctionUrlConfig "
            "(add FunctionUrlConfig: {AuthType: NONE} to it in the YAML file).",
            function.name,
        )
    return json_response(_url_config(request, function))


async def list_function_url_configs(request: Request) -> Response:
    """triggerfish runs only $LATEST, so a function has at most one URL."""
    function = find_function(request)
    configs = [_url_config(request, function)] if function.url_auth_type is not None else []
    return json_response({"FunctionUrlConfigs": configs})


def _plain_error(status: int, message: str) -> Response:
    return Response(json.dumps({"Message": message}), status_code=status, media_type="application/json")


async def serve_url(request: Request) -> Response:
    """A request to a function URL: payload-2.0 event in, the handler's answer out."""
    name = request.path_params["name"]
    backend: Backend = request.app.state.backend
    function: FunctionInfo | None = backend.get_function(name)
    if function is None or function.url_auth_type is None:
        URL_REQUESTS.labels(name if function else "-", "404").inc()
        return _plain_error(404, NOT_FOUND_MESSAGE)
    response = await _invoke_url(request, backend, function)
    URL_REQUESTS.labels(name, str(response.status_code)).inc()
    return response


async def _invoke_url(request: Request, backend: Backend, function: FunctionInfo) -> Response:
    raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    prefix = f"{URL_PREFIX}/{request.path_params['name']}"
    path = raw_path[len(prefix):] if raw_path.startswith(prefix) else request.url.path[len(prefix):]
    body = await request.body()
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]]
    query = request.scope.get("query_string", b"").decode("latin-1")
    lowered = {k.lower(): v for k, v in headers}
    origin = lowered.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{lowered.get('host', '')}" \
            and not cors.allows(function.url_cors, origin):
        return _plain_error(403, f"Origin {origin} may not call function URL {function.name}: add it to "
                                 "FunctionUrlConfig.Cors.AllowOrigins to let pages on that site call it")
    if function.url_auth_type == "AWS_IAM":
        key: sigv4.AccessKey | None = request.app.state.url_key
        if key is None:
            return _plain_error(403, _NO_KEY.format(name=function.name))
        try:
            sigv4.verify(key, method=request.method, raw_path=raw_path, query_string=query, headers=headers,
                         body=body)
        except AuthenticationError as exc:
            return _plain_error(403, exc.message)
    if function.url_cors and cors.is_preflight(request.method, lowered):
        return Response(status_code=200, headers=dict(cors.preflight_headers(function.url_cors, lowered)))
    client = request.client
    event = request_event(
        UrlRequest(
            method=request.method,
            raw_path=path or "/",
            raw_query_string=query,
            headers=headers,
            body=body,
            source_ip=client.host if client else "127.0.0.1",
            protocol=f"HTTP/{request.scope.get('http_version', '1.1')}",
        ),
        url_id=function.name,
        domain_name=request.headers.get("host", "127.0.0.1"),
        account_id=backend.account_id,
    )
    try:
        outcome = await run_invocation(
            backend, request.app.state.limits, function, json.dumps(event).encode("utf-8")
        )
    except (ThrottledError, NotFoundError) as exc:  # throttled (429), or the function vanished meanwhile
        return lambda_response(exc)
    if outcome.function_error:
        return _plain_error(502, "Internal Server Error")
    try:
        result = loads(outcome.payload) if outcome.payload.strip() else None
        mapped = http_response(result)
    except (ValueError, FunctionResponseError) as exc:
        _log.warning("function %s returned a response a function URL cannot send: %s", function.name, exc)
        return _plain_error(502, "Internal Server Error")
    out_headers = mapped.headers
    if function.url_cors:
        out_headers = cors.apply(function.url_cors, lowered.get("origin"), out_headers)
    response = Response(mapped.body, status_code=mapped.status)
    response.raw_headers = [(k.encode("latin-1", "replace"), v.encode("latin-1", "replace")) for k, v in out_headers]
    response.raw_headers.append((b"content-length", str(len(mapped.body)).encode()))
    return response
