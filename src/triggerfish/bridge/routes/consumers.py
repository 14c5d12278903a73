"""Consumer routes: create and delete instances, subscribe or assign, poll, commit and seek."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from triggerfish.bridge import formats, read_ahead
from triggerfish.bridge.errors import StrimziServerError, response_of
from triggerfish.bridge.formats import APPLICATION_JSON
from triggerfish.bridge.instance import Instance
from triggerfish.bridge.operations import operation
from triggerfish.bridge.query import query_params
from triggerfish.bridge.services import Services
from triggerfish.bridge.wire import empty, int_param, json_response, read_body
from triggerfish.errors import ConsumerExists, ConsumerNotFound, NotAcceptableError, UnavailableError


def _base_uri(request: Request, name: str) -> str:
    """Where the new instance lives, honouring Forwarded / X-Forwarded-* like Strimzi."""
    h = request.headers
    host = proto = None
    fwd = h.get("forwarded")
    if fwd:
        parts = {}
        for item in fwd.split(",")[0].split(";"):
            if "=" in item:
                k, v = item.split("=", 1)
                parts[k.strip().lower()] = v.strip().strip('"')
        if "host" in parts and "proto" in parts:
            host, proto = parts["host"], parts["proto"]
    if host is None and h.get("x-forwarded-host") and h.get("x-forwarded-proto"):
        host, proto = h["x-forwarded-host"], h["x-forwarded-proto"]
    if host is None:
        host, proto = h.get("host") or f"{request.url.hostname}:{request.url.port}", request.url.scheme
    proto = (proto or "http").lower()
    if ":" not in host.rsplit("]", 1)[-1]:
        if proto not in ("http", "https"):  # no default port to add: Strimzi's 500
            raise StrimziServerError(f"{proto} is not a valid schema/proto.")
        host = f"{host}:{443 if proto == 'https' else 80}"
    path = h.get("x-forwarded-path") or request.url.path
    if not path.endswith("/"):
        path += "/"
    return f"{proto}://{host}{path}instances/{name}"


async def _create_consumer(request: Request, s: Services) -> Response:
    if not s.config.consumer_enabled:
        raise UnavailableError("Consumer is disabled in config. To enable consumer update http.consumer.enabled to true")
    body = formats.parse_consumer(await read_body(request, required=False))
    group = request.path_params["groupid"]
    name = body.get("name")
    if s.forwarder is not None and name and await s.forwarder.held_elsewhere(request, group, name):
        raise ConsumerExists(group, name)
    inst = await s.executor.run(s.consumers.create, group, body)
    s.metrics.consumers.set(len(s.consumers))
    return json_response({"instance_id": inst.name, "base_uri": _base_uri(request, inst.name)})


async def _delete_consumer(request: Request, s: Services) -> Response:
    inst = s.consumers.find(request.path_params["groupid"], request.path_params["name"])
    if inst is not None:
        await read_ahead.settle(s.consumers, s.executor, inst, give_back=False)
    await s.executor.run(s.consumers.delete, request.path_params["groupid"], request.path_params["name"])
    s.metrics.consumers.set(len(s.consumers))
    return empty()


def _instance(request: Request, s: Services) -> Instance:
    return s.consumers.get(request.path_params["groupid"], request.path_params["name"])


async def _subscribe(request: Request, s: Services) -> Response:
    inst = _instance(request, s)
    doc = formats.parse_object(await read_body(request), {"topics": "strings", "topic_pattern": "string"})
    await read_ahead.settle(s.consumers, s.executor, inst)
    await s.executor.run(s.consumers.subscribe, inst, doc.get("topics"), doc.get("topic_pattern"))
    return empty()


async def _list_subscriptions(request: Request, s: Services) -> Response:
    return json_response(await s.executor.run(s.consumers.subscription, _instance(request, s)))


async def _unsubscribe(request: Request, s: Services) -> Response:
    try:
        inst = _instance(request, s)
    except ConsumerNotFound as err:
        return response_of(err, APPLICATION_JSON)  # the spec declares application/json for this 404
    await read_ahead.settle(s.consumers, s.executor, inst)
    await s.executor.run(s.consumers.unsubscribe, inst)
    return empty()


async def _assign(request: Request, s: Services) -> Response:
    inst = _instance(request, s)
    doc = formats.parse_object(await read_body(request), {"partitions": "partitions"})
    await read_ahead.settle(s.consumers, s.executor, inst)
    await s.executor.run(s.consumers.assign, inst, doc.get("partitions", []))
    return empty()


async def _poll(request: Request, s: Services) -> Response:
    inst = _instance(request, s)
    query = query_params(request)
    timeout = int_param(query.get("timeout"), "timeout", 100)
    max_bytes = int_param(query.get("max_bytes"), "max_bytes")
    if inst.subscribed or inst.assigned:
        if request.headers.get("accept") != inst.format.content_type:
            raise NotAcceptableError("Consumer format does not match the embedded format requested by the Accept header.")
    batch = await read_ahead.poll(s.consumers, s.executor, inst, timeout or 0, max_bytes)
    s.metrics.consumed.inc(batch.count)
    return Response(batch.body, media_type=inst.format.content_type)


async def _commit(request: Request, s: Services) -> Response:
    inst = _instance(request, s)
    body = await read_body(request, required=False)
    doc = formats.parse_object(body, {"offsets": "offsets"}) if body.strip() else {}
    await s.executor.run(s.consumers.commit, inst, doc.get("offsets"))
    return empty()


async def _seek(request: Request, s: Services) -> Response:
    inst = _instance(request, s)
    doc = formats.parse_object(await read_body(request), {"offsets": "offsets"})
    offsets = [(o["topic"], o["partition"], o["offset"]) for o in doc.get("offsets", [])]
    await read_ahead.settle(s.consumers, s.executor, inst)
    await s.executor.run(s.consumers.seek, inst, offsets)
    return empty()


def _seek_to(beginning: bool) -> Callable[[Request, Services], Awaitable[Response]]:
    async def handler(request: Request, s: Services) -> Response:
        inst = _instance(request, s)
        doc = formats.parse_object(await read_body(request), {"partitions": "partitions"})
        await read_ahead.settle(s.consumers, s.executor, inst)
        await s.executor.run(s.consumers.seek_to, inst, doc.get("partitions", []), beginning)
        return empty()

    return handler


_C = "/consumers/{groupid}/instances/{name}"
ROUTES = [  # the poll first: see bridge.app
    Route(_C + "/records", operation("poll", _poll), methods=["GET"]),
    Route("/consumers/{groupid}", operation("createConsumer", _create_consumer), methods=["POST"]),
    Route(_C, operation("deleteConsumer", _delete_consumer), methods=["DELETE"]),
    Route(_C + "/subscription", operation("subscribe", _subscribe), methods=["POST"]),
    Route(_C + "/subscription", operation("listSubscriptions", _list_subscriptions), methods=["GET"]),
    Route(_C + "/subscription", operation("unsubscribe", _unsubscribe), methods=["DELETE"]),
    Route(_C + "/assignments", operation("assign", _assign), methods=["POST"]),
    Route(_C + "/offsets", operation("commit", _commit), methods=["POST"]),
    Route(_C + "/positions", operation("seek", _seek), methods=["POST"]),
    Route(_C + "/positions/beginning", operation("seekToBeginning", _seek_to(True)), methods=["POST"]),
    Route(_C + "/positions/end", operation("seekToEnd", _seek_to(False)), methods=["POST"]),
]
