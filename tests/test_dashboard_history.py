"""The dashboard's bounded memories: the lag ring buffer (an hour, per partition, forgotten with the mapping),
its sampling thread (ends once what it samples is gone), function duration percentiles and the log of
failures sent to destinations (the last 50, offsets only)."""

from __future__ import annotations

import gc
import threading
from typing import Any

from triggerfish.dashboard.history import LagHistory, Sampler
from triggerfish.esm.failures import FailureLog, record
from triggerfish.functions.stats import FunctionStats, percentile


def test_lag_history_keeps_an_hour_per_partition() -> None:
    history = LagHistory(span_s=60, interval_s=1)
    for t in range(200):
        history.add("m", {("t", 0): t, ("t", 1): None, ("u", 3): 5}, now=1000.0 + t)
    series = history.series("m", now=1199.0)
    assert [(s["Topic"], s["Partition"]) for s in series] == [("t", 0), ("u", 3)]  # None adds nothing
    samples = series[0]["Samples"]
    assert samples[0] == [1139.0, 139] and samples[-1] == [1199.0, 199] and len(samples) == 61
    assert len(history.series("m", now=5000.0)[0]["Samples"]) == 0  # older than the span
    history.keep(["other"])
    assert history.series("m", now=1199.0) == []


class _Source:
    pass


def test_sampler_thread_ends_once_its_source_is_gone() -> None:
    rounds: list[float] = []
    seen = threading.Event()

    def take(source: Any, history: LagHistory, now: float) -> list[str]:
        rounds.append(now)
        history.add("m", {("t", 0): len(rounds)}, now)
        seen.set()
        return ["m"]

    source = _Source()
    history = LagHistory(interval_s=0.05)
    sampler = Sampler(source, history, take, interval_s=0.05)
    sampler.start()
    assert seen.wait(5)
    thread = sampler._thread
    del source
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()
    assert history.series("m", now=rounds[-1])[0]["Samples"][-1][1] == len(rounds)


def test_function_percentiles_over_the_last_invocations() -> None:
    stats = FunctionStats(window=100)
    for ms in range(1, 201):  # only the last 100 (101..200) count for durations
        stats.invoked("f", float(ms), error=ms % 50 == 0)
    stats.throttled("f")
    s = stats.summary("f")
    assert (s.invocations, s.errors, s.throttles, s.durations) == (200, 4, 1, 100)
    assert (s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms) == (150.0, 190.0, 199.0, 200.0)
    assert percentile([], 0.5) is None and stats.summary("unknown").invocations == 0


def test_a_function_throttled_before_it_first_ran_still_records_its_invocations() -> None:
    stats = FunctionStats(window=10)
    stats.throttled("g")  # refused while its only slot was busy, before any invocation had finished
    stats.invoked("g", 12.0, error=False)
    s = stats.summary("g")
    assert (s.invocations, s.throttles, s.durations, s.max_ms) == (1, 1, 1, 12.0)


class _Record:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic, self.partition, self.offset, self.timestamp = topic, partition, offset, 0


def test_failure_log_is_bounded_and_keeps_offsets_only() -> None:
    log = FailureLog(size=3)
    for i in range(5):
        record("kafka://dlq", [_Record("t", 0, 10 + i), _Record("t", 0, 12 + i), _Record("t", 1, 7)],
               "RetryAttemptsExhausted", "arn:f", 3, f"m{i}", "ValueError", log=log)
    newest = log.recent()
    assert [s.mapping_uuid for s in newest] == ["m4", "m3", "m2"]
    assert newest[0].to_dict()["Offsets"] == [
        {"Topic": "t", "Partition": 0, "FirstOffset": 14, "LastOffset": 16, "Records": 2},
        {"Topic": "t", "Partition": 1, "FirstOffset": 7, "LastOffset": 7, "Records": 1}]
    assert [s.mapping_uuid for s in log.recent("m3")] == ["m3"]
