"""The bridge's HTTP API: Starlette routes for every operation of Strimzi's OpenAPI spec.

Handlers translate HTTP (paths, query strings, content types, status codes) to calls on the shared
producer, the consumer registry and the topic admin; those do the Kafka I/O, in worker threads when it
blocks. ``openapi.json`` is Strimzi's own spec (Apache-2.0, strimzi/strimzi-kafka-bridge), served as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from triggerfish import __version__
from triggerfish.bridge import formats
from triggerfish.bridge.auth import AuthMiddleware
from triggerfish.bridge.config import BridgeConfig
from triggerfish.bridge.consumers import Registry
from triggerfish.bridge.errors import BridgeError, Identity, client_config_error, validation
from triggerfish.bridge.formats import APPLICATION_JSON, V2_JSON, Format
from triggerfish.bridge.health import KafkaHealth
from triggerfish.bridge.metrics import CONTENT_TYPE as METRICS_TYPE
from triggerfish.bridge.metrics import BridgeMetrics
from triggerfish.bridge.producer import SharedProducer
from triggerfish.bridge.topics import Topics

log = logging.getLogger("triggerfish.bridge")
kafka_log = logging.getLogger("triggerfish.bridge.librdkafka")
_NO_KAFKA = frozenset(("info", "openapi", "openapiv3", "healthy", "ready", "metrics"))

_CONTROL_TYPES = (V2_JSON, APPLICATION_JSON)
_CORS_HEADERS = ["x-requested-with", "x-forwarded-proto", "x-forwarded-host", "Access-Control-Allow-Origin",
                 "Access-Control-Allow-Methods", "Origin", "Content-Type", "Content-Length", "Accept", "Authorization"]


@dataclass
class Services:
    """The Kafka-side objects one bridge uses, built once from its config."""

    config: BridgeConfig
    identity: Identity
    producer: SharedProducer | None
    topics: Topics
    consumers: Registry
    metrics: BridgeMetrics
    health: KafkaHealth
    ready: bool = False

    @classmethod
    def build(cls, config: BridgeConfig) -> Services:
        """Build the Kafka clients; a librdkafka config rejection is a ConfigError naming the user's key."""
        identity = Identity.from_config(config.admin)
        metrics = BridgeMetrics()
        health = KafkaHealth(identity)
        hooks: dict[str, Any] = {"error_cb": health.on_error, "logger": kafka_log}
        producer = None
        try:
            admin = AdminClient({**config.admin, **hooks})
            if config.consumer_enabled:
                # fail at start-up, not at the first create-consumer request
                Consumer({**config.consumer, "group.id": "triggerfish-bridge-config-check"}).close()
            if config.producer_enabled:
                producer = SharedProducer({**config.producer, **hooks}, identity, metrics.record_sent)
        except KafkaException as exc:
            raise client_config_error(exc, config.origins) from None
        registry = Registry({**config.consumer, **hooks}, identity, config.bridge_id, config.timeout_seconds,
                            config.max_poll_records)
        return cls(config, identity, producer, Topics(admin, identity), registry, metrics, health)

    def close(self) -> None:
        self.consumers.close_all()
        if self.producer is not None:
            self.producer.close()


Handler = Callable[[Request], Awaitable[Response]]


def _json(obj: Any, status: int = 200, media_type: str = V2_JSON) -> Response:
    return Response(formats.dumps(obj), status_code=status, media_type=media_type)


def _error(err: BridgeError, media_type: str = V2_JSON) -> Response:
    return Response(err.encode(), status_code=err.status, media_type=media_type)


def _empty(status: int = 204) -> Response:
    return Response(status_code=status)


def _op(name: str, fn: Callable[[Request, Services], Awaitable[Response]]) -> Handler:
    """Wrap a handler: Strimzi's error body for every failure, and metrics for every call."""

    async def endpoint(request: Request) -> Response:
        services: Services = request.app.state.services
        start = time.perf_counter()
        try:
            if name not in _NO_KAFKA:
                services.health.check()
            response = await fn(request, services)
        except BridgeError as err:
            response = _error(err, getattr(err, "media_type", V2_JSON))
        except Exception as exc:  # a bug: answer Strimzi's shape, log the traceback once
            log.exception("%s failed", name)
            response = _error(BridgeError(500, f"Internal error in {name}: {type(exc).__name__}"))
        services.metrics.observe(name, response.status_code, time.perf_counter() - start)
        return response

    endpoint.__name__ = name
    return endpoint


async def _body(request: Request, allowed: tuple[str, ...] = _CONTROL_TYPES, required: bool = True) -> bytes:
    body = await request.body()
    if body.strip() or required:
        if formats.media_type(request.headers.get("content-type")) not in allowed:
            raise formats.unsupported_body()
    return body


def _int_param(raw: str | None, name: str, default: int | None = None) -> int | None:
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise validation([f"Parameter '{name}': {raw!r} is not an integer"]) from None


def _bool_param(raw: str | None, name: str) -> bool:
    if raw is None:
        return False
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise validation([f"Parameter '{name}': {raw!r} is not a boolean"])


# ---------------------------------------------------------------- producer


async def send(request: Request, s: Services) -> Response:
    return await _send(request, s, None)


async def send_to_partition(request: Request, s: Services) -> Response:
    partition = _int_param(request.path_params["partitionid"], "partitionid")
    assert partition is not None
    return await _send(request, s, partition)


async def _send(request: Request, s: Services, partition: int | None) -> Response:
    if s.producer is None:
        raise BridgeError(503, "Producer is disabled in config. To enable producer update http.producer.enabled to true")
    fmt = formats.format_of(request.headers.get("content-type"))
    if fmt is None:
        raise formats.unsupported_body()
    is_async = _bool_param(request.query_params.get("async"), "async")
    topic = request.path_params["topicname"]
    records = formats.parse_records(await request.body(), fmt, to_partition=partition is not None)
    count = s.producer.known(topic)
    if count is None or (partition is not None and partition >= count):
        count = await run_in_threadpool(s.producer.partitions, topic)
    if partition is not None and not 0 <= partition < count:
        raise BridgeError(404, "The specified topic partition was not found.")
    results = await s.producer.send(topic, records, partition, wait=not is_async)
    if is_async:
        return _empty(204)
    return _json({"offsets": results})


# ---------------------------------------------------------------- topics


async def list_topics(request: Request, s: Services) -> Response:
    return _json(await run_in_threadpool(s.topics.names))


async def get_topic(request: Request, s: Services) -> Response:
    return _json(await run_in_threadpool(s.topics.metadata, request.path_params["topicname"]))


async def list_partitions(request: Request, s: Services) -> Response:
    return _json(await run_in_threadpool(s.topics.partitions, request.path_params["topicname"]))


async def get_partition(request: Request, s: Services) -> Response:
    p = _int_param(request.path_params["partitionid"], "partitionid")
    return _json(await run_in_threadpool(s.topics.partition, request.path_params["topicname"], p))


async def get_offsets(request: Request, s: Services) -> Response:
    p = _int_param(request.path_params["partitionid"], "partitionid")
    return _json(await run_in_threadpool(s.topics.offsets, request.path_params["topicname"], p))


async def create_topic(request: Request, s: Services) -> Response:
    body = await _body(request, (Format.JSON.content_type, *_CONTROL_TYPES), required=False)
    if not body.strip():
        raise BridgeError(422, "Request body must be a JSON object with topic_name")
    doc = formats.parse_object(body, {"topic_name": "string", "partitions_count": "int|null",
                                      "replication_factor": "int|null"}, required=("topic_name",))
    await run_in_threadpool(s.topics.create, doc["topic_name"], doc.get("partitions_count"), doc.get("replication_factor"))
    return _empty(201)


# ---------------------------------------------------------------- consumers


def base_uri(request: Request, name: str) -> str:
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
    if proto not in ("http", "https"):
        raise BridgeError(400, f"{proto} is not a valid schema/proto.")
    if ":" not in host.rsplit("]", 1)[-1]:
        host = f"{host}:{443 if proto == 'https' else 80}"
    path = h.get("x-forwarded-path") or request.url.path
    if not path.endswith("/"):
        path += "/"
    return f"{proto}://{host}{path}instances/{name}"


async def create_consumer(request: Request, s: Services) -> Response:
    if not s.config.consumer_enabled:
        raise BridgeError(503, "Consumer is disabled in config. To enable consumer update http.consumer.enabled to true")
    body = formats.parse_consumer(await _body(request, required=False))
    group = request.path_params["groupid"]
    inst = await run_in_threadpool(s.consumers.create, group, body)
    s.metrics.consumers.set(len(s.consumers))
    return _json({"instance_id": inst.name, "base_uri": base_uri(request, inst.name)})


async def delete_consumer(request: Request, s: Services) -> Response:
    await run_in_threadpool(s.consumers.delete, request.path_params["groupid"], request.path_params["name"])
    s.metrics.consumers.set(len(s.consumers))
    return _empty()


def _instance(request: Request, s: Services) -> Any:
    return s.consumers.get(request.path_params["groupid"], request.path_params["name"])


async def subscribe(request: Request, s: Services) -> Response:
    inst = _instance(request, s)
    doc = formats.parse_object(await _body(request), {"topics": "strings", "topic_pattern": "string"})
    await run_in_threadpool(s.consumers.subscribe, inst, doc.get("topics"), doc.get("topic_pattern"))
    return _empty()


async def list_subscriptions(request: Request, s: Services) -> Response:
    return _json(await run_in_threadpool(s.consumers.subscription, _instance(request, s)))


async def unsubscribe(request: Request, s: Services) -> Response:
    try:
        inst = _instance(request, s)
    except BridgeError as err:
        err.media_type = APPLICATION_JSON  # type: ignore[attr-defined]  # the spec declares application/json here
        raise
    await run_in_threadpool(s.consumers.unsubscribe, inst)
    return _empty()


async def assign(request: Request, s: Services) -> Response:
    inst = _instance(request, s)
    doc = formats.parse_object(await _body(request), {"partitions": "partitions"})
    await run_in_threadpool(s.consumers.assign, inst, doc.get("partitions", []))
    return _empty()


async def poll(request: Request, s: Services) -> Response:
    inst = _instance(request, s)
    timeout = _int_param(request.query_params.get("timeout"), "timeout", 100)
    max_bytes = _int_param(request.query_params.get("max_bytes"), "max_bytes")
    if inst.subscribed or inst.assigned:
        if request.headers.get("accept") != inst.format.content_type:
            raise BridgeError(406, "Consumer format does not match the embedded format requested by the Accept header.")
    body, count = await run_in_threadpool(s.consumers.poll, inst, timeout or 0, max_bytes)
    s.metrics.consumed.inc(count)
    return Response(body, media_type=inst.format.content_type)


async def commit(request: Request, s: Services) -> Response:
    inst = _instance(request, s)
    body = await _body(request, required=False)
    doc = formats.parse_object(body, {"offsets": "offsets"}) if body.strip() else {}
    await run_in_threadpool(s.consumers.commit, inst, doc.get("offsets"))
    return _empty()


async def seek(request: Request, s: Services) -> Response:
    inst = _instance(request, s)
    doc = formats.parse_object(await _body(request), {"offsets": "offsets"})
    offsets = [(o["topic"], o["partition"], o["offset"]) for o in doc.get("offsets", [])]
    await run_in_threadpool(s.consumers.seek, inst, offsets)
    return _empty()


def _seek_to(beginning: bool) -> Callable[[Request, Services], Awaitable[Response]]:
    async def handler(request: Request, s: Services) -> Response:
        inst = _instance(request, s)
        doc = formats.parse_object(await _body(request), {"partitions": "partitions"})
        await run_in_threadpool(s.consumers.seek_to, inst, doc.get("partitions", []), beginning)
        return _empty()

    return handler


# ---------------------------------------------------------------- info and management


_SPEC: bytes | None = None


def _spec() -> dict[str, Any]:
    global _SPEC
    if _SPEC is None:
        _SPEC = resources.files("triggerfish.bridge").joinpath("openapi.json").read_bytes()
    return json.loads(_SPEC)


async def info(request: Request, s: Services) -> Response:
    return _json({"bridge_version": __version__, "implementation": "triggerfish"}, media_type=APPLICATION_JSON)


async def openapi(request: Request, s: Services) -> Response:
    spec = _spec()
    base = request.headers.get("x-forwarded-path") or request.headers.get("x-forwarded-prefix")
    if base:
        spec["basePath"] = base
    return _json(spec, media_type=APPLICATION_JSON)


async def healthy(request: Request, s: Services) -> Response:
    return Response(status_code=200)


async def ready(request: Request, s: Services) -> Response:
    # not ready while Kafka refuses the bridge's credentials: a probe then shows the misconfiguration
    return Response(status_code=200 if s.ready and s.health.rejected() is None else 500)


async def metrics(request: Request, s: Services) -> Response:
    s.metrics.consumers.set(len(s.consumers))
    return Response(s.metrics.render(), media_type=METRICS_TYPE)


MANAGEMENT_ROUTES = [
    Route("/healthy", _op("healthy", healthy), methods=["GET"]),
    Route("/ready", _op("ready", ready), methods=["GET"]),
    Route("/metrics", _op("metrics", metrics), methods=["GET"]),
]

_C = "/consumers/{groupid}/instances/{name}"
API_ROUTES = [
    Route("/", _op("info", info), methods=["GET"]),
    Route("/openapi", _op("openapi", openapi), methods=["GET"]),
    Route("/openapi/v3", _op("openapiv3", openapi), methods=["GET"]),
    Route("/topics", _op("listTopics", list_topics), methods=["GET"]),
    Route("/topics/{topicname}", _op("getTopic", get_topic), methods=["GET"]),
    Route("/topics/{topicname}", _op("send", send), methods=["POST"]),
    Route("/topics/{topicname}/partitions", _op("listPartitions", list_partitions), methods=["GET"]),
    Route("/topics/{topicname}/partitions/{partitionid}", _op("getPartition", get_partition), methods=["GET"]),
    Route("/topics/{topicname}/partitions/{partitionid}", _op("sendToPartition", send_to_partition), methods=["POST"]),
    Route("/topics/{topicname}/partitions/{partitionid}/offsets", _op("getOffsets", get_offsets), methods=["GET"]),
    Route("/admin/topics", _op("createTopic", create_topic), methods=["POST"]),
    Route("/consumers/{groupid}", _op("createConsumer", create_consumer), methods=["POST"]),
    Route(_C, _op("deleteConsumer", delete_consumer), methods=["DELETE"]),
    Route(_C + "/subscription", _op("subscribe", subscribe), methods=["POST"]),
    Route(_C + "/subscription", _op("listSubscriptions", list_subscriptions), methods=["GET"]),
    Route(_C + "/subscription", _op("unsubscribe", unsubscribe), methods=["DELETE"]),
    Route(_C + "/assignments", _op("assign", assign), methods=["POST"]),
    Route(_C + "/records", _op("poll", poll), methods=["GET"]),
    Route(_C + "/offsets", _op("commit", commit), methods=["POST"]),
    Route(_C + "/positions", _op("seek", seek), methods=["POST"]),
    Route(_C + "/positions/beginning", _op("seekToBeginning", _seek_to(True)), methods=["POST"]),
    Route(_C + "/positions/end", _op("seekToEnd", _seek_to(False)), methods=["POST"]),
    *MANAGEMENT_ROUTES,
]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, str(exc.detail))
    response = _error(BridgeError(exc.status_code, message))
    if exc.status_code == 405:
        # several Routes share a path (one per method); Allow must list all of them
        allowed: set[str] = set()
        for route in request.app.router.routes:
            if isinstance(route, Route) and route.methods and route.path_regex.match(request.url.path):
                allowed |= route.methods
        response.headers["allow"] = ", ".join(sorted(allowed))
    return response


def create_app(services: Services, management: bool = False) -> Starlette:
    """The API app (``management=False``) or the management app (``/healthy``, ``/ready``, ``/metrics``)."""
    config = services.config

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        reaper = None
        if not management:
            if config.timeout_seconds >= 0:
                reaper = asyncio.create_task(_reap(services))
            services.ready = True
        try:
            yield
        finally:
            if reaper is not None:
                reaper.cancel()
            if not management:
                services.ready = False
                await run_in_threadpool(services.close)

    middleware = []
    if config.cors_enabled and not management:
        origins = {"allow_origins": ["*"]} if config.cors_origins.strip() == "*" else {"allow_origin_regex": config.cors_origins}
        middleware.append(Middleware(CORSMiddleware, allow_methods=list(config.cors_methods),  # type: ignore[arg-type]
                                     allow_headers=_CORS_HEADERS, **origins))
    if config.auth.type != "none":
        middleware.append(Middleware(AuthMiddleware, auth=config.auth))  # type: ignore[arg-type]
    app = Starlette(routes=MANAGEMENT_ROUTES if management else API_ROUTES, middleware=middleware,
                    exception_handlers={HTTPException: _http_error}, lifespan=lifespan)
    app.state.services = services
    return app


async def _reap(services: Services) -> None:
    # Strimzi checks every timeout/2, so an idle consumer goes between T and 1.5T
    period = max(0.5, services.config.timeout_seconds / 2)
    while True:
        await asyncio.sleep(period)
        try:
            if await run_in_threadpool(services.consumers.reap):
                services.metrics.consumers.set(len(services.consumers))
        except Exception:  # keep reaping whatever one close did
            log.exception("reaping idle consumers")
