"""Provisioned mode (ProvisionedPollerConfig): how many partitions run a batch at once, and how that grows with lag.

The engine tests run on the real broker with a handler that records when each invocation enters and leaves,
so the concurrency seen is the function's own.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from esm_helpers import RunningEngine, function_config, mapping_config, produce, wait_until, write_handler
from triggerfish.esm.committer import Committer
from triggerfish.esm.event import Record
from triggerfish.esm.partitions import Partitions
from triggerfish.esm.pollers import Pollers
from triggerfish.localkafka import KafkaEnv

#: Appends {"partition", "start", "end"} per invocation to $OUT (one write per line) after sleeping $DELAY.
_SPANS = """
import json, os, time

def handler(event, context):
    start = time.time()
    time.sleep(float(os.environ["DELAY"]))
    partitions = sorted({r["partition"] for rs in event["records"].values() for r in rs})
    line = json.dumps({"partitions": partitions, "start": start, "end": time.time()}) + "\\n"
    fd = os.open(os.environ["OUT"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return {"ok": True}
"""
_PARTITIONS, _PER_PARTITION = 4, 3


# --- the poller count ---------------------------------------------------------------------------------------


def test_no_poller_config_or_an_empty_one_is_on_demand() -> None:
    assert Pollers.of(None, 8) is None
    assert Pollers.of({}, 8) is None
    assert Pollers.of({"PollerGroupName": "g"}, 8) is None


def test_pollers_start_at_the_minimum_grow_with_lag_and_stay_within_partitions_and_concurrency() -> None:
    pollers = Pollers.of({"MinimumPollers": 2, "MaximumPollers": 6}, concurrency=8)
    assert pollers is not None and pollers.current == 2
    assert pollers.scale(busy=5, partitions=12) == 5
    assert pollers.scale(busy=12, partitions=12) == 6  # MaximumPollers
    assert pollers.scale(busy=12, partitions=3) == 3  # never more pollers than partitions
    assert pollers.scale(busy=0, partitions=12) == 2  # lag gone: back to the minimum
    capped = Pollers.of({"MinimumPollers": 4, "MaximumPollers": 10}, concurrency=3)
    assert capped is not None and (capped.minimum, capped.maximum) == (3, 3)  # the function's concurrency bounds it
    defaults = Pollers.of({"MaximumPollers": 300}, concurrency=500)
    assert defaults is not None and (defaults.current, defaults.maximum) == (1, 300)


def _record(partition: int, offset: int) -> Record:
    record = Record("t", partition, offset, 0, "", None, b"v")
    record.encoded = b'"v"'
    return record


def test_a_poller_limit_caps_partitions_in_flight_and_serves_the_longest_waiting_first() -> None:
    parts = Partitions(Committer(), batch_size=1, window_s=0)
    parts.assign([("t", p) for p in range(4)], {}, lambda topic, partition: 100)
    parts.accept([_record(p, o) for p in range(4) for o in range(2)], now=0.0)
    assert not parts.yields(1.0)  # on demand: a run keeps its partition while batches are ready
    parts.pollers = Pollers(2, 2)
    first = parts.dispatch(1.0)
    assert sorted(lease.partition.tp[1] for lease in first) == [0, 1]
    assert parts.dispatch(1.0) == [] and parts.poll_timeout(1.0, 0.1) == 0.1
    assert parts.yields(1.0)
    first[0].release()
    assert [lease.partition.tp[1] for lease in parts.dispatch(1.0)] == [2]  # not partition 0 again
    parts.scale({("t", 3), ("t", 9)})  # four partitions busy (9 is not assigned): capped at MaximumPollers
    assert parts.pollers.current == 2
    parts.pollers = None  # no limit: every ready partition (0 was released with its batch untaken, 3 never ran)
    assert sorted(lease.partition.tp[1] for lease in parts.dispatch(1.0)) == [0, 3]


# --- the engine -----------------------------------------------------------------------------------------


def _max_overlap(spans: list[dict[str, Any]]) -> int:
    events = sorted([(s["start"], 1) for s in spans] + [(s["end"], -1) for s in spans], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def _spans(out: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def _run(kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path, delay: float, **fields: Any) -> list[dict[str, Any]]:
    topic = make_topic(_PARTITIONS, "pollers")
    for p in range(_PARTITIONS):
        produce(kafka.bootstrap, topic, [f"p{p}-{i}".encode() for i in range(_PER_PARTITION)], partition=p)
    out = tmp_path / "spans.jsonl"
    code = write_handler(tmp_path, "spans", _SPANS)
    fn = function_config(code, "spans.handler", Environment={"Variables": {"OUT": str(out), "DELAY": str(delay)}})
    with RunningEngine([fn], [mapping_config(topic, kafka.bootstrap, BatchSize=1, **fields)], tmp_path) as running:
        running.runtime.warm("f", _PARTITIONS)  # no interpreter start inside the measured spans
        total = _PARTITIONS * _PER_PARTITION
        wait_until(lambda: len(_spans(out)) >= total, timeout=120, message=f"{total} invocations")
    spans = _spans(out)
    assert sorted(p for s in spans for p in s["partitions"]) == sorted(list(range(_PARTITIONS)) * _PER_PARTITION)
    return spans


@pytest.mark.kafka
@pytest.mark.parametrize(("pollers", "expected"), [(4, 4), (2, 2), (1, 1)])
def test_minimum_pollers_is_how_many_partitions_are_invoked_at_once(
        kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path, pollers: int, expected: int) -> None:
    spans = _run(kafka, make_topic, tmp_path, 0.4,
                 ProvisionedPollerConfig={"MinimumPollers": pollers, "MaximumPollers": pollers})
    assert _max_overlap(spans) == expected


@pytest.mark.kafka
def test_without_provisioned_pollers_every_partition_runs_at_once_as_before(
        kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path) -> None:
    assert _max_overlap(_run(kafka, make_topic, tmp_path, 0.4)) == _PARTITIONS


@pytest.mark.kafka
def test_pollers_grow_from_the_minimum_with_the_lag(
        kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="triggerfish.esm")
    spans = _run(kafka, make_topic, tmp_path, 0.6, ProvisionedPollerConfig={"MinimumPollers": 1, "MaximumPollers": 4})
    assert _max_overlap(spans) == _PARTITIONS  # one poller per lagging partition (MinimumPollers 1 alone runs 1)
    grown = [r.getMessage() for r in caplog.records if "poller(s) ->" in r.getMessage()]
    assert grown and grown[0].split(": ", 1)[1].startswith("1 poller(s) -> "), grown
