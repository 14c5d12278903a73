"""The tagging operations: TagResource, UntagResource, ListTags (``/2017-03-31/tags/{ARN}``).

Event source mappings and functions are taggable by ARN, as in Lambda; a function's version or alias is
not. Tags given when a mapping is created (``Tags``), or declared in the config file, are the resource's
tags until TagResource/UntagResource change them; from then on the catalog holds the whole set (the state
file, or in a fleet the configs topic every replica reads), so the tags survive restarts.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from triggerfish.api.backend import Backend, TaggedResource
from triggerfish.api.names import function_arn, mapping_arn
from triggerfish.api.wire import json_object, json_response
from triggerfish.errors import InvalidParameterError, NotFoundError, ValidationError
from triggerfish.tags import check_count, check_keys, check_tags

# botocore's TaggableResource, for the two kinds triggerfish has
_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?:function:(?P<function>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?"
    r"|event-source-mapping:(?P<uuid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}))"
)


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def resource_of(backend: Backend, arn: str) -> TaggedResource:
    """The resource an ARN names on this server; ResourceNotFoundException for another region or account."""
    match = _ARN.fullmatch(arn)
    if match is None:
        raise ValidationError(
            "", f"1 validation error detected: Value '{arn[:256]}' at 'resource' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: an event-source-mapping or function ARN")
    if match["qualifier"]:
        raise InvalidParameterError(
            "", "Tags are not supported on function versions or aliases.", "tag the unqualified function ARN")
    if (match["region"], match["account"]) != (backend.region, backend.account_id):
        raise NotFoundError("The resource you requested does not exist.", arn)
    # one spelling of each ARN, so the tags are found however a client writes it
    if match["function"]:
        name = match["function"]
        return TaggedResource("function", name, function_arn(backend.region, backend.account_id, name))
    uuid = match["uuid"].lower()
    return TaggedResource("event-source-mapping", uuid, mapping_arn(backend.region, backend.account_id, uuid))


async def list_tags(request: Request) -> Response:
    backend = _backend(request)
    tags = await backend.resource_tags(resource_of(backend, request.path_params["resource"]))
    return json_response({"Tags": tags})


async def tag_resource(request: Request) -> Response:
    backend = _backend(request)
    resource = resource_of(backend, request.path_params["resource"])
    body = await json_object(request)
    if "Tags" not in body:
        raise ValidationError("", "1 validation error detected: Value null at 'tags' failed to satisfy constraint: "
                                  "Member must not be null")
    new = check_tags(body["Tags"])
    tags = {**await backend.resource_tags(resource), **new}
    check_count(len(tags))
    await backend.set_resource_tags(resource, tags)
    return Response(status_code=204)


async def untag_resource(request: Request) -> Response:
    backend = _backend(request)
    resource = resource_of(backend, request.path_params["resource"])
    keys = request.query_params.getlist("tagKeys")
    if not keys:
        raise ValidationError("", "1 validation error detected: Value null at 'tagKeys' failed to satisfy "
                                  "constraint: Member must not be null")
    gone = set(check_keys(keys))
    tags = await backend.resource_tags(resource)
    await backend.set_resource_tags(resource, {k: v for k, v in tags.items() if k not in gone})
    return Response(status_code=204)
