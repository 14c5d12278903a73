"""librdkafka's statistics as the Java clients' metrics Strimzi's dashboard reads (no Kafka: a report as librdkafka writes it)."""

from __future__ import annotations

import json
from typing import Any

from triggerfish.bridge.client_stats import ClientStats, java_metrics


def _report(kind: str, client_id: str, ts: int, tx_bytes: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind, "client_id": client_id, "ts": ts, "tx": 10, "rx": 9, "tx_bytes": tx_bytes, "rx_bytes": 500,
        "msg_cnt": 3, "msg_size": 300, "msg_size_max": 1000, "rxmsg_bytes": 4096,
        "brokers": {
            "127.0.0.1:9092/0": {"nodeid": 0, "state": "UP", "rtt": {"cnt": 2, "avg": 1500, "max": 4000},
                                 "int_latency": {"cnt": 3, "avg": 200, "max": 900}},
            "GroupCoordinator": {"nodeid": -1, "state": "UP", "rtt": {"cnt": 1, "avg": 99999, "max": 99999}},
        },
        "topics": {"t": {"batchsize": {"cnt": 2, "avg": 250, "max": 400}, "batchcnt": {"cnt": 2, "avg": 5, "max": 8},
                         "partitions": {"0": {"partition": 0, "consumer_lag": 7}, "-1": {"partition": -1, "consumer_lag": -1}}}},
        "cgrp": {"assignment_size": 1, "rebalance_cnt": 2},
        **extra,
    }


def test_producer_report_as_java_metrics() -> None:
    m = java_metrics(_report("producer", "p", 2_000_000, 3000), _report("producer", "p", 1_000_000, 1000))
    g = "producer-metrics"
    assert m[(g, "outgoing-byte-total")] == 3000 and m[(g, "outgoing-byte-rate")] == 2000  # bytes over the 1 s between
    assert m[(g, "request-total")] == 10 and m[(g, "response-total")] == 9
    assert m[(g, "connection-count")] == 1  # the coordinator entry is not a connection of its own
    assert m[(g, "request-latency-avg")] == 1.5 and m[(g, "request-latency-max")] == 4.0  # µs -> ms
    assert m[(g, "record-queue-time-avg")] == 0.2 and m[(g, "buffer-available-bytes")] == 700
    assert m[(g, "batch-size-avg")] == 250 and m[(g, "records-per-request-avg")] == 5


def test_consumer_report_as_java_metrics() -> None:
    m = java_metrics(_report("consumer", "c", 1_000_000, 10))
    assert m[("consumer-metrics", "incoming-byte-total")] == 500 and m[("consumer-metrics", "incoming-byte-rate")] == 0
    assert m[("consumer-fetch-manager-metrics", "bytes-consumed-total")] == 4096
    assert m[("consumer-fetch-manager-metrics", "records-lag-max")] == 7
    assert m[("consumer-coordinator-metrics", "assigned-partitions")] == 1
    assert m[("consumer-coordinator-metrics", "rebalance-total")] == 2


def test_the_newest_report_per_client_and_closed_clients_forgotten() -> None:
    stats = ClientStats()
    stats.on_stats(json.dumps(_report("consumer", "a", 1, 10)))
    stats.on_stats(json.dumps(_report("consumer", "b", 1, 10)))
    stats.on_stats(json.dumps(_report("consumer", "a", 1_000_001, 110)))
    stats.on_stats("not json")  # ignored
    assert stats.metrics("consumer", "a")[("consumer-metrics", "outgoing-byte-rate")] == 100
    stats.keep_only("consumer", ["a"])
    assert stats.metrics("consumer", "b") == {} and stats.metrics("consumer", "a")
