"""Queue mode (ConsumptionMode Queue) on a real share group: a private Kafka 4.2+ broker (port base 19820),
two engines sharing one partition, per-record acknowledgement, redelivery up to the group's delivery
limit, archiving, and the on-failure destination.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # no __all__
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from esm_helpers import RunningEngine, function_config, produce, wait_until, write_handler
from triggerfish import MappingConfig, localkafka
from triggerfish.localkafka import KafkaEnv, jars

pytestmark = pytest.mark.kafka

#: No other test uses this port base (test_localkafka 19700, test_stages 19710, test_esm_outage 19780, test_fleet 19790).
_PORT_BASE = 19820
#: Deliveries of a record before the broker archives it (the group's share.delivery.count.limit; Kafka's minimum).
_LIMIT = 2

#: Records each invocation's values (and the engine's name) to $OUT; fails for values starting with "bad":
#: the whole batch, or with $PARTIAL only those records (ReportBatchItemFailures).
_HANDLER = """
import base64, json, os, time

def handler(event, context):
    values = [base64.b64decode(r["value"]).decode() for rs in event["records"].values() for r in rs]
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"engine": os.environ["ENGINE"], "values": values, "t": time.time()}) + "\\n")
    time.sleep(float(os.environ.get("DELAY", "0")))
    bad = [r for rs in event["records"].values() for r in rs if base64.b64decode(r["value"]).startswith(b"bad")]
    if not bad:
        return {"batchItemFailures": []}
    if os.environ.get("PARTIAL"):
        return {"batchItemFailures": [{"itemIdentifier": {"partition": f"{r['topic']}-{r['partition']}",
                                                          "offset": r["offset"]}} for r in bad]}
    raise ValueError("bad record")
"""


@pytest.fixture(scope="module")
def share_kafka() -> Iterator[KafkaEnv]:
    """A private broker of a Kafka release with share groups (4.2+: share.version 1 from formatting on)."""
    major, minor = (int(x) for x in jars._KAFKA_VERSION.split(".")[:2])
    if (major, minor) < (4, 2):
        pytest.skip(f"TRIGGERFISH_KAFKA_VERSION={jars._KAFKA_VERSION} has no share groups (4.2 or later needed)")
    env = localkafka.up(_PORT_BASE)
    yield env
    localkafka.down(_PORT_BASE)


@pytest.fixture
def share_admin(share_kafka: KafkaEnv) -> AdminClient:
    return AdminClient({"bootstrap.servers": share_kafka.bootstrap})


def _topic(admin: AdminClient, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=30)
    return name


def _share_group(admin: AdminClient, **configs: str) -> str:
    """A new share group reading from the start of the topic, with group configs ``configs``."""
    group = f"sg-{uuid.uuid4().hex[:8]}"
    entries = [ConfigEntry(k.replace("_", "."), v, incremental_operation=AlterConfigOpType.SET)
               for k, v in {"share_auto_offset_reset": "earliest", **configs}.items()]
    for future in admin.incremental_alter_configs([ConfigResource(ResourceType.GROUP, group,
                                                                  incremental_configs=entries)]).values():
        future.result(timeout=30)
    return group


def _mapping(topic: str, bootstrap: str, group: str, **fields: Any) -> MappingConfig:
    return MappingConfig.from_dict({
        "FunctionName": "f", "Topics": [topic],
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}},
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group, "ConsumptionMode": "Queue"}, **fields})


def _engine(tmp_path: Path, name: str, mapping: MappingConfig, out: Path, **env: str) -> RunningEngine:
    code = write_handler(tmp_path / name, "h", _HANDLER)
    fn = function_config(code, "h.handler", Environment={"Variables": {"OUT": str(out), "ENGINE": name, **env}},
                         ReservedConcurrentExecutions=1)
    state = tmp_path / name
    state.mkdir(exist_ok=True)
    return RunningEngine([fn], [mapping], state)


def _calls(out: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def _values(out: Path, engine: str | None = None) -> Counter[str]:
    return Counter(v for c in _calls(out) if engine in (None, c["engine"]) for v in c["values"])


def _read_all(bootstrap: str, topic: str, expect: int, timeout: float = 30.0) -> list[Any]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expect and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg)
        end = time.monotonic() + 2  # nothing more than expected arrives
        while time.monotonic() < end:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                got.append(msg)
    finally:
        consumer.close()
    return got


def _settled(out: Path, check: Callable[[Counter[str]], bool], quiet: float = 3.0) -> Counter[str]:
    """Wait until ``check`` holds, then ``quiet`` seconds more: nothing is delivered again."""
    wait_until(lambda: check(_values(out)), timeout=60, message=f"deliveries {dict(_values(out))}")
    time.sleep(quiet)
    return _values(out)


def test_two_engines_on_one_share_group_split_one_partition(share_kafka: KafkaEnv, share_admin: AdminClient,
                                                             tmp_path: Path) -> None:
    topic = _topic(share_admin, "q-split")
    group = _share_group(share_admin)
    values = [f"r{i}" for i in range(120)]
    for v in values:  # one record batch each: the broker hands out (locks) whole record batches
        produce(share_kafka.bootstrap, topic, [v.encode()], partition=0)
    out = tmp_path / "out.jsonl"
    mapping = _mapping(topic, share_kafka.bootstrap, group, BatchSize=5)
    with _engine(tmp_path, "e1", mapping, out, DELAY="0.2") as one, _engine(tmp_path, "e2", mapping, out, DELAY="0.2") as two:
        seen = _settled(out, lambda c: set(c) == set(values))
        by_one, by_two = _values(out, "e1"), _values(out, "e2")
        # both members took records of the one partition; every record was processed exactly once
        assert by_one and by_two, f"e1 {len(by_one)}, e2 {len(by_two)}"
        assert seen == Counter(values)
        assert max(len(c["values"]) for c in _calls(out)) <= 5
        for eng in (one, two):
            view = eng.engine.get(eng.uuids[0])
            assert view.status.state == "Enabled"
            assert view.config.to_dict()["SelfManagedKafkaEventSourceConfig"]["ConsumptionMode"] == "Queue"
            assert "StartingPosition" not in view.config.to_dict()


def test_failing_record_is_redelivered_then_archived_then_sent_to_the_destination(
        share_kafka: KafkaEnv, share_admin: AdminClient, tmp_path: Path) -> None:
    topic, dlq = _topic(share_admin, "q-fail"), _topic(share_admin, "q-dlq")
    group = _share_group(share_admin, share_delivery_count_limit=str(_LIMIT))
    produce(share_kafka.bootstrap, topic, [b"bad-1"], keys=[b"k-bad"], partition=0)
    out = tmp_path / "out.jsonl"
    mapping = _mapping(topic, share_kafka.bootstrap, group, BatchSize=10,
                       DestinationConfig={"OnFailure": {"Destination": f"kafka://{dlq}"}})
    assert mapping.maximum_retry_attempts == 0  # Queue mode's default: no retries in the engine
    with _engine(tmp_path, "e", mapping, out) as eng:
        # delivered once per delivery up to the limit (the broker redelivers what was released), no more
        seen = _settled(out, lambda c: c["bad-1"] >= _LIMIT)
        assert seen["bad-1"] == _LIMIT
        sent = _read_all(share_kafka.bootstrap, dlq, 1)
        assert [m.key() for m in sent] == [b"k-bad"]
        # the archived record is gone for the group: a good record after it is the only one delivered next
        produce(share_kafka.bootstrap, topic, [b"good-1"], partition=0)
        seen = _settled(out, lambda c: c["good-1"] == 1)
        assert seen == Counter({"bad-1": _LIMIT, "good-1": 1})
        assert eng.engine.get(eng.uuids[0]).status.last_processing_result == "OK"


def test_report_batch_item_failures_releases_only_the_failed_records(share_kafka: KafkaEnv, share_admin: AdminClient,
                                                                     tmp_path: Path) -> None:
    topic = _topic(share_admin, "q-partial")
    group = _share_group(share_admin, share_delivery_count_limit=str(_LIMIT))
    values = ["ok-0", "ok-1", "bad-2", "ok-3", "bad-4", "ok-5"]
    produce(share_kafka.bootstrap, topic, [v.encode() for v in values], partition=0)
    out = tmp_path / "out.jsonl"
    mapping = _mapping(topic, share_kafka.bootstrap, group, BatchSize=10,
                       FunctionResponseTypes=["ReportBatchItemFailures"])
    with _engine(tmp_path, "e", mapping, out, PARTIAL="1"):
        seen = _settled(out, lambda c: c["bad-2"] >= _LIMIT and c["bad-4"] >= _LIMIT)
    # the records after a failed one were not delivered again (a stream mapping would retry from bad-2 on)
    assert seen == Counter({"ok-0": 1, "ok-1": 1, "ok-3": 1, "ok-5": 1, "bad-2": _LIMIT, "bad-4": _LIMIT})
    first, *later = _calls(out)
    assert first["values"] == values
    assert all(sorted(c["values"]) == ["bad-2", "bad-4"] for c in later)


def test_retries_in_the_engine_before_releasing(share_kafka: KafkaEnv, share_admin: AdminClient, tmp_path: Path) -> None:
    topic = _topic(share_admin, "q-retry")
    group = _share_group(share_admin, share_delivery_count_limit=str(_LIMIT))
    produce(share_kafka.bootstrap, topic, [b"bad-r"], partition=0)
    out = tmp_path / "out.jsonl"
    with _engine(tmp_path, "e", _mapping(topic, share_kafka.bootstrap, group, MaximumRetryAttempts=1), out) as eng:
        seen = _settled(out, lambda c: c["bad-r"] >= 2 * _LIMIT)
        # 1 + MaximumRetryAttempts invokes per delivery, _LIMIT deliveries; without a destination it is dropped
        assert seen["bad-r"] == 2 * _LIMIT
        assert "RetryAttemptsExhausted" in json.dumps(eng.status())
