"""``triggerfish run`` / ``status`` / ``invoke`` as subprocesses: graceful SIGTERM, SIGKILL mid-stream
then restart without loss, two processes sharing one group, bad config rejected before Kafka."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from esm_helpers import (
    RECORDER,
    RunProcess,
    committed_offsets,
    delivered,
    function_dict,
    mapping_dict,
    produce,
    read_invocations,
    wait_until,
    write_config,
    write_handler,
)

pytestmark = pytest.mark.kafka


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "triggerfish", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env={**os.environ, "COLUMNS": "250"})


def _project(tmp_path: Path, topic: str, bootstrap: str, *, delay: float = 0.0, **mapping) -> tuple[Path, Path]:
    code = write_handler(tmp_path, "rec", RECORDER)
    out = tmp_path / "out.jsonl"
    config = write_config(
        tmp_path / "triggerfish.yaml",
        [function_dict(code, Environment={"Variables": {"OUT": str(out), "DELAY": str(delay)}})],
        [mapping_dict(topic, bootstrap, **mapping)],
    )
    return config, out


def _uuid(config: Path) -> str:
    doc = json.loads(_cli("status", "--config", str(config), "--json").stdout)
    return doc["EventSourceMappings"][0]["UUID"]


def test_sigterm_finishes_in_flight_commits_and_exits_0(kafka, make_topic, tmp_path):
    topic = make_topic()
    config, out = _project(tmp_path, topic, kafka.bootstrap, delay=1.5, BatchSize=10)
    run = RunProcess(config, tmp_path / "run.log")
    try:
        run.wait_log("assigned")
        produce(kafka.bootstrap, topic, [str(i).encode() for i in range(10)])
        wait_until(lambda: read_invocations(out), message="the batch is in flight")  # handler now sleeps 1.5 s
        code = run.terminate()
    finally:
        if run.proc.poll() is None:
            run.kill()
    assert code == 0, run.log()[-2000:]
    assert "stopped cleanly" in run.log()
    # the in-flight batch finished and was committed before the group was left
    assert committed_offsets(kafka.bootstrap, _uuid(config), topic, 1)[0] == 10
    assert "Traceback" not in run.log()


def test_sigkill_mid_stream_then_restart_loses_nothing(kafka, make_topic, tmp_path):
    topic = make_topic(partitions=2)
    config, out = _project(tmp_path, topic, kafka.bootstrap, delay=0.05, BatchSize=20)
    values = [str(i).encode() for i in range(1500)]
    produce(kafka.bootstrap, topic, values, keys=[str(i % 5).encode() for i in range(1500)])
    run = RunProcess(config, tmp_path / "run1.log")
    wait_until(lambda: len(delivered(out)) >= 300, timeout=60, message="some records processed")
    run.kill()  # SIGKILL: no chance to commit or leave the group
    processed_before = len(delivered(out))
    assert processed_before < 1500, "killed too late to test anything"
    run = RunProcess(config, tmp_path / "run2.log")
    try:
        wait_until(lambda: {v for _, _, v in delivered(out)} >= set(values), timeout=90, message="every record")
        assert run.terminate() == 0
    finally:
        if run.proc.poll() is None:
            run.kill()
    rows = delivered(out)
    assert {v for _, _, v in rows} == set(values)
    # at-least-once: redelivery only of what was in flight / uncommitted at the kill
    assert len(rows) - len(values) < 300
    offsets = committed_offsets(kafka.bootstrap, _uuid(config), topic, 2)
    assert sum(offsets.values()) == 1500


def test_two_processes_share_the_group_and_deliver_everything(kafka, make_topic, tmp_path):
    topic = make_topic(partitions=4)
    config, out = _project(tmp_path, topic, kafka.bootstrap, BatchSize=10)
    first = RunProcess(config, tmp_path / "a.log")
    second = None
    try:
        first.wait_log("assigned")
        second = RunProcess(config, tmp_path / "b.log")
        second.wait_log("assigned")
        first.wait_log("assigned", count=2)  # the first instance rejoined with its share
        values = [str(i).encode() for i in range(400)]
        produce(kafka.bootstrap, topic, values, keys=[str(i).encode() for i in range(400)])
        wait_until(lambda: {v for _, _, v in delivered(out)} >= set(values), timeout=60)
        assert first.terminate() == 0
        assert second.terminate() == 0
    finally:
        for run in (first, second):
            if run is not None and run.proc.poll() is None:
                run.kill()
    pids = {inv["ppid"] for inv in read_invocations(out)}
    assert pids == {first.proc.pid, second.proc.pid}
    by_process = {}
    for inv in read_invocations(out):
        by_process.setdefault(inv["ppid"], set()).update(inv["event"]["records"])
    assert len(pids) >= 2, "both processes invoked their handler"
    owners = [keys for keys in by_process.values()]
    # each partition was handled by one process only (no rebalance happened after producing)
    assert sum(len(k) for k in owners) == len(set().union(*owners)) == 4


def test_bad_config_exits_1_with_one_line_before_touching_kafka(tmp_path):
    code = write_handler(tmp_path, "rec", RECORDER)
    config = write_config(
        tmp_path / "triggerfish.yaml", [function_dict(code)],
        # a port where nothing listens: validation must fail before any connection attempt
        [mapping_dict("orders", "127.0.0.1:1", BatchSize=20000)],
    )
    result = _cli("run", "--config", str(config), "--no-api")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "EventSourceMappings[0].BatchSize" in lines[0]
    assert "20000" in lines[0] and "1..10000" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / ".triggerfish").exists(), "nothing was started"


def test_status_shows_state_result_offsets_and_lag(kafka, make_topic, tmp_path):
    topic = make_topic(partitions=2)
    config, out = _project(tmp_path, topic, kafka.bootstrap)
    produce(kafka.bootstrap, topic, [b"a", b"b", b"c"], partition=1)
    run = RunProcess(config, tmp_path / "run.log")
    try:
        run.wait_log("OK in")

        def settled():
            doc = json.loads(_cli("status", "--config", str(config), "--json").stdout)
            parts = {p["Partition"]: p for p in doc["EventSourceMappings"][0]["Partitions"]}
            return doc if parts.get(f"{topic}-1", {}).get("CommittedOffset") == 3 else None

        doc = wait_until(settled, timeout=20)
        table = _cli("status", "--config", str(config)).stdout
    finally:
        run.terminate()
    mapping = doc["EventSourceMappings"][0]
    assert doc["Engine"]["Running"] is True
    assert mapping["State"] == "Enabled"
    assert mapping["StateTransitionReason"] == "USER_INITIATED"
    assert mapping["LastProcessingResult"] == "OK"
    assert mapping["ConsumerGroupId"] == mapping["UUID"]
    part = {p["Partition"]: p for p in mapping["Partitions"]}[f"{topic}-1"]
    assert part == {**part, "CommittedOffset": 3, "EndOffset": 3, "Lag": 0}
    for column in ("State", "StateTransitionReason", "LastProcessingResult", "Committed", "Lag"):
        assert column in table
    assert f"{topic}-1" in table and "Enabled" in table


def test_invoke_prints_result_and_fails_on_error(tmp_path):
    code = write_handler(tmp_path, "app", """
        import os
        def ok(event, context):
            return {"got": event["n"] * 2, "fn": context.function_name, "env": os.environ["GREETING"]}
        def bad(event, context):
            raise KeyError("missing")
    """)
    config = write_config(tmp_path / "triggerfish.yaml", [
        function_dict(code, "app.ok", name="ok", Environment={"Variables": {"GREETING": "hi"}}),
        function_dict(code, "app.bad", name="bad"),
    ], [])
    event = tmp_path / "event.json"
    event.write_text('{"n": 21}')
    result = _cli("invoke", "ok", "--event", str(event), "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"got": 42, "fn": "ok", "env": "hi"}
    assert "REPORT RequestId:" in result.stderr
    result = _cli("invoke", "bad", "--event", str(event), "--config", str(config))
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    assert payload["errorType"] == "KeyError" and payload["errorMessage"] == "'missing'"
    assert any("raise KeyError" in line for line in payload["stackTrace"])
    result = _cli("invoke", "nope", "--event", str(event), "--config", str(config))
    assert result.returncode == 1 and "Function not found: nope" in result.stderr
