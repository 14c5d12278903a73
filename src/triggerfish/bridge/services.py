"""The Kafka-side objects one bridge uses (producer, topic admin, consumer registry, health, metrics)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

from triggerfish.bridge.config import BridgeConfig
from triggerfish.bridge.consumers import Registry
from triggerfish.bridge.errors import Identity, client_config_error
from triggerfish.bridge.health import KafkaHealth
from triggerfish.bridge.metrics import BridgeMetrics
from triggerfish.bridge.producer import SharedProducer
from triggerfish.bridge.schema_formats import SchemaCodec
from triggerfish.bridge.schema_registry import SchemaRegistry
from triggerfish.bridge.topics import Topics

_kafka_log = logging.getLogger("triggerfish.bridge.librdkafka")


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
    ready: bool = False

    @classmethod
    def build(cls, config: BridgeConfig) -> Services:
        """Build the Kafka clients; a librdkafka config rejection is a ConfigError naming the user's key."""
        identity = Identity.from_config(config.admin)
        metrics = BridgeMetrics()
        health = KafkaHealth(identity)
        hooks: dict[str, Any] = {"error_cb": health.on_error, "logger": _kafka_log}
        producer = None
        # first: a registry the bridge cannot use stops start-up before any Kafka client is built
        schemas = None if config.registry is None else SchemaCodec(SchemaRegistry(config.registry))
        try:
            admin = AdminClient({**config.admin, **hooks})
            if config.consumer_enabled:
                # fail at start-up, not at the first create-consumer request
                Consumer({**config.consumer, "group.id": "triggerfish-bridge-config-check"}).close()
            if config.producer_enabled:
                producer = SharedProducer({**config.producer, **hooks}, identity, metrics.record_sent)
        except KafkaException as exc:
            raise client_config_error(exc, config.origins) from None
        registry = Registry({**config.consumer, **hooks}, identity, config.bridge_id, config.timeout_seconds,
                            config.max_poll_records, schemas)
        return cls(config, identity, producer, Topics(admin, identity), registry, metrics, health, schemas)

    def close(self) -> None:
        self.consumers.close_all()
        if self.producer is not None:
            self.producer.close()
        if self.schemas is not None:
            self.schemas.registry.close()
