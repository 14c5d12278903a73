"""The event-source-mapping operations: Create, Get, List, Update, Delete (``/2015-03-31/event-source-mappings``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from triggerfish.api.backend import Backend
from triggerfish.api.names import check_latest, function_arn, parse_function_name
from triggerfish.api.paging import page
from triggerfish.api.trust import Trust, check_secret_references
from triggerfish.api.wire import json_object, json_response, query_int
from triggerfish.errors import InvalidParameterError, NotFoundError, ValidationError
from triggerfish.tags import check_tags

#: Lambda serves at most 100 mappings a page, whatever MaxItems asks for.
_PAGE_LIMIT = 100


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def _resolve_function(backend: Backend, value: Any) -> str:
    """The bare name of an existing function named by name or ARN."""
    if value is None:
        raise ValidationError(
            "",
            "1 validation error detected: Value null at 'functionName' failed to satisfy constraint: "
            "Member must not be null"
        )
    if not isinstance(value, str):
        raise InvalidParameterError("", "FunctionName must be a string: a function name or ARN.")
    ref = parse_function_name(value)
    arn = function_arn(backend.region, backend.account_id, ref.name)
    check_latest(ref, arn)
    if backend.get_function(ref.name) is None:
        raise NotFoundError(f"Function not found: {arn}", arn)
    return ref.name


def _check_references(request: Request, body: dict[str, Any]) -> None:
    trust: Trust = request.app.state.trust
    check_secret_references(body, trust.secrets)


async def create(request: Request) -> Response:
    backend = _backend(request)
    body = await json_object(request)
    _check_references(request, body)
    if body.get("Tags") is not None:
        body["Tags"] = check_tags(body["Tags"])
    body["FunctionName"] = _resolve_function(backend, body.get("FunctionName"))
    mapping = await backend.create_mapping(body)
    return json_response(mapping, 202)


async def get(request: Request) -> Response:
    mapping = await _backend(request).get_mapping(request.path_params["uuid"])
    return json_response(mapping)


async def list_(request: Request) -> Response:
    backend = _backend(request)
    max_items = query_int(request, "MaxItems", 1, 10000)
    function_name = request.query_params.get("FunctionName") or None
    if function_name:
        function_name = parse_function_name(function_name).name
    mappings = await backend.list_mappings(function_name, request.query_params.get("EventSourceArn") or None)
    items, next_marker = page(
        mappings, key=lambda m: m["UUID"], marker=request.query_params.get("Marker") or None, max_items=max_items,
        page_limit=_PAGE_LIMIT,
    )
    out: dict[str, Any] = {"EventSourceMappings": items}
    if next_marker:
        out["NextMarker"] = next_marker
    return json_response(out)


async def update(request: Request) -> Response:
    backend = _backend(request)
    body = await json_object(request)
    _check_references(request, body)
    if "FunctionName" in body:
        body["FunctionName"] = _resolve_function(backend, body["FunctionName"])
    # Create-only fields are refused by MappingConfig.updated, naming the field.
    mapping = await backend.update_mapping(request.path_params["uuid"], body)
    return json_response(mapping, 202)


async def delete(request: Request) -> Response:
    mapping = await _backend(request).delete_mapping(request.path_params["uuid"])
    return json_response(mapping, 202)
