"""The Kafka-side objects one bridge uses (producer, topic admin, consumer registry, health, metrics)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

from triggerfish.bridge.client_families import SCHEMES, ClientSample
from triggerfish.bridge.client_stats import DEFAULT_INTERVAL_MS, ClientStats
from triggerfish.bridge.config import BridgeConfig
from triggerfish.bridge.consumers import Registry
from triggerfish.bridge.errors import Identity, client_config_error
from triggerfish.bridge.executor import Executor
from triggerfish.bridge.forwarding import Forwarder
from triggerfish.bridge.health import KafkaHealth
from triggerfish.bridge.metrics import BridgeMetrics
from triggerfish.bridge.producer import SharedProducer
from triggerfish.bridge.schema_formats import SchemaCodec
from triggerfish.bridge.schema_registry import SchemaRegistry
from triggerfish.bridge.strimzi_metrics import StrimziMetrics
from triggerfish.bridge.topics import Topics

_kafka_log = logging.getLogger("triggerfish.bridge.librdkafka")
_log = logging.getLogger("triggerfish.bridge")
_JAVA_ACKS = ("all", "-1", "0", "1")


def _java_producer_error(conf: dict[str, str]) -> str | None:
    """The Java client's refusal of a producer setting librdkafka would take (``acks=5``): Strimzi starts,
    and every send answers 500 with it."""
    acks = conf.get("acks")
    if acks is not None and acks.strip().lower() not in _JAVA_ACKS:
        return f"Invalid value {acks} for configuration acks: String must be one of: {', '.join(_JAVA_ACKS)}"
    return None


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
    #: The avro/protobuf/jsonschema formats, when ``schema.registry.url`` is set.
    schemas: SchemaCodec | None = None
    #: Why sends fail with Strimzi's 500 when the producer config is one the Java client refuses.
    producer_error: str | None = None
    executor: Executor = field(default_factory=Executor)
    ready: bool = False
    strimzi: StrimziMetrics | None = None
    client_stats: ClientStats = field(default_factory=ClientStats)
    #: Forwards requests for consumer instances other replicas hold (``bridge.replicas.*``); off by default.
    forwarder: Forwarder | None = None

    @classmethod
    def build(cls, config: BridgeConfig) -> Services:
        """Build the Kafka clients; a librdkafka config rejection is a ConfigError naming the user's key."""
        identity = Identity.from_config(config.admin)
        metrics = BridgeMetrics()
        health = KafkaHealth(identity)
        hooks: dict[str, Any] = {"error_cb": health.on_error, "logger": _kafka_log}
        stats = ClientStats()
        # the producer's and consumers' statistics feed the Java clients' metrics (the admin client's are not needed)
        reporting = {**hooks, "stats_cb": stats.on_stats}
        interval = {"statistics.interval.ms": DEFAULT_INTERVAL_MS}
        producer = None
        # first: a registry the bridge cannot use stops start-up before any Kafka client is built
        schemas = None if config.registry is None else SchemaCodec(SchemaRegistry(config.registry))
        try:
            admin = AdminClient({**config.admin, **hooks})
            if config.consumer_enabled:
                # fail at start-up, not at the first create-consumer request
                Consumer({**config.consumer, "group.id": "triggerfish-bridge-config-check"}).close()
            producer_error = _java_producer_error(config.producer)
            if config.producer_enabled and producer_error is None:
                producer = SharedProducer({**interval, **config.producer, **reporting}, identity, metrics.records_sent)
        except KafkaException as exc:
            raise client_config_error(exc, config.origins) from None
        registry = Registry({**interval, **config.consumer, **reporting}, identity, config.bridge_id, config.timeout_seconds,
                            config.max_poll_records, schemas)
        if producer_error is not None:
            _log.error("the producer cannot start, sends will fail: %s", producer_error)
        services = cls(config, identity, producer, Topics(admin, identity), registry, metrics, health, schemas,
                       producer_error if config.producer_enabled else None)
        services.client_stats = stats
        if config.replicas is not None:
            services.forwarder = Forwarder(config.replicas)
        services.strimzi = StrimziMetrics(services.executor, services.producer_samples, services.consumer_samples,
                                          (config.metrics,) if config.metrics else SCHEMES)
        metrics.registry.register(services.strimzi)
        return services

    def producer_samples(self) -> list[ClientSample]:
        """The shared producer's numbers under the Java producer's metric names."""
        if self.producer is None:
            return []
        client_id = self.config.producer.get("client.id")
        values = self.client_stats.metrics("producer", client_id or "rdkafka")
        tagged = self.client_stats.tagged("producer", client_id or "rdkafka")
        # from the delivery reports, exact at every scrape (the statistics lag by up to an interval)
        values[("producer-metrics", "record-send-total")] = float(self.metrics.sent_ok)
        values[("producer-metrics", "record-error-total")] = float(self.metrics.sent_failed)
        for topic, (sent, failed) in list(self.metrics.sent_by_topic.items()):
            tagged[("producer-topic-metrics", "record-send-total", (("topic", topic),))] = float(sent)
            tagged[("producer-topic-metrics", "record-error-total", (("topic", topic),))] = float(failed)
        return [ClientSample(client_id or "producer-1", values, tagged)]

    def consumer_samples(self) -> list[ClientSample]:
        """Each consumer instance's numbers under the Java consumer's metric names (client id: its name)."""
        now = time.monotonic()
        live = self.consumers.live()
        self.client_stats.keep_only("consumer", [inst.name for inst in live])
        if self.strimzi is not None:
            self.strimzi.polls.keep_only(inst.name for inst in live)
        samples = []
        for inst in live:
            values = self.client_stats.metrics("consumer", inst.name)
            if self.strimzi is not None:
                values.update({("consumer-metrics", k): v for k, v in self.strimzi.polls.metrics(inst.name).items()})
            values[("consumer-fetch-manager-metrics", "records-consumed-total")] = float(inst.consumed)
            values[("consumer-metrics", "last-poll-seconds-ago")] = (
                -1.0 if inst.last_poll is None else float(int(now - inst.last_poll)))
            count, total, longest = inst.commits
            values[("consumer-coordinator-metrics", "commit-total")] = float(count)
            values[("consumer-coordinator-metrics", "commit-latency-avg")] = total / count * 1000 if count else 0.0
            values[("consumer-coordinator-metrics", "commit-latency-max")] = longest * 1000
            samples.append(ClientSample(inst.name, values, self.client_stats.tagged("consumer", inst.name)))
        return samples

    def close(self) -> None:
        self.consumers.close_all()
        if self.producer is not None:
            self.producer.close()
        if self.schemas is not None:
            self.schemas.registry.close()
