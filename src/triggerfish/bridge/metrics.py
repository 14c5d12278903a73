"""Prometheus metrics of one bridge, in a registry of its own (so several bridges can share a process)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

#: Strimzi's (and Prometheus' classic text format's) content type; the body is that format either way.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class BridgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter("triggerfish_bridge_http_requests", "HTTP requests by operation and status",
                                ("operation", "status"), registry=self.registry)
        self.latency = Histogram("triggerfish_bridge_http_request_seconds", "HTTP request latency by operation",
                                 ("operation",), registry=self.registry,
                                 buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.produced = Counter("triggerfish_bridge_records_produced", "Records sent to Kafka by result",
                                ("result",), registry=self.registry)
        self.consumed = Counter("triggerfish_bridge_records_consumed", "Records returned to HTTP consumers",
                                registry=self.registry)
        self.consumers = Gauge("triggerfish_bridge_consumer_instances", "Live consumer instances",
                               registry=self.registry)
        self._ok = self.produced.labels("ok")
        self._failed = self.produced.labels("error")
        #: Delivery reports so far, for the Java producer's record-send-total / record-error-total.
        self.sent_ok = 0
        self.sent_failed = 0
        #: The same by topic: (sent, failed).
        self.sent_by_topic: dict[str, tuple[int, int]] = {}
        self._counted: dict[tuple[str, int], Callable[[], None]] = {}
        self._timed: dict[str, Callable[[float], None]] = {}

    def records_sent(self, topic: str, ok: int, failed: int) -> None:
        """Count the delivery reports of a request's records (once a request: a counter's lock once a record costs)."""
        if ok:
            self._ok.inc(ok)
        if failed:
            self._failed.inc(failed)
        sent, errors = self.sent_by_topic.get(topic, (0, 0))
        self.sent_ok += ok
        self.sent_failed += failed
        self.sent_by_topic[topic] = (sent + ok, errors + failed)

    def observe(self, operation: str, status: int, seconds: float) -> None:
        """One request (every request: each label set's children are looked up once, not on every call)."""
        count = self._counted.get((operation, status))
        if count is None:
            count = self._counted[(operation, status)] = self.requests.labels(operation, str(status)).inc
        count()
        time = self._timed.get(operation)
        if time is None:
            time = self._timed[operation] = self.latency.labels(operation).observe
        time(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
