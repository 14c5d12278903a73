"""The status board on the real broker: heartbeats, fleet views, liveness after SIGKILL, clean stops, cost."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from triggerfish.cluster.board import HEARTBEAT_S, StatusBoard, read_board
from triggerfish.cluster.config import ClusterConfig

pytestmark = pytest.mark.kafka

REPLICA = Path(__file__).with_name("cluster_replica.py")


def status(*partitions: int, state: str = "Enabled", result: str = "OK", hw: int = 20) -> dict[str, Any]:
    return {"State": state, "StateTransitionReason": "USER_INITIATED", "LastProcessingResult": result,
            "LastModified": time.time(), "Stages": [], "Problem": None, "Invocations": 1, "Records": 5, "Errors": 0,
            "Host": "h", "Partitions": [{"topic": "orders", "partition": p, "committed": 10, "high_watermark": hw,
                                         "assigned": True, "low_watermark": 0, "lag": hw - 10} for p in partitions]}


SUMMARY = {"FunctionName": "f", "Topics": ["orders"], "Origin": "api", "ConsumerGroupId": "g", "Enabled": True}


def eventually(probe: Callable[[], Any], timeout: float, step: float = 0.05) -> float:
    """Seconds until ``probe()`` is truthy; fails after ``timeout``."""
    started = time.monotonic()
    while not probe():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:g} s")
        time.sleep(step)
    return time.monotonic() - started


@pytest.fixture
def boards() -> Iterator[Callable[..., StatusBoard]]:
    started: list[StatusBoard] = []

    def start(cfg: ClusterConfig, api: str | None = None) -> StatusBoard:
        board = StatusBoard(cfg, api=api)
        board.start()
        started.append(board)
        return board

    yield start
    for board in started:
        board.stop()


def owners(view: dict[str, Any] | None) -> dict[int, str]:
    return {p["partition"]: p["owner"] for p in (view or {}).get("Partitions", [])}


def test_every_replica_sees_the_fleet_and_a_clean_stop_leaves_it_at_once(cluster, boards) -> None:
    a = boards(cluster("a"), api="http://a:9000")
    b = boards(cluster("b"))
    mapping = str(uuid.uuid4())
    a.publish(mapping, SUMMARY, status(0, 1))
    b.publish(mapping, SUMMARY, status(2, result="PROBLEM: Function call failed."))
    took = eventually(lambda: owners(b.fleet(mapping)) == {0: "a", 1: "a", 2: "b"}
                      and owners(a.fleet(mapping)) == owners(b.fleet(mapping)), HEARTBEAT_S + 2)
    print(f"\na new mapping's status is in every replica's fleet view after {took:.2f} s")
    assert took < HEARTBEAT_S  # a new mapping goes out at once, not with the next heartbeat
    view = a.fleet(mapping)
    assert view is not None
    assert view["LastProcessingResult"] == "PROBLEM: Function call failed."
    assert [(r["Id"], r["Partitions"]) for r in view["Replicas"]] == [("a", 2), ("b", 1)]
    assert a.mappings() == {mapping: SUMMARY}
    live = {r["id"]: r for r in b.replicas()}
    assert sorted(live) == ["a", "b"]
    assert live["a"]["api"] == "http://a:9000" and live["a"]["mappings"] == [mapping]
    assert 0 <= live["a"]["heartbeat"] < HEARTBEAT_S + 1
    assert a.problem() is None and b.problem() is None

    snapshot = read_board(cluster("cli"))
    assert [r["id"] for r in snapshot.replicas] == ["a", "b"]
    assert owners(snapshot.fleet(mapping)) == {0: "a", 1: "a", 2: "b"}
    assert snapshot.mappings() == {mapping: SUMMARY}

    a.stop()
    # at once, not after the session timeout (10 s): the bound leaves room for a loaded machine
    took = eventually(lambda: [r["id"] for r in b.replicas()] == ["b"] and owners(b.fleet(mapping)) == {2: "b"},
                      HEARTBEAT_S + 2)
    print(f"a cleanly stopped replica left every view after {took:.2f} s")


def test_forget_removes_only_that_mapping(cluster, boards) -> None:
    a = boards(cluster("a"))
    kept, dropped = str(uuid.uuid4()), str(uuid.uuid4())
    a.publish(kept, SUMMARY, status(0))
    a.publish(dropped, SUMMARY, status(1))
    eventually(lambda: a.fleet(kept) and a.fleet(dropped), HEARTBEAT_S + 2)
    a.forget(dropped)
    took = eventually(lambda: a.fleet(dropped) is None, HEARTBEAT_S + 2)  # a tombstone, not a timeout
    print(f"\na forgotten mapping left the fleet view after {took:.2f} s")
    assert owners(a.fleet(kept)) == {0: "a"}
    assert [r["mappings"] for r in a.replicas()] == [[kept]]


def test_a_sigkilled_replica_leaves_the_fleet_within_the_session_timeout(cluster, boards) -> None:
    timeout = 3.0
    watcher = boards(cluster("w", session_timeout_s=timeout))
    mapping = str(uuid.uuid4())
    child = subprocess.Popen([sys.executable, str(REPLICA), "board", watcher.cfg.name, "victim", str(timeout), mapping],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        eventually(lambda: owners(watcher.fleet(mapping)) == {0: "victim"}, HEARTBEAT_S + 3)
        assert "victim" in [r["id"] for r in watcher.replicas()]
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        killed = time.monotonic()
        gone = eventually(lambda: "victim" not in [r["id"] for r in watcher.replicas()], timeout + 1.0)
        assert watcher.fleet(mapping) is None and watcher.mappings() == {}
        print(f"\nSIGKILLed replica left replicas() and fleet() {gone:.2f} s after the kill "
              f"(session timeout {timeout:g} s, heartbeat every {HEARTBEAT_S:g} s)")
        assert time.monotonic() - killed >= timeout - HEARTBEAT_S - 0.5  # not dropped before its time
    finally:
        child.kill()
        child.wait(timeout=10)


def test_a_restart_under_the_same_id_drops_the_previous_runs_statuses(cluster, boards) -> None:
    first = StatusBoard(cluster("pod-0"))
    first.start()
    old = str(uuid.uuid4())
    first.publish(old, SUMMARY, status(0))
    eventually(lambda: first.fleet(old), HEARTBEAT_S + 2)
    first._stop.set()  # die without the clean stop's tombstones ...
    first._close_producer()
    first._reader.stop()
    watcher = boards(cluster("w"))
    assert watcher.fleet(old) is not None  # ... so its status is still there (and its heartbeat fresh)
    boards(cluster("pod-0"))  # the same pod, restarted
    eventually(lambda: watcher.fleet(old) is None, 2.0)


def test_stop_leaves_no_thread_behind(cluster) -> None:
    before = set(threading.enumerate())
    board = StatusBoard(cluster("a"))
    board.start()
    assert len(set(threading.enumerate()) - before) == 2  # the reader and the heartbeat
    board.stop()
    assert set(threading.enumerate()) == before
    assert board.problem() is not None


def test_a_replica_with_50_mappings_costs_little(cluster, boards) -> None:
    board = boards(cluster("a"))
    mappings = [str(uuid.uuid4()) for _ in range(50)]
    for m in mappings:
        board.publish(m, SUMMARY, status(0, 1, 2, 3))
    time.sleep(HEARTBEAT_S + 0.5)  # the first full publish

    def rate(window: float, churn: bool) -> float:
        sent, started = board.sent_bytes, time.monotonic()
        hw = 100
        while time.monotonic() - started < window:
            if churn:  # every mapping's lag moves every beat, as under load
                hw += 1
                for m in mappings:
                    board.publish(m, SUMMARY, status(0, 1, 2, 3, hw=hw))
            time.sleep(HEARTBEAT_S / 2)
        return (board.sent_bytes - sent) / (time.monotonic() - started)

    idle, busy = rate(6.0, churn=False), rate(6.0, churn=True)
    print(f"\nstatus board, 50 mappings: {idle:.0f} B/s idle (heartbeat only), {busy:.0f} B/s when every "
          f"status changes each beat (before lz4 compression)")
    assert idle < 1500   # the heartbeat with 50 uuids, nothing else
    assert busy < 50 * 1500 / HEARTBEAT_S
