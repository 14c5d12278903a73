"""Config validation: Lambda's limits and error texts, one line naming field, value and range."""

from __future__ import annotations

import ast
import importlib
import time
from pathlib import Path

import pytest

from triggerfish import config as project_config
from triggerfish.errors import ConfigError, InvalidParameterError
from triggerfish.esm import access as esm_access
from triggerfish.esm import config as esm_config
from triggerfish.esm import destination_config as esm_destination_config
from triggerfish.esm import filter as esm_filter
from triggerfish.esm.batcher import PartitionBuffer
from triggerfish.esm.config import MAX_PAYLOAD_BYTES, MappingConfig
from triggerfish.esm.event import EventBuilder, Record
from triggerfish.functions.config import FunctionConfig

BASE = {
    "FunctionName": "orders",
    "Topics": ["orders"],
    "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
    "StartingPosition": "TRIM_HORIZON",
}


def mapping(**changes) -> MappingConfig:
    data = {**BASE, **changes}
    return MappingConfig.from_dict({k: v for k, v in data.items() if v is not None}, where="EventSourceMappings[0]")


def test_defaults_are_lambdas():
    m = mapping()
    assert m.batch_size == 100
    assert m.maximum_batching_window_in_seconds is None and m.window_seconds == 0.5
    assert m.enabled and m.maximum_retry_attempts == -1 and m.maximum_record_age_in_seconds == -1
    assert m.event_source == "SelfManagedKafka" and m.bootstrap_servers == ("127.0.0.1:9092",)
    assert m.consumer_group_id is None
    assert m.replace(uuid="u-1").group_id == "u-1"
    assert mapping(SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": "g1"}).replace(uuid="u").group_id == "g1"


@pytest.mark.parametrize(
    "changes, field, text",
    [
        ({"BatchSize": 10001}, "BatchSize",
         "1 validation error detected: Value '10001' at 'batchSize' failed to satisfy constraint: "
         "Member must have value less than or equal to 10000 (allowed 1..10000)"),
        ({"BatchSize": 0}, "BatchSize", "Member must have value greater than or equal to 1 (allowed 1..10000)"),
        ({"MaximumBatchingWindowInSeconds": 301}, "MaximumBatchingWindowInSeconds", "allowed 0..300"),
        ({"StartingPosition": "EARLIEST"}, "StartingPosition",
         "Member must satisfy enum value set: [TRIM_HORIZON, LATEST, AT_TIMESTAMP]"),
        ({"StartingPosition": None}, "StartingPosition", "StartingPosition is required"),
        ({"StartingPosition": "AT_TIMESTAMP"}, "StartingPositionTimestamp", "required when StartingPosition is AT_TIMESTAMP"),
        ({"StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": time.time() + 3600},
         "StartingPositionTimestamp", "is in the future"),
        ({"Topics": ["a", "b"]}, "Topics", "Member must have length less than or equal to 1"),
        ({"Topics": []}, "Topics", "Member must have length greater than or equal to 1"),
        ({"MaximumRetryAttempts": -2}, "MaximumRetryAttempts", "allowed -1..10000"),
        ({"MaximumRecordAgeInSeconds": 30}, "MaximumRecordAgeInSeconds", "use -1 (forever) or 60..604800"),
        ({"FunctionResponseTypes": ["Partial"]}, "FunctionResponseTypes[0]", "[ReportBatchItemFailures]"),
        ({"ParallelizationFactor": 2}, "ParallelizationFactor",
         "Unsupported 'parallelizationFactor' parameter for given event source mapping type."),
        ({"DestinationConfig": {"OnSuccess": {"Destination": "kafka://x"}}}, "DestinationConfig.OnSuccess",
         "Unsupported DestinationConfig parameter for given event source mapping type."),
        ({"SelfManagedEventSource": None}, "EventSourceMappings[0]", "Unrecognized event source."),
        ({"SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["no-port"]}}},
         "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS[0]", "host:port"),
        ({"SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "bad group!"}},
         "SelfManagedKafkaEventSourceConfig.ConsumerGroupId", "regular expression pattern"),
        ({"AmazonManagedKafkaEventSourceConfig": {"ConsumerGroupId": "g"}}, "AmazonManagedKafkaEventSourceConfig",
         "Unsupported 'amazonManagedKafkaEventSourceConfig' parameter"),
        ({"ProvisionedPollerConfig": {"MinimumPollers": 5, "MaximumPollers": 2}}, "ProvisionedPollerConfig.MaximumPollers",
         "must be greater than or equal to MinimumPollers"),
        ({"SourceAccessConfigurations": [{"Type": "KERBEROS", "URI": "x"}]}, "SourceAccessConfigurations[0].Type",
         "Member must satisfy enum value set"),
        ({"BatchSzie": 10}, "BatchSzie", "did you mean BatchSize?"),
        ({"Enabled": "maybe"}, "Enabled", "use true or false"),
    ],
)
def test_bad_fields_name_field_value_and_range(changes, field, text):
    with pytest.raises(InvalidParameterError) as info:
        mapping(**changes)
    err = info.value
    assert err.field == f"EventSourceMappings[0].{field}" if field != "EventSourceMappings[0]" else err.field == field
    assert text in str(err)
    assert "\n" not in str(err)


def test_msk_form_and_cloudformation_spelling():
    arn = "arn:aws:kafka:us-east-1:123456789012:cluster/demo/751d2973-4f8c-4b4b-8e6c-2c9a1f0d9b7e-2"
    m = MappingConfig.from_dict({"FunctionName": "f", "Topics": ["t1"], "StartingPosition": "LATEST",
                                 "EventSourceArn": arn, "BootstrapServers": ["b-1.example.com:9098"],
                                 "AmazonManagedKafkaEventSourceConfig": {"ConsumerGroupId": "g"}})
    assert m.is_msk and m.event_source == "aws:kafka" and m.bootstrap_servers == ("b-1.example.com:9098",)
    assert m.to_dict()["AmazonManagedKafkaEventSourceConfig"] == {"ConsumerGroupId": "g"}
    cfn = mapping(SelfManagedEventSource={"Endpoints": {"KafkaBootstrapServers": ["h:1"]}})
    assert cfn.bootstrap_servers == ("h:1",)


def test_update_accepts_updatable_fields_and_refuses_create_only_ones():
    m = mapping().replace(uuid="u")
    assert m.updated({"BatchSize": 5, "Enabled": False}).batch_size == 5
    with pytest.raises(InvalidParameterError, match="Topics cannot be updated"):
        m.updated({"Topics": ["other"]})
    with pytest.raises(InvalidParameterError, match="allowed 1..10000"):
        m.updated({"BatchSize": 0})
    assert MappingConfig.from_dict(m.to_dict()) == m


def test_function_config_limits_and_environment(tmp_path: Path):
    fn = FunctionConfig.from_dict({"FunctionName": "f", "CodeUri": ".", "Handler": "a.b",
                                   "Environment": {"Variables": {"AA": 1, "BB": True}}}, base_dir=tmp_path)
    assert fn.environment == {"AA": "1", "BB": "true"} and fn.code_uri == tmp_path and fn.timeout == 3
    for bad, text in [
        ({"Timeout": 901}, "Value '901' at 'timeout'"),
        ({"MemorySize": 64}, "allowed 128..10240"),
        ({"Handler": "nodot"}, "module.function"),
        ({"CodeUri": "missing"}, "does not exist"),
        ({"Environment": {"Variables": {"AWS_REGION": "x"}}}, "Reserved keys used in this request: AWS_REGION"),
        ({"Environment": {"Variables": {"BIG": "x" * 5000}}}, "exceeded the 4KB limit"),
        ({"Url": "ftp://x"}, "http(s) URL"),
    ]:
        data = {"FunctionName": "f", "CodeUri": ".", "Handler": "a.b", **bad}
        with pytest.raises(ConfigError, match=None) as info:
            FunctionConfig.from_dict(data, where="Functions[0]", base_dir=tmp_path)
        assert text in str(info.value), str(info.value)
        assert str(info.value).startswith("Functions[0].")


def test_project_file_errors(tmp_path: Path):
    path = tmp_path / "triggerfish.yaml"
    path.write_text("Functions: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        project_config.load(path)
    path.write_text(
        "Functions:\n  - {FunctionName: a, CodeUri: ., Handler: m.h}\n"
        "EventSourceMappings:\n"
        "  - {FunctionName: b, Topics: [tt], StartingPosition: LATEST,"
        " SelfManagedEventSource: {Endpoints: {KAFKA_BOOTSTRAP_SERVERS: ['h:1']}}}\n"
    )
    with pytest.raises(ConfigError, match=r"EventSourceMappings\[0\].FunctionName: Function does not exist: b"):
        project_config.load(path)
    path.write_text(path.read_text().replace("FunctionName: b", "FunctionName: a") + path.read_text().split("Mappings:\n")[1]
                    .replace("FunctionName: b", "FunctionName: a"))
    with pytest.raises(ConfigError, match="already exists"):
        project_config.load(path)
    with pytest.raises(ConfigError, match="file not found"):
        project_config.load(tmp_path / "nope.yaml")


def test_project_state_file_defaults_next_to_the_config(tmp_path: Path):
    path = tmp_path / "triggerfish.yaml"
    functions = "Functions:\n  - {FunctionName: a, CodeUri: ., Handler: m.h}\n"
    path.write_text(functions)
    assert project_config.load(path).state_path == tmp_path / ".triggerfish" / "state.db"
    path.write_text(functions + "StateFile: s/x.db\n")
    assert project_config.load(path).state_path == tmp_path / "s" / "x.db"


def _record(offset: int, size: int) -> Record:
    return Record("t", 0, offset, 1, "CREATE_TIME", None, b"x" * size)


def test_batcher_cuts_at_count_bytes_and_window_and_flags_oversized():
    builder = EventBuilder("SelfManagedKafka", ["h:1"])
    envelope = builder.envelope_size("t", 0)
    buf = PartitionBuffer(batch_size=3, window_s=10, envelope=envelope)
    for i in range(4):
        buf.add(_record(i, 10), now=0.0)
    assert buf.ready(0.0)
    cut = buf.take(0.0)
    assert [r.offset for r in cut.records] == [0, 1, 2] and not cut.oversized
    assert not buf.ready(5.0) and buf.ready(10.0)  # the rest waits for its own window

    small = PartitionBuffer(batch_size=100, window_s=0, envelope=envelope, max_bytes=2000)
    for i in range(5):
        small.add(_record(i, 500), now=0.0)  # ~700 bytes of JSON each
    cuts = []
    while small.records:
        cuts.append(small.take(0.0))
    assert [len(c.records) for c in cuts] == [2, 2, 1]
    for c in cuts:
        assert len(builder.build(c.records)) == builder.size(c.records) <= 2000

    huge = PartitionBuffer(batch_size=100, window_s=0, envelope=envelope, max_bytes=1000)
    huge.add(_record(7, 2000), now=0.0)
    huge.add(_record(8, 10), now=0.0)
    first = huge.take(0.0)
    assert first.oversized and [r.offset for r in first.records] == [7]
    assert [r.offset for r in huge.take(0.0).records] == [8]
    assert MAX_PAYLOAD_BYTES == 6_291_456


# -- deep checks owned by other modules (issue 13, bug 1) ---------------------------------------------------------------
# Each input passes the shape checks of esm/config.py and is only refused by the owning module's validator.
DEEP_INVALID = [
    ("triggerfish.esm.filter", "validate_criteria",
     {"FilterCriteria": {"Filters": [{"Pattern": '{"value": {"kind": "order"}}'}]}},
     "EventSourceMappings[0].FilterCriteria.Filters[0].Pattern", "Invalid filter pattern definition."),
    ("triggerfish.esm.access", "validate_access",
     {"SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": "env:A"}, {"Type": "SASL_SCRAM_512_AUTH", "URI": "env:B"}]},
     "EventSourceMappings[0].SourceAccessConfigurations", "both set; a mapping logs in one way"),
    ("triggerfish.esm.destination_config", "validate_destination",
     {"DestinationConfig": {"OnFailure": {"Destination": "kafka://orders"}}},
     "EventSourceMappings[0].DestinationConfig.OnFailure.Destination", "must differ from the source topic"),
]


@pytest.mark.parametrize(("module", "validator", "changes", "field", "text"), DEEP_INVALID)
def test_each_deep_validator_runs_even_when_its_module_renames_it(module, validator, changes, field, text, monkeypatch):
    # The validators used to be looked up by name and skipped when missing: a rename silently accepted invalid
    # FilterCriteria, access configurations or destinations. Now they are bound at import: removing the module
    # attribute changes nothing.
    owner = importlib.import_module(module)
    monkeypatch.delattr(owner, validator)
    with pytest.raises(InvalidParameterError) as raised:
        mapping(**changes)
    assert raised.value.field == field and text in raised.value.message
    with pytest.raises(InvalidParameterError):
        project_config.parse({"Functions": [{"FunctionName": "orders", "Url": "http://127.0.0.1:1/"}],
                              "EventSourceMappings": [{**BASE, **changes}]})


# Parsed at collection: an ast.parse racing another thread's fails on Python 3.11 (see test_imports.py).
_SOURCES = {name: Path(importlib.import_module(name).__file__).read_text()
            for name in ("triggerfish.esm.config", "triggerfish.esm.mapping_fields")}
_TREES = {name: ast.parse(source) for name, source in _SOURCES.items()}


def test_mapping_config_imports_its_validators_directly():
    # No importlib, no getattr by name, no import inside a function: a missing validator is an ImportError at start.
    for name, source in _SOURCES.items():
        tree = _TREES[name]
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any(m.startswith("importlib") for m in imported), name
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        assert not [n.name for f in functions for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))], name
        assert "getattr(" not in source, name
    assert esm_config.validate_criteria is esm_filter.validate_criteria
    assert esm_config.validate_access is esm_access.validate_access
    assert esm_config.validate_destination is esm_destination_config.validate_destination
