"""The fields of a Kafka event source mapping as Lambda defines them: names, patterns, limits, one reader per section.

Each ``read_*`` function takes the mapping's :class:`~triggerfish.validation.Fields`, consumes its
section and returns the validated value, raising ``InvalidParameterError`` with Lambda's text.
:meth:`triggerfish.esm.config.MappingConfig.from_dict` calls them in Lambda's field order.
"""

from __future__ import annotations

import json
import time
from typing import Any

from triggerfish.errors import InvalidParameterError
from triggerfish.json_input import NestingError, loads
from triggerfish.validation import Fields, check_str, lambda_name, shape_error

_STARTING_POSITIONS = ["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]
#: SelfManagedKafkaEventSourceConfig.ConsumptionMode: a consumer group (Stream) or a share group (Queue).
STREAM, QUEUE = "Stream", "Queue"
_CONSUMPTION_MODES = [STREAM, QUEUE]
#: Fields Lambda refuses in Queue mode (the service model's words, "Not supported ... when ConsumptionMode is Queue").
_NOT_IN_QUEUE_MODE = ("StartingPosition", "StartingPositionTimestamp", "MaximumBatchingWindowInSeconds")
_QUEUE_ONLY = "for Kafka event source mappings when ConsumptionMode is Queue"
_ACCESS_TYPES = [
    "BASIC_AUTH", "VPC_SUBNET", "VPC_SECURITY_GROUP", "SASL_SCRAM_512_AUTH", "SASL_SCRAM_256_AUTH",
    "VIRTUAL_HOST", "CLIENT_CERTIFICATE_TLS_AUTH", "SERVER_ROOT_CA_CERTIFICATE", "OAUTHBEARER_AUTH",
    "OAUTHBEARER_SCOPE", "OAUTHBEARER_AUDIENCE", "OAUTHBEARER_LOGICAL_CLUSTER", "OAUTHBEARER_IDENTITY_POOL",
    "IAM_AUTH", "IAM_OAUTHBEARER_AUTH",
]
#: Types whose entry has no URI (the execution role's identity logs in).
_NO_URI_TYPES = ("IAM_AUTH", "IAM_OAUTHBEARER_AUTH")
_ENDPOINT_PATTERN = (
    r"(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]*[a-zA-Z0-9])\.)*"
    r"([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9\-]*[A-Za-z0-9]):[0-9]{1,5}"
)
_TOPIC_PATTERN = r"[^.]([a-zA-Z0-9\-_.]+)"
_URI_PATTERN = r"[ a-zA-Z0-9-\/*:_+=.@-]*"
_ARN_PATTERN = r"arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
_DESTINATION_PATTERN = r"$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
_FUNCTION_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?"
    r"([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
_METRICS = ["EventCount", "ErrorCount", "KafkaMetrics"]
_MAX_FILTERS = 10  # Lambda's default quota is 5, raisable to 10 on request

# Parameters of other event source types; Lambda rejects them for Kafka with this text.
_NOT_FOR_KAFKA = (
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
) + _NOT_FOR_KAFKA


def reject_other_sources(f: Fields) -> None:
    """Parameters of other event source types: Lambda rejects them for Kafka with this text."""
    for name in _NOT_FOR_KAFKA:
        if f.has(name):
            raise InvalidParameterError(
                f.path(name), f"Unsupported '{lambda_name(name)}' parameter for given event source mapping type.",
                f"{name} applies to other event sources, not Kafka; remove it",
            )
        f.raw(name)


def read_function_name(f: Fields) -> str:
    name = check_str(f.path("FunctionName"), f.require("FunctionName"), min_len=1, max_len=140,
                     pattern=_FUNCTION_PATTERN, hint="a function name, or its ARN")
    f.raw("FunctionName")
    return name


def read_event_source(f: Fields) -> tuple[str | None, tuple[str, ...]]:
    """``(EventSourceArn, bootstrap servers)``: self-managed endpoints, or MSK's ARN and optional override."""
    arn = f.str_("EventSourceArn", max_len=10000, pattern=_ARN_PATTERN, hint="an MSK cluster ARN")
    sme = f.dict_("SelfManagedEventSource")
    override = f.list_("BootstrapServers", min_len=1, max_len=10)
    if arn is None and sme is None:
        raise InvalidParameterError(
            f.where or "EventSourceMapping", "Unrecognized event source.",
            "give SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS, or EventSourceArn for MSK",
        )
    if arn is not None and sme is not None:
        raise InvalidParameterError(f.path("SelfManagedEventSource"),
                                    "EventSourceArn and SelfManagedEventSource are mutually exclusive",
                                    "use EventSourceArn for MSK, SelfManagedEventSource for any other Kafka")
    if arn is not None and not arn.startswith("arn:") or (arn and arn.split(":")[2] != "kafka"):
        raise InvalidParameterError(f.path("EventSourceArn"), f"Value '{arn}' is not an MSK cluster ARN",
                                    "triggerfish runs Kafka mappings: arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/ID")
    if sme is not None:
        if override is not None:
            raise InvalidParameterError(f.path("BootstrapServers"),
                                        "BootstrapServers is only for the MSK form (EventSourceArn)",
                                        "put the servers under SelfManagedEventSource.Endpoints")
        return arn, tuple(_endpoints(sme, f.path("SelfManagedEventSource")))
    return arn, tuple(_check_endpoint(f"{f.path('BootstrapServers')}[{i}]", s) for i, s in enumerate(override or []))


def read_topics(f: Fields) -> tuple[str, ...]:
    topics = f.list_("Topics", min_len=1, max_len=1)
    if topics is None:
        raise InvalidParameterError(f.path("Topics"), "Topics is required", "give exactly one topic: Topics: [name]")
    for i, t in enumerate(topics):
        check_str(f"{f.path('Topics')}[{i}]", t, min_len=1, max_len=249, pattern=_TOPIC_PATTERN,
                  hint="Kafka topic names: letters, digits, . _ -")
    return tuple(topics)


def queue_mode(f: Fields) -> bool:
    """Whether the self-managed config asks for ConsumptionMode Queue (peeked: the section is read later)."""
    cfg = f.data.get("SelfManagedKafkaEventSourceConfig")
    return isinstance(cfg, dict) and cfg.get("ConsumptionMode") == QUEUE


def refuse_in_queue_mode(f: Fields) -> None:
    """StartingPosition, StartingPositionTimestamp and MaximumBatchingWindowInSeconds: Lambda refuses them in Queue mode."""
    for name in _NOT_IN_QUEUE_MODE:
        if f.has(name):
            raise InvalidParameterError(
                f.path(name), f"{name} is not supported {_QUEUE_ONLY}.",
                "a share group has no starting position and batches what one poll returns; remove it",
            )


def read_retry_attempts(f: Fields, *, queue: bool) -> int:
    """MaximumRetryAttempts: -1..10000, default -1; in Queue mode default 0 and -1 refused (the broker redelivers)."""
    retries = f.int_("MaximumRetryAttempts", -1, 10000, 0 if queue else -1)
    if queue and retries < 0:
        raise InvalidParameterError(
            f.path("MaximumRetryAttempts"), f"MaximumRetryAttempts -1 (infinite retries) is not supported {_QUEUE_ONLY}.",
            "use 0..10000; the broker redelivers released records up to group.share.delivery.count.limit",
        )
    return retries


def read_starting_position(f: Fields, now: float | None) -> tuple[str, float | None]:
    """``(StartingPosition, StartingPositionTimestamp)``."""
    position = f.enum_("StartingPosition", _STARTING_POSITIONS)
    if position is None:
        raise InvalidParameterError(f.path("StartingPosition"), "StartingPosition is required for Kafka",
                                    "use TRIM_HORIZON, LATEST or AT_TIMESTAMP")
    return position, _timestamp(f, position, now)


def read_record_age(f: Fields) -> int:
    age = f.int_("MaximumRecordAgeInSeconds", -1, 604800, -1)
    if 0 <= age < 60:
        raise shape_error(f.path("MaximumRecordAgeInSeconds"), age,
                          "Member must have value greater than or equal to 60", "use -1 (forever) or 60..604800")
    return age


def read_response_types(f: Fields) -> tuple[str, ...]:
    response_types = f.list_("FunctionResponseTypes", max_len=1, default=[])
    for i, rt in enumerate(response_types):
        if rt != "ReportBatchItemFailures":
            raise shape_error(f"{f.path('FunctionResponseTypes')}[{i}]", rt,
                              "Member must satisfy enum value set: [ReportBatchItemFailures]",
                              "the only value is ReportBatchItemFailures")
    return tuple(response_types)


def read_metrics(f: Fields) -> dict[str, Any] | None:
    metrics = f.dict_("MetricsConfig")
    if metrics is not None:
        m = Fields(metrics, f.path("MetricsConfig"), ("Metrics",))
        names = m.list_("Metrics", max_len=3, default=[])
        for i, name in enumerate(names):
            if name not in _METRICS:
                raise shape_error(f"{m.path('Metrics')}[{i}]", name,
                                  f"Member must satisfy enum value set: [{', '.join(_METRICS)}]")
        m.done()
    return metrics


def read_logging(f: Fields) -> dict[str, Any] | None:
    logging_cfg = f.dict_("LoggingConfig")
    if logging_cfg is not None:
        lg = Fields(logging_cfg, f.path("LoggingConfig"), ("SystemLogLevel",))
        lg.enum_("SystemLogLevel", ["DEBUG", "INFO", "WARN"])
        lg.done()
    return logging_cfg


def read_tags(f: Fields) -> dict[str, str]:
    return {str(k): str(v) for k, v in f.dict_("Tags", {}).items()}


def _check_endpoint(path: str, value: Any) -> str:
    endpoint = check_str(path, value, min_len=1, max_len=300, pattern=_ENDPOINT_PATTERN,
                         hint="host:port, e.g. 127.0.0.1:9092")
    port = int(endpoint.rsplit(":", 1)[1])  # the pattern allows any 1 to 5 digits
    if not 1 <= port <= 65535:
        raise InvalidParameterError(path, f"Value '{endpoint}' has port {port}, which is not a TCP port",
                                    "use a port in 1..65535, e.g. 127.0.0.1:9092")
    return endpoint


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


def read_filter_criteria(f: Fields) -> dict[str, Any] | None:
    criteria = f.dict_("FilterCriteria")
    if criteria is None:
        return None
    c = Fields(criteria, f.path("FilterCriteria"), ("Filters",))
    filters = c.list_("Filters", default=[])
    c.done()
    if len(filters) > _MAX_FILTERS:
        raise InvalidParameterError(c.path("Filters"), f"{len(filters)} filters exceed the quota",
                                    f"at most {_MAX_FILTERS} filters (Lambda's default quota is 5)")
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
            loads(pattern)
        except NestingError as exc:
            raise InvalidParameterError(p.path("Pattern"), "Invalid filter pattern definition.", str(exc)) from None
        except ValueError:
            raise InvalidParameterError(p.path("Pattern"), "Invalid filter pattern definition.",
                                        "Pattern must be a JSON string, e.g. '{\"value\": {\"kind\": [\"order\"]}}'") from None
        out.append({"Pattern": pattern})
    return {"Filters": out}


def read_access_configurations(f: Fields) -> list[dict[str, str]]:
    items = f.list_("SourceAccessConfigurations", max_len=23, default=[])
    out = []
    for i, item in enumerate(items):
        a = Fields(item, f"{f.path('SourceAccessConfigurations')}[{i}]", ("Type", "URI"))
        kind = a.enum_("Type", _ACCESS_TYPES)
        uri = a.str_("URI", min_len=1, max_len=200, pattern=_URI_PATTERN)
        a.done()
        if kind in _NO_URI_TYPES and uri is None:
            out.append({"Type": kind})
            continue
        if kind is None or uri is None:
            raise InvalidParameterError(a.where, "each entry needs Type and URI",
                                        "e.g. {Type: SASL_SCRAM_512_AUTH, URI: arn:aws:secretsmanager:...}")
        out.append({"Type": kind, "URI": uri})
    return out


def read_kafka_event_source_config(f: Fields, *, msk: bool) -> dict[str, Any] | None:
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
    if msk and "ConsumptionMode" in cfg:
        raise InvalidParameterError(f"{f.path(mine)}.ConsumptionMode",
                                    "Unsupported 'ConsumptionMode' parameter for given event source mapping type.",
                                    "Queue mode (share groups) is for self-managed Kafka only")
    c = Fields(cfg, f.path(mine), ("ConsumerGroupId", "SchemaRegistryConfig", "ConsumptionMode"))
    gid = c.str_("ConsumerGroupId", min_len=1, max_len=200, pattern=_URI_PATTERN,
                 hint="letters, digits and - / * : _ + = . @")
    registry = c.dict_("SchemaRegistryConfig")
    mode = c.enum_("ConsumptionMode", _CONSUMPTION_MODES)
    c.done()
    out: dict[str, Any] = {}
    if gid is not None:
        out["ConsumerGroupId"] = gid
    if mode is not None:
        out["ConsumptionMode"] = mode
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


def read_destination(f: Fields) -> dict[str, Any] | None:
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
    dest = o.str_("Destination", "", max_len=350, pattern=_DESTINATION_PATTERN,
                  hint="kafka://topic, or an SQS queue / SNS topic / S3 bucket ARN")
    o.done()
    if dest == "":
        return None
    return {"OnFailure": {"Destination": dest}}


def read_pollers(f: Fields) -> dict[str, Any] | None:
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
