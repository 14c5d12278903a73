"""The Kafka clients' metrics under the two names Strimzi's bridge gives them, one per ``bridge.metrics``:

- ``strimziMetricsReporter`` (Strimzi's metrics reporter): ``kafka_{producer,consumer}_{group}_{name}``, every
  one a gauge, a ``-total`` name without its suffix, labelled by the Java tags (``client_id``, ``topic``,
  ``node_id``, ``partition``), as in ``kafka_producer_producer_topic_metrics_record_send{client_id,topic}``.
- ``jmxPrometheusExporter`` (the JMX exporter with the bridge's rules): ``strimzi_bridge_kafka_{producer,consumer}_{name}``,
  a ``-total`` name a counter ending in ``_total``, labelled ``type`` (the group), ``clientId`` and ``topic``,
  as in ``strimzi_bridge_kafka_producer_record_send_total{type="producer-topic-metrics",clientId,topic}``.
  The per-node and per-partition metrics are left out there (those rules fold their tags into ``clientId``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import Metric

from triggerfish.bridge.client_stats import JavaMetrics, TaggedMetrics, Tags

REPORTER = "strimziMetricsReporter"
JMX = "jmxPrometheusExporter"
SCHEMES = (JMX, REPORTER)

_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")
# the JMX exporter rules' attribute patterns: ([a-z-]+-total-[a-z-]+) is a gauge, ([a-z-]+)-total a counter
_MIDDLE_TOTAL = re.compile(r"[a-z-]+-total-[a-z-]+")
_TOTAL = re.compile(r"([a-z-]+)-total")
_NAME = re.compile(r"[a-z-]+")


@dataclass
class ClientSample:
    """What one Kafka client reports: its ``client_id`` and its metrics by Java group and name (and tags)."""

    client_id: str
    values: JavaMetrics
    tagged: TaggedMetrics = field(default_factory=dict)

    def count(self) -> float:
        """``kafka-metrics-count``'s ``count``: how many metrics the client has."""
        return float(len(self.values) + len(self.tagged) + 1)


def client_families(kind: str, samples: list[ClientSample], schemes: tuple[str, ...]) -> Iterator[Metric]:
    """``kind`` is ``producer`` or ``consumer``; the families of every scheme in ``schemes``."""
    if REPORTER in schemes:
        yield from _reporter(kind, samples)
    if JMX in schemes:
        yield from _jmx(kind, samples)


def _all(sample: ClientSample) -> Iterator[tuple[str, str, Tags, float]]:
    for (group, name), value in sorted(sample.values.items()):
        yield group, name, (), value
    yield "kafka-metrics-count", "count", (), sample.count()
    for (group, name, tags), value in sorted(sample.tagged.items()):
        yield group, name, tags, value


def _reporter(kind: str, samples: list[ClientSample]) -> Iterator[Metric]:
    families: dict[str, Metric] = {}
    for sample in samples:
        for group, name, tags, value in _all(sample):
            java = name[: -len("-total")] if name.endswith("-total") else name
            full = _UNSAFE.sub("_", f"kafka_{kind}_{group}_{java}").lower()
            family = families.get(full)
            if family is None:
                family = families[full] = Metric(full, f"{group} {name}", "gauge")
            labels = {"client_id": sample.client_id, **{_UNSAFE.sub("_", k): v for k, v in tags}}
            family.add_sample(full, labels, value)
    yield from families.values()


def _jmx(kind: str, samples: list[ClientSample]) -> Iterator[Metric]:
    families: dict[tuple[str, str], Metric] = {}
    for sample in samples:
        for group, name, tags, value in _all(sample):
            if tags and [k for k, _ in tags] != ["topic"]:
                continue
            named = _jmx_name(name)
            if named is None:
                continue
            base, counter = named
            full = f"strimzi_bridge_kafka_{kind}_{base}"
            mtype = "counter" if counter else "gauge"
            family = families.get((full, mtype))
            if family is None:
                family = families[(full, mtype)] = Metric(full, f"{name} ({kind})", mtype)
            labels = {"type": group, "clientId": sample.client_id, **dict(tags)}
            family.add_sample(f"{full}_total" if counter else full, labels, value)
    yield from families.values()


def _jmx_name(name: str) -> tuple[str, bool] | None:
    """The JMX exporter's name for a Java attribute and whether it is a counter; None where no rule matches."""
    if _MIDDLE_TOTAL.fullmatch(name):
        return name.replace("-", "_"), False
    total = _TOTAL.fullmatch(name)
    if total:
        return total.group(1).replace("-", "_"), True
    if _NAME.fullmatch(name):
        return name.replace("-", "_"), False
    return None
