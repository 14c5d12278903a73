"""Strimzi's metric families, so Strimzi's Grafana dashboard and alerts for the bridge work unchanged.

- ``strimzi_bridge_http_server_*``: requests by code, method and path, their time, and requests in flight
  (Vert.x's HTTP server metrics under Strimzi's prefix), counted by the ``HttpMetrics`` middleware.
- ``executor_*{name="kafka-bridge"}``: the worker pool that runs the blocking Kafka calls.
- the Kafka clients' metrics under the names of ``bridge.metrics`` (``client_families``): Strimzi's metrics
  reporter's ``kafka_producer_*`` / ``kafka_consumer_*``, the JMX exporter's ``strimzi_bridge_kafka_*``, or both.
- ``jvm_*``: the dashboard's memory, GC and thread panels, filled with this Python process's own numbers
  (resident memory; the cyclic garbage collector's pauses, timed by a ``gc`` callback).
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triggerfish.bridge.client_families import SCHEMES, ClientSample, client_families
from triggerfish.bridge.executor import Executor
from triggerfish.bridge.poll_times import PollTimes

_EXECUTOR = "kafka-bridge"


@dataclass
class _Timing:
    """Requests of one (code, method, path): how many, their seconds and response bytes, the longest."""

    count: int = 0
    seconds: float = 0.0
    max: float = 0.0
    response_bytes: int = 0


class StrimziMetrics(Collector):
    """The collector; ``producers`` and ``consumers`` return each client's sample when scraped, named by
    every scheme in ``schemes`` (``bridge.metrics``; both when it is not set)."""

    def __init__(self, executor: Executor, producers: Callable[[], list[ClientSample]],
                 consumers: Callable[[], list[ClientSample]], schemes: tuple[str, ...] = SCHEMES) -> None:
        self._executor = executor
        self._producers = producers
        self._consumers = consumers
        self._schemes = schemes
        #: The HTTP consumers' polls, for their ``poll-idle-ratio-avg``.
        self.polls = PollTimes()
        _GC.install()
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
        yield from client_families("producer", self._producers(), self._schemes)
        yield from client_families("consumer", self._consumers(), self._schemes)
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


def _runtime() -> Iterator[Metric]:
    info = GaugeMetricFamily("jvm_info", "The runtime serving the bridge (CPython, not a JVM)",
                             labels=("runtime", "vendor", "version"))
    info.add_metric((platform.python_implementation(), "python.org", platform.python_version()), 1)
    yield info
    used = GaugeMetricFamily("jvm_memory_used_bytes", "The amount of used memory (the process's resident set)",
                             labels=("area", "id"))
    used.add_metric(("heap", "python"), _resident_bytes())
    yield used
    yield GaugeMetricFamily("jvm_threads_live_threads", "The current number of live threads",
                            value=threading.active_count())
    pauses = SummaryMetricFamily("jvm_gc_pause_seconds", "Time spent in GC pause (Python's cyclic collector)",
                                 labels=("action", "cause", "gc"))
    for generation, (count, seconds) in enumerate(_GC.pauses()):
        action = "end of major GC" if generation == 2 else "end of minor GC"
        pauses.add_metric((action, "Python cyclic GC", f"generation {generation}"), count, seconds)
    yield pauses


def _resident_bytes() -> float:
    try:
        with open("/proc/self/statm", "rb") as f:
            return float(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):  # not Linux: the peak, the nearest the platform tells
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


class _GcTimer:
    """Times the cyclic collector's runs by generation: one ``gc.callbacks`` entry for the whole process."""

    def __init__(self) -> None:
        self._counts = [0, 0, 0]
        self._seconds = [0.0, 0.0, 0.0]
        self._started = 0.0
        self._installed = False
        self._lock = threading.Lock()

    def install(self) -> None:
        with self._lock:
            if not self._installed:
                gc.callbacks.append(self._on_gc)
                self._installed = True

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # the collector runs with the GIL held, one collection at a time: start and stop pair up
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = min(2, int(info.get("generation", 0)))
        self._counts[generation] += 1
        self._seconds[generation] += time.perf_counter() - self._started

    def pauses(self) -> list[tuple[int, float]]:
        return list(zip(self._counts, self._seconds, strict=True))


_GC = _GcTimer()


class HttpMetrics:
    """ASGI middleware: ``strimzi_bridge_http_server_*`` for every request served but the scrapes of ``/metrics``."""

    def __init__(self, app: ASGIApp, metrics: StrimziMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        m = self.metrics
        method, path = scope["method"], scope["path"]
        key = (method, path)
        active = m.active
        active[key] = active.get(key, 0) + 1
        status = "500"
        read = written = 0
        start = time.perf_counter()

        async def counting_receive() -> Message:
            nonlocal read
            message = await receive()
            read += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, written
            if message["type"] == "http.response.start":
                status = str(message["status"])
            elif message["type"] == "http.response.body":
                written += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            active[key] -= 1
            elapsed = time.perf_counter() - start
            if method == "GET" and path.endswith("/records"):  # PollTimes counts record polls only
                m.polls.observe(method, path, start, start + elapsed)
            timing_key = (status, method, path)
            t = m.timings.get(timing_key)
            if t is None:
                t = m.timings[timing_key] = _Timing()
            t.count += 1
            t.seconds += elapsed
            if elapsed > t.max:
                t.max = elapsed
            t.response_bytes += written
            m.bytes_read += read
            m.bytes_written += written
            count, size = m.request_bytes.get(key, (0, 0))
            m.request_bytes[key] = (count + 1, size + read)
