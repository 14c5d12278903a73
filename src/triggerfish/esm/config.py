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
``lambda_message``, and a ``str()`` naming the field, the value and the allowed range.
Deep checks of FilterCriteria (``esm/filter.py``) and SourceAccessConfigurations (``esm/auth.py``)
are delegated to those modules' ``validate_*`` functions when they exist.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any

from triggerfish.validation import Fields, InvalidParameterError, check_str, lambda_name, shape_error

DEFAULT_BATCH_SIZE = 100
#: Lambda's Kafka default when MaximumBatchingWindowInSeconds is absent (the API cannot express it).
DEFAULT_WINDOW_SECONDS = 0.5
#: Lambda's synchronous invoke payload limit; a batch's event JSON never exceeds it.
MAX_PAYLOAD_BYTES = 6_291_456
STARTING_POSITIONS = ["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]
ACCESS_TYPES = [
    "BASIC_AUTH", "VPC_SUBNET", "VPC_SECURITY_GROUP", "SASL_SCRAM_512_AUTH", "SASL_SCRAM_256_AUTH",
    "VIRTUAL_HOST", "CLIENT_CERTIFICATE_TLS_AUTH", "SERVER_ROOT_CA_CERTIFICATE",
]
ENDPOINT_PATTERN = (
    r"(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9]):[0-9]{1,5}"
)
TOPIC_PATTERN = r"[^.]([a-zA-Z0-9\-_.]+)"
URI_PATTERN = r"[ a-zA-Z0-9-\/*:_+=.@-]*"
ARN_PATTERN = r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
DESTINATION_PATTERN = r"$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
FUNCTION_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?"
    r"([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
METRICS = ["EventCount", "ErrorCount", "KafkaMetrics"]
MAX_FILTERS = 10  # Lambda's default quota is 5, raisable to 10 on request

# Parameters of other event source types; Lambda rejects them for Kafka with this text.
NOT_FOR_KAFKA = (
    "ParallelizationFactor", "TumblingWindowInSeconds", "ScalingConfig", "Queues", "DocumentDBEventSourceConfig",
)
#: Fields UpdateEventSourceMapping may change for a Kafka mapping (everything else is create-only).
UPDATABLE = frozenset(
    {
        "FunctionName", "Enabled", "BatchSize", "FilterCriteria", "MaximumBatchingWindowInSeconds",
        "DestinationConfig", "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError", "MaximumRetryAttempts",
        "SourceAccessConfigurations", "FunctionResponseTypes", "KMSKeyArn", "MetricsConfig",
        "ProvisionedPollerConfig", "LoggingConfig",
    }
)
FIELDS = (
    "UUID", "FunctionName", "EventSourceArn", "SelfManagedEventSource", "BootstrapServers", "Topics",
    "StartingPosition", "StartingPositionTimestamp", "BatchSize", "MaximumBatchingWindowInSeconds", "Enabled",
    "FilterCriteria", "KMSKeyArn", "SourceAccessConfigurations", "AmazonManagedKafkaEventSourceConfig",
    "SelfManagedKafkaEventSourceConfig", "DestinationConfig", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError", "FunctionResponseTypes", "ProvisionedPollerConfig", "MetricsConfig",
    "LoggingConfig", "Tags",
) + NOT_FOR_KAFKA


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
    batch_size: int = DEFAULT_BATCH_SIZE
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
    def window_seconds(self) -> float:
        w = self.maximum_batching_window_in_seconds
        return DEFAULT_WINDOW_SECONDS if w is None else float(w)

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
            if name not in UPDATABLE and name not in FIELDS:
                raise InvalidParameterError(f"{where}.{name}" if where else name, f"Unknown field '{name}'")
            if name not in UPDATABLE:
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
        f = Fields(data, where, FIELDS)
        for name in NOT_FOR_KAFKA:
            if f.has(name):
                raise InvalidParameterError(
                    f.path(name), f"Unsupported '{lambda_name(name)}' parameter for given event source mapping type.",
                    f"{name} applies to other event sources, not Kafka; remove it",
                )
            f.raw(name)
        uuid = f.str_("UUID", min_len=1, max_len=64)
        function_name = check_str(f.path("FunctionName"), f.require("FunctionName"), min_len=1, max_len=140,
                                  pattern=FUNCTION_PATTERN, hint="a function name, or its ARN")
        f.raw("FunctionName")
        arn = f.str_("EventSourceArn", max_len=10000, pattern=ARN_PATTERN, hint="an MSK cluster ARN")
        sme = f.dict_("SelfManagedEventSource")
        override = f.list_("BootstrapServers", min_len=1, max_len=10)
        if arn is None and sme is None:
            raise InvalidParameterError(
                where or "EventSourceMapping", "Unrecognized event source.",
                "give SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS, or EventSourceArn for MSK",
            )
        if arn is not None and sme is not None:
            raise InvalidParameterError(f.path("SelfManagedEventSource"),
                                        "EventSourceArn and SelfManagedEventSource are mutually exclusive",
                                        "use EventSourceArn for MSK, SelfManagedEventSource for any other Kafka")
        if arn is not None and not arn.startswith("arn:") or (arn and arn.split(":")[2] != "kafka"):
            raise InvalidParameterError(f.path("EventSourceArn"), f"Value '{arn}' is not an MSK cluster ARN",
                                        "triggerfish runs Kafka mappings: arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/ID")
        servers: tuple[str, ...]
        if sme is not None:
            servers = tuple(_endpoints(sme, f.path("SelfManagedEventSource")))
            if override is not None:
                raise InvalidParameterError(f.path("BootstrapServers"),
                                            "BootstrapServers is only for the MSK form (EventSourceArn)",
                                            "put the servers under SelfManagedEventSource.Endpoints")
        else:
            servers = tuple(_check_endpoint(f"{f.path('BootstrapServers')}[{i}]", s) for i, s in enumerate(override or []))

        topics = f.list_("Topics", min_len=1, max_len=1)
        if topics is None:
            raise InvalidParameterError(f.path("Topics"), "Topics is required", "give exactly one topic: Topics: [name]")
        for i, t in enumerate(topics):
            check_str(f"{f.path('Topics')}[{i}]", t, min_len=1, max_len=249, pattern=TOPIC_PATTERN,
                      hint="Kafka topic names: letters, digits, . _ -")
        position = f.enum_("StartingPosition", STARTING_POSITIONS)
        if position is None:
            raise InvalidParameterError(f.path("StartingPosition"), "StartingPosition is required for Kafka",
                                        "use TRIM_HORIZON, LATEST or AT_TIMESTAMP")
        ts = _timestamp(f, position, now)
        batch_size = f.int_("BatchSize", 1, 10000, DEFAULT_BATCH_SIZE)
        window = f.int_("MaximumBatchingWindowInSeconds", 0, 300)
        enabled = f.bool_("Enabled", True)
        filters = _filter_criteria(f)
        kms = f.str_("KMSKeyArn", max_len=10000, pattern=r"(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()")
        access = _access_configurations(f)
        kafka_cfg = _kafka_event_source_config(f, msk=arn is not None)
        destination = _destination(f)
        retries = f.int_("MaximumRetryAttempts", -1, 10000, -1)
        age = f.int_("MaximumRecordAgeInSeconds", -1, 604800, -1)
        if 0 <= age < 60:
            raise shape_error(f.path("MaximumRecordAgeInSeconds"), age,
                              "Member must have value greater than or equal to 60", "use -1 (forever) or 60..604800")
        bisect = f.bool_("BisectBatchOnFunctionError", False)
        response_types = f.list_("FunctionResponseTypes", max_len=1, default=[])
        for i, rt in enumerate(response_types):
            if rt != "ReportBatchItemFailures":
                raise shape_error(f"{f.path('FunctionResponseTypes')}[{i}]", rt,
                                  "Member must satisfy enum value set: [ReportBatchItemFailures]",
                                  "the only value is ReportBatchItemFailures")
        pollers = _pollers(f)
        metrics = f.dict_("MetricsConfig")
        if metrics is not None:
            m = Fields(metrics, f.path("MetricsConfig"), ("Metrics",))
            names = m.list_("Metrics", max_len=3, default=[])
            for i, name in enumerate(names):
                if name not in METRICS:
                    raise shape_error(f"{m.path('Metrics')}[{i}]", name,
                                      f"Member must satisfy enum value set: [{', '.join(METRICS)}]")
            m.done()
        logging_cfg = f.dict_("LoggingConfig")
        if logging_cfg is not None:
            lg = Fields(logging_cfg, f.path("LoggingConfig"), ("SystemLogLevel",))
            lg.enum_("SystemLogLevel", ["DEBUG", "INFO", "WARN"])
            lg.done()
        tags = f.dict_("Tags", {})
        f.done()
        mapping = cls(
            function_name=function_name, topics=tuple(topics), starting_position=position, uuid=uuid,
            event_source_arn=arn, bootstrap_servers=servers, starting_position_timestamp=ts, batch_size=batch_size,
            maximum_batching_window_in_seconds=window, enabled=enabled, filter_criteria=filters, kms_key_arn=kms,
            source_access_configurations=tuple(access), kafka_event_source_config=kafka_cfg,
            destination_config=destination, maximum_retry_attempts=retries, maximum_record_age_in_seconds=age,
            bisect_batch_on_function_error=bisect, function_response_types=tuple(response_types),
            provisioned_poller_config=pollers, metrics_config=metrics, logging_config=logging_cfg,
            tags={str(k): str(v) for k, v in tags.items()},
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


# -- field readers ------------------------------------------------------------------------------
def _check_endpoint(path: str, value: Any) -> str:
    return check_str(path, value, min_len=1, max_len=300, pattern=ENDPOINT_PATTERN, hint="host:port, e.g. 127.0.0.1:9092")


def _endpoints(sme: dict[str, Any], where: str) -> list[str]:
    s = Fields(sme, where, ("Endpoints",))
    endpoints = s.dict_("Endpoints")
    s.done()
    if not endpoints:
        raise InvalidParameterError(f"{where}.Endpoints", "Endpoints is required",
                                    "Endpoints: {KAFKA_BOOTSTRAP_SERVERS: [host:port]}")
    e = Fields(endpoints, f"{where}.Endpoints", ("KAFKA_BOOTSTRAP_SERVERS", "KafkaBootstrapServers"))
    key = "KAFKA_BOOTSTRAP_SERVERS" if e.has("KAFKA_BOOTSTRAP_SERVERS") else "KafkaBootstrapServers"
    servers = e.list_(key, min_len=1, max_len=10)
    e.raw("KafkaBootstrapServers")
    e.done()
    if servers is None:
        raise InvalidParameterError(f"{where}.Endpoints.KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS is required",
                                    "list the brokers as host:port")
    return [_check_endpoint(f"{where}.Endpoints.{key}[{i}]", s) for i, s in enumerate(servers)]


def _timestamp(f: Fields, position: str, now: float | None) -> float | None:
    raw = f.raw("StartingPositionTimestamp")
    if position != "AT_TIMESTAMP":
        if raw is not None:
            raise InvalidParameterError(f.path("StartingPositionTimestamp"),
                                        "StartingPositionTimestamp is only valid with StartingPosition AT_TIMESTAMP",
                                        "remove it, or set StartingPosition: AT_TIMESTAMP")
        return None
    if raw is None:
        raise InvalidParameterError(f.path("StartingPositionTimestamp"),
                                    "StartingPositionTimestamp is required when StartingPosition is AT_TIMESTAMP",
                                    "give epoch seconds, e.g. 1700000000")
    ts: float
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        ts = float(raw)
    elif hasattr(raw, "timestamp"):  # YAML parses ISO timestamps into datetime
        ts = float(raw.timestamp())
    else:
        try:
            ts = float(raw)
        except (TypeError, ValueError):
            raise InvalidParameterError(f.path("StartingPositionTimestamp"), f"Value '{raw}' is not a timestamp",
                                        "give epoch seconds, e.g. 1700000000") from None
    if ts > (now if now is not None else time.time()) + 1:
        raise InvalidParameterError(f.path("StartingPositionTimestamp"),
                                    f"StartingPositionTimestamp {ts:.0f} is in the future",
                                    "use a time in the past (epoch seconds)")
    return ts


def _filter_criteria(f: Fields) -> dict[str, Any] | None:
    criteria = f.dict_("FilterCriteria")
    if criteria is None:
        return None
    c = Fields(criteria, f.path("FilterCriteria"), ("Filters",))
    filters = c.list_("Filters", default=[])
    c.done()
    if len(filters) > MAX_FILTERS:
        raise InvalidParameterError(c.path("Filters"), f"{len(filters)} filters exceed the quota",
                                    f"at most {MAX_FILTERS} filters (Lambda's default quota is 5)")
    out = []
    for i, item in enumerate(filters):
        p = Fields(item, f"{c.path('Filters')}[{i}]", ("Pattern",))
        if isinstance(p.data.get("Pattern"), dict):  # YAML users may write the pattern as a mapping
            p.data["Pattern"] = json.dumps(p.data["Pattern"])
        pattern = p.str_("Pattern", max_len=4096)
        p.done()
        if pattern is None:
            raise InvalidParameterError(p.path("Pattern"), "Pattern is required", "Pattern: '{\"value\": {...}}'")
        try:
            json.loads(pattern)
        except ValueError:
            raise InvalidParameterError(p.path("Pattern"), "Invalid filter pattern definition.",
                                        "Pattern must be a JSON string, e.g. '{\"value\": {\"kind\": [\"order\"]}}'") from None
        out.append({"Pattern": pattern})
    return {"Filters": out}


def _access_configurations(f: Fields) -> list[dict[str, str]]:
    items = f.list_("SourceAccessConfigurations", max_len=23, default=[])
    out = []
    for i, item in enumerate(items):
        a = Fields(item, f"{f.path('SourceAccessConfigurations')}[{i}]", ("Type", "URI"))
        kind = a.enum_("Type", ACCESS_TYPES)
        uri = a.str_("URI", min_len=1, max_len=200, pattern=URI_PATTERN)
        a.done()
        if kind is None or uri is None:
            raise InvalidParameterError(a.where, "each entry needs Type and URI",
                                        "e.g. {Type: SASL_SCRAM_512_AUTH, URI: arn:aws:secretsmanager:...}")
        out.append({"Type": kind, "URI": uri})
    return out


def _kafka_event_source_config(f: Fields, *, msk: bool) -> dict[str, Any] | None:
    mine, other = (
        ("AmazonManagedKafkaEventSourceConfig", "SelfManagedKafkaEventSourceConfig") if msk
        else ("SelfManagedKafkaEventSourceConfig", "AmazonManagedKafkaEventSourceConfig")
    )
    if f.has(other):
        raise InvalidParameterError(f.path(other), f"Unsupported '{lambda_name(other)}' parameter for given event source mapping type.",
                                    f"use {mine} for this {'MSK' if msk else 'self-managed'} mapping")
    f.raw(other)
    cfg = f.dict_(mine)
    if cfg is None:
        return None
    c = Fields(cfg, f.path(mine), ("ConsumerGroupId", "SchemaRegistryConfig"))
    gid = c.str_("ConsumerGroupId", min_len=1, max_len=200, pattern=URI_PATTERN,
                 hint="letters, digits and - / * : _ + = . @")
    registry = c.dict_("SchemaRegistryConfig")
    c.done()
    out: dict[str, Any] = {}
    if gid is not None:
        out["ConsumerGroupId"] = gid
    if registry is not None:
        r = Fields(registry, c.path("SchemaRegistryConfig"),
                   ("SchemaRegistryURI", "EventRecordFormat", "AccessConfigs", "SchemaValidationConfigs"))
        r.str_("SchemaRegistryURI", min_len=1, max_len=10000)
        r.enum_("EventRecordFormat", ["JSON", "SOURCE"])
        r.list_("AccessConfigs", max_len=2)
        r.list_("SchemaValidationConfigs", max_len=2)
        r.done()
        out["SchemaRegistryConfig"] = registry
    return out


def _destination(f: Fields) -> dict[str, Any] | None:
    cfg = f.dict_("DestinationConfig")
    if cfg is None:
        return None
    if "OnSuccess" in cfg:
        raise InvalidParameterError(f.path("DestinationConfig.OnSuccess"),
                                    "Unsupported DestinationConfig parameter for given event source mapping type.",
                                    "Kafka mappings support OnFailure only")
    d = Fields(cfg, f.path("DestinationConfig"), ("OnFailure",))
    on_failure = d.dict_("OnFailure")
    d.done()
    if on_failure is None:
        return None
    o = Fields(on_failure, d.path("OnFailure"), ("Destination",))
    dest = o.str_("Destination", "", max_len=350, pattern=DESTINATION_PATTERN,
                  hint="kafka://topic, or an SQS queue / SNS topic / S3 bucket ARN")
    o.done()
    if dest == "":
        return None
    return {"OnFailure": {"Destination": dest}}


def _pollers(f: Fields) -> dict[str, Any] | None:
    cfg = f.dict_("ProvisionedPollerConfig")
    if cfg is None:
        return None
    p = Fields(cfg, f.path("ProvisionedPollerConfig"), ("MinimumPollers", "MaximumPollers", "PollerGroupName"))
    lo = p.int_("MinimumPollers", 1, 200)
    hi = p.int_("MaximumPollers", 1, 10000)
    p.str_("PollerGroupName", max_len=128, pattern=r"[a-zA-Z0-9-_]*")
    p.done()
    if lo is not None and hi is not None and hi < lo:
        raise InvalidParameterError(p.path("MaximumPollers"),
                                    f"MaximumPollers ({hi}) must be greater than or equal to MinimumPollers ({lo})",
                                    "raise MaximumPollers or lower MinimumPollers")
    return dict(cfg)


def _deep_validate(mapping: MappingConfig, where: str) -> None:
    """Field checks owned by other modules (filter syntax, auth combinations), when they provide one."""
    import importlib

    for module, func in (
        ("triggerfish.esm.filter", "validate_criteria"),
        ("triggerfish.esm.auth", "validate_access"),
        ("triggerfish.esm.destinations", "validate_destination"),
    ):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        check = getattr(mod, func, None)
        if check is not None:
            check(mapping, where)
