"""ConsumptionMode (Stream | Queue) as Lambda validates it: Queue mode's refused fields and its retry
default, MSK without the field, create-only; in the config and through the control API with boto3
(botocore's model has the field). No broker needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from api_support import lambda_client
from esm_helpers import RECORDER, function_config, write_handler
from triggerfish import App, MappingConfig
from triggerfish.errors import InvalidParameterError, MappingInUse
from triggerfish.esm.engine import Engine
from triggerfish.esm.store import Store
from triggerfish.functions.runtime import FunctionRuntime

_SERVERS = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:1"]}}
_QUEUE = {"ConsumptionMode": "Queue"}
_WHEN_QUEUE = "for Kafka event source mappings when ConsumptionMode is Queue."


def _body(mode: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"FunctionName": "f", "Topics": ["orders"], "SelfManagedEventSource": _SERVERS, **fields}
    if mode is not None:
        body["SelfManagedKafkaEventSourceConfig"] = mode
    return body


def _refused(body: dict[str, Any]) -> InvalidParameterError:
    with pytest.raises(InvalidParameterError) as info:
        MappingConfig.from_dict(body)
    return info.value


def test_queue_mode_needs_no_starting_position_and_retries_nothing_by_default() -> None:
    mapping = MappingConfig.from_dict(_body(_QUEUE))
    assert mapping.queue
    assert mapping.maximum_retry_attempts == 0
    shown = mapping.to_dict()
    assert "StartingPosition" not in shown and "MaximumBatchingWindowInSeconds" not in shown
    assert shown["SelfManagedKafkaEventSourceConfig"] == {"ConsumptionMode": "Queue"}
    assert shown["MaximumRetryAttempts"] == 0
    assert MappingConfig.from_dict(shown) == mapping  # what is stored reads back the same
    assert MappingConfig.from_dict(_body(_QUEUE, MaximumRetryAttempts=3)).maximum_retry_attempts == 3


@pytest.mark.parametrize(("field", "value"), [
    ("StartingPosition", "TRIM_HORIZON"),
    ("StartingPosition", "LATEST"),
    ("StartingPositionTimestamp", 1700000000),
    ("MaximumBatchingWindowInSeconds", 0),
    ("MaximumBatchingWindowInSeconds", 5),
])
def test_queue_mode_refuses_the_stream_fields(field: str, value: Any) -> None:
    err = _refused(_body(_QUEUE, **{field: value}))
    assert err.lambda_message == f"{field} is not supported {_WHEN_QUEUE}"
    assert err.field == field


def test_queue_mode_refuses_infinite_retries() -> None:
    err = _refused(_body(_QUEUE, MaximumRetryAttempts=-1))
    assert err.lambda_message == f"MaximumRetryAttempts -1 (infinite retries) is not supported {_WHEN_QUEUE}"
    assert "group.share.delivery.count.limit" in str(err)


def test_stream_mode_is_the_default_and_keeps_its_rules() -> None:
    for mode in (None, {"ConsumptionMode": "Stream"}):
        mapping = MappingConfig.from_dict(_body(mode, StartingPosition="LATEST", MaximumBatchingWindowInSeconds=1))
        assert not mapping.queue and mapping.maximum_retry_attempts == -1
    assert _refused(_body({"ConsumptionMode": "Stream"})).lambda_message == "StartingPosition is required for Kafka"


def test_consumption_mode_values_and_msk() -> None:
    err = _refused(_body({"ConsumptionMode": "queue"}, StartingPosition="LATEST"))
    assert err.lambda_message == ("1 validation error detected: Value 'queue' at 'consumptionMode' failed to satisfy "
                                  "constraint: Member must satisfy enum value set: [Stream, Queue]")
    msk = {"FunctionName": "f", "Topics": ["orders"], "StartingPosition": "LATEST",
           "EventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/c/abc",
           "AmazonManagedKafkaEventSourceConfig": {"ConsumptionMode": "Queue"}}
    err = _refused(msk)
    assert err.lambda_message == "Unsupported 'ConsumptionMode' parameter for given event source mapping type."


def test_queue_mode_is_create_only_and_updates_keep_its_rules() -> None:
    mapping = MappingConfig.from_dict(_body(_QUEUE, BatchSize=10))
    assert mapping.updated({"BatchSize": 50, "MaximumRetryAttempts": 2}).maximum_retry_attempts == 2
    with pytest.raises(InvalidParameterError, match="SelfManagedKafkaEventSourceConfig cannot be updated"):
        mapping.updated({"SelfManagedKafkaEventSourceConfig": {"ConsumptionMode": "Stream"}})
    for change in ({"MaximumBatchingWindowInSeconds": 1}, {"MaximumRetryAttempts": -1}):
        with pytest.raises(InvalidParameterError, match=f"is not supported {_WHEN_QUEUE}"):
            mapping.updated(change)


def test_an_invalid_update_is_refused_for_its_fields_even_while_the_mapping_is_busy(tmp_path: Path) -> None:
    # An engine that is never started leaves its mappings in Creating: the state is fixed, not raced.
    code = write_handler(tmp_path, "rec", RECORDER)
    engine = Engine(FunctionRuntime([function_config(code, name="f")]), Store(tmp_path / "state.db"))
    uuid = engine.add(MappingConfig.from_dict(_body(_QUEUE, BatchSize=20))).uuid
    assert engine.get(uuid).status.state == "Creating"
    with pytest.raises(InvalidParameterError, match=r"MaximumRetryAttempts -1 \(infinite retries\)"):
        engine.update(uuid, {"MaximumRetryAttempts": -1})
    with pytest.raises(InvalidParameterError, match="Function does not exist"):
        engine.update(uuid, {"FunctionName": "missing"})
    with pytest.raises(MappingInUse, match=r"in use \(State Creating\)\. Retry when it is Enabled or Disabled"):
        engine.update(uuid, {"BatchSize": 30})
    assert engine.get(uuid).config.batch_size == 20


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    code = write_handler(tmp_path, "rec", RECORDER)
    app = App([function_config(code, name="f")], state=tmp_path / "state.db", port=0).start()
    assert app.url is not None
    yield lambda_client(app.url)
    app.stop()


def test_queue_mode_through_the_api(client: Any) -> None:
    created = client.create_event_source_mapping(**_body(_QUEUE, BatchSize=20))
    assert created["SelfManagedKafkaEventSourceConfig"] == {"ConsumptionMode": "Queue"}
    assert created["MaximumRetryAttempts"] == 0 and "StartingPosition" not in created
    with pytest.raises(ClientError) as info:
        client.create_event_source_mapping(**_body(_QUEUE, StartingPosition="TRIM_HORIZON", Topics=["other"]))
    err = info.value.response["Error"]
    assert err["Code"] == "InvalidParameterValueException"
    assert err["Message"].startswith(f"StartingPosition is not supported {_WHEN_QUEUE}")
    with pytest.raises(ClientError) as info:
        client.update_event_source_mapping(UUID=created["UUID"], MaximumRetryAttempts=-1)
    assert info.value.response["Error"]["Message"].startswith("MaximumRetryAttempts -1 (infinite retries)")
