"""The function operations: GetFunction, GetFunctionConfiguration, ListFunctions, GetFunctionConcurrency, Invoke.

Functions are declared in the YAML file; the API reads them and invokes them. ``Invoke`` follows
Lambda: ``RequestResponse`` answers the handler's payload with 200 (``X-Amz-Function-Error:
Unhandled`` when it failed), ``Event`` answers 202 at once and runs it in the background, ``DryRun``
answers 204; ``LogType: Tail`` returns the last 4 KB of the invocation's log base64-encoded in
``X-Amz-Log-Result``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from triggerfish.api.backend import Backend, FunctionInfo, InvokeOutcome, TaggedResource
from triggerfish.api.concurrency import ConcurrencyLimits
from triggerfish.api.metrics import INVOCATIONS
from triggerfish.api.names import check_latest, function_arn, parse_function_name
from triggerfish.api.paging import page
from triggerfish.api.wire import json_response, query_int
from triggerfish.errors import (
    InvalidParameterError,
    InvalidRequestContentError,
    NotFoundError,
    RequestTooLargeError,
    ThrottledError,
)
from triggerfish.json_input import loads

_log = logging.getLogger("triggerfish.api")

_SYNC_PAYLOAD_LIMIT = 6_291_456
_ASYNC_PAYLOAD_LIMIT = 1_048_576
_LOG_TAIL_BYTES = 4096
#: Lambda serves at most 50 functions a page.
_PAGE_LIMIT = 50


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def find_function(request: Request) -> FunctionInfo:
    """The function named in the path (name or ARN, optional ``Qualifier``), or NotFoundError."""
    backend = _backend(request)
    ref = parse_function_name(request.path_params["name"], request.query_params.get("Qualifier"))
    arn = function_arn(backend.region, backend.account_id, ref.name)
    check_latest(ref, arn)
    function = backend.get_function(ref.name)
    if function is None:
        raise NotFoundError(f"Function not found: {arn}", arn)
    return function


async def get_function(request: Request) -> Response:
    function = find_function(request)
    out: dict[str, Any] = {"Configuration": function.configuration}
    if function.code_location:
        out["Code"] = {"RepositoryType": "S3", "Location": function.code_location}
    tags = await _backend(request).resource_tags(
        TaggedResource("function", function.name, function.configuration["FunctionArn"]))
    if tags:
        out["Tags"] = tags
    if function.reserved_concurrency is not None:
        out["Concurrency"] = {"ReservedConcurrentExecutions": function.reserved_concurrency}
    return json_response(out)


async def get_function_configuration(request: Request) -> Response:
    return json_response(find_function(request).configuration)


async def get_function_concurrency(request: Request) -> Response:
    function = find_function(request)
    if function.reserved_concurrency is None:
        return json_response({})
    return json_response({"ReservedConcurrentExecutions": function.reserved_concurrency})


async def list_functions(request: Request) -> Response:
    max_items = query_int(request, "MaxItems", 1, 10000)
    functions = _backend(request).list_functions()
    items, next_marker = page(
        functions, key=lambda f: f.name, marker=request.query_params.get("Marker") or None, max_items=max_items,
        page_limit=_PAGE_LIMIT,
    )
    out: dict[str, Any] = {"Functions": [f.configuration for f in items]}
    if next_marker:
        out["NextMarker"] = next_marker
    return json_response(out)


def _log_tail(log_text: str) -> str:
    """Lambda's X-Amz-Log-Result: base64 of the last 4 KB of the invocation's log (START to REPORT)."""
    return base64.b64encode(log_text.encode("utf-8")[-_LOG_TAIL_BYTES:]).decode("ascii")


def _check_payload(payload: bytes, limit: int) -> bytes:
    if len(payload) > limit:
        raise RequestTooLargeError(f"Request must be smaller than {limit} bytes for the InvokeFunction operation", limit)
    if not payload.strip():
        return b"{}"
    try:
        loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestContentError(f"Could not parse request body into json: Could not parse payload into json: {exc}") from None
    return payload


async def run_invocation(
    backend: Backend, limits: ConcurrencyLimits, function: FunctionInfo, payload: bytes, *, wait: bool = False
) -> InvokeOutcome:
    """Invoke within the function's reserved concurrency; over it: 429, or wait for a slot (async).

    The runtime's slots are shared with the engine's batches, so a synchronous call also gets 429
    when mapping batches hold them all (``wait=False`` all the way down), rather than queueing.
    """
    try:
        async with limits.slot(function.name, function.reserved_concurrency, wait=wait):
            outcome = await backend.invoke(function.name, payload, wait=wait)
    except ThrottledError:
        INVOCATIONS.labels(function.name, "throttled").inc()
        raise
    INVOCATIONS.labels(function.name, "error" if outcome.function_error else "ok").inc()
    return outcome


async def invoke(request: Request) -> Response:
    backend = _backend(request)
    limits: ConcurrencyLimits = request.app.state.limits
    function = find_function(request)
    invocation_type = request.headers.get("x-amz-invocation-type", "RequestResponse")
    log_type = request.headers.get("x-amz-log-type", "None")
    if invocation_type not in ("RequestResponse", "Event", "DryRun"):
        raise InvalidParameterError(
            "",
            f"Unsupported InvocationType '{invocation_type}': use RequestResponse, Event or DryRun."
        )
    if log_type not in ("None", "Tail"):
        raise InvalidParameterError("", f"Unsupported LogType '{log_type}': use None or Tail.")
    headers = {"X-Amz-Executed-Version": "$LATEST"}
    if invocation_type == "DryRun":
        return Response(status_code=204, headers=headers)
    raw = await request.body()
    if invocation_type == "Event":
        payload = _check_payload(raw, _ASYNC_PAYLOAD_LIMIT)
        if function.reserved_concurrency == 0:
            raise ThrottledError("Rate Exceeded.")
        _start_background(request, run_invocation(backend, limits, function, payload, wait=True), function.name)
        request_id = str(uuid.uuid4())
        return Response(status_code=202, headers={"x-amzn-RequestId": request_id})
    payload = _check_payload(raw, _SYNC_PAYLOAD_LIMIT)
    outcome = await run_invocation(backend, limits, function, payload)
    if outcome.function_error:
        headers["X-Amz-Function-Error"] = outcome.function_error
    if log_type == "Tail":
        headers["X-Amz-Log-Result"] = _log_tail(outcome.log)
    if outcome.request_id:
        headers["x-amzn-RequestId"] = outcome.request_id
    return Response(outcome.payload, status_code=200, headers=headers, media_type="application/json")


def _start_background(request: Request, coroutine: Any, name: str) -> None:
    tasks: set[asyncio.Task[Any]] = request.app.state.background
    task = asyncio.get_running_loop().create_task(coroutine)
    tasks.add(task)

    def done(finished: asyncio.Task[Any]) -> None:
        tasks.discard(finished)
        if not finished.cancelled() and finished.exception() is not None:
            _log.warning("asynchronous invocation of %s failed: %s", name, finished.exception())

    task.add_done_callback(done)
