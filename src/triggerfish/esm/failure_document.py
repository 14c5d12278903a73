"""Lambda's failure document: what an on-failure destination receives about records given up on.

``requestContext`` (request id, function ARN, condition, invoke count), ``responseContext`` (null when
the records were never invoked), ``version``, ``timestamp`` and ``KafkaBatchInfo``:

* ``invocation_record`` — one document per batch, ``KafkaBatchInfo.recordsInfo`` per partition (SQS,
  SNS; S3 adds the invocation event as a JSON string under ``payload``);
* ``record_document`` — one document per record, ``KafkaBatchInfo.recordInfo`` and ``payload``: the
  invocation event holding that record alone, as a JSON object (``kafka://`` destinations).

The senders are :mod:`triggerfish.esm.destinations`.
"""

from __future__ import annotations

import base64
import json
import uuid
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from triggerfish.esm.retry import RecordLike


class FailedRecord(RecordLike, Protocol):
    """What a destination needs of a Kafka record: the retry policy's view plus key and value (the engine's
    record type satisfies it)."""

    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...


@dataclass(frozen=True)
class Failure:
    """Why records go to the destination: the inputs of Lambda's request/response context.

    ``status_code`` is None when the records were never invoked (expired before their first
    attempt); ``function_error`` is ``Unhandled`` for an invoke error and None when the function
    returned but reported the records as failed (ReportBatchItemFailures).
    """

    condition: str
    function_arn: str
    invoke_count: int
    request_id: str = ""
    status_code: int | None = 200
    executed_version: str = "$LATEST"
    function_error: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_payload: Mapping[str, Any] | None = None


def failure_for(condition: str, function_arn: str, invoke_count: int, last: tuple[Any, Any] | None = None) -> Failure:
    """A ``Failure`` from the last invocation's ``(retry.Outcome, InvokeResult | None)``; None = never invoked."""
    if last is None or invoke_count == 0:
        return Failure(condition, function_arn, invoke_count, status_code=None)
    outcome, result = last
    error = result.error if result is not None else None
    if outcome.failed and error is None:
        error = {"errorMessage": outcome.error_message or "", "errorType": outcome.error_type or "Unknown"}
    return Failure(
        condition,
        function_arn,
        invoke_count,
        request_id=getattr(result, "request_id", "") or "",
        function_error=(getattr(result, "function_error", None) or "Unhandled") if outcome.failed else None,
        error_type=outcome.error_type,
        error_message=outcome.error_message,
        error_payload=error,
    )


@dataclass(frozen=True)
class Source:
    """The mapping the records came from."""

    bootstrap_servers: str
    event_source_arn: str | None = None
    mapping_uuid: str = ""


#: The invocation event of the failed records: the exact bytes sent to the function, or its JSON object.
Event = bytes | Mapping[str, Any] | None


def event_bytes(event: Event) -> bytes | None:
    if event is None or isinstance(event, bytes):
        return event
    return json.dumps(event, separators=(",", ":")).encode()


def iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now_ms() -> float:
    return datetime.now(tz=UTC).timestamp() * 1000


def _document(failure: Failure, batch_info: dict[str, Any], now_ms: float | None) -> dict[str, Any]:
    """The parts of Lambda's failure document every destination shares, around ``KafkaBatchInfo``."""
    response: dict[str, Any] | None = None
    if failure.status_code is not None:
        response = {"statusCode": failure.status_code, "executedVersion": failure.executed_version}
        if failure.function_error:
            response["functionError"] = failure.function_error
    document: dict[str, Any] = {
        "requestContext": {
            "requestId": failure.request_id or str(uuid.uuid4()),
            "functionArn": failure.function_arn,
            "condition": failure.condition,
            "approximateInvokeCount": failure.invoke_count,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": iso(now_ms if now_ms is not None else utc_now_ms()),
        "KafkaBatchInfo": batch_info,
    }
    if failure.error_payload is not None:
        # Lambda's asynchronous-invocation records carry the function's error this way.
        document["responsePayload"] = dict(failure.error_payload)
    return document


def _batch_info(count: int, source: Source, payload_size: int) -> dict[str, Any]:
    info: dict[str, Any] = {"batchSize": count}
    if source.event_source_arn:
        info["eventSourceArn"] = source.event_source_arn
    info.update(bootstrapServers=source.bootstrap_servers, payloadSize=payload_size)
    return info


def invocation_record(
    records: Sequence[FailedRecord],
    failure: Failure,
    source: Source,
    *,
    event: Event = None,
    now_ms: float | None = None,
) -> dict[str, Any]:
    """Lambda's on-failure record for a Kafka batch (the SQS/SNS form; S3 adds ``payload``)."""
    records_info: dict[str, dict[str, str]] = {}
    for r in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        key = f"{r.topic}-{r.partition}"
        info = records_info.setdefault(
            key, {"firstRecordOffset": str(r.offset), "firstRecordTimestamp": iso(r.timestamp)}
        )
        info["lastRecordOffset"] = str(r.offset)
        info["lastRecordTimestamp"] = iso(r.timestamp)
    encoded = event_bytes(event)
    if encoded is not None:
        payload_size = len(encoded)
    else:
        payload_size = sum(len(r.value or b"") + len(r.key or b"") for r in records)
    batch_info = _batch_info(len(records), source, payload_size)
    batch_info["recordsInfo"] = records_info
    return _document(failure, batch_info, now_ms)


def event_object(event: Event) -> dict[str, Any] | None:
    if event is None:
        return None
    if isinstance(event, bytes):
        parsed = json.loads(event)
        return parsed if isinstance(parsed, dict) else None
    return dict(event)


def _event_of(record: FailedRecord, event: Mapping[str, Any] | None, source: Source) -> dict[str, Any]:
    """The invocation event narrowed to ``record``: its envelope, and ``records`` holding that record alone."""
    envelope = {k: v for k, v in (event or {}).items() if k != "records"}
    if not envelope:
        envelope = {"eventSource": "aws:kafka" if source.event_source_arn else "SelfManagedKafka"}
        if source.event_source_arn:
            envelope["eventSourceArn"] = source.event_source_arn
        envelope["bootstrapServers"] = source.bootstrap_servers
    tp = f"{record.topic}-{record.partition}"
    found = [r for r in ((event or {}).get("records") or {}).get(tp, [])
             if isinstance(r, dict) and r.get("offset") == record.offset]
    if not found:  # not in the event (none was given): the record as Lambda's event shows one
        found = [_record_fragment(record)]
    return {**envelope, "records": {tp: found[:1]}}


def _record_fragment(record: FailedRecord) -> dict[str, Any]:
    fragment: dict[str, Any] = {"topic": record.topic, "partition": record.partition, "offset": record.offset,
                                "timestamp": record.timestamp, "timestampType": "CREATE_TIME"}
    if record.key is not None:
        fragment["key"] = base64.b64encode(record.key).decode()
    fragment["value"] = None if record.value is None else base64.b64encode(record.value).decode()
    fragment["headers"] = [{name: list(array("b", value or b""))} for name, value in record.headers]
    return fragment


def record_document(
    record: FailedRecord,
    failure: Failure,
    source: Source,
    *,
    event: Mapping[str, Any] | None = None,
    now_ms: float | None = None,
) -> dict[str, Any]:
    """Lambda's failure document for one record sent to a ``kafka://`` destination: ``recordInfo`` for
    that record and ``payload``, the invocation event holding that record alone (a JSON object)."""
    payload = _event_of(record, event, source)
    batch_info = _batch_info(1, source, len(json.dumps(payload, separators=(",", ":"))))
    batch_info["recordInfo"] = {"offset": str(record.offset), "timestamp": iso(record.timestamp)}
    document = _document(failure, batch_info, now_ms)
    document["payload"] = payload
    return document
