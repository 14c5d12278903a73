"""The ESM engine against the real broker: event shape, batching, ordering, retries, failures,
starting positions, consumer groups and the runtime API (add/update/remove without restart)."""

from __future__ import annotations

import json
import time
from base64 import b64encode
from collections import defaultdict
from pathlib import Path

import pytest

from esm_helpers import (
    RECORDER,
    RunningEngine,
    committed_offsets,
    delivered,
    function_config,
    mapping_config,
    produce,
    read_invocations,
    wait_until,
    write_handler,
)
from triggerfish.errors import MappingConflict, MappingNotFound
from triggerfish.esm.config import MAX_PAYLOAD_BYTES

pytestmark = pytest.mark.kafka


def b64(data: bytes) -> str:
    return b64encode(data).decode()


@pytest.fixture
def recorder(tmp_path: Path):
    """(code dir, OUT file, FunctionConfig factory) for the RECORDER handler."""
    code = write_handler(tmp_path, "rec", RECORDER)
    out = tmp_path / "out.jsonl"

    def make(**fields):
        env = fields.pop("env", {})
        return function_config(code, Environment={"Variables": {"OUT": str(out), **env}}, **fields)

    return code, out, make


def test_event_is_byte_for_byte_lambdas(kafka, make_topic, recorder, tmp_path):
    topic = make_topic()
    _, out, make = recorder
    produce(kafka.bootstrap, topic, [b"v1"], keys=[b"k1"], timestamp_ms=1700000000123,
            headers=[("h1", b"hi"), ("ü", "ü".encode()), ("h1", bytes([255, 0, 127, 128])), ("empty", None)])
    produce(kafka.bootstrap, topic, [None], timestamp_ms=1700000000124)           # null key, tombstone
    produce(kafka.bootstrap, topic, [bytes(range(256))], keys=[b"\x00\xff"], timestamp_ms=1700000000125)
    with RunningEngine([make()], [mapping_config(topic, kafka.bootstrap, MaximumBatchingWindowInSeconds=1)], tmp_path):
        wait_until(lambda: len(delivered(out)) >= 3, message="3 records")
    events = [inv["event"] for inv in read_invocations(out)]
    assert len(events) == 1
    assert events[0] == {
        "eventSource": "SelfManagedKafka",
        "bootstrapServers": kafka.bootstrap,
        "records": {
            f"{topic}-0": [
                {"topic": topic, "partition": 0, "offset": 0, "timestamp": 1700000000123, "timestampType": "CREATE_TIME",
                 "key": b64(b"k1"), "value": b64(b"v1"),
                 "headers": [{"h1": [104, 105]}, {"ü": [-61, -68]}, {"h1": [-1, 0, 127, -128]}, {"empty": []}]},
                {"topic": topic, "partition": 0, "offset": 1, "timestamp": 1700000000124, "timestampType": "CREATE_TIME",
                 "value": None, "headers": []},
                {"topic": topic, "partition": 0, "offset": 2, "timestamp": 1700000000125, "timestampType": "CREATE_TIME",
                 "key": b64(b"\x00\xff"), "value": b64(bytes(range(256))), "headers": []},
            ]
        },
    }
    # Field order as Lambda sends it, and no key at all (not null) for a null key.
    raw = json.dumps(events[0]["records"][f"{topic}-0"][1])
    assert list(json.loads(raw)) == ["topic", "partition", "offset", "timestamp", "timestampType", "value", "headers"]


def test_batches_close_at_batch_size(kafka, make_topic, recorder, tmp_path):
    topic = make_topic()
    _, out, make = recorder
    produce(kafka.bootstrap, topic, [str(i).encode() for i in range(23)])
    with RunningEngine([make()], [mapping_config(topic, kafka.bootstrap, BatchSize=5, MaximumBatchingWindowInSeconds=1)],
                       tmp_path):
        wait_until(lambda: len(delivered(out)) >= 23)
    sizes = [sum(len(r) for r in inv["event"]["records"].values()) for inv in read_invocations(out)]
    assert sizes == [5, 5, 5, 5, 3]
    assert [v for _, _, v in delivered(out)] == [str(i).encode() for i in range(23)]


def test_batch_waits_for_the_window_then_closes(kafka, make_topic, recorder, tmp_path):
    topic = make_topic()
    _, out, make = recorder
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=100, MaximumBatchingWindowInSeconds=2)
    with RunningEngine([make()], [mapping], tmp_path) as eng:
        wait_until(lambda: eng.engine.runner(eng.uuids[0])._parts, message="partition assigned")
        first = time.time()
        produce(kafka.bootstrap, topic, [b"a"])
        time.sleep(0.5)
        produce(kafka.bootstrap, topic, [b"b"])
        wait_until(lambda: len(delivered(out)) >= 2)
    invocations = read_invocations(out)
    assert len(invocations) == 1, "both records belong in one window"
    waited = invocations[0]["t"] - first
    assert 1.8 <= waited < 5, f"window of 2 s closed after {waited:.2f} s"


def test_window_zero_invokes_as_soon_as_records_exist(kafka, make_topic, recorder, tmp_path):
    topic = make_topic()
    _, out, make = recorder
    with RunningEngine([make()], [mapping_config(topic, kafka.bootstrap, BatchSize=100)], tmp_path) as eng:
        wait_until(lambda: eng.engine.runner(eng.uuids[0])._parts, message="partition assigned")
        start = time.time()
        produce(kafka.bootstrap, topic, [b"a"])
        wait_until(lambda: delivered(out))
    assert read_invocations(out)[0]["t"] - start < 1.0


def test_batches_stay_under_6_mb(kafka, make_topic, recorder, tmp_path):
    topic = make_topic()
    _, out, make = recorder
    big = 700_000  # base64 makes each ~933 KB of JSON: 6 fit under 6,291,456 bytes, 7 do not
    values = [bytes([i]) * big for i in range(14)]
    produce(kafka.bootstrap, topic, values)
    with RunningEngine([make()], [mapping_config(topic, kafka.bootstrap, BatchSize=10000, MaximumBatchingWindowInSeconds=3)],
                       tmp_path):
        wait_until(lambda: len(delivered(out)) >= 14, timeout=60)
    invocations = read_invocations(out)
    sizes = [len(json.dumps(inv["event"], separators=(",", ":"), ensure_ascii=False).encode()) for inv in invocations]
    assert all(size <= MAX_PAYLOAD_BYTES for size in sizes), sizes
    assert [sum(len(r) for r in inv["event"]["records"].values()) for inv in invocations] == [6, 6, 2]
    assert [v for _, _, v in delivered(out)] == values


def test_order_per_partition_across_many_batches(kafka, make_topic, recorder, tmp_path):
    topic = make_topic(partitions=3)
    _, out, make = recorder
    values = [f"{i}".encode() for i in range(600)]
    produce(kafka.bootstrap, topic, values, keys=[f"key-{i % 11}".encode() for i in range(600)])
    with RunningEngine([make()], [mapping_config(topic, kafka.bootstrap, BatchSize=7)], tmp_path) as eng:
        wait_until(lambda: len(delivered(out)) >= 600, timeout=60)
        group = eng.uuids[0]
        wait_until(lambda: sum(committed_offsets(kafka.bootstrap, group, topic, 3).values()) == 600, timeout=20,
                   message="all offsets committed")
    rows = delivered(out)
    assert sorted(v for _, _, v in rows) == sorted(values)
    by_partition: dict[int, list[int]] = defaultdict(list)
    for partition, offset, _ in rows:
        by_partition[partition].append(offset)
    assert len(by_partition) == 3
    for partition, offsets in by_partition.items():
        assert offsets == list(range(len(offsets))), f"partition {partition} out of order or duplicated"
    # every invocation holds one partition's records in offset order, at most BatchSize of them
    for inv in read_invocations(out):
        for recs in inv["event"]["records"].values():
            assert 1 <= len(recs) <= 7


FLAKY = """
import json, os, time

def handler(event, context):
    count_file = os.environ["COUNT"]
    n = int(open(count_file).read()) if os.path.exists(count_file) else 0
    open(count_file, "w").write(str(n + 1))
    offsets = [r["offset"] for recs in event["records"].values() for r in recs]
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"attempt": n, "offsets": offsets, "t": time.time()}) + "\\n")
    mode = os.environ["MODE"]
    if mode == "raise" and n < 3:
        raise RuntimeError(f"attempt {n} fails")
    if mode == "slow-then-crash":
        if n == 0:
            time.sleep(5)        # past the 1 s timeout
        elif n == 1:
            os._exit(7)          # the worker process dies
    return {"attempt": n}
"""


def _flaky(tmp_path: Path, mode: str, **fields):
    code = write_handler(tmp_path, "flaky", FLAKY)
    out = tmp_path / "flaky.jsonl"
    fn = function_config(code, "flaky.handler", Environment={"Variables": {
        "OUT": str(out), "COUNT": str(tmp_path / "count"), "MODE": mode}}, **fields)
    return fn, out


def _attempts(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def test_failed_batch_is_retried_until_it_succeeds(kafka, make_topic, tmp_path):
    topic = make_topic()
    fn, out = _flaky(tmp_path, "raise")
    produce(kafka.bootstrap, topic, [b"a", b"b", b"c"])
    with RunningEngine([fn], [mapping_config(topic, kafka.bootstrap, MaximumBatchingWindowInSeconds=1)], tmp_path) as eng:
        wait_until(lambda: len(_attempts(out)) >= 4, timeout=30)
        wait_until(lambda: committed_offsets(kafka.bootstrap, eng.uuids[0], topic, 1)[0] == 3, timeout=15)
        status = eng.status()
    attempts = _attempts(out)
    assert [a["offsets"] for a in attempts] == [[0, 1, 2]] * 4
    assert [a["attempt"] for a in attempts] == [0, 1, 2, 3]
    gaps = [b["t"] - a["t"] for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[2] > gaps[0], f"backoff grows: {gaps}"
    assert status["LastProcessingResult"] == "OK"
    assert status["Errors"] == 3


def test_failure_is_not_committed_and_shows_problem(kafka, make_topic, tmp_path):
    code = write_handler(tmp_path, "bad", "def handler(event, context):\n    raise ValueError('always')\n")
    topic = make_topic()
    produce(kafka.bootstrap, topic, [b"x"])
    fn = function_config(code, "bad.handler")
    with RunningEngine([fn], [mapping_config(topic, kafka.bootstrap)], tmp_path) as eng:
        wait_until(lambda: eng.status()["Errors"] >= 2, timeout=20)
        status = eng.status()
    assert status["LastProcessingResult"] == "PROBLEM: Function call failed."
    assert "ValueError: always" in status["Problem"]["detail"]
    assert committed_offsets(kafka.bootstrap, eng.uuids[0], topic, 1)[0] < 0


def test_timeout_and_crash_are_retried_and_engine_survives(kafka, make_topic, tmp_path):
    topic = make_topic()
    fn, out = _flaky(tmp_path, "slow-then-crash", Timeout=1)
    produce(kafka.bootstrap, topic, [b"a"])
    with RunningEngine([fn], [mapping_config(topic, kafka.bootstrap)], tmp_path) as eng:
        wait_until(lambda: committed_offsets(kafka.bootstrap, eng.uuids[0], topic, 1)[0] == 1, timeout=30)
        runner = eng.engine.runner(eng.uuids[0])
        assert runner is not None and runner.running
    attempts = _attempts(out)
    assert [a["attempt"] for a in attempts] == [0, 1, 2]
    assert all(a["offsets"] == [0] for a in attempts)


def test_starting_positions(kafka, make_topic, recorder, tmp_path):
    _, out, make = recorder
    old, new = 1_600_000_000_000, 1_700_000_000_000
    topics = {}
    for position in ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"):
        topic = topics[position] = make_topic(prefix=position.lower().replace("_", "-"))
        produce(kafka.bootstrap, topic, [b"old-1", b"old-2"], timestamp_ms=old)
        produce(kafka.bootstrap, topic, [b"new-1"], timestamp_ms=new)
    mappings = [
        mapping_config(topics["TRIM_HORIZON"], kafka.bootstrap, StartingPosition="TRIM_HORIZON"),
        mapping_config(topics["LATEST"], kafka.bootstrap, StartingPosition="LATEST"),
        mapping_config(topics["AT_TIMESTAMP"], kafka.bootstrap, StartingPosition="AT_TIMESTAMP",
                       StartingPositionTimestamp=(old + new) / 2 / 1000),
    ]
    with RunningEngine([make()], mappings, tmp_path) as eng:
        for uuid in eng.uuids:
            wait_until(lambda u=uuid: eng.engine.runner(u)._parts, message="assigned")
        time.sleep(1)  # LATEST positions itself on assignment
        produce(kafka.bootstrap, topics["LATEST"], [b"after-start"])
        wait_until(lambda: len(delivered(out)) >= 3 + 1 + 1, timeout=30)
        time.sleep(0.5)
    seen = defaultdict(list)
    for inv in read_invocations(out):
        for recs in inv["event"]["records"].values():
            for r in recs:
                seen[r["topic"]].append(r["value"])
    assert seen[topics["TRIM_HORIZON"]] == [b64(b"old-1"), b64(b"old-2"), b64(b"new-1")]
    assert seen[topics["LATEST"]] == [b64(b"after-start")]
    assert seen[topics["AT_TIMESTAMP"]] == [b64(b"new-1")]


def test_group_is_the_persisted_uuid_and_committed_offsets_beat_starting_position(kafka, make_topic, recorder, tmp_path):
    topic = make_topic()
    _, out, make = recorder
    produce(kafka.bootstrap, topic, [b"1", b"2"])
    with RunningEngine([make()], [mapping_config(topic, kafka.bootstrap)], tmp_path) as eng:
        first_uuid = eng.uuids[0]
        wait_until(lambda: committed_offsets(kafka.bootstrap, first_uuid, topic, 1)[0] == 2, timeout=20)
    produce(kafka.bootstrap, topic, [b"3"])
    # Same state file: same UUID, same group; TRIM_HORIZON is ignored because offsets exist.
    with RunningEngine([make()], [mapping_config(topic, kafka.bootstrap, BatchSize=50)], tmp_path) as eng:
        assert eng.uuids == [first_uuid]
        wait_until(lambda: committed_offsets(kafka.bootstrap, first_uuid, topic, 1)[0] == 3, timeout=20)
    assert [v for _, _, v in delivered(out)] == [b"1", b"2", b"3"]


def test_consumer_group_id_overrides_the_uuid(kafka, make_topic, unique_name, recorder, tmp_path):
    topic = make_topic()
    group = unique_name("group")
    _, out, make = recorder
    produce(kafka.bootstrap, topic, [b"1"])
    mapping = mapping_config(topic, kafka.bootstrap, SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": group})
    with RunningEngine([make()], [mapping], tmp_path):
        wait_until(lambda: committed_offsets(kafka.bootstrap, group, topic, 1)[0] == 1, timeout=20)


def test_runtime_api_add_update_disable_remove(kafka, make_topic, recorder, tmp_path):
    topic = make_topic()
    _, out, make = recorder
    with RunningEngine([make()], [], tmp_path) as eng:
        engine = eng.engine
        view = engine.add(mapping_config(topic, kafka.bootstrap, BatchSize=1))
        assert view.status.state == "Creating"
        uuid = view.uuid
        assert engine.wait_for(uuid).status.state == "Enabled"
        produce(kafka.bootstrap, topic, [b"1", b"2"])
        wait_until(lambda: len(delivered(out)) == 2)
        with pytest.raises(MappingConflict):
            engine.add(mapping_config(topic, kafka.bootstrap))

        view = engine.update(uuid, {"BatchSize": 50, "MaximumBatchingWindowInSeconds": 1})
        assert view.status.state == "Updating" and view.config.batch_size == 50
        engine.wait_for(uuid)
        produce(kafka.bootstrap, topic, [b"3", b"4", b"5"])
        wait_until(lambda: len(delivered(out)) == 5)
        assert [len(r) for inv in read_invocations(out)[2:] for r in inv["event"]["records"].values()] == [3]

        assert engine.update(uuid, {"Enabled": False}).status.state == "Disabling"
        assert engine.wait_for(uuid).status.state == "Disabled"
        produce(kafka.bootstrap, topic, [b"6"])
        time.sleep(1.5)
        assert len(delivered(out)) == 5, "a disabled mapping does not poll"
        engine.update(uuid, {"Enabled": True})
        assert engine.wait_for(uuid).status.state == "Enabled"
        wait_until(lambda: len(delivered(out)) == 6)

        assert [m.uuid for m in engine.list(function_name="f")] == [uuid]
        assert engine.remove(uuid).status.state == "Deleting"
        assert engine.wait_for(uuid) is None
        with pytest.raises(MappingNotFound):
            engine.get(uuid)
        assert eng.store.mappings() == []


def test_api_created_mappings_survive_a_restart(kafka, make_topic, recorder, tmp_path):
    topic = make_topic()
    _, out, make = recorder
    with RunningEngine([make()], [], tmp_path) as eng:
        uuid = eng.engine.add(mapping_config(topic, kafka.bootstrap)).uuid
        eng.engine.wait_for(uuid)
    produce(kafka.bootstrap, topic, [b"later"])
    with RunningEngine([make()], [], tmp_path) as eng:
        assert [m.uuid for m in eng.engine.list()] == [uuid]
        wait_until(lambda: delivered(out))


def test_filtered_records_are_skipped_but_committed(kafka, make_topic, recorder, tmp_path):
    topic = make_topic()
    _, out, make = recorder
    produce(kafka.bootstrap, topic, [json.dumps({"kind": k}).encode() for k in ("keep", "drop", "keep", "drop", "drop")])
    mapping = mapping_config(topic, kafka.bootstrap, MaximumBatchingWindowInSeconds=1,
                             FilterCriteria={"Filters": [{"Pattern": json.dumps({"value": {"kind": ["keep"]}})}]})
    with RunningEngine([make()], [mapping], tmp_path) as eng:
        wait_until(lambda: committed_offsets(kafka.bootstrap, eng.uuids[0], topic, 1)[0] == 5, timeout=20)
    assert [offset for _, offset, _ in delivered(out)] == [0, 2]


def test_rebalance_finishes_and_commits_in_flight_batches_before_handing_over(kafka, make_topic, unique_name, tmp_path):
    """A second instance joins while the first has batches in flight: those finish and are committed
    before the partitions move, so the newcomer starts after them (no record processed twice)."""
    topic = make_topic(partitions=2)
    group = unique_name("group")
    code = write_handler(tmp_path, "rec", RECORDER)
    outs = {name: tmp_path / f"{name}.jsonl" for name in ("a", "b")}
    mapping = mapping_config(topic, kafka.bootstrap, BatchSize=5,
                             SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": group})
    values = [str(i).encode() for i in range(40)]
    produce(kafka.bootstrap, topic, values, keys=[str(i).encode() for i in range(40)])

    def engine(name: str) -> RunningEngine:
        (tmp_path / name).mkdir()
        fn = function_config(code, Environment={"Variables": {"OUT": str(outs[name]), "DELAY": "1.0"}})
        return RunningEngine([fn], [mapping], tmp_path / name)

    def everything() -> list:
        return [v for out in outs.values() for _, _, v in delivered(out)]

    with engine("a"):
        wait_until(lambda: read_invocations(outs["a"]), message="first batches in flight")
        with engine("b"):
            wait_until(lambda: set(everything()) >= set(values), timeout=60)
    assert delivered(outs["a"]) and delivered(outs["b"]), "both instances processed records"
    assert sorted(everything()) == sorted(values), "every record exactly once: nothing in flight was lost or redone"
