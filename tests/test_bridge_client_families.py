"""The Kafka clients' metrics under Strimzi's two names (its metrics reporter's, its JMX exporter rules'), the
per-topic/node/partition metrics from a librdkafka report, and the HTTP polls' idle ratio (no Kafka)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from triggerfish.bridge.client_families import JMX, REPORTER, ClientSample, client_families
from triggerfish.bridge.client_stats import ClientStats, java_metrics, tagged_metrics
from triggerfish.bridge.poll_times import PollTimes

Series = dict[str, list[tuple[dict[str, str], float]]]


class _Families(Collector):
    def __init__(self, kind: str, samples: list[ClientSample], schemes: tuple[str, ...]) -> None:
        self.args = kind, samples, schemes

    def collect(self) -> Iterator[Metric]:
        return client_families(*self.args)


def _exposed(kind: str, samples: list[ClientSample], *schemes: str) -> tuple[Series, str]:
    """The samples by name as Prometheus parses the exposition, and the text itself."""
    registry = CollectorRegistry()
    registry.register(_Families(kind, samples, schemes))
    text = generate_latest(registry).decode()
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out, text


_SAMPLE = ClientSample(
    "producer-1",
    {("producer-metrics", "record-send-total"): 7.0, ("producer-metrics", "request-latency-avg"): 1.5},
    {("producer-topic-metrics", "record-send-total", (("topic", "t"),)): 7.0,
     ("producer-topic-metrics", "byte-total", (("topic", "t"),)): 70.0,
     ("producer-node-metrics", "request-latency-avg", (("node-id", "node-0"),)): 1.5})


def test_strimzis_metrics_reporter_names_every_metric_a_gauge_without_total() -> None:
    series, text = _exposed("producer", [_SAMPLE], REPORTER)
    assert series["kafka_producer_producer_metrics_record_send"] == [({"client_id": "producer-1"}, 7.0)]
    assert series["kafka_producer_producer_topic_metrics_record_send"] == [({"client_id": "producer-1", "topic": "t"}, 7.0)]
    assert series["kafka_producer_producer_topic_metrics_byte"] == [({"client_id": "producer-1", "topic": "t"}, 70.0)]
    assert series["kafka_producer_producer_node_metrics_request_latency_avg"] == [
        ({"client_id": "producer-1", "node_id": "node-0"}, 1.5)]
    assert series["kafka_producer_kafka_metrics_count_count"] == [({"client_id": "producer-1"}, 6.0)]
    assert "# TYPE kafka_producer_producer_topic_metrics_record_send gauge" in text
    assert not any(name.startswith("strimzi_bridge_kafka") for name in series)


def test_the_jmx_exporter_rules_names_counters_total_and_labels_type_clientid_topic() -> None:
    series, text = _exposed("producer", [_SAMPLE], JMX)
    assert {(frozenset(labels.items()), v) for labels, v in series["strimzi_bridge_kafka_producer_record_send_total"]} == {
        (frozenset({"type": "producer-metrics", "clientId": "producer-1"}.items()), 7.0),
        (frozenset({"type": "producer-topic-metrics", "clientId": "producer-1", "topic": "t"}.items()), 7.0)}
    assert series["strimzi_bridge_kafka_producer_byte_total"] == [
        ({"type": "producer-topic-metrics", "clientId": "producer-1", "topic": "t"}, 70.0)]
    assert "# TYPE strimzi_bridge_kafka_producer_record_send_total counter" in text
    # a gauge keeps its name; the per-node one is left out (the rules would fold node-id into clientId)
    assert series["strimzi_bridge_kafka_producer_request_latency_avg"] == [
        ({"type": "producer-metrics", "clientId": "producer-1"}, 1.5)]
    assert series["strimzi_bridge_kafka_producer_count"] == [({"type": "kafka-metrics-count", "clientId": "producer-1"}, 6.0)]
    assert not any(name.startswith("kafka_") for name in series)


def _consumer_report(ts: int, rx: int, heartbeats: int, txidle: int, state: str = "up") -> dict[str, Any]:
    return {
        "type": "consumer", "client_id": "c", "ts": ts, "rxmsgs": rx, "rxmsg_bytes": rx * 10,
        "brokers": {
            "127.0.0.1:9092/0": {"nodeid": 0, "state": "UP", "tx": 5, "rx": 5, "txbytes": 50, "rxbytes": 90,
                                 "rtt": {"cnt": 1, "avg": 2000, "max": 2000}, "req": {"Fetch": rx}},
            "GroupCoordinator": {"nodeid": -1, "state": "UP", "txidle": txidle,
                                 "req": {"Heartbeat": heartbeats, "OffsetCommit": 1}},
        },
        "topics": {"t": {"partitions": {
            "0": {"partition": 0, "rxmsgs": rx, "rxbytes": rx * 10, "consumer_lag": 3},
            "1": {"partition": 1, "rxmsgs": rx, "rxbytes": rx * 10, "consumer_lag": 0},
            "-1": {"partition": -1, "rxmsgs": 0, "rxbytes": 0, "consumer_lag": -1}}}},
        "cgrp": {"state": state, "assignment_size": 2, "rebalance_cnt": 1, "rebalance_age": 4500},
    }


def test_a_consumer_reports_topics_nodes_partitions_and_its_coordinator() -> None:
    before, now = _consumer_report(1_000_000, 10, 2, 0), _consumer_report(3_000_000, 30, 3, 2_400_000)
    tagged = tagged_metrics(now, before)
    topic = (("topic", "t"),)
    f = "consumer-fetch-manager-metrics"
    assert tagged[(f, "records-consumed-total", topic)] == 60 and tagged[(f, "records-consumed-rate", topic)] == 20
    assert tagged[(f, "bytes-consumed-total", topic)] == 600
    assert tagged[(f, "records-lag", (("topic", "t"), ("partition", "0")))] == 3
    assert (f, "records-lag", (("topic", "t"), ("partition", "-1"))) not in tagged
    assert tagged[(f, "records-lag-max", topic)] == 3
    assert tagged[("consumer-node-metrics", "request-latency-avg", (("node-id", "node-0"),))] == 2.0
    m = java_metrics(now, before)
    c = "consumer-coordinator-metrics"
    assert m[("consumer-metrics", "connection-count")] == 2  # the coordinator's connection is one of its own
    assert ("consumer-metrics", "request-latency-avg") not in m  # the Java consumer has it per node only
    assert m[(f, "fetch-rate")] == 10 and m[(c, "heartbeat-total")] == 3 and m[(c, "heartbeat-rate")] == 0.5
    assert m[(c, "last-heartbeat-seconds-ago")] == 2 and m[(c, "last-rebalance-seconds-ago")] == 4
    # before it joined its group (or with no heartbeat yet) the Java client says -1
    assert java_metrics(_consumer_report(1, 0, 0, 5, "wait-coord"))[(c, "last-heartbeat-seconds-ago")] == -1


def test_poll_idle_ratio_from_the_http_polls() -> None:
    polls = PollTimes()
    path = "/consumers/g/instances/c/records"
    polls.observe("GET", path, 0.0, 1.0)  # the first poll: nothing before it to compare with
    assert polls.metrics("c") == {}
    polls.observe("GET", path, 4.0, 5.0)  # polled 1 s after 3 s of the client's own work
    polls.observe("POST", "/consumers/g/instances/c/offsets", 5.0, 5.5)  # not a poll
    polls.observe("GET", path, 6.0, 7.0)
    m = polls.metrics("c")
    assert m["poll-idle-ratio-avg"] == (0.25 + 0.5) / 2
    assert m["time-between-poll-avg"] == 2000 and m["time-between-poll-max"] == 3000
    polls.keep_only([])
    assert polls.metrics("c") == {}


def test_a_producers_topic_bytes_are_its_batches_bytes_summed_over_the_reports() -> None:
    stats = ClientStats()
    for ts, window in ((1_000_000, 700), (3_000_000, 300)):  # each report's batch sizes cover its own interval
        stats.on_stats(json.dumps({"type": "producer", "client_id": "p", "ts": ts, "brokers": {},
                                   "topics": {"t": {"batchsize": {"cnt": 2, "sum": window, "avg": window / 2, "max": window},
                                                        "partitions": {}}}}))
    tagged = stats.tagged("producer", "p")
    assert tagged[("producer-topic-metrics", "byte-total", (("topic", "t"),))] == 1000
    assert tagged[("producer-topic-metrics", "byte-rate", (("topic", "t"),))] == 150
