"""Quiet mappings park their consumers with one idle poller: records, stops and errors still reach the
mapping's own thread (the poller is ``esm/idle_wait.py``; a mapping parks after ``runner._QUIET_S``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from esm_helpers import RECORDER, RunningEngine, delivered, function_config, mapping_config, produce, wait_until
from triggerfish.esm import runner as runner_module
from triggerfish.esm.idle_wait import IDLE, IdleWaiter
from triggerfish.localkafka import KafkaEnv


class _Polls:
    """What a consumer's poll returns, in turn (then nothing); records each timeout it was given."""

    def __init__(self, *answers: Sequence[Any] | BaseException) -> None:
        self.answers = list(answers)
        self.timeouts: list[float] = []

    def poll(self, max_records: int, timeout: float) -> Sequence[Any]:
        self.timeouts.append(timeout)
        answer = self.answers.pop(0) if self.answers else []
        if isinstance(answer, BaseException):
            raise answer
        return answer


def test_a_parked_consumer_is_polled_without_waiting_and_hands_over_what_came() -> None:
    source = _Polls([], [], ["m1", "m2"])
    waiter = IdleWaiter(sweep=0.01)
    assert waiter.wait(source, 10, until=time.monotonic() + 30, wake=lambda: False) == ["m1", "m2"]
    assert source.timeouts == [0, 0, 0]  # never a blocking poll (confluent-kafka's wakes every 200 ms)
    assert waiter.parked == 0


def test_a_parked_wait_ends_at_its_deadline_or_when_woken() -> None:
    waiter = IdleWaiter(sweep=0.01)
    assert waiter.wait(_Polls(), 10, until=time.monotonic() + 0.05, wake=lambda: False) == []
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    source = _Polls()
    assert waiter.wait(source, 10, until=time.monotonic() + 60, wake=stop.is_set) == []
    assert stop.is_set()


def test_an_error_of_the_parked_poll_is_raised_in_the_mappings_thread() -> None:
    waiter = IdleWaiter(sweep=0.01)
    with pytest.raises(RuntimeError, match="callback failed"):
        waiter.wait(_Polls([], RuntimeError("callback failed")), 10, until=time.monotonic() + 30, wake=lambda: False)
    assert waiter.wait(_Polls(["m"]), 10, until=time.monotonic() + 30, wake=lambda: False) == ["m"]  # still sweeping


@pytest.mark.kafka
def test_a_quiet_mapping_parks_and_still_invokes_and_stops(
        kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "_QUIET_S", 0.5)
    topic = make_topic()
    code = tmp_path / "code"
    code.mkdir()
    (code / "rec.py").write_text(RECORDER)
    out = tmp_path / "out.jsonl"
    fn = function_config(code, Environment={"Variables": {"OUT": str(out)}})
    with RunningEngine([fn], [mapping_config(topic, kafka.bootstrap, MaximumBatchingWindowInSeconds=0)], tmp_path) as eng:
        wait_until(lambda: eng.status()["State"] == "Enabled" and getattr(eng.engine.runner(eng.uuids[0]), "joined", False), 60)
        wait_until(lambda: IDLE.parked >= 1, 30, message="the quiet mapping parks")
        produce(kafka.bootstrap, topic, [b"after-quiet"])
        wait_until(lambda: delivered(out), 30, message="the parked mapping's record invoked")
        assert [v for _, _, v in delivered(out)] == [b"after-quiet"]
        wait_until(lambda: IDLE.parked >= 1, 30, message="quiet again")
        runner = eng.engine.runner(eng.uuids[0])
        assert runner is not None
        assert runner.stop(10) and not runner.running  # a parked mapping notices its stop (within a sweep)


@pytest.mark.kafka
def test_a_parked_mappings_rebalance_callbacks_run_on_the_poller_and_it_goes_on(
        kafka: KafkaEnv, make_topic: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "_QUIET_S", 0.5)
    topic = make_topic(partitions=2)
    code = tmp_path / "code"
    code.mkdir()
    (code / "rec.py").write_text(RECORDER)
    out = tmp_path / "out.jsonl"
    fn = function_config(code, Environment={"Variables": {"OUT": str(out)}})
    mapping = mapping_config(topic, kafka.bootstrap, MaximumBatchingWindowInSeconds=0)
    with RunningEngine([fn], [mapping], tmp_path) as eng:
        runner = eng.engine.runner(eng.uuids[0])
        assert runner is not None
        wait_until(lambda: len(runner._parts.tps()) == 2, 60, message="both partitions assigned")
        wait_until(lambda: IDLE.parked >= 1, 30, message="the quiet mapping parks")
        other = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": runner.mapping.group_id,
                          "partition.assignment.strategy": "cooperative-sticky", "enable.auto.commit": False})
        other.subscribe([topic])
        try:  # the parked mapping gives one partition up (its revoke runs on the poller) ...
            wait_until(lambda: other.poll(0.1) is None and len(other.assignment()) == 1, 60, message="shared")
            wait_until(lambda: len(runner._parts.tps()) == 1, 30, message="one partition revoked from the mapping")
            kept = runner._parts.tps()[0][1]
            produce(kafka.bootstrap, topic, [b"kept"], partition=kept)
            wait_until(lambda: delivered(out), 30, message="the kept partition's record invoked")
        finally:
            other.close()
        # ... and takes it back (the assignment, too, may run on the poller once it is quiet again)
        wait_until(lambda: len(runner._parts.tps()) == 2, 60, message="the partition back")
        produce(kafka.bootstrap, topic, [b"back"], partition=1 - kept)
        wait_until(lambda: len(delivered(out)) == 2, 30, message="the returned partition's record invoked")
        assert sorted(v or b"" for _, _, v in delivered(out)) == [b"back", b"kept"]
        assert runner.running and runner.error is None
