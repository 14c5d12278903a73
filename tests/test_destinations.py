"""On-failure destinations against the real broker (kafka://) and a real moto server (SQS, SNS, S3)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import boto3
import pytest
from confluent_kafka import Consumer

from destination_support import failed_record, failed_value, failure_document
from kafka_helpers import closed_port
from triggerfish.errors import DestinationError, InvalidParameterError
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.destinations import (
    Failure,
    KafkaTopicDestination,
    Source,
    invocation_record,
    open_destination,
    record_document,
)
from triggerfish.esm.event import EventBuilder, Record
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

FN = "arn:aws:lambda:us-east-1:000000000000:function:orders"
SOURCE = Source(bootstrap_servers="127.0.0.1:9092", mapping_uuid="0b7c5c56-1f8e-4c1e-9b0c-1d2e3f405060")


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


RECORDS = [
    Rec("orders", 0, 41, 1_700_000_000_000, b"k1", b'{"id": 1}', [("trace", b"abc"), ("trace", b"def")]),
    Rec("orders", 0, 42, 1_700_000_001_000, None, b"\xff\x00binary", []),
    Rec("orders", 3, 7, 1_700_000_002_500, b"k3", None, [("empty", None)]),
]
EXHAUSTED = Failure(
    condition="RetryAttemptsExhausted", function_arn=FN, invoke_count=3, request_id="req-1",
    function_error="Unhandled", error_type="ValueError", error_message="poison pill",
    error_payload={"errorMessage": "poison pill", "errorType": "ValueError", "stackTrace": []},
)
EVENT = {"eventSource": "SelfManagedKafka", "bootstrapServers": "127.0.0.1:9092", "records": {"orders-0": []}}


def test_invocation_record_has_lambdas_shape() -> None:
    doc = invocation_record(RECORDS, EXHAUSTED, SOURCE, event=EVENT, now_ms=1_700_000_003_000)
    assert doc["requestContext"] == {
        "requestId": "req-1", "functionArn": FN, "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3,
    }
    assert doc["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert doc["version"] == "1.0"
    assert doc["timestamp"] == "2023-11-14T22:13:23.000Z"
    info = doc["KafkaBatchInfo"]
    assert info["batchSize"] == 3 and info["bootstrapServers"] == "127.0.0.1:9092"
    assert "eventSourceArn" not in info  # self-managed Kafka has none
    assert info["payloadSize"] == len(json.dumps(EVENT, separators=(",", ":")))
    assert info["recordsInfo"] == {
        "orders-0": {"firstRecordOffset": "41", "lastRecordOffset": "42",
                     "firstRecordTimestamp": "2023-11-14T22:13:20.000Z", "lastRecordTimestamp": "2023-11-14T22:13:21.000Z"},
        "orders-3": {"firstRecordOffset": "7", "lastRecordOffset": "7",
                     "firstRecordTimestamp": "2023-11-14T22:13:22.500Z", "lastRecordTimestamp": "2023-11-14T22:13:22.500Z"},
    }
    assert doc["responsePayload"]["errorType"] == "ValueError"
    expired = Failure(condition="RecordAgeExceeded", function_arn=FN, invoke_count=0, status_code=None)
    doc = invocation_record(RECORDS[:1], expired, Source("b:9092", "arn:aws:kafka:us-east-1:123456789012:cluster/c/1"))
    assert doc["responseContext"] is None
    assert doc["requestContext"]["requestId"]  # generated when there was no invocation
    assert doc["KafkaBatchInfo"]["eventSourceArn"] == "arn:aws:kafka:us-east-1:123456789012:cluster/c/1"
    assert "responsePayload" not in doc


def _consume_all(kafka: KafkaEnv, topic: str, count: int, group: str) -> list:
    consumer = Consumer({**kafka.plaintext(), "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = []
    try:
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append(msg)
            if len(got) >= count:
                break
    finally:
        consumer.close()
    return got


def test_kafka_destination_writes_lambdas_document_per_record_keyed_by_its_key(
    kafka: KafkaEnv, make_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    dlq = make_topic(partitions=1, prefix="dlq")
    event = EventBuilder("SelfManagedKafka", ["127.0.0.1:9092"]).build(
        [Record(r.topic, r.partition, r.offset, r.timestamp, "CREATE_TIME", r.key, r.value, r.headers) for r in RECORDS])
    destination = open_destination(f"kafka://{dlq}", kafka.plaintext())
    try:
        destination.send(RECORDS, EXHAUSTED, SOURCE, event)
    finally:
        destination.close()
    got = _consume_all(kafka, dlq, 3, unique_name("g"))
    assert [m.key() for m in got] == [r.key for r in RECORDS]  # keyed by the failed record's key
    docs = [failure_document(m) for m in got]
    for doc, record in zip(docs, RECORDS, strict=True):
        assert set(doc) == {"requestContext", "responseContext", "version", "timestamp", "KafkaBatchInfo",
                            "payload", "responsePayload"}
        assert doc["requestContext"] == {"requestId": "req-1", "functionArn": FN, "condition": "RetryAttemptsExhausted",
                                         "approximateInvokeCount": 3}
        assert doc["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
        assert doc["version"] == "1.0" and doc["timestamp"].endswith("Z")
        payload = doc["payload"]
        assert doc["KafkaBatchInfo"] == {
            "batchSize": 1, "bootstrapServers": "127.0.0.1:9092",
            "payloadSize": len(json.dumps(payload, separators=(",", ":"))),
            "recordInfo": {"offset": str(record.offset), "timestamp": _iso_ms(record.timestamp)},
        }
        assert payload["eventSource"] == "SelfManagedKafka" and payload["bootstrapServers"] == "127.0.0.1:9092"
        assert list(payload["records"]) == [f"{record.topic}-{record.partition}"]
        (fragment,) = payload["records"][f"{record.topic}-{record.partition}"]
        assert fragment["offset"] == record.offset and fragment["timestamp"] == record.timestamp
    assert [failed_value(m) for m in got] == [r.value for r in RECORDS]
    assert "key" not in failed_record(got[1])  # Lambda's event omits a missing key
    assert failed_record(got[0])["headers"] == [{"trace": list(b"abc")}, {"trace": list(b"def")}]
    first = got[0].headers()
    assert first[:2] == [("trace", b"abc"), ("trace", b"def")]  # the record's headers, then a summary
    added = dict(first[2:])
    assert added["triggerfish.failure.condition"] == b"RetryAttemptsExhausted"
    assert added["triggerfish.failure.function-arn"] == FN.encode()
    assert added["triggerfish.source.offset"] == b"41"
    assert dict(got[2].headers())["triggerfish.source.partition"] == b"3"


def test_record_document_without_an_event_describes_the_record_itself() -> None:
    expired = Failure(condition="RecordAgeExceeded", function_arn=FN, invoke_count=0, status_code=None)
    msk = Source("b:9092", "arn:aws:kafka:us-east-1:123456789012:cluster/c/1")
    doc = record_document(RECORDS[1], expired, msk, now_ms=1_700_000_003_000)
    assert doc["responseContext"] is None and doc["timestamp"] == "2023-11-14T22:13:23.000Z"
    assert doc["KafkaBatchInfo"]["eventSourceArn"] == msk.event_source_arn
    assert doc["payload"]["eventSource"] == "aws:kafka"
    (fragment,) = doc["payload"]["records"]["orders-0"]
    assert fragment["value"] == base64.b64encode(b"\xff\x00binary").decode() and "key" not in fragment


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_kafka_destination_unreachable_raises(unique_name: Callable[[str], str]) -> None:
    port = closed_port()
    destination = KafkaTopicDestination(unique_name("dlq"), {"bootstrap.servers": f"127.0.0.1:{port}"}, timeout=2)
    with pytest.raises(DestinationError, match="kafka://"):
        destination.send(RECORDS[:1], EXHAUSTED, SOURCE, EVENT)
    destination.close()


def _receive(queue_url: str) -> list[dict]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    out = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [json.loads(m["Body"]) for m in out.get("Messages", [])]


def test_sqs_destination_receives_lambdas_record(moto_server: str, unique_name: Callable[[str], str]) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    open_destination(arn).send(RECORDS, EXHAUSTED, SOURCE, EVENT)
    (body,) = _receive(url)
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert body["requestContext"]["functionArn"] == FN
    assert body["KafkaBatchInfo"]["recordsInfo"]["orders-3"]["firstRecordOffset"] == "7"
    assert "payload" not in body


def test_sns_destination_publishes_lambdas_record(moto_server: str, unique_name: Callable[[str], str]) -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic = sns.create_topic(Name=unique_name("failures"))["TopicArn"]
    url = sqs.create_queue(QueueName=unique_name("sub"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    open_destination(topic).send(RECORDS[:1], EXHAUSTED, SOURCE, EVENT)
    (body,) = _receive(url)
    assert body["version"] == "1.0"
    assert body["KafkaBatchInfo"]["batchSize"] == 1
    assert body["responseContext"]["functionError"] == "Unhandled"


def test_s3_destination_stores_record_with_payload(moto_server: str, unique_name: Callable[[str], str]) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = unique_name("dlq").lower()[:60]
    s3.create_bucket(Bucket=bucket)
    open_destination(f"arn:aws:s3:::{bucket}").send(RECORDS, EXHAUSTED, SOURCE, EVENT)
    (obj,) = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert obj["Key"].startswith(f"aws/lambda/{SOURCE.mapping_uuid}/orders-0/")
    doc = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    assert json.loads(doc["payload"]) == EVENT  # the invocation event, as an escaped JSON string
    assert doc["requestContext"]["approximateInvokeCount"] == 3


def test_missing_aws_destination_raises(moto_server: str, unique_name: Callable[[str], str]) -> None:
    missing = [
        f"arn:aws:sqs:us-east-1:123456789012:{unique_name('nope')}",
        f"arn:aws:sns:us-east-1:123456789012:{unique_name('nope')}",
        f"arn:aws:s3:::{unique_name('nope').lower()[:60]}",
    ]
    for arn in missing:
        with pytest.raises(DestinationError, match=arn.split(":")[2]):
            open_destination(arn).send(RECORDS[:1], EXHAUSTED, SOURCE, EVENT)


def test_unreachable_aws_endpoint_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(DestinationError, match="Could not connect"):
        open_destination("arn:aws:sqs:us-east-1:123456789012:dlq").send(RECORDS[:1], EXHAUSTED, SOURCE, EVENT)


def _mapping(destination: str, topic: str = "orders") -> dict:
    return {
        "FunctionName": "fn",
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
        "Topics": [topic],
        "StartingPosition": "TRIM_HORIZON",
        "DestinationConfig": {"OnFailure": {"Destination": destination}},
    }


@pytest.mark.parametrize(
    ("destination", "text"),
    [
        ("kafka://orders", "must differ from the source topic"),
        ("arn:aws:lambda:us-east-1:123456789012:function:other", "Unsupported on-failure destination"),
        ("arn:aws:s3:::bucket/prefix", "Unsupported on-failure destination"),
    ],
)
def test_bad_destinations_are_rejected_at_configuration(destination: str, text: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        MappingConfig.from_dict(_mapping(destination), where="EventSourceMappings[0]")
    assert text in str(info.value)
    assert info.value.field == "EventSourceMappings[0].DestinationConfig.OnFailure.Destination"


def test_good_destinations_are_accepted() -> None:
    for destination in ("kafka://orders-dlq", "arn:aws:sqs:us-east-1:123456789012:dlq",
                        "arn:aws:sns:us-east-1:123456789012:failures", "arn:aws:s3:::my-bucket"):
        assert MappingConfig.from_dict(_mapping(destination)).destination_config == {
            "OnFailure": {"Destination": destination}
        }


def test_sqs_message_stays_under_256_kib_when_the_error_is_huge(moto_server: str, unique_name: Callable[[str], str]) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    huge = Failure(condition="RetryAttemptsExhausted", function_arn=FN, invoke_count=1, function_error="Unhandled",
                   error_payload={"errorMessage": "x" * 300_000, "errorType": "E", "stackTrace": ["  line"] * 50_000})
    open_destination(arn).send(RECORDS, huge, SOURCE, EVENT)
    (body,) = _receive(url)
    assert body["responsePayload"] == {"errorMessage": "x" * 4096, "errorType": "E"}
    assert body["KafkaBatchInfo"]["batchSize"] == 3


def test_failure_for_reads_the_last_invocation() -> None:
    from triggerfish.esm.destinations import failure_for
    from triggerfish.esm.retry import Outcome
    from triggerfish.functions.runtime import InvokeResult

    error = b'{"errorMessage": "boom", "errorType": "KeyError", "stackTrace": ["  File x"]}'
    result = InvokeResult("orders", "req-9", error, "Unhandled", 12.0)
    failure = failure_for("RetryAttemptsExhausted", FN, 4, (Outcome(True, error_type="KeyError", error_message="boom"), result))
    assert (failure.request_id, failure.function_error, failure.status_code) == ("req-9", "Unhandled", 200)
    assert failure.error_payload == {"errorMessage": "boom", "errorType": "KeyError", "stackTrace": ["  File x"]}
    partial = failure_for("RetryAttemptsExhausted", FN, 2, (Outcome(False, payload={}), InvokeResult("orders", "r", b"{}", None, 1.0)))
    assert partial.function_error is None and partial.error_payload is None and partial.status_code == 200
    never = failure_for("RecordAgeExceeded", FN, 0, None)
    assert never.status_code is None and never.invoke_count == 0
