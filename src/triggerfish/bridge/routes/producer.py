"""Producer routes: ``POST /topics/{topic}`` and ``POST /topics/{topic}/partitions/{partition}``."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from triggerfish.bridge import formats
from triggerfish.bridge.errors import unsupported_body
from triggerfish.bridge.operations import operation
from triggerfish.bridge.services import Services
from triggerfish.bridge.wire import bool_param, empty, json_response, path_int
from triggerfish.errors import NotFoundError, UnavailableError


async def _send_to_topic(request: Request, s: Services) -> Response:
    return await _send(request, s, None)


async def _send_to_partition(request: Request, s: Services) -> Response:
    return await _send(request, s, path_int(request, "partitionid"))


async def _send(request: Request, s: Services, partition: int | None) -> Response:
    if s.producer is None:
        raise UnavailableError("Producer is disabled in config. To enable producer update http.producer.enabled to true")
    fmt = formats.format_of(request.headers.get("content-type"))
    if fmt is None:
        raise unsupported_body()
    is_async = bool_param(request.query_params.get("async"), "async")
    topic = request.path_params["topicname"]
    records = formats.parse_records(await request.body(), fmt, to_partition=partition is not None)
    count = s.producer.known(topic)
    if count is None or (partition is not None and partition >= count):
        count = await run_in_threadpool(s.producer.partitions, topic)
    if partition is not None and not 0 <= partition < count:
        raise NotFoundError("The specified topic partition was not found.", f"{topic}-{partition}")
    results = await s.producer.send(topic, records, partition, wait=not is_async)
    if is_async:
        return empty(204)
    return json_response({"offsets": results})


ROUTES = [
    Route("/topics/{topicname}", operation("send", _send_to_topic), methods=["POST"]),
    Route("/topics/{topicname}/partitions/{partitionid}", operation("sendToPartition", _send_to_partition),
          methods=["POST"]),
]
