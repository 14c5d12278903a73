"""The config log against the real broker: compare-and-set across processes, propagation, catch-up, order, outages."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AclOperation, AdminClient, ResourceType

from cluster_replica import version_check
from kafka_helpers import allow, closed_port
from triggerfish.cluster.board import StatusBoard
from triggerfish.cluster.config import ClusterConfig
from triggerfish.cluster.configlog import ConfigLog, Entry, read_configs
from triggerfish.cluster.topics import ensure_topics, precreate_commands
from triggerfish.errors import ClusterError, ConcurrentChange, MappingConflict, UnavailableError
from triggerfish.localkafka import KafkaEnv

pytestmark = pytest.mark.kafka

REPLICA = Path(__file__).with_name("cluster_replica.py")


class Recorder:
    """An on_change that keeps every change in order, with when it arrived."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, int | None]] = []
        self.times: dict[int, float] = {}
        self.deleted: dict[str, float] = {}

    def __call__(self, uuid: str, entry: Entry | None) -> None:
        self.changes.append((uuid, entry.version if entry else None))
        if entry is None:
            self.deleted[uuid] = time.monotonic()
        else:
            self.times[entry.version] = time.monotonic()


@pytest.fixture
def logs() -> Iterator[Callable[[ClusterConfig, Recorder], ConfigLog]]:
    started: list[ConfigLog] = []

    def start(cfg: ClusterConfig, recorder: Recorder) -> ConfigLog:
        log = ConfigLog(cfg, recorder)
        log.start()
        started.append(log)
        return log

    yield start
    for log in started:
        log.stop()


def test_a_write_reaches_every_replica_in_time_and_deletes_are_tombstones(cluster, logs) -> None:
    ra, rb = Recorder(), Recorder()
    a, b = logs(cluster("a"), ra), logs(cluster("b"), rb)
    latencies = []
    for i in range(5):
        started = time.monotonic()
        version = a.write("m1", {"FunctionName": "f", "BatchSize": i})
        assert ra.times[version] <= time.monotonic()  # on_change ran before write returned
        deadline = time.monotonic() + 2.0
        while version not in rb.times and time.monotonic() < deadline:
            time.sleep(0.005)
        assert version in rb.times, "B did not see A's write within 2 s"
        latencies.append(rb.times[version] - started)
    print(f"\nwrite on A -> on_change on B: max {max(latencies) * 1000:.0f} ms, "
          f"median {sorted(latencies)[2] * 1000:.0f} ms")
    entry = b.entries()["m1"]
    assert (entry.config["BatchSize"], entry.writer, entry.origin, entry.version) == (4, "a", "api", version)

    a.write("m1", None)
    deadline = time.monotonic() + 2.0
    while "m1" not in rb.deleted and time.monotonic() < deadline:
        time.sleep(0.005)
    assert "m1" not in a.entries() and "m1" not in b.entries()
    assert rb.changes[-1] == ("m1", None)
    assert a.problem() is None and b.problem() is None


def test_a_fresh_replica_catches_up_and_everyone_saw_the_same_order(cluster, logs) -> None:
    ra, rb = Recorder(), Recorder()
    a, b = logs(cluster("a"), ra), logs(cluster("b"), rb)
    for i in range(6):
        (a if i % 2 else b).write(f"m{i % 3}", {"i": i})
    b.write("m0", None)
    a.write("m0", {"i": "again"})
    rc = Recorder()
    c = logs(cluster("c"), rc)
    assert c.entries() == a.entries() == b.entries()
    assert sorted(c.entries()) == ["m0", "m1", "m2"]
    assert ra.changes == rb.changes
    # the newcomer replays the same history (nothing compacted yet)
    assert rc.changes == ra.changes
    assert read_configs(cluster("cli")) == a.entries()


def test_a_refusing_check_writes_nothing(cluster, logs) -> None:
    ra = Recorder()
    a = logs(cluster("a"), ra)
    version = a.write("m1", {"x": 1})

    def refuse(entries):
        assert entries["m1"].version == version  # the check sees the complete, fresh state
        raise MappingConflict("exists", "m1")

    with pytest.raises(MappingConflict):
        a.write("m2", {"x": 2}, refuse)
    assert sorted(a.entries()) == ["m1"]
    assert a.write("m2", {"x": 2}) > version  # the fence was released: the next write goes through


def test_two_processes_changing_one_mapping_at_once_one_wins_none_diverges(cluster, logs) -> None:
    ra = Recorder()
    cfg = cluster("a")
    a = logs(cfg, ra)
    child = subprocess.Popen([sys.executable, str(REPLICA), "configlog", cfg.name, "b"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert json.loads(child.stdout.readline()) == {"ready": True}
        version: int | None = None
        for _ in range(8):
            at = time.time() + 0.3
            child.stdin.write(f"write m1 {version if version is not None else 'none'} {at}\n")
            child.stdin.flush()
            mine: dict[str, Any] = {}

            def write(expected: int | None = version, result: dict[str, Any] = mine, at: float = at) -> None:
                time.sleep(max(0.0, at - time.time()))
                try:
                    result["ok"] = a.write("m1", {"by": "a"}, version_check("m1", expected))
                except ConcurrentChange as exc:
                    result["error"] = str(exc)

            thread = threading.Thread(target=write)
            thread.start()
            theirs = json.loads(child.stdout.readline())
            thread.join()
            winners = [r["ok"] for r in (mine, theirs) if "ok" in r]
            assert len(winners) == 1, (mine, theirs)
            loser = theirs if "ok" in mine else mine
            assert "changed by another request" in (loser.get("message") or loser.get("error"))
            assert theirs.get("error", "ConcurrentChange") == "ConcurrentChange"
            version = winners[0]
        print(f"\n{a.fenced} of A's attempts were fenced by B's writer and retried")
        child.stdin.write("dump\n")
        child.stdin.flush()
        dump = json.loads(child.stdout.readline())
        assert dump["entries"] == {u: e.version for u, e in a.entries().items()} == {"m1": version}
        assert [tuple(c) for c in dump["changes"]] == ra.changes
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def test_writes_and_start_without_the_state_kafka_fail_fast_naming_it(unique_name) -> None:
    port = closed_port()
    cfg = ClusterConfig(name=unique_name("cl"), bootstrap_servers=(f"127.0.0.1:{port}",), replica_id="a")
    before = set(threading.enumerate())
    log = ConfigLog(cfg, Recorder())
    started = time.monotonic()
    with pytest.raises(UnavailableError) as info:
        log.start(timeout=5)
    assert time.monotonic() - started < 20
    assert f"127.0.0.1:{port}" in str(info.value) and "refused" in str(info.value).lower()
    with pytest.raises((UnavailableError, ClusterError)):
        log.write("m1", {"x": 1})
    log.stop()
    assert set(threading.enumerate()) == before


def test_a_write_when_the_reader_runs_but_kafka_is_gone_is_unavailable_within_15_s(cluster, logs) -> None:
    # The writer's own clients get a bootstrap nothing answers: what a write meets when Kafka went away.
    a = logs(cluster("a"), Recorder())
    port = closed_port()
    a.cfg = cluster("a").with_overrides(bootstrap=f"127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(UnavailableError) as info:
        a.write("m1", {"x": 1})
    took = time.monotonic() - started
    print(f"\nunreachable write failed after {took:.1f} s: {info.value}")
    assert took <= 16
    assert f"127.0.0.1:{port}" in str(info.value) and "refused" in str(info.value).lower()
    assert "m1" not in a.entries()


def test_stop_leaves_no_thread_behind(cluster) -> None:
    before = set(threading.enumerate())
    log = ConfigLog(cluster("a"), Recorder())
    log.start()
    log.write("m1", {"x": 1})
    assert len(set(threading.enumerate()) - before) == 1
    log.stop()
    assert set(threading.enumerate()) == before
    assert log.problem() is not None


def test_read_configs_of_a_cluster_that_never_started_says_so(kafka, unique_name) -> None:
    cfg = ClusterConfig(name=unique_name("none"), bootstrap_servers=(kafka.bootstrap,), replica_id="cli")
    with pytest.raises(ClusterError) as info:
        read_configs(cfg, timeout=5)
    assert "does not exist" in str(info.value) and cfg.configs_topic in str(info.value)


def test_an_entry_is_what_was_written(cluster, logs) -> None:
    a = logs(cluster("a"), Recorder())
    mapping = str(uuid.uuid4())
    before = time.time()
    version = a.write(mapping, {"FunctionName": "f", "Topics": ["t"]})
    entry = a.entries()[mapping]
    assert entry == Entry(uuid=mapping, config={"FunctionName": "f", "Topics": ["t"]}, version=version,
                          origin="api", writer="a", time=entry.time)
    assert before <= entry.time <= time.time()


def test_the_acls_the_precreate_commands_grant_are_enough(kafka: KafkaEnv, admin: AdminClient, cluster, acls,
                                                          scram_user: tuple[str, str]) -> None:
    user, password = scram_user
    principal = f"User:{user}"
    sasl = kafka.sasl(user=user, password=password)
    sasl.pop("bootstrap.servers")
    cfg = ClusterConfig(name=cluster().name, bootstrap_servers=(kafka.sasl_bootstrap,), replica_id="a",
                        properties=sasl, create_topics=False)
    ensure_topics(cluster())  # what the admin's kafka-topics.sh lines do, as the admin
    # exactly the kafka-acls.sh lines of precreate_commands, as bindings
    topic_ops = (AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS)
    acls([allow(ResourceType.TOPIC, t, principal, op) for t in (cfg.configs_topic, cfg.status_topic) for op in topic_ops]
         + [allow(ResourceType.TRANSACTIONAL_ID, cfg.writer_id, principal, op)
            for op in (AclOperation.WRITE, AclOperation.DESCRIBE)]
         + [allow(ResourceType.BROKER, "kafka-cluster", principal, AclOperation.IDEMPOTENT_WRITE)])
    assert any("--allow-principal 'User:<principal>'" in line and "--transactional-id" in line
               for line in precreate_commands(cfg))
    recorder = Recorder()
    log = ConfigLog(cfg, recorder)
    log.start(timeout=20)
    board = StatusBoard(cfg)
    try:
        version = log.write("m1", {"x": 1})
        assert recorder.changes == [("m1", version)]
        board.start(timeout=20)
        board.publish("m1", {"FunctionName": "f"}, {"State": "Enabled", "Partitions": []})
        deadline = time.monotonic() + 5
        while board.fleet("m1") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert board.fleet("m1") is not None
        assert log.problem() is None and board.problem() is None
    finally:
        board.stop()
        log.stop()


def test_a_principal_without_the_transactional_id_acl_is_told_which_acls(kafka: KafkaEnv, cluster, acls,
                                                                         scram_user: tuple[str, str]) -> None:
    user, password = scram_user
    sasl = kafka.sasl(user=user, password=password)
    sasl.pop("bootstrap.servers")
    cfg = ClusterConfig(name=cluster().name, bootstrap_servers=(kafka.sasl_bootstrap,), replica_id="a",
                        properties=sasl, create_topics=False)
    ensure_topics(cluster())
    acls([allow(ResourceType.TOPIC, t, f"User:{user}", op) for t in (cfg.configs_topic, cfg.status_topic)
          for op in (AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE)])
    log = ConfigLog(cfg, Recorder())
    log.start(timeout=20)  # reading needs no more
    try:
        started = time.monotonic()
        with pytest.raises(ClusterError) as info:
            log.write("m1", {"x": 1})
        assert time.monotonic() - started < 5
        assert "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" in str(info.value)
        assert f"--transactional-id {cfg.writer_id}" in str(info.value)
        assert password not in str(info.value)
        assert log.fenced == 0
    finally:
        log.stop()
