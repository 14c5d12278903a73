"""The engine's side of a worker (``functions.pool``): requests over a pipe, replies over a socket whose
timeout is the invocation's deadline."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from esm_helpers import function_config, write_handler
from triggerfish.functions.runtime import FunctionRuntime

HANDLERS = """
import os, time

def sleepy(event, context):
    time.sleep(event.get("sleep", 5))
    return "woke"

def policy(event, context):
    return os.sched_getscheduler(0) == os.SCHED_BATCH

def big(event, context):
    return "y" * event["n"]

def orphan_then_exit(event, context):
    # A child that outlives the worker keeps the worker's end of the reply socket open: no end of file
    # tells the engine the worker died, so only the deadline ends the wait.
    child = os.fork()
    if child == 0:
        time.sleep(60)
        os._exit(0)
    with open(event["pidfile"], "w") as f:
        f.write(str(child))
    os._exit(3)
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    return write_handler(tmp_path, "h", HANDLERS)


@pytest.fixture
def runtime() -> Iterator[FunctionRuntime]:
    rt = FunctionRuntime()
    yield rt
    rt.close()


def test_a_deadline_shorter_than_the_init_wait_still_ends_the_invocation(runtime: FunctionRuntime, code: Path) -> None:
    # wait_init waits up to a minute on the same socket: the next invocation's shorter deadline must replace it
    runtime.add(function_config(code, "h.sleepy", name="sleepy", Timeout=1))
    assert runtime.wait_init("sleepy", timeout=60).error is None
    started = time.monotonic()
    result = runtime.invoke("sleepy", {"sleep": 30})
    assert time.monotonic() - started < 10
    assert result.error_type == "Sandbox.Timedout"
    assert runtime.invoke("sleepy", {"sleep": 0}).result() == "woke"


def test_a_reply_many_times_the_socket_buffer_arrives_whole(runtime: FunctionRuntime, code: Path) -> None:
    runtime.add(function_config(code, "h.big", name="big", Timeout=30))
    for n in (5 << 20, 10, 3 << 20):  # big, then small on the same worker, then big again
        result = runtime.invoke("big", {"n": n})
        assert result.ok and result.result() == "y" * n


def test_a_worker_dead_while_its_child_holds_the_socket_ends_at_the_deadline(
        runtime: FunctionRuntime, code: Path, tmp_path: Path) -> None:
    runtime.add(function_config(code, "h.orphan_then_exit", name="orphan", Timeout=2))
    pidfile = tmp_path / "child.pid"
    try:
        started = time.monotonic()
        result = runtime.invoke("orphan", {"pidfile": str(pidfile)})
        assert time.monotonic() - started < 15
        assert result.error_type == "Sandbox.Timedout"
    finally:
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")
def test_workers_run_as_batch_processes(runtime: FunctionRuntime, code: Path) -> None:
    # so that a request does not preempt the engine thread that sent it
    runtime.add(function_config(code, "h.policy", name="policy"))
    assert runtime.invoke("policy", {}).result() is True
