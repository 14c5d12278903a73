"""The control API against botocore's own Lambda model (botocore >= 1.44.8, with Lambda's 2026 fields):
every request member the model gives a Kafka mapping is known to triggerfish's validation (accepted as
Lambda accepts it, or refused with Lambda's text), and a member the model does not have is refused."""

from __future__ import annotations

from typing import Any

import botocore
import pytest
from botocore.model import Shape

from triggerfish.api.shapes import operation
from triggerfish.errors import InvalidParameterError
from triggerfish.esm.config import MappingConfig

BASE: dict[str, Any] = {
    "FunctionName": "f", "Topics": ["orders"], "StartingPosition": "LATEST",
    "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["broker:9092"]}},
}
#: Lambda's 2026 Kafka additions another part of issue 19 delivers (Queue mode, OAuth/IAM logins): until
#: then they are refused like any unknown field or type.
PENDING_MEMBERS: set[str] = set()
PENDING_TYPES: set[str] = set()
#: Structures of a Kafka mapping whose members the validation reads one by one.
NESTED = ("SelfManagedKafkaEventSourceConfig", "AmazonManagedKafkaEventSourceConfig", "ProvisionedPollerConfig",
          "LoggingConfig", "MetricsConfig", "DestinationConfig", "FilterCriteria")


def _refusal(request: dict[str, Any]) -> str:
    try:
        MappingConfig.from_dict(request)
    except InvalidParameterError as exc:
        return str(exc)
    return ""


def _body_members(operation_name: str) -> dict[str, Shape]:
    shape = operation(operation_name).input_shape
    assert shape is not None
    return {n: s for n, s in shape.members.items() if not s.serialization.get("location")}


def test_the_model_is_botocore_1_44_8_or_later() -> None:
    assert tuple(int(p) for p in botocore.__version__.split(".")[:3]) >= (1, 44, 8)
    kafka_config = _body_members("CreateEventSourceMapping")["SelfManagedKafkaEventSourceConfig"]
    assert "ConsumptionMode" in kafka_config.members  # a 2026 member: this is the model the tests walk


@pytest.mark.parametrize("operation_name", ["CreateEventSourceMapping", "UpdateEventSourceMapping"])
def test_every_request_member_is_known(operation_name: str) -> None:
    for name in _body_members(operation_name):
        assert f"Unknown field '{name}'" not in _refusal({**BASE, name: {"probe": 1}}), name


@pytest.mark.parametrize("structure", NESTED)
def test_every_member_of_the_kafka_structures_is_known(structure: str) -> None:
    shape = _body_members("CreateEventSourceMapping")[structure]
    for name in shape.members:
        if f"{structure}.{name}" in PENDING_MEMBERS:
            continue
        refusal = _refusal({**BASE, structure: {name: {"probe": 1}}})
        assert f"Unknown field '{name}'" not in refusal, f"{structure}.{name}: {refusal}"


def test_every_source_access_type_of_the_model_is_known() -> None:
    access = _body_members("CreateEventSourceMapping")["SourceAccessConfigurations"].member
    for kind in access.members["Type"].enum:
        if kind in PENDING_TYPES:
            continue
        refusal = _refusal({**BASE, "SourceAccessConfigurations": [
            {"Type": kind, "URI": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s"}]})
        assert "Member must satisfy enum value set" not in refusal, f"{kind}: {refusal}"


def test_members_the_model_does_not_have_are_refused() -> None:
    assert "Unknown field 'Frobnicate'" in _refusal({**BASE, "Frobnicate": 1})
    assert "Unknown field 'Bogus'" in _refusal({**BASE, "SelfManagedKafkaEventSourceConfig": {"Bogus": 1}})
    assert "Member must satisfy enum value set" in _refusal(
        {**BASE, "SourceAccessConfigurations": [{"Type": "NOPE", "URI": "x"}]})
