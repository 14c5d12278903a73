"""Limits in the function runtime: the per-invocation output cap, and MemorySize enforced as Lambda does."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from esm_helpers import function_config, write_handler
from triggerfish.functions.capture import LOG_LIMIT, OutputCapture
from triggerfish.functions.memory import WorkerCgroup, cgroup_parent, find_cgroup_parent
from triggerfish.functions.runtime import FunctionRuntime

HANDLERS = """
import json, os, struct, subprocess, sys, time

MB = 1 << 20

def one_big_write(event, context):
    sys.stdout.write("x" * (event["mb"] * MB))
    return "done"

def many_writes(event, context):
    for _ in range(event["count"]):
        print("y" * 1000)
    return "done"

def big_binary_write(event, context):
    sys.stdout.buffer.write(b"z" * (event["mb"] * MB))
    sys.stderr.buffer.write("é".encode() * 10)
    return "done"

def fd_write(event, context):
    os.write(1, b"fd-%d\\n" % event["n"])
    time.sleep(0.05)
    data = memoryview(b"w" * (event["mb"] * MB))
    while data:
        data = data[os.write(2, data):]
    subprocess.run(["echo", "from a child"], check=True)
    return "done"

def forged_reply(event, context):
    # A header of 1 GB announced on the reply pipe: the engine must not wait for (or buffer) it.
    os.write(json.loads(sys.argv[1])["reply_fd"], struct.pack(">II", 1 << 30, 0) + b"{" * 65536)
    time.sleep(30)

def allocate(event, context):
    block = bytearray(event["mb"] * MB)  # zero-filled: every page is touched
    return {"pid": os.getpid(), "len": len(block)}
"""

_MB = 1 << 20


@pytest.fixture
def code(tmp_path: Path) -> Path:
    return write_handler(tmp_path, "h", HANDLERS)


@pytest.fixture
def runtime():
    rt = FunctionRuntime()
    yield rt
    rt.close()


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def _reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pytest.skip("cannot reset the peak RSS here (/proc/self/clear_refs)")


def _report(result) -> str:
    line = result.logs.splitlines()[-1]
    assert line.startswith(f"REPORT RequestId: {result.request_id}\tDuration: "), line
    return line


def test_one_200mb_write_is_capped_in_the_worker_and_the_engine(runtime, code):
    runtime.add(function_config(code, "h.one_big_write", name="big", MemorySize=1024, Timeout=60))
    sunk: list[str] = []
    runtime.log_sink = lambda fn, rid, text: sunk.append(text)
    runtime.warm("big")
    _reset_peak_rss()
    before = _status_kb("VmHWM")
    result = runtime.invoke("big", {"mb": 200})
    growth_mb = (_status_kb("VmHWM") - before) / 1024
    assert result.ok and result.result() == "done"
    _report(result)
    output = sum(len(text) for text in sunk)
    assert LOG_LIMIT <= output <= LOG_LIMIT + 200
    assert len(result.logs) <= LOG_LIMIT + 600
    assert "x" * 1000 in result.logs
    assert f"output truncated: {200 * _MB - LOG_LIMIT} more characters past the {LOG_LIMIT}-character limit" in result.logs
    assert growth_mb < 20, f"the engine's peak RSS grew {growth_mb:.0f} MB"


def test_cap_applies_to_many_writes_and_binary_writes(runtime, code):
    runtime.add(function_config(code, "h.many_writes", name="many"))
    runtime.add(function_config(code, "h.big_binary_write", name="binary", MemorySize=256))
    many = runtime.invoke("many", {"count": 1000})
    assert many.ok and len(many.logs) <= LOG_LIMIT + 600
    assert f"output truncated: {1000 * 1001 - LOG_LIMIT} more characters" in many.logs
    small = runtime.invoke("binary", {"mb": 0})
    assert small.ok and "é" * 10 in small.logs and "truncated" not in small.logs
    binary = runtime.invoke("binary", {"mb": 20})
    assert binary.ok and len(binary.logs) <= LOG_LIMIT + 600 and "z" * 1000 in binary.logs
    # the next invocation of the same worker starts with an empty, uncapped log
    assert "truncated" not in runtime.invoke("binary", {"mb": 0}).logs


def test_cap_applies_to_file_descriptors_and_child_processes(runtime, code, capfd):
    runtime.add(function_config(code, "h.fd_write", name="fd", MemorySize=1024, Timeout=60))
    first = runtime.invoke("fd", {"n": 1, "mb": 0})
    assert first.ok and "fd-1\n" in first.logs and "from a child\n" in first.logs
    runtime.warm("fd")
    _reset_peak_rss()
    before = _status_kb("VmHWM")
    big = runtime.invoke("fd", {"n": 2, "mb": 200})
    assert big.ok and "fd-2\n" in big.logs and "fd-1" not in big.logs
    assert len(big.logs) <= LOG_LIMIT + 600 and "output truncated" in big.logs
    assert (_status_kb("VmHWM") - before) / 1024 < 20
    after = runtime.invoke("fd", {"n": 3, "mb": 0})
    assert "fd-3\n" in after.logs and "truncated" not in after.logs and "w" * 100 not in after.logs
    out, err = capfd.readouterr()
    assert "fd-" not in out + err and len(err) < 10000, "nothing reaches the engine's own descriptors"


def test_engine_refuses_a_reply_header_past_the_cap(runtime, code):
    runtime.add(function_config(code, "h.forged_reply", name="forged", Timeout=20))
    started = time.monotonic()
    result = runtime.invoke("forged", {})
    assert result.function_error == "Unhandled" and result.error_type == "Runtime.ExitError"
    assert time.monotonic() - started < 10


def test_capture_keeps_exactly_the_cap():
    capture = OutputCapture(limit=10)
    assert capture.write("abcdef") == 6 and capture.write("ghijkl") == 6
    capture.buffer.write("ü".encode() * 4)
    text = capture.take()
    assert text.startswith("abcdefghij\n") and "2 more characters" not in text and "10 more characters" in text
    capture.buffer.write("ü".encode())
    assert capture.take() == "ü"


def test_memory_size_is_enforced_like_lambda(runtime, code):
    # The engine's peak passes 300 MB first: Linux hands it on to processes it spawns (ru_maxrss), and the
    # REPORT line must show the worker's own peak, not the engine's.
    touched = b"\x01" * (300 * _MB)
    del touched
    runtime.add(function_config(code, "h.allocate", name="alloc", MemorySize=128, Timeout=60))
    fine = runtime.invoke("alloc", {"mb": 50})
    assert fine.ok and fine.result()["len"] == 50 * _MB
    first_pid = fine.result()["pid"]
    used = int(re.search(r"Max Memory Used: (\d+) MB", _report(fine)).group(1))
    assert 50 <= used <= 128

    oom = runtime.invoke("alloc", {"mb": 2048})
    assert oom.function_error == "Unhandled"
    assert oom.error == {"errorType": "Runtime.OutOfMemory",
                         "errorMessage": f"RequestId: {oom.request_id} Error: Runtime exited with error: signal: killed"}
    assert f"RequestId: {oom.request_id} Error: Runtime exited with error: signal: killed\nRuntime.OutOfMemory\n" in oom.logs
    report = _report(oom)
    assert "Memory Size: 128 MB" in report and "Max Memory Used: " in report

    again = runtime.invoke("alloc", {"mb": 50})
    assert again.ok and again.result()["pid"] != first_pid, "the worker that ran out of memory was replaced"


def test_the_reported_peak_follows_a_later_invocations_growth(runtime, code):
    # With the engine's larger peak handed on, the worker reads its own VmHWM, but only after page faults:
    # an invocation that grows must show its new peak, not the one cached from the invocation before.
    touched = b"\x01" * (300 * _MB)
    del touched
    runtime.add(function_config(code, "h.allocate", name="grow", MemorySize=256, Timeout=60))
    runtime.invoke("grow", {"mb": 1})
    small = runtime.invoke("grow", {"mb": 1})
    grown = runtime.invoke("grow", {"mb": 120})
    assert small.result()["pid"] == grown.result()["pid"]

    def used(result) -> int:
        return int(re.search(r"Max Memory Used: (\d+) MB", _report(result)).group(1))

    assert used(grown) >= used(small) + 100


def test_memory_error_in_a_handlers_import_is_lambdas_oom(runtime, tmp_path):
    code = write_handler(tmp_path, "greedy", "hog = bytearray(1 << 31)\n\ndef handler(event, context):\n    return 1\n")
    runtime.add(function_config(code, "greedy.handler", name="greedy", MemorySize=128))
    if cgroup_parent() is None:  # under RLIMIT_DATA the import raises MemoryError
        result = runtime.invoke("greedy", {})
        assert result.error_type == "Runtime.OutOfMemory"
        assert json.loads(result.payload)["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    else:  # under a cgroup the kernel kills the worker while importing
        assert runtime.invoke("greedy", {}).error_type == "Runtime.OutOfMemory"


def _fake_cgroup_fs(tmp_path: Path, controllers: str, subtree: str) -> tuple[Path, Path, Path]:
    mount = tmp_path / "cg"
    base = mount / "svc"
    base.mkdir(parents=True)
    (base / "cgroup.controllers").write_text(controllers + "\n")
    (base / "cgroup.subtree_control").write_text(subtree + "\n")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(f"22 1 0:20 / /sys rw - sysfs sysfs rw\n30 22 0:26 / {mount} rw,relatime - cgroup2 cgroup2 rw\n")
    proc_cgroup = tmp_path / "cgroup"
    proc_cgroup.write_text("0::/svc\n")
    return mountinfo, proc_cgroup, base


def test_cgroup_v2_detection_and_worker_cgroup(tmp_path, monkeypatch):
    # No memory controller (the v1 hierarchy holds it, as on hybrid hosts): fall back.
    mountinfo, proc_cgroup, base = _fake_cgroup_fs(tmp_path / "a", "cpu hugetlb", "")
    assert find_cgroup_parent(mountinfo, proc_cgroup) is None
    # No cgroup2 mount at all.
    (tmp_path / "plain").write_text("22 1 0:20 / /sys rw - sysfs sysfs rw\n")
    assert find_cgroup_parent(tmp_path / "plain", proc_cgroup) is None
    # Delegated: the memory controller is available; the probe child must offer memory.max, which a plain
    # directory does not, so a non-cgroup filesystem is refused too.
    mountinfo, proc_cgroup, base = _fake_cgroup_fs(tmp_path / "b", "cpu memory", "memory")
    assert find_cgroup_parent(mountinfo, proc_cgroup) is None
    assert not list(base.glob("triggerfish-probe-*")), "the probe cgroup is removed"

    worker = WorkerCgroup(base, 128)
    assert (worker.path / "memory.max").read_text() == str(128 * _MB)
    assert (worker.path / "memory.swap.max").read_text() == "0"
    assert not worker.oom_killed() and worker.peak_mb() is None
    (worker.path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (worker.path / "memory.peak").write_text(str(130 * _MB))
    assert worker.oom_killed() and worker.peak_mb() == 130
    for f in worker.path.iterdir():  # a real cgroup's files vanish with it
        f.unlink()
    worker.remove()
    assert not worker.path.exists()

