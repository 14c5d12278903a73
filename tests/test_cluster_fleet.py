"""fleet.merge, the pure rules that make one mapping's status of its live replicas' reports."""

from __future__ import annotations

from typing import Any

import pytest

from triggerfish.cluster.fleet import is_live, merge

PROBLEM = "PROBLEM: Function call failed. The function returned an error"


def part(n: int, *, assigned: bool = True, committed: int = 10, hw: int = 15, topic: str = "orders") -> dict[str, Any]:
    return {"topic": topic, "partition": n, "committed": committed, "high_watermark": hw, "assigned": assigned,
            "low_watermark": 0, "lag": hw - committed}


def report(state: str = "Enabled", *, result: str = "OK", modified: float = 100.0, parts: list[dict[str, Any]] | None = None,
           time: float = 1000.0, problem: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    status = {"State": state, "StateTransitionReason": "USER_INITIATED", "LastProcessingResult": result,
              "LastModified": modified, "Partitions": parts or [], "Stages": [], "Problem": problem,
              "Invocations": 3, "Records": 30, "Errors": 0, "Host": "h", **extra}
    return {"replica": "?", "summary": {}, "status": status, "time": time}


def test_partitions_are_the_union_of_assigned_ones_with_their_owner() -> None:
    view = merge({"r1": report(parts=[part(0), part(1, assigned=False)]), "r2": report(parts=[part(1), part(2)])},
                 {"r1": {"host": "pod-a"}, "r2": {"host": "pod-b"}})
    assert [(p["partition"], p["owner"], p["lag"]) for p in view["Partitions"]] == [(0, "r1", 5), (1, "r2", 5), (2, "r2", 5)]
    assert view["Replicas"] == [
        {"Id": "r1", "Host": "pod-a", "State": "Enabled", "LastProcessingResult": "OK", "Partitions": 1},
        {"Id": "r2", "Host": "pod-b", "State": "Enabled", "LastProcessingResult": "OK", "Partitions": 2},
    ]
    assert (view["Invocations"], view["Records"]) == (6, 60)


def test_a_partition_claimed_twice_mid_rebalance_goes_to_the_newer_record() -> None:
    old = report(parts=[part(0, committed=5)], time=1000.0, modified=500.0)
    new = report(parts=[part(0, committed=7)], time=1001.0, modified=100.0)
    view = merge({"r1": old, "r2": new})
    assert [(p["owner"], p["committed"]) for p in view["Partitions"]] == [("r2", 7)]
    view = merge({"r1": new, "r2": old})
    assert [(p["owner"], p["committed"]) for p in view["Partitions"]] == [("r1", 7)]
    assert {r["Id"]: r["Partitions"] for r in view["Replicas"]} == {"r1": 1, "r2": 0}


def test_a_problem_on_any_replica_wins_and_names_it() -> None:
    problem = {"text": PROBLEM, "detail": "boom", "fix": "fix the handler", "stage": "invoke"}
    view = merge({"r1": report(result="OK", modified=300.0),
                  "r2": report(result=PROBLEM, modified=200.0, problem=problem, Stages=[{"stage": "invoke"}])})
    assert view["LastProcessingResult"] == PROBLEM
    assert view["Problem"] == {**problem, "replica": "r2"}
    assert view["Stages"] == [{"stage": "invoke"}]
    assert view["LastModified"] == 300.0


def test_without_a_problem_the_most_recent_result_is_shown() -> None:
    view = merge({"r1": report(result="No records processed", modified=100.0), "r2": report(result="OK", modified=200.0)})
    assert (view["LastProcessingResult"], view["Problem"], view["LastModified"]) == ("OK", None, 200.0)


def test_a_replica_that_processed_nothing_does_not_hide_the_result_of_one_that_did() -> None:
    view = merge({"r1": report(result="OK", modified=100.0), "r2": report(result="No records processed", modified=200.0)})
    assert view["LastProcessingResult"] == "OK"


@pytest.mark.parametrize(("states", "expected"), [
    (["Enabled", "Enabled"], "Enabled"),
    (["Enabled", "Enabling"], "Enabling"),      # in force once every replica applied it
    (["Creating", "Enabling", "Enabling"], "Creating"),
    (["Updating", "Enabling", "Enabled"], "Updating"),
    (["Deleting", "Enabled"], "Deleting"),
    (["Creating"], "Creating"),
    (["Disabled", "Disabled"], "Enabling"),     # enabled in the config; the change has not reached them
    ([], "Creating"),
])
def test_state_of_an_enabled_mapping(states: list[str], expected: str) -> None:
    view = merge({f"r{i}": report(s) for i, s in enumerate(states)})
    assert view["State"] == expected


@pytest.mark.parametrize(("states", "expected"), [
    (["Disabled", "Disabled"], "Disabled"),
    (["Disabled", "Disabling"], "Disabling"),
    (["Enabled", "Disabled"], "Disabling"),     # one replica has not stopped yet
    ([], "Disabled"),
])
def test_state_of_a_disabled_mapping(states: list[str], expected: str) -> None:
    view = merge({f"r{i}": report(s) for i, s in enumerate(states)}, enabled=False)
    assert view["State"] == expected


def test_the_output_has_mapping_status_keys_plus_replicas() -> None:
    view = merge({"r1": report()})
    assert set(view) == {"State", "StateTransitionReason", "LastProcessingResult", "LastModified", "Partitions",
                         "Stages", "Problem", "Invocations", "Records", "Errors", "Host", "Replicas"}
    assert view["Replicas"][0]["Host"] == "h"  # from the status when no heartbeat is given


def test_liveness_is_the_heartbeat_within_the_session_timeout() -> None:
    assert is_live(100.0, 109.9, 10.0)
    assert not is_live(100.0, 110.1, 10.0)
    assert is_live(105.0, 100.0, 10.0)          # a clock behind the broker's
    assert not is_live(None, 100.0, 10.0)
