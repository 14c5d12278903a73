"""The Java Kafka clients' metrics, computed from librdkafka's statistics, for Strimzi's ``kafka_producer_*``
and ``kafka_consumer_*`` families (and their JMX-exporter names, ``strimzi_bridge_kafka_*``).

librdkafka reports each client's counters as JSON every ``statistics.interval.ms`` (the bridge sets 10 s
unless the user set it). ``ClientStats.on_stats`` keeps the newest report per client, already turned into
the Java metrics a Strimzi dashboard reads: the client-level ones keyed by the Java group and name
(``producer-metrics``, ``request-latency-avg``), and the per-topic, per-node and per-partition ones keyed by
group, name and their tags beyond ``client-id`` (``(("topic", "t"),)``, ``(("node-id", "node-0"),)``).
Times are in ms as Java reports them; rates are per second over the last interval.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_log = logging.getLogger("triggerfish.bridge.stats")

#: How often librdkafka reports, unless the user set ``statistics.interval.ms``.
DEFAULT_INTERVAL_MS = "10000"

#: A metric's tags beyond ``client-id``, in the Java client's order.
Tags = tuple[tuple[str, str], ...]
JavaMetrics = dict[tuple[str, str], float]
TaggedMetrics = dict[tuple[str, str, Tags], float]

_HEARTBEATS = ("Heartbeat", "ConsumerGroupHeartbeat")


@dataclass
class Report:
    """One client's newest metrics: client-level, and per topic/node/partition."""

    client: JavaMetrics = field(default_factory=dict)
    tagged: TaggedMetrics = field(default_factory=dict)


class ClientStats:
    """The newest Java-named metrics of every client, by (``producer``|``consumer``, client id); thread-safe."""

    def __init__(self) -> None:
        self._latest: dict[tuple[str, str], Report] = {}
        self._previous: dict[tuple[str, str], dict[str, Any]] = {}
        self._batch_bytes: dict[tuple[str, str], dict[str, float]] = {}  # producer -> topic -> bytes so far
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
            batch_bytes = self._batch_bytes.setdefault(key, {})
        out = Report(java_metrics(stats, previous), tagged_metrics(stats, previous))
        if key[0] == "producer":
            _batch_bytes(stats, _elapsed(stats, previous), batch_bytes, out.tagged)
        with self._lock:
            self._previous[key] = stats
            self._latest[key] = out

    def metrics(self, kind: str, client_id: str) -> JavaMetrics:
        with self._lock:
            report = self._latest.get((kind, client_id))
        return dict(report.client) if report else {}

    def tagged(self, kind: str, client_id: str) -> TaggedMetrics:
        with self._lock:
            report = self._latest.get((kind, client_id))
        return dict(report.tagged) if report else {}

    def keep_only(self, kind: str, client_ids: Iterable[str]) -> None:
        """Forget the clients of ``kind`` not in ``client_ids`` (closed consumers)."""
        live = set(client_ids)
        with self._lock:
            for key in [k for k in self._latest if k[0] == kind and k[1] not in live]:
                self._latest.pop(key, None)
                self._previous.pop(key, None)
                self._batch_bytes.pop(key, None)


def java_metrics(stats: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> JavaMetrics:
    """One librdkafka statistics report as the Java client's client-level metrics (producer or consumer by its ``type``)."""
    kind = str(stats.get("type", ""))
    group = "producer-metrics" if kind == "producer" else "consumer-metrics"
    brokers = _brokers(stats)
    seconds = _elapsed(stats, previous)
    out: JavaMetrics = {}

    def counter(g: str, name: str, total: float, before: float | None) -> None:
        out[(g, f"{name}-total")] = total
        out[(g, f"{name}-rate")] = _rate(total, before, seconds)

    def field_counter(g: str, name: str, key: str) -> None:
        counter(g, name, float(stats.get(key, 0)), float(previous.get(key, 0)) if previous else None)

    field_counter(group, "outgoing-byte", "tx_bytes")
    field_counter(group, "incoming-byte", "rx_bytes")
    field_counter(group, "request", "tx")
    field_counter(group, "response", "rx")
    # the group coordinator has a connection of its own (the Java consumer opens one too)
    connections = [b for b in brokers if b.get("nodeid", -1) >= 0
                   or (kind == "consumer" and b.get("name") == "GroupCoordinator")]
    out[(group, "connection-count")] = float(sum(1 for b in connections if b.get("state") == "UP"))
    out[(group, "connection-creation-total")] = float(sum(int(b.get("connects", 0)) for b in connections))
    out[(group, "connection-close-total")] = float(sum(int(b.get("disconnects", 0)) for b in connections))
    nodes = [b for b in brokers if b.get("nodeid", -1) >= 0]
    if kind == "producer":
        rtts = [b["rtt"] for b in nodes if (b.get("rtt") or {}).get("cnt")]
        if rtts:  # the Java consumer has these per node only
            out[(group, "request-latency-avg")] = sum(r["avg"] for r in rtts) / len(rtts) / 1000.0
            out[(group, "request-latency-max")] = max(r["max"] for r in rtts) / 1000.0
        _producer(stats, previous, nodes, seconds, out)
    else:
        _consumer(stats, previous, brokers, seconds, out)
    return out


def tagged_metrics(stats: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> TaggedMetrics:
    """The per-node, per-topic and (consumer) per-partition metrics of one report."""
    kind = str(stats.get("type", ""))
    seconds = _elapsed(stats, previous)
    out: TaggedMetrics = {}
    before_brokers = {b.get("name"): b for b in _brokers(previous)} if previous else {}
    node_group = f"{kind}-node-metrics"
    for b in _brokers(stats):
        if int(b.get("nodeid", -1)) < 0:
            continue
        tags: Tags = (("node-id", f"node-{b['nodeid']}"),)
        was = before_brokers.get(b.get("name"))
        for name, key in (("request", "tx"), ("response", "rx"), ("outgoing-byte", "txbytes"), ("incoming-byte", "rxbytes")):
            total = float(b.get(key, 0))
            out[(node_group, f"{name}-total", tags)] = total
            out[(node_group, f"{name}-rate", tags)] = _rate(total, float(was.get(key, 0)) if was else None, seconds)
        rtt = b.get("rtt") or {}
        if rtt.get("cnt"):
            out[(node_group, "request-latency-avg", tags)] = rtt["avg"] / 1000.0
            out[(node_group, "request-latency-max", tags)] = rtt["max"] / 1000.0
    topic_group = "producer-topic-metrics" if kind == "producer" else "consumer-fetch-manager-metrics"
    before_topics = (previous or {}).get("topics") or {}
    for topic, t in sorted((stats.get("topics") or {}).items()):
        parts = list((t.get("partitions") or {}).values())
        earlier = list(((before_topics.get(topic) or {}).get("partitions") or {}).values())
        tags = (("topic", topic),)
        if kind == "producer":  # byte-total: the batches' bytes, summed over the reports by ClientStats
            names: tuple[tuple[str, str], ...] = (("record-send", "txmsgs"),)
        else:
            names = (("bytes-consumed", "rxbytes"), ("records-consumed", "rxmsgs"))
        for name, key in names:
            total = float(sum(int(p.get(key, 0)) for p in parts))
            before = float(sum(int(p.get(key, 0)) for p in earlier)) if earlier else None
            out[(topic_group, f"{name}-total", tags)] = total
            out[(topic_group, f"{name}-rate", tags)] = _rate(total, before, seconds)
        if kind == "consumer":
            lags = {str(p["partition"]): int(p.get("consumer_lag", -1)) for p in parts if int(p.get("partition", -1)) >= 0}
            for partition, lag in lags.items():
                if lag >= 0:
                    out[(topic_group, "records-lag", (("topic", topic), ("partition", partition)))] = float(lag)
            if any(lag >= 0 for lag in lags.values()):
                out[(topic_group, "records-lag-max", tags)] = float(max(lags.values()))
    return out


def _batch_bytes(stats: Mapping[str, Any], seconds: float, so_far: dict[str, float], out: TaggedMetrics) -> None:
    """A topic's ``byte-total``/``byte-rate`` as Java counts them, the record batches' bytes, summed over the
    reports (each report's ``batchsize`` covers the interval since the one before), in place of the payload bytes."""
    for topic, t in (stats.get("topics") or {}).items():
        window = float((t.get("batchsize") or {}).get("sum", 0))
        so_far[topic] = so_far.get(topic, 0.0) + window
        tags = (("topic", topic),)
        out[("producer-topic-metrics", "byte-total", tags)] = so_far[topic]
        out[("producer-topic-metrics", "byte-rate", tags)] = window / seconds if seconds else 0.0


def _producer(stats: Mapping[str, Any], previous: Mapping[str, Any] | None, nodes: list[Mapping[str, Any]],
              seconds: float, out: JavaMetrics) -> None:
    g = "producer-metrics"
    out[(g, "buffer-total-bytes")] = float(stats.get("msg_size_max", 0))
    out[(g, "buffer-available-bytes")] = float(max(0, int(stats.get("msg_size_max", 0)) - int(stats.get("msg_size", 0))))
    out[(g, "records-queued")] = float(stats.get("msg_cnt", 0))  # not in Java: what the queue holds now
    out[(g, "requests-in-flight")] = float(sum(int(b.get("waitresp_cnt", 0)) for b in nodes))
    # the totals come from the delivery reports (exact at every scrape); the rates from librdkafka's counts
    out[(g, "record-send-rate")] = _rate(float(stats.get("txmsgs", 0)),
                                         float(previous.get("txmsgs", 0)) if previous else None, seconds)
    retries = float(sum(int(b.get("txretries", 0)) for b in nodes))
    out[(g, "record-retry-total")] = retries
    out[(g, "record-retry-rate")] = _rate(retries, float(sum(int(b.get("txretries", 0)) for b in _brokers(previous)
                                                             if b.get("nodeid", -1) >= 0)) if previous else None, seconds)
    queue = [b["int_latency"] for b in nodes if (b.get("int_latency") or {}).get("cnt")]
    if queue:
        out[(g, "record-queue-time-avg")] = sum(q["avg"] for q in queue) / len(queue) / 1000.0
        out[(g, "record-queue-time-max")] = max(q["max"] for q in queue) / 1000.0
    throttles = [b["throttle"] for b in nodes if (b.get("throttle") or {}).get("cnt")]
    if throttles:
        out[(g, "produce-throttle-time-avg")] = sum(t["avg"] for t in throttles) / len(throttles)
        out[(g, "produce-throttle-time-max")] = float(max(t["max"] for t in throttles))
    batches = [t["batchsize"] for t in (stats.get("topics") or {}).values() if (t.get("batchsize") or {}).get("cnt")]
    counts = [t["batchcnt"] for t in (stats.get("topics") or {}).values() if (t.get("batchcnt") or {}).get("cnt")]
    if batches:
        out[(g, "batch-size-avg")] = sum(b["avg"] for b in batches) / len(batches)
        out[(g, "batch-size-max")] = float(max(b["max"] for b in batches))
    if counts:
        out[(g, "records-per-request-avg")] = sum(c["avg"] for c in counts) / len(counts)


def _consumer(stats: Mapping[str, Any], previous: Mapping[str, Any] | None, brokers: list[Mapping[str, Any]],
              seconds: float, out: JavaMetrics) -> None:
    f = "consumer-fetch-manager-metrics"
    total = float(stats.get("rxmsg_bytes", 0))
    out[(f, "bytes-consumed-total")] = total
    out[(f, "bytes-consumed-rate")] = _rate(total, float(previous.get("rxmsg_bytes", 0)) if previous else None, seconds)
    # records-consumed-total is the bridge's own count (records returned to HTTP); the rate is librdkafka's
    out[(f, "records-consumed-rate")] = _rate(float(stats.get("rxmsgs", 0)),
                                              float(previous.get("rxmsgs", 0)) if previous else None, seconds)
    nodes = [b for b in brokers if b.get("nodeid", -1) >= 0]
    fetches = float(_requests(nodes, ("Fetch",)))
    out[(f, "fetch-total")] = fetches
    out[(f, "fetch-rate")] = _rate(fetches, float(_requests([b for b in _brokers(previous) if b.get("nodeid", -1) >= 0],
                                                            ("Fetch",))) if previous else None, seconds)
    lags = [int(p.get("consumer_lag", -1)) for t in (stats.get("topics") or {}).values()
            for p in (t.get("partitions") or {}).values() if int(p.get("partition", -1)) >= 0]
    lags = [lag for lag in lags if lag >= 0]
    out[(f, "records-lag-max")] = float(max(lags)) if lags else 0.0
    rtts = [b["rtt"] for b in nodes if (b.get("rtt") or {}).get("cnt")]
    if rtts:
        out[(f, "fetch-latency-avg")] = sum(r["avg"] for r in rtts) / len(rtts) / 1000.0
        out[(f, "fetch-latency-max")] = max(r["max"] for r in rtts) / 1000.0
    cgrp = stats.get("cgrp") or {}
    c = "consumer-coordinator-metrics"
    out[(c, "assigned-partitions")] = float(cgrp.get("assignment_size", 0))
    out[(c, "rebalance-total")] = float(cgrp.get("rebalance_cnt", 0))
    out[(c, "last-rebalance-seconds-ago")] = (
        float(int(cgrp.get("rebalance_age", 0)) // 1000) if cgrp.get("rebalance_cnt") else -1.0)
    heartbeats = float(_requests(brokers, _HEARTBEATS))
    out[(c, "heartbeat-total")] = heartbeats
    out[(c, "heartbeat-rate")] = _rate(heartbeats, float(_requests(_brokers(previous), _HEARTBEATS)) if previous else None,
                                       seconds)
    out[(c, "join-total")] = float(_requests(brokers, ("JoinGroup",)))
    out[(c, "commit-rate")] = _rate(float(_requests(brokers, ("OffsetCommit",))),
                                    float(_requests(_brokers(previous), ("OffsetCommit",))) if previous else None, seconds)
    coordinator = next((b for b in brokers if b.get("name") == "GroupCoordinator"), None)
    # librdkafka does not time its heartbeats: the coordinator connection's idle time is the time since the
    # consumer last wrote to it (a heartbeat, or a commit), -1 before it joined a group, as the Java client says
    joined = cgrp.get("state") == "up" and heartbeats > 0 and coordinator is not None
    idle = int(coordinator.get("txidle", -1)) if coordinator is not None else -1
    out[(c, "last-heartbeat-seconds-ago")] = float(idle // 1_000_000) if joined and idle >= 0 else -1.0


def _brokers(stats: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if not stats:
        return []
    return [{**b, "name": name} for name, b in (stats.get("brokers") or {}).items()]


def _requests(brokers: list[Mapping[str, Any]], kinds: tuple[str, ...]) -> int:
    return sum(int((b.get("req") or {}).get(k, 0)) for b in brokers for k in kinds)


def _rate(total: float, before: float | None, seconds: float) -> float:
    if before is None or not seconds:
        return 0.0
    return max(0.0, total - before) / seconds


def _elapsed(stats: Mapping[str, Any], previous: Mapping[str, Any] | None) -> float:
    if not previous:
        return 0.0
    # ``ts`` is librdkafka's monotonic clock in microseconds
    return max(0.0, (float(stats.get("ts", 0)) - float(previous.get("ts", 0))) / 1e6)
