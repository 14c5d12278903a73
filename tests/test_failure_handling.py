"""Failure handling and filtering end to end: the engine, the real broker, moto for AWS destinations.

Poison records, MaximumRetryAttempts, BisectBatchOnFunctionError, ReportBatchItemFailures,
MaximumRecordAgeInSeconds, records too large to invoke, on-failure destinations (kafka://, SQS, SNS,
S3, unreachable), FilterCriteria with zero lag, and the same settings through `triggerfish run`.
"""

from __future__ import annotations

import json
import time
from base64 import b64decode
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from confluent_kafka import Consumer

from destination_support import failed_value
from esm_helpers import (
    RunningEngine,
    committed_offsets,
    function_config,
    mapping_config,
    produce,
    wait_until,
    write_handler,
)
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

#: Appends every invocation to $OUT. Records whose value is $POISON fail: the handler raises, or
#: with PARTIAL=1 reports them in batchItemFailures. FAIL_TIMES=n heals a poison record after n failures.
POISONED = """
import base64, json, os, time

def handler(event, context):
    records = [r for recs in event["records"].values() for r in recs]
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"t": time.time(), "event": event}) + "\\n")
    poison = os.environ["POISON"].encode()
    limit = int(os.environ.get("FAIL_TIMES", "-1"))
    failed = []
    for r in records:
        if r.get("value") is not None and base64.b64decode(r["value"]) == poison:
            count = os.environ["OUT"] + ".count"
            n = int(open(count).read()) if os.path.exists(count) else 0
            if limit < 0 or n < limit:
                open(count, "w").write(str(n + 1))
                failed.append(r)
    if failed and os.environ.get("PARTIAL"):
        return {"batchItemFailures": [
            {"itemIdentifier": {"partition": f"{r['topic']}-{r['partition']}", "offset": r["offset"]}} for r in failed
        ]}
    if failed:
        raise ValueError(f"poison pill at offset {failed[0]['offset']}")
    return {"ok": True}
"""


class Poisoned:
    """The POISONED function and what it saw."""

    def __init__(self, tmp_path: Path, poison: bytes = b"poison", **env: str) -> None:
        self.out = tmp_path / "calls.jsonl"
        code = write_handler(tmp_path, "poisoned", POISONED)
        variables = {"OUT": str(self.out), "POISON": poison.decode(), **env}
        self.function = function_config(code, "poisoned.handler", Environment={"Variables": variables})

    def calls(self) -> list[list[tuple[int, bytes | None]]]:
        """Per invocation, the (offset, value) pairs it got."""
        return self.calls_of(self.out)

    @staticmethod
    def calls_of(out: Path) -> list[list[tuple[int, bytes | None]]]:
        if not out.exists():
            return []
        rows = []
        for line in out.read_text().splitlines():
            event = json.loads(line)["event"]
            rows.append([(r["offset"], None if r.get("value") is None else b64decode(r["value"]))
                         for recs in event["records"].values() for r in recs])
        return rows

    def succeeded_offsets(self, poison: bytes = b"poison") -> list[int]:
        """Offsets of invocations that had no poison record in them (so they succeeded)."""
        return [o for call in self.calls() if all(v != poison for _, v in call) for o, _ in call]


def read_topic(kafka: KafkaEnv, topic: str, count: int, timeout: float = 30) -> list[Any]:
    consumer = Consumer({**kafka.plaintext(), "group.id": f"reader-{topic}-{time.time()}", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                got.append(msg)
        # anything beyond `count` would be a bug: look a little longer
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                got.append(msg)
    finally:
        consumer.close()
    return got


def committed(kafka: KafkaEnv, eng: RunningEngine, topic: str, partitions: int = 1) -> dict[int, int]:
    return committed_offsets(kafka.bootstrap, eng.uuids[0], topic, partitions)


def test_poison_record_goes_to_the_dlq_topic_and_later_records_flow(
    kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic, dlq = make_topic(), make_topic(prefix="dlq")
    fn = Poisoned(tmp_path)
    produce(kafka.bootstrap, topic, [b"a", b"poison", b"b", b"c"], keys=[b"k0", b"k1", b"k2", b"k3"],
            headers=[("trace", b"t-1")])
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=1, MaximumRetryAttempts=2,
                             DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlq}"}})
    with RunningEngine([fn.function], [mapping], tmp_path) as eng:
        wait_until(lambda: committed(kafka, eng, topic) == {0: 4}, timeout=40, message="all 4 offsets committed")
    assert fn.calls() == [[(0, b"a")], [(1, b"poison")], [(1, b"poison")], [(1, b"poison")], [(2, b"b")], [(3, b"c")]]
    (dead,) = read_topic(kafka, dlq, 1)
    assert (dead.key(), failed_value(dead)) == (b"k1", b"poison")  # Lambda's document, keyed by the record's key
    headers = dead.headers()
    assert headers[0] == ("trace", b"t-1")
    extra = dict(headers[1:])
    assert extra["triggerfish.failure.condition"] == b"RetryAttemptsExhausted"
    assert extra["triggerfish.failure.approximate-invoke-count"] == b"3"
    assert extra["triggerfish.failure.error-type"] == b"ValueError"
    assert extra["triggerfish.failure.error-message"] == b"poison pill at offset 1"
    assert extra["triggerfish.source.topic"] == topic.encode()
    assert extra["triggerfish.source.offset"] == b"1"
    assert extra["triggerfish.failure.function-arn"].endswith(b":function:f")


def test_bisect_isolates_the_bad_record(kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path) -> None:
    topic, dlq = make_topic(), make_topic(prefix="dlq")
    fn = Poisoned(tmp_path)
    values = [b"r0", b"r1", b"r2", b"r3", b"r4", b"poison", b"r6", b"r7"]
    produce(kafka.bootstrap, topic, values)
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=8, MaximumBatchingWindowInSeconds=2,
                             MaximumRetryAttempts=0, BisectBatchOnFunctionError=True,
                             DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlq}"}})
    with RunningEngine([fn.function], [mapping], tmp_path) as eng:
        wait_until(lambda: committed(kafka, eng, topic) == {0: 8}, timeout=40, message="all 8 offsets committed")
    sizes = [len(call) for call in fn.calls()]
    assert sizes == [8, 4, 4, 2, 1, 1, 2], sizes  # halve until the poison record stands alone
    assert sorted(fn.succeeded_offsets()) == [0, 1, 2, 3, 4, 6, 7]
    dead = read_topic(kafka, dlq, 1)
    assert [(failed_value(m), dict(m.headers())["triggerfish.source.offset"]) for m in dead] == [(b"poison", b"5")]


def test_partial_batch_response_resumes_at_the_first_failed_record(
    kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic()
    fn = Poisoned(tmp_path, PARTIAL="1")
    produce(kafka.bootstrap, topic, [b"r0", b"r1", b"r2", b"poison", b"r4", b"r5"])
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=6, MaximumBatchingWindowInSeconds=2,
                             FunctionResponseTypes=["ReportBatchItemFailures"])
    with RunningEngine([fn.function], [mapping], tmp_path) as eng:
        # infinite retries (on-demand default): the records before the failure are committed meanwhile
        wait_until(lambda: len(fn.calls()) >= 4, timeout=40, message="a few retries")
        wait_until(lambda: committed(kafka, eng, topic) == {0: 3}, timeout=15, message="commit up to the failure")
        calls = fn.calls()
        assert [o for o, _ in calls[0]] == [0, 1, 2, 3, 4, 5]
        for retry in calls[1:]:
            assert [o for o, _ in retry] == [3, 4, 5]
        assert committed(kafka, eng, topic) == {0: 3}


def test_partial_batch_failure_heals_and_completes(kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path) -> None:
    topic = make_topic()
    fn = Poisoned(tmp_path, PARTIAL="1", FAIL_TIMES="2")
    produce(kafka.bootstrap, topic, [b"r0", b"poison", b"r2", b"r3"])
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=4, MaximumBatchingWindowInSeconds=2,
                             FunctionResponseTypes=["ReportBatchItemFailures"], MaximumRetryAttempts=5)
    with RunningEngine([fn.function], [mapping], tmp_path) as eng:
        wait_until(lambda: committed(kafka, eng, topic) == {0: 4}, timeout=40, message="all committed")
    assert [[o for o, _ in call] for call in fn.calls()] == [[0, 1, 2, 3], [1, 2, 3], [1, 2, 3]]


def test_invalid_item_identifier_retries_the_whole_batch(
    kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic, dlq = make_topic(), make_topic(prefix="dlq")
    code = write_handler(tmp_path, "liar", """
import json, os
def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(event) + "\\n")
    return {"batchItemFailures": [{"itemIdentifier": {"partition": "no-such-topic-0", "offset": 0}}]}
""")
    out = tmp_path / "liar.jsonl"
    fn = function_config(code, "liar.handler", Environment={"Variables": {"OUT": str(out)}})
    produce(kafka.bootstrap, topic, [b"a", b"b"])
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=2, MaximumBatchingWindowInSeconds=1,
                             FunctionResponseTypes=["ReportBatchItemFailures"], MaximumRetryAttempts=1,
                             DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlq}"}})
    with RunningEngine([fn], [mapping], tmp_path) as eng:
        wait_until(lambda: committed(kafka, eng, topic) == {0: 2}, timeout=40)
    calls = [json.loads(line) for line in out.read_text().splitlines()]
    assert [[r["offset"] for r in c["records"][f"{topic}-0"]] for c in calls] == [[0, 1], [0, 1]]
    assert [failed_value(m) for m in read_topic(kafka, dlq, 2)] == [b"a", b"b"]


def test_record_older_than_maximum_age_goes_to_the_destination_unprocessed(
    kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic, dlq = make_topic(), make_topic(prefix="dlq")
    fn = Poisoned(tmp_path)
    now_ms = int(time.time() * 1000)
    produce(kafka.bootstrap, topic, [b"stale"], timestamp_ms=now_ms - 300_000)
    produce(kafka.bootstrap, topic, [b"fresh"], timestamp_ms=now_ms)
    mapping = mapping_config(topic, kafka.bootstrap, MaximumRecordAgeInSeconds=60,
                             DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlq}"}})
    with RunningEngine([fn.function], [mapping], tmp_path) as eng:
        wait_until(lambda: committed(kafka, eng, topic) == {0: 2}, timeout=40)
    assert [v for call in fn.calls() for _, v in call] == [b"fresh"]
    (dead,) = read_topic(kafka, dlq, 1)
    assert failed_value(dead) == b"stale"
    headers = dict(dead.headers())
    assert headers["triggerfish.failure.condition"] == b"RecordAgeExceeded"
    assert headers["triggerfish.failure.approximate-invoke-count"] == b"0"


def test_filtered_topic_ends_with_zero_lag(kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path) -> None:
    topic = make_topic(partitions=2)
    fn = Poisoned(tmp_path)
    orders = [json.dumps({"kind": "order", "n": i}).encode() for i in range(5)]
    noise = [json.dumps({"kind": "ping", "n": i}).encode() for i in range(5)] + [b"plain text", b"\xff\xfe"]
    produce(kafka.bootstrap, topic, orders + noise, partition=0)
    produce(kafka.bootstrap, topic, noise, partition=1)  # nothing on partition 1 matches
    pattern = json.dumps({"value": {"kind": ["order"], "n": [{"numeric": [">=", 1]}]}})
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=3,
                             FilterCriteria={"Filters": [{"Pattern": pattern}]})
    with RunningEngine([fn.function], [mapping], tmp_path) as eng:
        wait_until(lambda: committed(kafka, eng, topic, 2) == {0: 12, 1: 7}, timeout=40, message="all committed")
        wait_until(lambda: [p["lag"] for p in eng.status()["Partitions"]] == [0, 0], timeout=15, message="zero lag")
    delivered = [json.loads(v) for call in fn.calls() for _, v in call if v is not None]
    assert delivered == [{"kind": "order", "n": i} for i in range(1, 5)]


def _aws_destination(kind: str, name: str) -> tuple[str, Callable[[], list[dict]]]:
    """Create an SQS queue / SNS topic (fanned out to a queue) / S3 bucket; return (ARN, read documents)."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    if kind == "s3":
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=name)

        def read_s3() -> list[dict]:
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=name).get("Contents", [])]
            return [json.loads(s3.get_object(Bucket=name, Key=k)["Body"].read()) for k in keys]

        return f"arn:aws:s3:::{name}", read_s3
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    arn = queue_arn
    if kind == "sns":
        sns = boto3.client("sns", region_name="us-east-1")
        arn = sns.create_topic(Name=name)["TopicArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    seen: list[dict] = []

    def read_sqs() -> list[dict]:
        out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        seen.extend(json.loads(m["Body"]) for m in out.get("Messages", []))
        return list(seen)

    return arn, read_sqs


@pytest.mark.parametrize("kind", ["sqs", "sns", "s3"])
def test_aws_destinations_receive_lambdas_record(
    kind: str, kafka: KafkaEnv, make_topic: Callable[..., str], unique_name: Callable[[str], str],
    moto_server: str, tmp_path: Path,
) -> None:
    topic = make_topic()
    arn, read = _aws_destination(kind, unique_name("dlq").lower()[:60])
    fn = Poisoned(tmp_path)
    produce(kafka.bootstrap, topic, [b"poison", b"ok"])
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=1, MaximumRetryAttempts=1,
                             DestinationConfig={"OnFailure": {"Destination": arn}})
    with RunningEngine([fn.function], [mapping], tmp_path) as eng:
        wait_until(lambda: committed(kafka, eng, topic) == {0: 2}, timeout=40)
    (doc,) = wait_until(read, timeout=10, message=f"the {kind} destination's record")
    assert doc["version"] == "1.0"
    context = doc["requestContext"]
    assert context["condition"] == "RetryAttemptsExhausted"
    assert context["approximateInvokeCount"] == 2
    assert context["functionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:f"
    assert doc["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert doc["responsePayload"]["errorMessage"] == "poison pill at offset 0"
    info = doc["KafkaBatchInfo"]
    assert info["batchSize"] == 1 and info["bootstrapServers"] == kafka.bootstrap
    assert info["recordsInfo"][f"{topic}-0"]["firstRecordOffset"] == "0"
    if kind == "s3":
        event = json.loads(doc["payload"])
        (record,) = event["records"][f"{topic}-0"]
        assert b64decode(record["value"]) == b"poison"
        assert info["payloadSize"] == len(doc["payload"].encode())
    else:
        assert "payload" not in doc
    assert [v for call in fn.calls() for _, v in call] == [b"poison", b"poison", b"ok"]


def test_unreachable_destination_commits_nothing_and_retries(
    kafka: KafkaEnv, make_topic: Callable[..., str], unique_name: Callable[[str], str], moto_server: str, tmp_path: Path
) -> None:
    topic = make_topic()
    name = unique_name("later")
    arn = f"arn:aws:sqs:us-east-1:123456789012:{name}"  # moto's default account; created below, later
    fn = Poisoned(tmp_path)
    produce(kafka.bootstrap, topic, [b"a", b"poison", b"b"])
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=1, MaximumRetryAttempts=0,
                             DestinationConfig={"OnFailure": {"Destination": arn}})
    with RunningEngine([fn.function], [mapping], tmp_path) as eng:
        wait_until(lambda: "OnFailure Destination" in eng.status()["LastProcessingResult"], timeout=30,
                   message="the destination problem in LastProcessingResult")
        time.sleep(1.5)
        assert committed(kafka, eng, topic) == {0: 1}  # "a" only: the poison record is held, "b" waits behind it
        assert [v for call in fn.calls() for _, v in call] == [b"a", b"poison"]
        assert name in eng.status()["Problem"]["detail"]
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        wait_until(lambda: committed(kafka, eng, topic) == {0: 3}, timeout=40, message="committed once delivered")
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"]["firstRecordOffset"]
            for m in messages] == ["1"]
    assert [v for call in fn.calls() for _, v in call] == [b"a", b"poison", b"b"]  # the function is not re-run


def test_without_a_destination_the_poison_record_is_dropped_and_reported(
    kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = make_topic()
    fn = Poisoned(tmp_path)
    produce(kafka.bootstrap, topic, [b"poison", b"after"])
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=1, MaximumRetryAttempts=1)
    with RunningEngine([fn.function], [mapping], tmp_path) as eng:
        wait_until(lambda: committed(kafka, eng, topic) == {0: 2}, timeout=40)
        assert [v for call in fn.calls() for _, v in call] == [b"poison", b"poison", b"after"]
        assert eng.status()["Errors"] == 2


def test_triggerfish_run_with_the_readme_settings(kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path) -> None:
    """The README's mapping (retries, bisect, partial responses, DLQ, filter) through `triggerfish run`."""
    import os
    import subprocess
    import sys

    from esm_helpers import RunProcess, function_dict, mapping_dict, write_config

    topic, dlq = make_topic(), make_topic(prefix="dlq")
    code = write_handler(tmp_path, "poisoned", POISONED)
    out = tmp_path / "calls.jsonl"
    mapping = mapping_dict(
        topic, kafka.bootstrap, "orders", MaximumRetryAttempts=2, MaximumRecordAgeInSeconds=3600,
        BisectBatchOnFunctionError=True, FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlq}"}},
        FilterCriteria={"Filters": [{"Pattern": '{"value": {"kind": ["order"], "amount": [{"numeric": [">", 0]}]}}'}]},
    )
    fn = function_dict(code, "poisoned.handler", "orders",
                       Environment={"Variables": {"OUT": str(out), "POISON": '{"kind": "order", "amount": 13}'}})
    config = write_config(tmp_path / "triggerfish.yaml", [fn], [mapping])
    values = [json.dumps({"kind": "order", "amount": a}).encode() for a in (5, 13, 0, 7)] + [b"noise"]
    produce(kafka.bootstrap, topic, values)
    run = RunProcess(config, tmp_path / "run.log")
    try:
        (dead,) = read_topic(kafka, dlq, 1, timeout=40)
        assert failed_value(dead) == values[1]
        assert dict(dead.headers())["triggerfish.failure.condition"] == b"RetryAttemptsExhausted"
        wait_until(lambda: any(b'"amount": 7' in (v or b"") for c in Poisoned.calls_of(out) for _, v in c), timeout=20)
        assert run.terminate() == 0
    finally:
        if run.proc.poll() is None:
            run.kill()
    assert "Traceback" not in run.log()
    seen = {v for call in Poisoned.calls_of(out) for _, v in call}
    assert seen == {values[0], values[1], values[3]}  # amount 0 and plain text were filtered out

    # A bad pattern in the same file: one line naming the field and Lambda's text, exit 1, no traceback.
    mapping["FilterCriteria"] = {"Filters": [{"Pattern": '{"value": {"amount": [{"numeric": ["=>", 0]}]}}'}]}
    write_config(config, [fn], [mapping])
    bad = subprocess.run([sys.executable, "-m", "triggerfish", "run", "--config", str(config), "--no-api"],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "250"})
    assert bad.returncode == 1
    assert "EventSourceMappings[0].FilterCriteria.Filters[0].Pattern" in bad.stderr + bad.stdout
    assert "Invalid filter pattern definition." in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr + bad.stdout


def test_record_too_large_for_an_invoke_goes_to_the_destination(
    kafka: KafkaEnv, admin: Any, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import NewTopic

    topic, dlq = unique_name("big"), unique_name("bigdlq")
    big = {"max.message.bytes": str(8 * 1024 * 1024)}
    for future in admin.create_topics([NewTopic(t, 1, 1, config=big) for t in (topic, dlq)]).values():
        future.result(timeout=30)
    try:
        producer = Producer({**kafka.plaintext(), "message.max.bytes": 8 * 1024 * 1024})
        huge = b"x" * 4_800_000  # 6.4 MB once base64-encoded: no invoke payload can hold it
        for value in (b"before", huge, b"after"):
            producer.produce(topic, value=value)
        assert producer.flush(30) == 0
        fn = Poisoned(tmp_path)
        mapping = mapping_config(topic, kafka.bootstrap, DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlq}"}})
        with RunningEngine([fn.function], [mapping], tmp_path) as eng:
            wait_until(lambda: committed(kafka, eng, topic) == {0: 3}, timeout=60)
        assert [v for call in fn.calls() for _, v in call] == [b"before", b"after"]
        (dead,) = read_topic(kafka, dlq, 1)
        assert failed_value(dead) == huge
        headers = dict(dead.headers())
        assert headers["triggerfish.failure.condition"] == b"MaximumPayloadSizeExceeded"
        assert headers["triggerfish.failure.approximate-invoke-count"] == b"0"
    finally:
        for future in admin.delete_topics([topic, dlq]).values():
            try:
                future.result(timeout=30)
            except Exception:
                pass
