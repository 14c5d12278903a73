"""Dormant mappings (``esm/dormancy.py``): a quiet mapping closes its consumer, one watcher wakes it when a record
comes, and nothing is lost or read twice across the sleep (LATEST on a topic that never had a record included)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic  # type: ignore[attr-defined]

from esm_helpers import (
    RECORDER,
    RunningEngine,
    committed_offsets,
    delivered,
    function_config,
    mapping_config,
    produce,
    wait_until,
    write_handler,
)
from triggerfish import localkafka
from triggerfish.esm import dormancy, problems
from triggerfish.esm import runner as runner_module
from triggerfish.esm.consumer import KafkaSource
from triggerfish.esm.dormancy import Dormancy, Watcher
from triggerfish.esm.runner import MappingRunner
from triggerfish.localkafka import KafkaEnv


@pytest.fixture
def soon(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quiet after 0.5 s, dormant after 2 s, checked every 0.2 s: each test takes seconds, not minutes."""
    monkeypatch.setattr(runner_module, "_QUIET_S", 0.5)
    monkeypatch.setattr(runner_module, "_IDLE_STATUS_S", 0.5)
    monkeypatch.setattr(dormancy, "DORMANT_AFTER_S", 2.0)
    monkeypatch.setattr(dormancy, "CHECK_S", 0.2)


def _members(bootstrap: str, group: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_consumer_groups([group], request_timeout=10)[group].result(15)
    return len(described.members)


def _dormant(eng: RunningEngine, bootstrap: str) -> MappingRunner:
    """The engine's one mapping once it is dormant: no consumer, and its group without members."""
    runner = eng.engine.runner(eng.uuids[0])
    assert runner is not None
    wait_until(lambda: runner.dormancy.sleeping, 60, message="the quiet mapping goes dormant")
    assert runner._source is None  # its consumer is closed
    wait_until(lambda: _members(bootstrap, runner.mapping.group_id) == 0, 15, message="the group without members")
    return runner


@pytest.fixture
def engine(kafka: KafkaEnv, tmp_path: Path, soon: None) -> Iterator[Callable[..., tuple[RunningEngine, Path]]]:
    """Starts an engine with one recording mapping on ``topic`` (mapping fields as keywords); stopped after the test."""
    started: list[RunningEngine] = []

    def start(topic: str, bootstrap: str = kafka.bootstrap, **fields: Any) -> tuple[RunningEngine, Path]:
        out = tmp_path / "out.jsonl"
        fn = function_config(write_handler(tmp_path, "rec", RECORDER), Environment={"Variables": {"OUT": str(out)}})
        eng = RunningEngine([fn], [mapping_config(topic, bootstrap, **fields)], tmp_path)
        started.append(eng)
        return eng, out

    yield start
    for eng in started:
        eng.stop()


@pytest.mark.kafka
def test_a_dormant_mapping_wakes_for_a_record_and_invokes_it_once(
        kafka: KafkaEnv, make_topic: Callable[..., str], engine: Callable[..., tuple[RunningEngine, Path]]) -> None:
    topic = make_topic()
    produce(kafka.bootstrap, topic, [b"before"])
    eng, out = engine(topic)
    wait_until(lambda: delivered(out), 60, message="the first record invoked")
    awake = eng.engine.runner(eng.uuids[0])
    source = awake._source if awake is not None else None
    assert isinstance(source, KafkaSource)
    runner = _dormant(eng, kafka.bootstrap)
    with pytest.raises(RuntimeError, match="closed"):  # the client itself is gone, its threads with it
        source.consumer.assignment()
    assert committed_offsets(kafka.bootstrap, runner.mapping.group_id, topic, 1) == {0: 1}
    produce(kafka.bootstrap, topic, [b"while-dormant"])
    wait_until(lambda: len(delivered(out)) == 2, 30, message="the record produced while dormant invoked")
    _dormant(eng, kafka.bootstrap)  # quiet again: dormant again
    assert delivered(out) == [(0, 0, b"before"), (0, 1, b"while-dormant")]
    assert runner.dormancy.times == 2 and runner.error is None


@pytest.mark.kafka
def test_latest_on_a_topic_without_records_loses_nothing_produced_while_dormant(
        kafka: KafkaEnv, make_topic: Callable[..., str], engine: Callable[..., tuple[RunningEngine, Path]]) -> None:
    topic = make_topic()
    eng, out = engine(topic, StartingPosition="LATEST")
    runner = _dormant(eng, kafka.bootstrap)
    # nothing was ever read: the end it started from is committed, or a new consumer would start past the records
    assert committed_offsets(kafka.bootstrap, runner.mapping.group_id, topic, 1) == {0: 0}
    produce(kafka.bootstrap, topic, [b"a", b"b", b"c"])
    wait_until(lambda: len(delivered(out)) == 3, 30, message="the three records invoked")
    assert delivered(out) == [(0, 0, b"a"), (0, 1, b"b"), (0, 2, b"c")]


@pytest.mark.kafka
def test_records_to_one_of_several_partitions_while_dormant_are_all_invoked_once(
        kafka: KafkaEnv, make_topic: Callable[..., str], engine: Callable[..., tuple[RunningEngine, Path]]) -> None:
    topic = make_topic(partitions=3)
    produce(kafka.bootstrap, topic, [b"p0"], partition=0)
    eng, out = engine(topic, StartingPosition="LATEST")  # partition 0 is read from its end; 1 and 2 never had one
    runner = _dormant(eng, kafka.bootstrap)
    assert committed_offsets(kafka.bootstrap, runner.mapping.group_id, topic, 3) == {0: 1, 1: 0, 2: 0}
    produce(kafka.bootstrap, topic, [b"x1", b"x2"], partition=2)
    wait_until(lambda: len(delivered(out)) == 2, 30, message="both records invoked")
    _dormant(eng, kafka.bootstrap)
    produce(kafka.bootstrap, topic, [b"y1"], partition=1)
    produce(kafka.bootstrap, topic, [b"z1"], partition=0)
    wait_until(lambda: len(delivered(out)) == 4, 30, message="the records of two partitions invoked")
    time.sleep(1.0)  # a duplicate would come now
    assert sorted(delivered(out)) == [(0, 1, b"z1"), (1, 0, b"y1"), (2, 0, b"x1"), (2, 1, b"x2")]


@pytest.mark.kafka
def test_a_partition_added_while_dormant_wakes_the_mapping_for_its_records(
        kafka: KafkaEnv, admin: AdminClient, make_topic: Callable[..., str],
        engine: Callable[..., tuple[RunningEngine, Path]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dormancy, "METADATA_EVERY_S", 0.5)
    topic = make_topic()
    eng, out = engine(topic)
    _dormant(eng, kafka.bootstrap)
    admin.create_partitions([NewPartitions(topic, 2)])[topic].result(30)
    produce(kafka.bootstrap, topic, [b"new-partition"], partition=1)
    wait_until(lambda: delivered(out), 30, message="the new partition's record invoked")
    assert delivered(out) == [(1, 0, b"new-partition")]


@pytest.mark.kafka
def test_a_dormant_mapping_stops_at_once_and_stays_enabled_and_ready_while_dormant(
        kafka: KafkaEnv, make_topic: Callable[..., str], engine: Callable[..., tuple[RunningEngine, Path]]) -> None:
    topic = make_topic()
    eng, out = engine(topic)
    runner = _dormant(eng, kafka.bootstrap)
    assert eng.status()["State"] == "Enabled"
    assert runner.polling and runner.joined
    assert eng.engine.not_ready() == []
    produce(kafka.bootstrap, topic, [b"wake"])
    not_ready: list[Any] = []

    def invoked() -> bool:  # ready all along, the group join after the wake included
        not_ready.extend(eng.engine.not_ready())
        return bool(delivered(out))

    wait_until(invoked, 30, interval=0.02, message="the record invoked")
    assert not_ready == []
    _dormant(eng, kafka.bootstrap)
    assert runner.stop(1.5) and not runner.running  # woken by its stop, not by the next check


#: No other test uses this port base (see tests/test_esm_outage.py for the others).
_PORT_BASE = 19880


@pytest.mark.kafka
def test_an_outage_while_dormant_shows_and_the_mapping_goes_on_after_it(
        kafka: KafkaEnv, engine: Callable[..., tuple[RunningEngine, Path]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dormancy, "REQUEST_TIMEOUT_S", 1.0)
    env = localkafka.up(_PORT_BASE)
    try:
        topic = f"dormant-outage-{uuid.uuid4().hex[:8]}"
        admin = AdminClient({"bootstrap.servers": env.bootstrap})  # kept referenced until the topic exists
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
        eng, out = engine(topic, bootstrap=env.bootstrap)
        _dormant(eng, env.bootstrap)
        assert localkafka.down(_PORT_BASE, keep_data=True)
        # the watcher gets no answer: the mapping's own consumer comes back and reports the outage
        wait_until(lambda: eng.engine.not_ready(), 30, message="not ready without the broker")
        wait_until(lambda: eng.status()["LastProcessingResult"] == problems.CONNECTION_ERROR, 10)
        localkafka.up(_PORT_BASE)
        wait_until(lambda: not eng.engine.not_ready(), 60, message="ready again")
        produce(env.bootstrap, topic, [b"after-the-outage"])
        wait_until(lambda: delivered(out), 60, message="the record after the outage invoked")
        assert delivered(out) == [(0, 0, b"after-the-outage")]
    finally:
        localkafka.down(_PORT_BASE)


def test_a_dormant_mapping_wakes_when_the_watcher_cannot_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dormancy, "CHECK_S", 0.05)
    monkeypatch.setattr(dormancy, "REQUEST_TIMEOUT_S", 0.5)
    watcher = Watcher()
    sleep = Dormancy("m", watcher)
    why: list[str] = []
    config = {"bootstrap.servers": "127.0.0.1:1", "socket.connection.setup.timeout.ms": 1000}
    thread = threading.Thread(target=lambda: why.append(sleep.sleep(config, ["127.0.0.1:1"], "g", ["t"], wake=lambda: False)))
    thread.start()
    thread.join(30)
    assert why and why[0].startswith("offsets of t unavailable")  # the mapping's own consumer reports the problem
    wait_until(lambda: watcher.clients == 0, 5, message="the unused client closed")


def test_a_sleep_ends_when_woken_even_before_it_began() -> None:
    sleep = Dormancy("m", Watcher())
    stopped = threading.Event()
    stopped.set()
    assert sleep.sleep({"bootstrap.servers": "127.0.0.1:1"}, ["127.0.0.1:1"], "g", ["t"], wake=stopped.is_set) == "woken"
    threading.Timer(0.1, sleep.rouse, args=("stopping",)).start()
    assert sleep.sleep({"bootstrap.servers": "127.0.0.1:1"}, ["127.0.0.1:1"], "g", ["t"], wake=lambda: False) == "stopping"


def test_mappings_whose_token_providers_differ_are_watched_over_their_own_connections(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dormancy, "CHECK_S", 60.0)  # no check while this looks
    watcher = Watcher()
    sleeps = [Dormancy(f"m{i}", watcher) for i in range(3)]
    configs = [{"bootstrap.servers": "127.0.0.1:1", "oauth_cb": lambda _config: ("token", 0.0)} for _ in range(2)]
    configs.append(dict(configs[0]))  # the same provider: the same connection
    threads = [threading.Thread(target=d.sleep, args=(c, ["127.0.0.1:1"], d.name, ["t"], lambda: False))
               for d, c in zip(sleeps, configs, strict=True)]
    for thread in threads:
        thread.start()
    wait_until(lambda: watcher.sleeping == 3, 5, message="three mappings asleep")
    assert watcher.connections == 2  # one token provider's identity is never another's
    for d in sleeps:
        d.rouse("stopping")
    for thread in threads:
        thread.join(5)


@pytest.mark.kafka
def test_a_topic_the_cluster_cannot_answer_for_wakes_only_the_mappings_reading_it(
        kafka: KafkaEnv, make_topic: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dormancy, "CHECK_S", 0.1)
    watcher, config = Watcher(), {"bootstrap.servers": kafka.bootstrap}
    quiet, missing = Dormancy("quiet", watcher), Dormancy("missing", watcher)
    why: dict[str, str] = {}
    threads = [threading.Thread(target=lambda d=d, t=t: why.update({d.name: d.sleep(config, [kafka.bootstrap], d.name, [t], lambda: False)}))
               for d, t in ((quiet, make_topic()), (missing, f"never-created-{uuid.uuid4().hex[:8]}"))]
    for thread in threads:
        thread.start()
    wait_until(lambda: "missing" in why, 30, message="the mapping of the missing topic woken")
    assert why["missing"].startswith("offsets of never-created-")
    time.sleep(1.0)  # ten checks more
    assert quiet.sleeping and "quiet" not in why
    quiet.rouse("stopping")
    for thread in threads:
        thread.join(5)
    assert why["quiet"] == "stopping"
