"""The connection verdict from librdkafka's errors and statistics, the status it shows, and lag that is
never a made-up 0 (no broker needed: the librdkafka reports are the ones a real consumer gives)."""

from __future__ import annotations

import json
from collections.abc import Callable

from prometheus_client import REGISTRY

from triggerfish.diagnosis import Diagnosis
from triggerfish.esm import problems
from triggerfish.esm.connection import ConnectionWatch
from triggerfish.esm.metrics import MappingMetrics
from triggerfish.esm.state import OK, MappingStatus

REFUSED = ("127.0.0.1:9092/1: Connect to ipv4#127.0.0.1:9092 failed: Connection refused "
           "(after 0ms in state CONNECT, 3 identical error(s) suppressed)")


def _stats(*states: str) -> str:
    brokers = {f"b{i}:9092/{i}": {"name": f"b{i}:9092/{i}", "nodename": f"b{i}:9092", "source": "learned",
                                  "state": state} for i, state in enumerate(states)}
    brokers["GroupCoordinator"] = {"source": "logical", "state": "UP"}
    return json.dumps({"brokers": brokers})


def test_all_brokers_down_is_lambdas_connection_problem_with_broker_time_and_error() -> None:
    watch = ConnectionWatch(["127.0.0.1:9092"], wall=lambda: 1_800_000_000.0)
    assert watch.error("_TRANSPORT", REFUSED) is False, "one connection failing is librdkafka's business"
    assert not watch.down
    assert watch.error("_ALL_BROKERS_DOWN", "1/1 brokers are down") is True
    diagnosis = watch.diagnosis()
    assert diagnosis is not None and diagnosis.problem == problems.CONNECTION_ERROR and diagnosis.stage == "poll"
    assert diagnosis.detail == ("no broker of 127.0.0.1:9092 reachable since 2027-01-15T08:00:00Z; last error from "
                                "127.0.0.1:9092: Connect to ipv4#127.0.0.1:9092 failed: Connection refused")
    assert watch.error("_ALL_BROKERS_DOWN", "1/1 brokers are down") is False, "already down"
    assert watch.error("_TRANSPORT", REFUSED) is False, "same error: nothing to update"
    assert watch.stats(_stats("CONNECT")) is False
    assert watch.stats(_stats("UP")) is True and not watch.down and watch.diagnosis() is None


def test_no_broker_up_in_three_snapshots_counts_as_down() -> None:
    watch = ConnectionWatch(["b0:9092", "b1:9092"])
    assert watch.stats(_stats("UP", "DOWN")) is False
    assert [watch.stats(_stats("CONNECT", "DOWN")) for _ in range(3)] == [False, False, True]
    diagnosis = watch.diagnosis()
    assert diagnosis is not None and "no broker connection up (b0:9092 CONNECT, b1:9092 DOWN)" in diagnosis.detail
    assert watch.stats("not json") is False and watch.down


def test_outage_shows_over_invoke_results_and_restores_them() -> None:
    status = MappingStatus("Enabled")
    status.ok(3)
    outage = Diagnosis(problems.CONNECTION_ERROR, "brokers down", stage="poll")
    status.set_outage(outage)
    assert status.last_processing_result == problems.CONNECTION_ERROR and status.problem == outage
    status.ok(1)  # a batch fetched before the outage still finishes
    failed = Diagnosis(problems.FUNCTION_CALL, "boom", stage="invoke")
    status.failed_invoke(failed)
    assert status.to_dict()["LastProcessingResult"] == problems.CONNECTION_ERROR
    status.set_outage(None)
    assert status.last_processing_result == problems.FUNCTION_CALL and status.problem == failed
    status.set_outage(outage)
    status.set_outage(None)
    assert status.problem == failed
    status.ok(1)
    assert status.last_processing_result == OK and status.problem is None


def _lag(uuid: str) -> float | None:
    return REGISTRY.get_sample_value("triggerfish_esm_max_offset_lag", {"uuid": uuid, "function": "f"})


def test_lag_is_absent_until_known_keeps_its_last_value_and_drops_released_partitions() -> None:
    metrics = MappingMetrics("lag-test", "f")
    metrics.lags({("t", 0): None})
    assert _lag("lag-test") is None, "never read: absent, not 0"
    metrics.lags({("t", 0): 5, ("t", 1): 2})
    assert _lag("lag-test") == 5
    metrics.lags({("t", 0): None})  # watermarks not readable (or the partition lost in an outage)
    assert _lag("lag-test") == 5
    metrics.released([("t", 0)])
    assert _lag("lag-test") == 2
    metrics.released([("t", 1)])
    assert _lag("lag-test") == 0, "owning no partition is a real 0"


def test_an_up_snapshot_in_librdkafkas_own_format_resets_the_dark_count_without_parsing() -> None:
    # librdkafka writes "source" then "state" per broker, one space after the comma; the logical coordinator
    # being UP says nothing about a real connection.
    up = ('{"name": "c", "brokers":{ "127.0.0.1:9092/1": { "name":"127.0.0.1:9092/1", "nodeid":1, '
          '"nodename":"127.0.0.1:9092", "source":"learned", "state":"UP", "stateage":5}, "GroupCoordinator": '
          '{ "name":"GroupCoordinator", "nodeid":1, "source":"logical", "state":"UP"}}, "topics":{ } ')  # truncated
    coordinator_only = up.replace('"source":"learned", "state":"UP"', '"source":"learned", "state":"CONNECT"')
    watch = ConnectionWatch(["127.0.0.1:9092"])
    assert [watch.stats(_stats("CONNECT")) for _ in range(2)] == [False, False]
    assert watch.stats(up) is False  # not JSON as a whole: only the fast path can read it
    assert [watch.stats(_stats("CONNECT")) for _ in range(2)] == [False, False] and not watch.down
    assert watch.stats(coordinator_only) is False and not watch.down  # unparsable and not UP: no verdict
    assert watch.stats(_stats("CONNECT")) is True and watch.down


def test_while_down_a_broker_answering_the_probe_clears_the_outage_asking_at_most_once_a_second() -> None:
    watch = ConnectionWatch(["127.0.0.1:9092"])
    asked: list[float] = []

    def answers(up: bool) -> Callable[[float], bool]:
        def reachable(timeout: float) -> bool:
            asked.append(timeout)
            return up
        return reachable

    assert watch.probe(answers(True), 100.0) is False and asked == [], "up: nothing to ask"
    assert watch.error("_ALL_BROKERS_DOWN", "1/1 brokers are down") is True
    assert watch.probe(answers(False), 100.0) is False and watch.down
    assert watch.probe(answers(True), 100.5) is False and watch.down, "asked again within the second"
    assert asked == [0.5]
    assert watch.probe(answers(True), 101.0) is True and not watch.down and watch.diagnosis() is None
    assert watch.stats(_stats("CONNECT")) is False and not watch.down, "one dark snapshot after the restore"
