"""On-failure destinations (``DestinationConfig.OnFailure.Destination``) for records given up on.

Every destination gets Lambda's failure document (built by :mod:`triggerfish.esm.failure_document`):
``requestContext``, ``responseContext``, ``version``, ``timestamp`` and ``KafkaBatchInfo``.

* ``kafka://topic``: one message per failed record, keyed by that record's key, whose value is the
  document for that record alone (``KafkaBatchInfo.recordInfo``) plus ``payload``: the invocation event
  holding just that record, as a JSON object. The record's own headers are kept and
  ``triggerfish.failure.*`` / ``triggerfish.source.*`` headers added, so a topic of failures can be
  routed or filtered without parsing the value.
* an SQS queue or SNS topic ARN: one document per batch (``KafkaBatchInfo.recordsInfo`` per
  partition); S3 also gets ``payload``, the invocation event as a JSON string. Sent with boto3, so
  ``AWS_ENDPOINT_URL`` and the usual credential chain apply.

Which targets are allowed is :mod:`triggerfish.esm.destination_config`.
A destination that cannot take the records raises ``DestinationError``: the caller then commits
nothing and tries again, so no record is lost.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

# Both re-exported only because esm.runner still imports them from here; their homes are
# triggerfish.errors and esm.destination_config.
from triggerfish.errors import DestinationError as DestinationError
from triggerfish.esm import failures
from triggerfish.esm.destination_config import ARN, KAFKA_SCHEME, parse_target
from triggerfish.esm.destination_config import destination_of as destination_of
from triggerfish.esm.failure_document import (
    Event,
    FailedRecord,
    event_bytes,
    event_object,
    iso,
    record_document,
    utc_now_ms,
)

# Re-exported: the engine (esm.drive, esm.runner, esm.schema_records) and tests import them from here.
from triggerfish.esm.failure_document import Failure as Failure
from triggerfish.esm.failure_document import Source as Source
from triggerfish.esm.failure_document import failure_for as failure_for
from triggerfish.esm.failure_document import invocation_record as invocation_record

_log = logging.getLogger("triggerfish.esm.destinations")

_HEADER_PREFIX = "triggerfish."
#: Lambda's LastProcessingResult when the event source cannot reach the on-failure destination.
DESTINATION_UNREACHABLE = (
    "PROBLEM: Connection error. Your event source VPC must be able to connect to Lambda and STS, Secrets Manager "
    "(if event source authentication is required), and the OnFailure Destination (if one is configured)."
)
_DELIVERY_TIMEOUT_S = 20.0
_MAX_RECORD_BYTES = 64 * 1024 * 1024
#: SQS and SNS take at most 256 KiB per message.
_MESSAGE_LIMIT = 256 * 1024
_MAX_ERROR_HEADER = 1024


def _failure_headers(record: FailedRecord, failure: Failure, source: Source) -> list[tuple[str, bytes]]:
    """Headers added to a failure document on a ``kafka://`` destination (a summary of it, for routing)."""
    fields = [
        ("failure.condition", failure.condition),
        ("failure.function-arn", failure.function_arn),
        ("failure.approximate-invoke-count", str(failure.invoke_count)),
        ("failure.request-id", failure.request_id),
        ("failure.error-type", failure.error_type or ""),
        ("failure.error-message", (failure.error_message or "")[:_MAX_ERROR_HEADER]),
        ("failure.timestamp", iso(utc_now_ms())),
        ("source.topic", record.topic),
        ("source.partition", str(record.partition)),
        ("source.offset", str(record.offset)),
        ("source.timestamp", str(record.timestamp)),
        ("source.mapping-uuid", source.mapping_uuid),
    ]
    return [(_HEADER_PREFIX + name, value.encode()) for name, value in fields if value]


def _sent(target: str, records: Sequence[FailedRecord], failure: Failure, source: Source) -> None:
    """Note the delivery for the dashboard (``esm/failures.py``: condition, offsets, time; no record data)."""
    failures.record(target, records, failure.condition, failure.function_arn, failure.invoke_count,
                    source.mapping_uuid, failure.error_type)


class Destination(Protocol):
    target: str

    def send(
        self, records: Sequence[FailedRecord], failure: Failure, source: Source, event: Event
    ) -> None: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# kafka://topic


class KafkaTopicDestination:
    """Writes Lambda's failure document of each failed record to a topic of the source cluster."""

    def __init__(self, topic: str, client_config: Mapping[str, Any], timeout: float = _DELIVERY_TIMEOUT_S) -> None:
        self.target = KAFKA_SCHEME + topic
        self.topic = topic
        self.timeout = timeout
        self._config = {k: v for k, v in client_config.items() if not _consumer_only(k)}
        self._producer: Any = None

    def _open(self) -> Any:
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer({
                **self._config, "acks": "all", "message.timeout.ms": int(self.timeout * 1000), "linger.ms": 5,
                "logger": _log,  # librdkafka's connection chatter goes to logging, not stderr
                # a failed record may be as large as the source topic allows: let the broker decide
                "message.max.bytes": _MAX_RECORD_BYTES,
            })
        return self._producer

    def send(
        self, records: Sequence[FailedRecord], failure: Failure, source: Source, event: Event = None
    ) -> None:
        from confluent_kafka import KafkaException

        producer = self._open()
        errors: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        try:
            parsed = event_object(event)
            for r in records:
                document = record_document(r, failure, source, event=parsed)
                headers = [(k, v) for k, v in r.headers] + _failure_headers(r, failure, source)
                producer.produce(self.topic, key=r.key, value=json.dumps(document).encode(), headers=headers,
                                 on_delivery=delivered)
                producer.poll(0)
        except (BufferError, KafkaException) as exc:
            raise DestinationError(f"on-failure destination {self.target}: could not produce: {exc}") from None
        pending = producer.flush(self.timeout + 5)
        if errors or pending:
            # Drop what is still queued: the caller retries the whole set, so nothing is lost.
            producer.purge()
            producer.flush(0)
            problem = errors[0] if errors else f"{pending} record(s) not delivered in time"
            raise DestinationError(f"on-failure destination {self.target}: {problem}")
        _sent(self.target, records, failure, source)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None


_CONSUMER_ONLY = (
    "group.", "enable.auto.commit", "auto.offset.reset", "enable.auto.offset.store", "session.timeout.ms",
    "max.poll.interval.ms", "fetch.", "isolation.level", "partition.assignment.strategy", "auto.commit.",
    "heartbeat.interval.ms", "enable.partition.eof", "queued.", "check.crcs", "on_commit", "group.id",
)


def _consumer_only(key: str) -> bool:
    return key.startswith(_CONSUMER_ONLY)


# ---------------------------------------------------------------------------------------------
# SQS / SNS / S3 ARNs


def _boto_client(service: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=5, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
    return boto3.client(service, region_name=region or None, config=config)


class _AwsDestination:
    service = ""

    def __init__(self, arn: str) -> None:
        self.target = arn
        match = ARN.fullmatch(arn)
        assert match is not None  # parse_target checked it
        self.region = match["region"]
        self.account = match["account"]
        self.resource = match["resource"]
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = _boto_client(self.service, self.region)
        return self._client

    def send(
        self, records: Sequence[FailedRecord], failure: Failure, source: Source, event: Event = None
    ) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        document = invocation_record(records, failure, source, event=event)
        try:
            self._put(document, records, source, event)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise DestinationError(
                f"on-failure destination {self.target}: {error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
            ) from None
        except BotoCoreError as exc:
            raise DestinationError(f"on-failure destination {self.target}: {exc}") from None
        _sent(self.target, records, failure, source)

    def _put(
        self, document: dict[str, Any], records: Sequence[FailedRecord], source: Source, event: Event
    ) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._client = None


class _SqsDestination(_AwsDestination):
    service = "sqs"
    _queue_url: str | None = None

    def _put(self, document: dict[str, Any], records: Any, source: Source, event: Any) -> None:
        if self._queue_url is None:
            args = {"QueueName": self.resource}
            if self.account:
                args["QueueOwnerAWSAccountId"] = self.account
            self._queue_url = self.client.get_queue_url(**args)["QueueUrl"]
        self.client.send_message(QueueUrl=self._queue_url, MessageBody=_fit(document))


class _SnsDestination(_AwsDestination):
    service = "sns"

    def _put(self, document: dict[str, Any], records: Any, source: Source, event: Any) -> None:
        self.client.publish(TopicArn=self.target, Message=_fit(document))


class _S3Destination(_AwsDestination):
    service = "s3"

    def _put(self, document: dict[str, Any], records: Sequence[FailedRecord], source: Source, event: Any) -> None:
        document = {**document, "payload": (event_bytes(event) or b"{}").decode()}
        first = min(records, key=lambda r: (r.topic, r.partition, r.offset))
        now = datetime.now(tz=UTC)
        key = (
            f"aws/lambda/{source.mapping_uuid or 'mapping'}/{first.topic}-{first.partition}/"
            f"{now:%Y/%m/%d}/{now:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
        )
        self.client.put_object(Bucket=self.resource, Key=key, Body=json.dumps(document).encode(),
                               ContentType="application/json")


def _fit(document: dict[str, Any], limit: int = _MESSAGE_LIMIT) -> str:
    """The document as a message body within ``limit`` bytes: a huge function error is trimmed first."""
    body = json.dumps(document)
    error = document.get("responsePayload")
    if len(body.encode()) <= limit or not isinstance(error, Mapping):
        return body
    trimmed = {k: v for k, v in error.items() if k != "stackTrace"}
    trimmed["errorMessage"] = str(trimmed.get("errorMessage", ""))[:4096]
    body = json.dumps({**document, "responsePayload": trimmed})
    if len(body.encode()) <= limit:
        return body
    return json.dumps({k: v for k, v in document.items() if k != "responsePayload"})


def open_destination(target: str, client_config: Mapping[str, Any] | None = None) -> Destination:
    """A sender for ``target``; ``client_config`` is the source cluster's librdkafka config (kafka://)."""
    kind, name = parse_target(target)
    if kind == "kafka":
        return KafkaTopicDestination(name, client_config or {})
    if kind == "sqs":
        return _SqsDestination(target)
    if kind == "sns":
        return _SnsDestination(target)
    return _S3Destination(target)
