"""``DestinationConfig.OnFailure.Destination``: which targets a Kafka mapping may send failed records to.

``kafka://TOPIC`` (a topic of the source cluster, never the source topic itself), an SQS queue or SNS
topic ARN, or an S3 bucket ARN. Checked when the mapping is configured; the senders live in
:mod:`triggerfish.esm.destinations`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from triggerfish.errors import InvalidParameterError

KAFKA_SCHEME = "kafka://"
ARN = re.compile(r"arn:(?P<partition>aws[a-zA-Z-]*):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):(?P<account>\d*):(?P<resource>.+)")
_FIELD = "DestinationConfig.OnFailure.Destination"


class _HasDestinationConfig(Protocol):
    """What :func:`destination_of` reads of a mapping (``MappingConfig`` has it)."""

    @property
    def destination_config(self) -> Mapping[str, Any] | None: ...


def parse_target(target: str, field: str = _FIELD) -> tuple[str, str]:
    """``(kind, name)`` of a destination: kafka/topic, sqs/queue, sns/topic ARN or s3/bucket."""
    if target.startswith(KAFKA_SCHEME):
        topic = target[len(KAFKA_SCHEME):]
        if not re.fullmatch(r"[^.][a-zA-Z0-9\-_.]{0,248}", topic) or not re.fullmatch(r"[a-zA-Z0-9\-_.]+", topic):
            raise InvalidParameterError(field, f"Invalid Kafka destination '{target}'", "use kafka://TOPIC")
        return "kafka", topic
    match = ARN.fullmatch(target)
    service = match["service"] if match else ""
    if service == "sqs" and match and match["region"] and match["resource"]:
        return "sqs", match["resource"]
    if service == "sns" and match and match["region"] and match["resource"]:
        return "sns", target
    if service == "s3" and match and match["resource"] and "/" not in match["resource"]:
        return "s3", match["resource"]
    raise InvalidParameterError(
        field,
        f"Unsupported on-failure destination '{target}' for a Kafka event source mapping.",
        "use kafka://TOPIC, arn:aws:sqs:REGION:ACCOUNT:QUEUE, arn:aws:sns:REGION:ACCOUNT:TOPIC or arn:aws:s3:::BUCKET",
    )


def destination_of(mapping: _HasDestinationConfig) -> str:
    """The mapping's on-failure target, or "" when it has none."""
    on_failure = (mapping.destination_config or {}).get("OnFailure") or {}
    return str(on_failure.get("Destination") or "")


def validate_destination(target: str, topics: Sequence[str], where: str = "") -> None:
    """The mapping config's deep check of DestinationConfig: a known target kind, never a source topic."""
    if not target:
        return
    field = f"{where}.{_FIELD}" if where else _FIELD
    kind, name = parse_target(target, field)
    if kind == "kafka" and name in topics:
        raise InvalidParameterError(
            field,
            f"The Kafka on-failure destination '{target}' must differ from the source topic.",
            "send failed records to another topic, e.g. kafka://" + name + "-dlq",
        )
