"""The Java Kafka clients' metrics, computed from librdkafka's statistics, for Strimzi's ``kafka_producer_*``
and ``kafka_consumer_*`` families.

librdkafka reports each client's counters as JSON every ``statistics.interval.ms`` (the bridge sets 10 s
unless the user set it). ``ClientStats.on_stats`` keeps the newest report per client, already turned into
the Java metrics a Strimzi dashboard reads, keyed by the Java group and name (``producer-metrics``,
``request-latency-avg``; times in ms as Java reports them). Rates are per second over the last interval.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

_log = logging.getLogger("triggerfish.bridge.stats")

#: How often librdkafka reports, unless the user set ``statistics.interval.ms``.
DEFAULT_INTERVAL_MS = "10000"

JavaMetrics = dict[tuple[str, str], float]


class ClientStats:
    """The newest Java-named metrics of every client, by (``producer``|``consumer``, client id); thread-safe."""

    def __init__(self) -> None:
        self._latest: dict[tuple[str, str], JavaMetrics] = {}
        self._previous: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def on_stats(self, report: str) -> None:
        """``stats_cb`` for every client (runs on the thread that polls it)."""
        try:
            stats = json.loads(report)
            key = (str(stats["type"]), str(stats["client_id"]))
        except (ValueError, KeyError, TypeError):
            _log.debug("unreadable librdkafka statistics")
            return
        with self._lock:
            previous = self._previous.get(key)
            self._previous[key] = stats
            self._latest[key] = java_metrics(stats, previous)

    def metrics(self, kind: str, client_id: str) -> JavaMetrics:
        with self._lock:
            return dict(self._latest.get((kind, client_id), {}))

    def keep_only(self, kind: str, client_ids: Iterable[str]) -> None:
        """Forget the clients of ``kind`` not in ``client_ids`` (closed consumers)."""
        live = set(client_ids)
        with self._lock:
            for key in [k for k in self._latest if k[0] == kind and k[1] not in live]:
                self._latest.pop(key, None)
                self._previous.pop(key, None)


def java_metrics(stats: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> JavaMetrics:
    """One librdkafka statistics report as the Java client's metrics (producer or consumer by its ``type``)."""
    kind = str(stats.get("type", ""))
    group = "producer-metrics" if kind == "producer" else "consumer-metrics"
    brokers = [b for b in (stats.get("brokers") or {}).values() if int(b.get("nodeid", -1)) >= 0]
    seconds = _elapsed(stats, previous)
    out: JavaMetrics = {}

    def counter(name: str, field: str) -> None:
        total = float(stats.get(field, 0))
        out[(group, f"{name}-total")] = total
        before = float(previous.get(field, 0)) if previous else 0.0
        out[(group, f"{name}-rate")] = max(0.0, total - before) / seconds if seconds else 0.0

    counter("outgoing-byte", "tx_bytes")
    counter("incoming-byte", "rx_bytes")
    counter("request", "tx")
    counter("response", "rx")
    out[(group, "connection-count")] = float(sum(1 for b in brokers if b.get("state") == "UP"))
    rtts = [b["rtt"] for b in brokers if (b.get("rtt") or {}).get("cnt")]
    if rtts:
        out[(group, "request-latency-avg")] = sum(r["avg"] for r in rtts) / len(rtts) / 1000.0
        out[(group, "request-latency-max")] = max(r["max"] for r in rtts) / 1000.0
    if kind == "producer":
        _producer(stats, brokers, out)
    else:
        _consumer(stats, brokers, previous, seconds, out)
    return out


def _producer(stats: Mapping[str, Any], brokers: list[Mapping[str, Any]], out: JavaMetrics) -> None:
    g = "producer-metrics"
    out[(g, "buffer-total-bytes")] = float(stats.get("msg_size_max", 0))
    out[(g, "buffer-available-bytes")] = float(max(0, int(stats.get("msg_size_max", 0)) - int(stats.get("msg_size", 0))))
    out[(g, "records-queued")] = float(stats.get("msg_cnt", 0))  # not in Java: what the queue holds now
    queue = [b["int_latency"] for b in brokers if (b.get("int_latency") or {}).get("cnt")]
    if queue:
        out[(g, "record-queue-time-avg")] = sum(q["avg"] for q in queue) / len(queue) / 1000.0
        out[(g, "record-queue-time-max")] = max(q["max"] for q in queue) / 1000.0
    batches = [t["batchsize"] for t in (stats.get("topics") or {}).values() if (t.get("batchsize") or {}).get("cnt")]
    counts = [t["batchcnt"] for t in (stats.get("topics") or {}).values() if (t.get("batchcnt") or {}).get("cnt")]
    if batches:
        out[(g, "batch-size-avg")] = sum(b["avg"] for b in batches) / len(batches)
        out[(g, "batch-size-max")] = float(max(b["max"] for b in batches))
    if counts:
        out[(g, "records-per-request-avg")] = sum(c["avg"] for c in counts) / len(counts)


def _consumer(stats: Mapping[str, Any], brokers: list[Mapping[str, Any]], previous: Mapping[str, Any] | None,
              seconds: float, out: JavaMetrics) -> None:
    f = "consumer-fetch-manager-metrics"
    total = float(stats.get("rxmsg_bytes", 0))
    before = float(previous.get("rxmsg_bytes", 0)) if previous else 0.0
    out[(f, "bytes-consumed-total")] = total
    out[(f, "bytes-consumed-rate")] = max(0.0, total - before) / seconds if seconds else 0.0
    lags = [int(p.get("consumer_lag", -1)) for t in (stats.get("topics") or {}).values()
            for p in (t.get("partitions") or {}).values() if int(p.get("partition", -1)) >= 0]
    lags = [lag for lag in lags if lag >= 0]
    out[(f, "records-lag-max")] = float(max(lags)) if lags else 0.0
    fetches = [b["rtt"] for b in brokers if (b.get("rtt") or {}).get("cnt")]
    if fetches:
        out[(f, "fetch-latency-avg")] = sum(r["avg"] for r in fetches) / len(fetches) / 1000.0
        out[(f, "fetch-latency-max")] = max(r["max"] for r in fetches) / 1000.0
    cgrp = stats.get("cgrp") or {}
    c = "consumer-coordinator-metrics"
    out[(c, "assigned-partitions")] = float(cgrp.get("assignment_size", 0))
    out[(c, "rebalance-total")] = float(cgrp.get("rebalance_cnt", 0))


def _elapsed(stats: Mapping[str, Any], previous: Mapping[str, Any] | None) -> float:
    if not previous:
        return 0.0
    # ``ts`` is librdkafka's monotonic clock in microseconds
    return max(0.0, (float(stats.get("ts", 0)) - float(previous.get("ts", 0))) / 1e6)
