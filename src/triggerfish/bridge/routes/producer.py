"""Producer routes: ``POST /topics/{topic}`` and ``POST /topics/{topic}/partitions/{partition}``."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from triggerfish.bridge import body_json, formats, produce_body
from triggerfish.bridge.errors import StrimziServerError, unsupported_body
from triggerfish.bridge.operations import operation
from triggerfish.bridge.services import Services
from triggerfish.bridge.validation import check_body
from triggerfish.bridge.wire import bool_param, empty, json_response, path_int
from triggerfish.errors import InvalidRequestError, UnavailableError, UnsupportedMediaTypeError


async def _send_to_topic(request: Request, s: Services) -> Response:
    return await _send(request, s, None)


async def _send_to_partition(request: Request, s: Services) -> Response:
    return await _send(request, s, path_int(request, "partitionid"))


async def _send(request: Request, s: Services, partition: int | None) -> Response:
    if s.producer is None:
        if s.producer_error is not None:
            raise StrimziServerError(s.producer_error)
        raise UnavailableError("Producer is disabled in config. To enable producer update http.producer.enabled to true")
    fmt = formats.format_of(request.headers.get("content-type"))
    if fmt is None:
        raise unsupported_body()
    is_async = bool_param(request.query_params.get("async"), "async")
    topic = request.path_params["topicname"]
    schema_ids: dict[str, int | None] = {}
    records: Sequence[produce_body.OutRecord]
    if fmt.uses_registry:
        records, schema_ids = await _schema_records(request, s, fmt, topic, partition is not None)
    else:
        body = await request.body()
        try:
            records = produce_body.parse_records(body, fmt, to_partition=partition is not None)
        except InvalidRequestError:
            # the list Strimzi's validator gives, when its schema refuses the body too
            check_body("send" if partition is None else "sendToPartition", fmt.content_type, body)
            raise
    if partition is not None or isinstance(records, produce_body.PlainRecords):
        wanted = partition if partition is not None and records else 0
    else:
        wanted = max((r.partition or 0 for r in records), default=0)
    count = s.producer.known(topic)
    if count is None or wanted >= count:
        count = await s.executor.run(s.producer.partitions, topic)
    results = await s.producer.send(topic, records, partition, wait=not is_async, partition_count=count)
    if is_async:
        return empty(204)
    answer = {**schema_ids, "offsets": results}
    written = body_json.write(answer)  # ints and error texts: orjson writes them as the stdlib does
    return Response(written, media_type=formats.V2_JSON) if written is not None else json_response(answer)


async def _schema_records(request: Request, s: Services, fmt: formats.Format, topic: str,
                          to_partition: bool) -> tuple[list[produce_body.OutRecord], dict[str, int | None]]:
    """Records of a body in a registry format, serialized, and the schema ids to answer with (as Confluent does)."""
    if s.schemas is None:
        raise UnsupportedMediaTypeError(
            f"The embedded format '{fmt.value}' needs a schema registry and this bridge has none; set "
            f"schema.registry.url in the bridge properties, or send {formats.Format.JSON.content_type} / "
            f"{formats.Format.BINARY.content_type}")
    doc = produce_body.parse_record_list(await request.body(), formats.SCHEMA_FIELDS)
    produced = await s.executor.run(s.schemas.produce_body, doc, fmt, topic, to_partition)
    return produced.records, {"key_schema_id": produced.key_schema_id, "value_schema_id": produced.value_schema_id}


ROUTES = [
    Route("/topics/{topicname}", operation("send", _send_to_topic, handler_validates=True), methods=["POST"]),
    Route("/topics/{topicname}/partitions/{partitionid}",
          operation("sendToPartition", _send_to_partition, handler_validates=True), methods=["POST"]),
]
