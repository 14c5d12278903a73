"""``MappingConfig``: one Kafka event source mapping, with every Lambda field, limit and error text.

The same dict shape is accepted from ``triggerfish.yaml`` (``EventSourceMappings:``) and from the
control API's CreateEventSourceMapping body; ``to_dict()`` gives it back with Lambda's names.
Two forms, as Lambda:

* self-managed Kafka: ``SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS`` (CloudFormation's
  ``KafkaBootstrapServers`` is accepted too), optional ``SelfManagedKafkaEventSourceConfig``;
* MSK: ``EventSourceArn`` (a cluster ARN) plus optional ``AmazonManagedKafkaEventSourceConfig``;
  bootstrap servers come from ``BootstrapServers`` (a triggerfish extension, for offline use) or are
  resolved with boto3 ``kafka.get_bootstrap_brokers`` at start (see ``esm/msk.py``).

Validation errors are ``InvalidParameterError`` (``triggerfish.validation``): Lambda's text in
``lambda_message``, and a ``str()`` naming the field, the value and the allowed range. Each section is
read by :mod:`triggerfish.esm.mapping_fields`; the deep checks of FilterCriteria
(:mod:`triggerfish.esm.filter`), SourceAccessConfigurations (:mod:`triggerfish.esm.access`) and the
on-failure destination (:mod:`triggerfish.esm.destination_config`) are called directly, always.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from triggerfish.errors import InvalidParameterError
from triggerfish.esm import mapping_fields as fields
from triggerfish.esm.access import validate_access
from triggerfish.esm.destination_config import destination_of, validate_destination
from triggerfish.esm.filter import validate_criteria
from triggerfish.validation import Fields

_DEFAULT_BATCH_SIZE = 100
#: Lambda's Kafka default when MaximumBatchingWindowInSeconds is absent (the API cannot express it).
_DEFAULT_WINDOW_SECONDS = 0.5
#: Lambda's synchronous invoke payload limit; a batch's event JSON never exceeds it.
MAX_PAYLOAD_BYTES = 6_291_456

@dataclass(frozen=True)
class MappingConfig:
    """A validated Kafka event source mapping. Dict-valued fields keep Lambda's shapes."""

    function_name: str
    topics: tuple[str, ...]
    starting_position: str
    uuid: str | None = None
    event_source_arn: str | None = None
    #: Self-managed endpoints, or the MSK override (``BootstrapServers``); empty = resolve MSK via boto3.
    bootstrap_servers: tuple[str, ...] = ()
    starting_position_timestamp: float | None = None
    batch_size: int = _DEFAULT_BATCH_SIZE
    #: None = Lambda's Kafka default of 500 ms (``window_seconds``).
    maximum_batching_window_in_seconds: int | None = None
    enabled: bool = True
    filter_criteria: dict[str, Any] | None = None
    kms_key_arn: str | None = None
    source_access_configurations: tuple[dict[str, str], ...] = ()
    #: ``{"ConsumerGroupId": ..., "SchemaRegistryConfig": {...}}`` (Self-managed or Amazon-managed per form)
    kafka_event_source_config: dict[str, Any] | None = None
    destination_config: dict[str, Any] | None = None
    maximum_retry_attempts: int = -1
    maximum_record_age_in_seconds: int = -1
    bisect_batch_on_function_error: bool = False
    function_response_types: tuple[str, ...] = ()
    provisioned_poller_config: dict[str, Any] | None = None
    metrics_config: dict[str, Any] | None = None
    logging_config: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)

    # -- derived -------------------------------------------------------------------------------
    @property
    def topic(self) -> str:
        return self.topics[0]

    @property
    def is_msk(self) -> bool:
        return self.event_source_arn is not None

    @property
    def event_source(self) -> str:
        """The event's ``eventSource``: ``aws:kafka`` for MSK, ``SelfManagedKafka`` otherwise."""
        return "aws:kafka" if self.is_msk else "SelfManagedKafka"

    @property
    def queue(self) -> bool:
        """ConsumptionMode Queue: consumed through a share group (``esm/queue_drive.py``), not a consumer group."""
        return (self.kafka_event_source_config or {}).get("ConsumptionMode") == fields.QUEUE

    @property
    def window_seconds(self) -> float:
        w = self.maximum_batching_window_in_seconds
        return _DEFAULT_WINDOW_SECONDS if w is None else float(w)

    @property
    def consumer_group_id(self) -> str | None:
        """The configured ConsumerGroupId, or None (then the group is the mapping's UUID)."""
        return (self.kafka_event_source_config or {}).get("ConsumerGroupId")

    @property
    def group_id(self) -> str:
        gid = self.consumer_group_id or self.uuid
        if not gid:
            raise ValueError("mapping has neither a ConsumerGroupId nor a UUID yet")
        return gid

    @property
    def function(self) -> str:
        """The bare function name, also when FunctionName is an ARN or carries a qualifier."""
        name = self.function_name
        if name.startswith("arn:"):
            parts = name.split(":")
            return parts[6] if len(parts) > 6 else parts[-1]
        if ":" in name:
            # 123456789012:function:name or name:qualifier
            parts = name.split(":")
            return parts[2] if len(parts) >= 3 and parts[1] == "function" else parts[0]
        return name

    def identity(self) -> str:
        """What makes two mappings the same one (Lambda's conflict rule): source, function, topic."""
        source = self.event_source_arn or ",".join(sorted(self.bootstrap_servers))
        return f"{source}|{self.function}|{self.topic}"

    def replace(self, **changes: Any) -> MappingConfig:
        return dataclasses.replace(self, **changes)

    def updated(self, changes: dict[str, Any], *, where: str = "") -> MappingConfig:
        """Apply an UpdateEventSourceMapping body (Lambda names); create-only fields are refused."""
        for name in changes:
            if name not in fields.UPDATABLE and name not in fields.FIELDS:
                raise InvalidParameterError(f"{where}.{name}" if where else name, f"Unknown field '{name}'")
            if name not in fields.UPDATABLE:
                current = self.to_dict().get(name)
                if changes[name] != current:
                    raise InvalidParameterError(
                        f"{where}.{name}" if where else name,
                        f"{name} cannot be updated after the event source mapping is created",
                        "create a new mapping instead",
                    )
        merged = self.to_dict()
        for name, value in changes.items():
            if name == "DestinationConfig" and value and value.get("OnFailure", {}).get("Destination") == "":
                merged.pop(name, None)  # "" removes the destination
            elif value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        return MappingConfig.from_dict(merged, where=where)

    # -- (de)serialisation ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, *, where: str = "", now: float | None = None) -> MappingConfig:
        """Validate a Lambda-shaped dict (YAML or an API body), section by section, in Lambda's order."""
        f = Fields(data, where, fields.FIELDS)
        fields.reject_other_sources(f)
        uuid = f.str_("UUID", min_len=1, max_len=64)
        function_name = fields.read_function_name(f)
        arn, servers = fields.read_event_source(f)
        topics = fields.read_topics(f)
        queue = fields.queue_mode(f)
        if queue:
            fields.refuse_in_queue_mode(f)
        position, timestamp = ("", None) if queue else fields.read_starting_position(f, now)
        batch_size = f.int_("BatchSize", 1, 10000, _DEFAULT_BATCH_SIZE)
        window = f.int_("MaximumBatchingWindowInSeconds", 0, 300)
        enabled = f.bool_("Enabled", True)
        filters = fields.read_filter_criteria(f)
        kms = f.str_("KMSKeyArn", max_len=10000, pattern=r"(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()")
        access = fields.read_access_configurations(f)
        kafka_cfg = fields.read_kafka_event_source_config(f, msk=arn is not None)
        destination = fields.read_destination(f)
        retries = fields.read_retry_attempts(f, queue=queue)
        age = fields.read_record_age(f)
        bisect = f.bool_("BisectBatchOnFunctionError", False)
        response_types = fields.read_response_types(f)
        pollers = fields.read_pollers(f)
        metrics = fields.read_metrics(f)
        logging_cfg = fields.read_logging(f)
        tags = fields.read_tags(f)
        f.done()
        mapping = cls(
            function_name=function_name, topics=topics, starting_position=position, uuid=uuid,
            event_source_arn=arn, bootstrap_servers=servers, starting_position_timestamp=timestamp,
            batch_size=batch_size, maximum_batching_window_in_seconds=window, enabled=enabled,
            filter_criteria=filters, kms_key_arn=kms, source_access_configurations=tuple(access),
            kafka_event_source_config=kafka_cfg, destination_config=destination, maximum_retry_attempts=retries,
            maximum_record_age_in_seconds=age, bisect_batch_on_function_error=bisect,
            function_response_types=response_types, provisioned_poller_config=pollers, metrics_config=metrics,
            logging_config=logging_cfg, tags=tags,
        )
        _deep_validate(mapping, where)
        return mapping

    def to_dict(self) -> dict[str, Any]:
        """Lambda's field names; only what is set (plus Lambda's always-present defaults)."""
        out: dict[str, Any] = {}
        if self.uuid:
            out["UUID"] = self.uuid
        out["FunctionName"] = self.function_name
        if self.event_source_arn:
            out["EventSourceArn"] = self.event_source_arn
            if self.bootstrap_servers:
                out["BootstrapServers"] = list(self.bootstrap_servers)
        else:
            out["SelfManagedEventSource"] = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": list(self.bootstrap_servers)}}
        out["Topics"] = list(self.topics)
        if self.starting_position:  # none in Queue mode
            out["StartingPosition"] = self.starting_position
        if self.starting_position_timestamp is not None:
            out["StartingPositionTimestamp"] = self.starting_position_timestamp
        out["BatchSize"] = self.batch_size
        if self.maximum_batching_window_in_seconds is not None:
            out["MaximumBatchingWindowInSeconds"] = self.maximum_batching_window_in_seconds
        out["Enabled"] = self.enabled
        if self.filter_criteria is not None:
            out["FilterCriteria"] = self.filter_criteria
        if self.kms_key_arn:
            out["KMSKeyArn"] = self.kms_key_arn
        if self.source_access_configurations:
            out["SourceAccessConfigurations"] = [dict(c) for c in self.source_access_configurations]
        if self.kafka_event_source_config is not None:
            key = "AmazonManagedKafkaEventSourceConfig" if self.is_msk else "SelfManagedKafkaEventSourceConfig"
            out[key] = dict(self.kafka_event_source_config)
        if self.destination_config is not None:
            out["DestinationConfig"] = self.destination_config
        out["MaximumRetryAttempts"] = self.maximum_retry_attempts
        out["MaximumRecordAgeInSeconds"] = self.maximum_record_age_in_seconds
        out["BisectBatchOnFunctionError"] = self.bisect_batch_on_function_error
        out["FunctionResponseTypes"] = list(self.function_response_types)
        for name, value in (
            ("ProvisionedPollerConfig", self.provisioned_poller_config),
            ("MetricsConfig", self.metrics_config),
            ("LoggingConfig", self.logging_config),
        ):
            if value is not None:
                out[name] = value
        if self.tags:
            out["Tags"] = dict(self.tags)
        return out


def _deep_validate(mapping: MappingConfig, where: str) -> None:
    """The checks other modules own: FilterCriteria grammar, access combinations, the on-failure target."""
    validate_criteria(mapping.filter_criteria, where)
    validate_access(mapping, where)
    validate_destination(destination_of(mapping), mapping.topics, where)
