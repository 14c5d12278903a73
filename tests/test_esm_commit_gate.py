"""The commit gate: a partition starts a batch only while it is at most one BatchSize (at least 100 offsets) past its last
confirmed commit, so a SIGKILL of the engine makes the handler see at most two batches per partition
again (the one in flight and the one whose commit was in flight); commits go out as batches finish, at
most two on their way, each with every partition's latest position, and polls stay short while offsets
wait for one. The last test kills a real ``triggerfish run`` against the real broker."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from esm_fakes import records
from esm_helpers import (
    RECORDER,
    RunProcess,
    delivered,
    function_dict,
    mapping_dict,
    wait_until,
    write_config,
    write_handler,
)
from triggerfish.esm.committer import PROMPT_POLL_S, CommitPacer, Commits, Committer, gate_offsets
from triggerfish.esm.partitions import Partitions
from triggerfish.localkafka import KafkaEnv

TP0, TP1 = ("orders", 0), ("orders", 1)


def test_a_partition_may_start_a_batch_only_within_one_batch_size_of_its_last_confirmed_commit() -> None:
    c = Committer(ahead=100)  # BatchSize 100
    c.own([TP0], {TP0: 0})
    assert c.may_start(TP0)
    c.advance(TP0, 100)  # batch 1 done, its commit not confirmed: batch 2 may run
    assert c.may_start(TP0)
    c.advance(TP0, 200)  # batch 2 done too: batch 3 waits for batch 1's commit
    assert not c.may_start(TP0)
    c.confirm(TP0, 100)
    assert c.may_start(TP0)
    c.advance(TP0, 150)  # an older position (a late partial success) changes nothing
    assert c.position(TP0) == 200
    c.confirm(TP0, 200)
    for end in range(210, 320, 10):  # small batches (a low rate) run on while they stay within one BatchSize
        assert c.may_start(TP0)
        c.advance(TP0, end)
    assert not c.may_start(TP0)
    c.forget([TP0])
    c.own([TP0], {TP0: -1001})  # reassigned, no commit yet: counted from the first offset read
    c.start(TP0, 500)
    c.advance(TP0, 600)
    assert c.may_start(TP0)
    c.advance(TP0, 601)
    assert not c.may_start(TP0)


def _take_all(parts: Partitions, now: float) -> list[tuple[int, int]]:
    """Run every batch the gate lets start now: (first offset, commit_to) of each."""
    done: list[tuple[int, int]] = []
    for lease in parts.dispatch(now):
        while (taken := lease.take(now)) is not None:
            cut, commit_to = taken
            lease.finish(commit_to)
            done.append((cut.records[0].offset, commit_to))
        lease.release()
    return done


def test_dispatch_and_back_to_back_batches_stop_at_two_unconfirmed_batches() -> None:
    c = Committer(ahead=10)
    parts = Partitions(c, batch_size=10, window_s=0)
    parts.assign([TP0, TP1], {TP0: -1001, TP1: -1001}, lambda topic, partition: 100)
    parts.accept([*records(50), *records(30, partition=1)], 0.0)
    assert _take_all(parts, 0.0) == [(0, 10), (10, 20), (0, 10), (10, 20)]
    assert _take_all(parts, 0.0) == []  # both gated: batches 1 unconfirmed
    assert parts.poll_timeout(0.0, 0.1) == 0.1  # a gated partition does not make the poll spin
    c.confirm(TP1, 10)
    assert _take_all(parts, 0.0) == [(20, 30)]  # only partition 1 moves on, one batch: then batch 2 gates it
    c.confirm(TP0, 20)  # one commit confirming both finished batches lets two more run
    assert _take_all(parts, 0.0) == [(20, 30), (30, 40)]


class RecordingTarget:
    """Where ``Commits`` sends offsets in these tests (the ``CommitTarget`` protocol, not a Kafka client)."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[tuple[str, int], int], bool]] = []

    def commit(self, offsets: dict[tuple[str, int], int], *, asynchronous: bool) -> Any:
        self.sent.append((dict(offsets), asynchronous))
        return None


class Answer:
    """What librdkafka's ``on_commit`` hands over for one committed partition."""

    def __init__(self, tp: tuple[str, int], offset: int) -> None:
        self.topic, self.partition, self.offset, self.error = tp[0], tp[1], offset, None


class Refused:
    def name(self) -> str:
        return "COORDINATOR_NOT_AVAILABLE"


def test_at_most_two_commits_in_flight_each_with_the_latest_positions_of_every_partition() -> None:
    c, errors = Committer(), []
    c.own([TP0, TP1])
    commits = Commits(c, on_error=lambda: errors.append(1), pacer=CommitPacer(stuck=10, backoff=0.5),
                      clock=lambda: now)
    target, now = RecordingTarget(), 1.0
    assert commits.poll_timeout(now, 0.1, running=False) == 0.1  # nothing processed: polls may wait
    c.advance(TP0, 10)
    assert commits.poll_timeout(now, 0.1, running=False) == PROMPT_POLL_S  # a batch finished: the loop comes round soon
    commits.commit(target, now)
    commits.commit(target, now)  # nothing new since: nothing sent
    c.advance(TP0, 20)
    c.advance(TP1, 5)
    commits.commit(target, now)  # a second one on its way
    c.advance(TP0, 30)
    commits.commit(target, now)  # two on their way: the next waits for an answer
    assert target.sent == [({TP0: 10}, True), ({TP0: 20, TP1: 5}, True)]
    commits.answered(None, [Answer(TP0, 10)])
    commits.commit(target, now)
    assert target.sent[-1] == ({TP0: 30, TP1: 5}, True) and c.committed(TP0) == 10
    commits.answered(Refused(), [])  # refused: offsets stay pending, the next try waits for the backoff
    commits.answered(Refused(), [])
    assert commits.poll_timeout(now + 0.1, 0.1, running=False) == 0.1  # (and polls do not spin meanwhile)
    commits.commit(target, now + 0.1)
    assert len(target.sent) == 3 and errors == [1, 1] and c.committed(TP0) == 10
    commits.commit(target, now + 0.6)
    assert target.sent[-1] == ({TP0: 30, TP1: 5}, True)
    now = 20.0  # never answered (a lost request): sent again after ``stuck`` seconds
    commits.commit(target, now)
    assert len(target.sent) == 5
    commits.answered(None, [Answer(TP0, 30), Answer(TP1, 5)])
    assert c.committed(TP1) == 5 and commits.poll_timeout(now, 0.1, running=False) == 0.1  # all confirmed: long polls


def test_the_gate_is_one_batch_size_but_never_under_100_offsets() -> None:
    # at BatchSize 1 a one-record gate would make every invocation wait for an OffsetCommit round trip
    assert [gate_offsets(size) for size in (1, 10, 100, 500, 10_000)] == [100, 100, 100, 500, 10_000]


def _handled_at_least(out: Path, count: float) -> bool:
    return len({(p, o) for p, o, _ in delivered(out)}) >= count


@pytest.mark.kafka
def test_a_sigkilled_engine_redelivers_at_most_two_batches_per_partition(
        kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path) -> None:
    # A backlog, so that batches are full and commits are the bottleneck: the old pacing (one commit at most
    # every 0.1 s) left 600-967 records per partition uncommitted here (BENCHMARKS.md, bench/engine_kill.py).
    batch, partitions, total = 100, 3, 45_000
    topic = make_topic(partitions=partitions)
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "linger.ms": 5})
    for i in range(total):
        producer.produce(topic, str(i).encode(), partition=i % partitions)
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    code = write_handler(tmp_path, "rec", RECORDER)  # writes each invoke's event as it starts
    out = tmp_path / "out.jsonl"
    config = write_config(tmp_path / "triggerfish.yaml",
                          [function_dict(code, Environment={"Variables": {"OUT": str(out)}})],
                          [mapping_dict(topic, kafka.bootstrap, BatchSize=batch)])
    run = RunProcess(config, tmp_path / "run0.log")
    try:
        # Early: partitions do not drain evenly (one 15,000-record partition was done in 0.4 s while the others
        # were at a quarter), and every partition must still be mid-backlog when the engine dies.
        wait_until(lambda: _handled_at_least(out, total / 10), timeout=120, interval=0.02, message="a tenth handled")
        run.kill()  # SIGKILL mid-backlog; then started again
        time.sleep(0.5)  # the killed engine's workers finish the invoke they had (they wrote it as it began)
        mark = len(delivered(out))
        run = RunProcess(config, tmp_path / "run1.log")
        wait_until(lambda: _handled_at_least(out, total), timeout=120, message="every record")
        assert run.terminate() == 0
    finally:
        if run.proc.poll() is None:
            run.kill()
    rows = delivered(out)
    last: dict[int, int] = defaultdict(lambda: -1)
    for p, o, _ in rows[:mark]:
        last[p] = max(last[p], o)
    first: dict[int, int] = {}
    for p, o, _ in rows[mark:]:
        first.setdefault(p, o)  # the group's committed offset when the engine was killed
    duplicates = {p: last[p] + 1 - first[p] for p in first}
    assert len(duplicates) == partitions and mark < total
    assert all(0 <= d <= 2 * batch for d in duplicates.values()), duplicates


def test_small_moves_wait_for_the_interval_also_from_a_commit_at_offset_zero() -> None:
    # the group's committed offset 0 is a position like any other, not "nothing committed yet"
    c = Committer()
    c.own([TP0], {TP0: 0})
    commits = Commits(c, on_error=lambda: None, prompt_offsets=50, interval=0.1)
    target = RecordingTarget()
    c.advance(TP0, 10)
    commits.commit(target, 0.05)
    assert target.sent == []  # 10 offsets past the committed 0: not urgent, within the interval
    commits.commit(target, 0.1)
    assert target.sent == [({TP0: 10}, True)]
    c.advance(TP0, 70)
    commits.answered(None, [Answer(TP0, 10)])
    commits.commit(target, 0.12)
    assert target.sent[-1] == ({TP0: 70}, True)  # 60 past the last commit: at once
