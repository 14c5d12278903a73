"""Strimzi's Grafana dashboards for the bridge, against a real bridge in front of the real broker: every metric
its queries read, with the labels they select or group by, is on ``/metrics`` and moves as records flow.

Strimzi ships two dashboards (strimzi-kafka-operator, ``packaging/examples/metrics``): one for
``bridge.metrics=jmxPrometheusExporter`` (``strimzi_bridge_kafka_*``, labels ``type``/``clientId``/``topic``) and
one for ``strimziMetricsReporter`` (``kafka_producer_*``/``kafka_consumer_*``, labels ``client_id``/``topic``/
``node_id``). The facts below are what their queries need, written out here (the dashboards are not copied).
Labels such as ``container``, ``namespace`` and ``pod`` come from Prometheus' Kubernetes discovery, not from
the bridge, so they are not asked of it.
"""

from __future__ import annotations

import gc
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from triggerfish.bridge.config import from_properties
from triggerfish.bridge.server import prepare
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

V2 = "application/vnd.kafka.v2+json"
JSON = "application/vnd.kafka.json.v2+json"

Series = dict[str, list[tuple[dict[str, str], float]]]


@dataclass(frozen=True)
class Need:
    """One dashboard query's metric: the label values it selects (regexes), the labels it groups by, and how it
    must move with traffic: ``grows`` (a counter the query takes ``rate`` of), ``positive``, ``set`` (not -1),
    ``window`` (positive, but absent after a statistics interval without requests, as Java's NaN)."""

    metric: str
    select: tuple[tuple[str, str], ...] = ()
    by: tuple[str, ...] = ()
    moves: str = "positive"


_HTTP = [
    Need("strimzi_bridge_http_server_active_connections"),
    Need("strimzi_bridge_http_server_active_requests", moves="present"),
    Need("strimzi_bridge_http_server_requests_total", by=("method",), moves="grows"),
    Need("strimzi_bridge_http_server_requests_total", (("code", "^2..$"),), moves="grows"),
    Need("strimzi_bridge_http_server_bytes_written_total", moves="grows"),
    Need("strimzi_bridge_http_server_bytes_read_total", moves="grows"),
    Need("strimzi_bridge_http_server_requests_total", (("method", "POST"), ("path", "/topics/[^/]+")), ("path",), "grows"),
    Need("strimzi_bridge_http_server_requests_total", (("method", "POST"), ("path", "/topics/.+/partitions/[0-9]+")),
         ("path",), "grows"),
    Need("strimzi_bridge_http_server_requests_total", (("method", "POST"), ("path", "/consumers/[^/]+")), ("path",)),
    Need("strimzi_bridge_http_server_requests_total",
         (("method", "POST"), ("path", "/consumers/.+/instances/.+/subscription")), ("path",)),
    Need("strimzi_bridge_http_server_requests_total", (("method", "GET"), ("path", "/consumers/.+/instances/.+/records")),
         ("path",), "grows"),
    Need("strimzi_bridge_http_server_requests_total", (("method", "POST"), ("path", "/consumers/.+/instances/.+/offsets")),
         ("path",), "grows"),
    Need("jvm_memory_used_bytes"),
    Need("jvm_gc_pause_seconds_sum", moves="grows"),
    Need("jvm_gc_pause_seconds_count", moves="grows"),
]
_ANY = ".+"
REPORTER_DASHBOARD = _HTTP + [
    Need("kafka_producer_kafka_metrics_count_count"),
    Need("kafka_producer_producer_metrics_connection_count"),
    Need("kafka_consumer_consumer_coordinator_metrics_last_heartbeat_seconds_ago", moves="set"),
    Need("kafka_consumer_consumer_metrics_connection_count"),
    Need("kafka_producer_producer_topic_metrics_record_send", (("topic", _ANY),), ("client_id", "topic"), "grows"),
    Need("kafka_producer_producer_topic_metrics_byte", (("topic", _ANY),), ("client_id", "topic"), "grows"),
    Need("kafka_producer_producer_node_metrics_request_latency_avg", by=("client_id",), moves="window"),
    Need("kafka_consumer_consumer_fetch_manager_metrics_bytes_consumed", (("topic", _ANY),), ("client_id", "topic"), "grows"),
    Need("kafka_consumer_consumer_fetch_manager_metrics_records_consumed", (("topic", _ANY),), ("client_id", "topic"),
         "grows"),
    Need("kafka_consumer_consumer_coordinator_metrics_assigned_partitions", by=("client_id",)),
    Need("kafka_consumer_consumer_metrics_poll_idle_ratio_avg", by=("client_id",)),
    Need("kafka_consumer_consumer_coordinator_metrics_commit", by=("client_id",), moves="grows"),
    Need("kafka_consumer_consumer_coordinator_metrics_commit_latency_avg", by=("client_id",)),
    Need("kafka_consumer_consumer_fetch_manager_metrics_fetch_rate", by=("client_id",), moves="window"),
    Need("kafka_consumer_consumer_fetch_manager_metrics_fetch_latency_avg", by=("client_id",), moves="window"),
]
JMX_DASHBOARD = _HTTP + [
    Need("strimzi_bridge_kafka_producer_count"),
    Need("strimzi_bridge_kafka_producer_connection_count"),
    Need("strimzi_bridge_kafka_consumer_last_heartbeat_seconds_ago", moves="set"),
    Need("strimzi_bridge_kafka_consumer_connection_count"),
    Need("strimzi_bridge_kafka_producer_record_send_total", (("topic", _ANY),), ("clientId", "topic"), "grows"),
    Need("strimzi_bridge_kafka_producer_byte_total", (("topic", _ANY),), ("clientId", "topic"), "grows"),
    Need("strimzi_bridge_kafka_producer_request_latency_avg", (("type", "producer-metrics"),), ("clientId",), moves="window"),
    Need("strimzi_bridge_kafka_consumer_bytes_consumed_total", (("topic", _ANY),), ("clientId", "topic"), "grows"),
    Need("strimzi_bridge_kafka_consumer_records_consumed_total", (("topic", _ANY),), ("clientId", "topic"), "grows"),
    Need("strimzi_bridge_kafka_consumer_assigned_partitions", by=("clientId",)),
    Need("strimzi_bridge_kafka_consumer_poll_idle_ratio_avg", by=("clientId",)),
    Need("strimzi_bridge_kafka_consumer_commit_total", by=("clientId",), moves="grows"),
    Need("strimzi_bridge_kafka_consumer_commit_latency_avg", by=("clientId",)),
    Need("strimzi_bridge_kafka_consumer_fetch_rate", by=("clientId",), moves="window"),
    Need("strimzi_bridge_kafka_consumer_fetch_latency_avg", by=("clientId",), moves="window"),
]


class _Bridge:
    def __init__(self, props: dict[str, str]) -> None:
        self.prepared = prepare(from_properties({"http.port": "0", "http.management.port": "0", **props}, environ={}))
        self.thread = self.prepared.start_in_thread()
        (h, p), (_, mp) = self.prepared.addresses[:2]
        self.management = f"http://{h}:{mp}"
        self.http = httpx.Client(base_url=f"http://{h}:{p}", timeout=30)

    def scrape(self) -> Series:
        r = httpx.get(self.management + "/metrics")
        assert r.status_code == 200
        out: Series = {}
        for family in text_string_to_metric_families(r.text):
            for s in family.samples:
                out.setdefault(s.name, []).append((dict(s.labels), s.value))
        return out

    def close(self) -> None:
        self.http.close()
        self.prepared.stop(self.thread)


def _start(kafka: KafkaEnv, **props: str) -> _Bridge:
    # librdkafka's statistics every second instead of every 10 s (a window still holds a fetch or two)
    return _Bridge({"kafka.bootstrap.servers": kafka.bootstrap, "kafka.consumer.auto.offset.reset": "earliest",
                    "kafka.statistics.interval.ms": "1000", **props})


def _selected(series: Series, need: Need) -> list[tuple[dict[str, str], float]]:
    return [(labels, value) for labels, value in series.get(need.metric, [])
            if all(re.fullmatch(rx, labels.get(name, "")) for name, rx in need.select)]


def _total(series: Series, need: Need) -> float:
    return sum(value for _, value in _selected(series, need))


def _missing(series: Series, needs: list[Need]) -> list[Need]:
    """The needs that no series meets yet (present, with every grouping label, and a value of the right kind)."""
    missing = []
    for need in needs:
        rows = [(labels, v) for labels, v in _selected(series, need) if all(labels.get(b) for b in need.by)]
        positive = any(v > 0 for _, v in rows)
        ok = {"set": any(v != -1 for _, v in rows), "positive": positive, "window": positive}.get(need.moves, bool(rows))
        if not ok:
            missing.append(need)
    return missing


class _Traffic:
    """Produces (to the topic and to one partition), polls and commits through the bridge until stopped."""

    def __init__(self, bridge: _Bridge, topic: str, consumer: str) -> None:
        self.bridge, self.topic, self.consumer = bridge, topic, consumer
        self.consumed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        http = self.bridge.http
        while not self._stop.is_set():
            http.post(f"/topics/{self.topic}", json={"records": [{"value": {"n": i}} for i in range(5)]},
                      headers={"content-type": JSON}).raise_for_status()
            http.post(f"/topics/{self.topic}/partitions/0", json={"records": [{"value": "p"}]},
                      headers={"content-type": JSON}).raise_for_status()
            r = http.get(self.consumer + "/records", params={"timeout": 200}, headers={"accept": JSON})
            r.raise_for_status()
            self.consumed += len(r.json())
            http.post(self.consumer + "/offsets").raise_for_status()
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.fixture
def flowing(kafka: KafkaEnv, make_topic: Callable[..., str], unique_name: Callable[[str], str]) -> Iterator[tuple[_Bridge, _Traffic]]:
    bridge = _start(kafka)
    topic = make_topic(partitions=2)
    group = unique_name("g")
    r = bridge.http.post(f"/consumers/{group}", json={"name": "dash", "format": "json"}, headers={"content-type": V2})
    assert r.status_code == 200, r.text
    consumer = f"/consumers/{group}/instances/dash"
    assert bridge.http.post(consumer + "/subscription", json={"topics": [topic]}, headers={"content-type": V2}).status_code == 204
    traffic = _Traffic(bridge, topic, consumer)
    try:
        yield bridge, traffic
    finally:
        traffic.stop()
        bridge.http.delete(consumer)
        bridge.close()


def test_every_dashboard_query_finds_its_metrics_and_they_move(flowing: tuple[_Bridge, _Traffic]) -> None:
    bridge, traffic = flowing
    needs = REPORTER_DASHBOARD + JMX_DASHBOARD  # bridge.metrics unset: both dashboards' names
    deadline = time.monotonic() + 30
    while True:
        gc.collect()  # the bridge runs in this process: a collection its GC panels must show
        first = bridge.scrape()
        missing = _missing(first, needs)
        if not missing:
            break
        assert time.monotonic() < deadline, [n.metric for n in missing]
        time.sleep(0.3)
    assert traffic.consumed > 0
    time.sleep(2.5)  # more records, polls, commits and a statistics report
    gc.collect()
    second = bridge.scrape()
    assert not _missing(second, [n for n in needs if n.moves != "window"])
    for need in needs:
        if need.moves == "grows":
            assert _total(second, need) > _total(first, need), need
    # the bridge gives no label that Prometheus' Kubernetes discovery adds (it would clash with it)
    for rows in second.values():
        for labels, _ in rows:
            assert not {"container", "namespace", "pod", "kubernetes_namespace"} & labels.keys()


def test_one_dashboards_names_when_bridge_metrics_says_which(kafka: KafkaEnv, make_topic: Callable[..., str]) -> None:
    topic = make_topic()
    for scheme, present, absent in (("jmxPrometheusExporter", "strimzi_bridge_kafka_producer_record_send_total",
                                     "kafka_producer_producer_metrics_record_send"),
                                    ("strimziMetricsReporter", "kafka_producer_producer_metrics_record_send",
                                     "strimzi_bridge_kafka_producer_record_send_total")):
        bridge = _start(kafka, **{"bridge.metrics": scheme})
        try:
            assert bridge.http.post(f"/topics/{topic}", json={"records": [{"value": {"n": 1}}]},
                                    headers={"content-type": JSON}).status_code == 200
            series = bridge.scrape()
            assert [v for _, v in series[present]] and all(v >= 1 for _, v in series[present]), scheme
            assert absent not in series, scheme
            assert "strimzi_bridge_http_server_requests_total" in series
        finally:
            bridge.close()
