"""Topic routes: list and describe topics, partitions and offsets; ``POST /admin/topics`` creates one."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from triggerfish.bridge import formats
from triggerfish.bridge.formats import Format
from triggerfish.bridge.operations import operation
from triggerfish.bridge.services import Services
from triggerfish.bridge.wire import CONTROL_TYPES, empty, json_response, path_int, read_body
from triggerfish.errors import UnprocessableError


async def _list_topics(request: Request, s: Services) -> Response:
    return json_response(await s.executor.run(s.topics.names))


async def _get_topic(request: Request, s: Services) -> Response:
    return json_response(await s.executor.run(s.topics.metadata, request.path_params["topicname"]))


async def _list_partitions(request: Request, s: Services) -> Response:
    return json_response(await s.executor.run(s.topics.partitions, request.path_params["topicname"]))


async def _get_partition(request: Request, s: Services) -> Response:
    p = path_int(request, "partitionid")
    return json_response(await s.executor.run(s.topics.partition, request.path_params["topicname"], p))


async def _get_offsets(request: Request, s: Services) -> Response:
    p = path_int(request, "partitionid")
    return json_response(await s.executor.run(s.topics.offsets, request.path_params["topicname"], p))


async def _create_topic(request: Request, s: Services) -> Response:
    body = await read_body(request, (Format.JSON.content_type, *CONTROL_TYPES), required=False)
    if not body.strip():
        raise UnprocessableError("Request body must be a JSON object with topic_name")
    doc = formats.parse_object(body, {"topic_name": "string", "partitions_count": "int|null",
                                      "replication_factor": "int|null"}, required=("topic_name",))
    await s.executor.run(s.topics.create, doc["topic_name"], doc.get("partitions_count"), doc.get("replication_factor"))
    return empty(201)


_P = "/topics/{topicname}/partitions"
ROUTES = [
    Route("/topics", operation("listTopics", _list_topics), methods=["GET"]),
    Route("/topics/{topicname}", operation("getTopic", _get_topic), methods=["GET"]),
    Route(_P, operation("listPartitions", _list_partitions), methods=["GET"]),
    Route(_P + "/{partitionid}", operation("getPartition", _get_partition), methods=["GET"]),
    Route(_P + "/{partitionid}/offsets", operation("getOffsets", _get_offsets), methods=["GET"]),
    Route("/admin/topics", operation("createTopic", _create_topic), methods=["POST"]),
]
