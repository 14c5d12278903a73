"""Strimzi's metric families, so Strimzi's Grafana dashboard and alerts for the bridge work unchanged.

- ``strimzi_bridge_http_server_*``: requests by code, method and path, their time, and requests in flight
  (Vert.x's HTTP server metrics under Strimzi's prefix), counted by the ``HttpMetrics`` middleware.
- ``executor_*{name="kafka-bridge"}``: the worker pool that runs the blocking Kafka calls.
- ``kafka_producer_*`` / ``kafka_consumer_*``: the Java clients' metric names and ``client_id`` label, as
  Strimzi's metrics reporter exports them (a ``-total`` counter loses its suffix and is a gauge).
- ``jvm_*``: the dashboard's memory and thread panels, filled with this Python process's own numbers.
"""

from __future__ import annotations

import platform
import resource
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triggerfish.bridge.executor import Executor

_EXECUTOR = "kafka-bridge"


@dataclass
class _Timing:
    """Requests of one (code, method, path): how many, their seconds and response bytes, the longest."""

    count: int = 0
    seconds: float = 0.0
    max: float = 0.0
    response_bytes: int = 0


@dataclass
class ClientSample:
    """What one Kafka client reports: its ``client_id`` and its metrics by Java name (``group``, ``name``)."""

    client_id: str
    values: dict[tuple[str, str], float]


class StrimziMetrics(Collector):
    """The collector; ``producers`` and ``consumers`` return each client's sample when scraped."""

    def __init__(self, executor: Executor, producers: Callable[[], list[ClientSample]],
                 consumers: Callable[[], list[ClientSample]]) -> None:
        self._executor = executor
        self._producers = producers
        self._consumers = consumers
        self.timings: dict[tuple[str, str, str], _Timing] = {}  # (code, method, path)
        self.active: dict[tuple[str, str], int] = {}  # (method, path)
        self.request_bytes: dict[tuple[str, str], tuple[int, int]] = {}  # (method, path) -> (requests, bytes)
        #: Open HTTP connections, from the server (``server.prepare`` sets it).
        self.connections: Callable[[], int] = lambda: 0
        self.bytes_read = 0
        self.bytes_written = 0

    def collect(self) -> Iterator[Metric]:
        yield from self._http()
        yield from self._executor_families()
        yield from _clients("kafka_producer", self._producers())
        yield from _clients("kafka_consumer", self._consumers())
        yield from _runtime()

    def _http(self) -> Iterator[Metric]:
        prefix = "strimzi_bridge_http_server"
        requests = CounterMetricFamily(f"{prefix}_requests", "Number of processed requests", labels=("code", "method", "path"))
        times = SummaryMetricFamily(f"{prefix}_response_time_seconds", "Request processing time",
                                    labels=("code", "method", "path"))
        longest = GaugeMetricFamily(f"{prefix}_response_time_seconds_max", "Request processing time",
                                    labels=("code", "method", "path"))
        sent = SummaryMetricFamily(f"{prefix}_response_bytes", "Size of responses in bytes", labels=("code", "method", "path"))
        for key, t in list(self.timings.items()):
            requests.add_metric(key, t.count)
            times.add_metric(key, t.count, t.seconds)
            longest.add_metric(key, t.max)
            sent.add_metric(key, t.count, t.response_bytes)
        received = SummaryMetricFamily(f"{prefix}_request_bytes", "Size of requests in bytes", labels=("method", "path"))
        for method_path, (count, size) in list(self.request_bytes.items()):
            received.add_metric(method_path, count, size)
        yield from (sent, received)
        active = GaugeMetricFamily(f"{prefix}_active_requests", "Number of requests being processed", labels=("method", "path"))
        for method_path, n in list(self.active.items()):
            active.add_metric(method_path, n)
        yield from (requests, times, longest, active)
        yield GaugeMetricFamily(f"{prefix}_active_connections", "Number of opened connections to the server",
                                value=self.connections())
        yield CounterMetricFamily(f"{prefix}_bytes_read", "Number of bytes received by the server", value=self.bytes_read)
        yield CounterMetricFamily(f"{prefix}_bytes_written", "Number of bytes sent by the server", value=self.bytes_written)

    def _executor_families(self) -> Iterator[Metric]:
        s = self._executor.stats()
        gauges = (
            ("executor_active_threads", "The approximate number of threads that are actively executing tasks", s.active),
            ("executor_queued_tasks", "The approximate number of tasks that are queued for execution", s.queued),
            ("executor_queue_remaining_tasks", "The number of additional elements that this queue can ideally accept "
             "without blocking", max(0, s.pool_size - s.active)),
            ("executor_pool_size_threads", "The current number of threads in the pool", s.pool_size),
            ("executor_pool_core_threads", "The core number of threads for the pool", s.pool_size),
            ("executor_pool_max_threads", "The maximum allowed number of threads in the pool", s.pool_size),
        )
        for name, doc, value in gauges:
            g = GaugeMetricFamily(name, doc, labels=("name",))
            g.add_metric((_EXECUTOR,), value)
            yield g
        done = CounterMetricFamily("executor_completed_tasks", "The approximate total number of tasks that have "
                                   "completed execution", labels=("name",))
        done.add_metric((_EXECUTOR,), s.completed)
        yield done


def _clients(prefix: str, samples: list[ClientSample]) -> Iterator[Metric]:
    families: dict[str, GaugeMetricFamily] = {}
    for sample in samples:
        for (group, name), value in sorted(sample.values.items()):
            java = name[: -len("-total")] if name.endswith("-total") else name
            full = f"{prefix}_{group}_{java}".replace("-", "_").replace(".", "_")
            family = families.get(full)
            if family is None:
                family = families[full] = GaugeMetricFamily(full, f"{group} {name}", labels=("client_id",))
            family.add_metric((sample.client_id,), value)
    yield from families.values()


def _runtime() -> Iterator[Metric]:
    info = GaugeMetricFamily("jvm_info", "The runtime serving the bridge (CPython, not a JVM)",
                             labels=("runtime", "vendor", "version"))
    info.add_metric((platform.python_implementation(), "python.org", platform.python_version()), 1)
    yield info
    used = GaugeMetricFamily("jvm_memory_used_bytes", "The amount of used memory (the process's peak resident set)",
                             labels=("area", "id"))
    used.add_metric(("heap", "python"), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    yield used
    yield GaugeMetricFamily("jvm_threads_live_threads", "The current number of live threads",
                            value=threading.active_count())


class HttpMetrics:
    """ASGI middleware: ``strimzi_bridge_http_server_*`` for every request the API serves."""

    def __init__(self, app: ASGIApp, metrics: StrimziMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        m = self.metrics
        method, path = scope["method"], scope["path"]
        key = (method, path)
        m.active[key] = m.active.get(key, 0) + 1
        status = ["500"]
        read, written = [0], [0]
        start = time.perf_counter()

        async def counting_receive() -> Message:
            message = await receive()
            read[0] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = str(message["status"])
            elif message["type"] == "http.response.body":
                written[0] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            m.active[key] -= 1
            elapsed = time.perf_counter() - start
            t = m.timings.setdefault((status[0], method, path), _Timing())
            t.count += 1
            t.seconds += elapsed
            t.max = max(t.max, elapsed)
            t.response_bytes += written[0]
            m.bytes_read += read[0]
            m.bytes_written += written[0]
            count, size = m.request_bytes.get(key, (0, 0))
            m.request_bytes[key] = (count + 1, size + read[0])
