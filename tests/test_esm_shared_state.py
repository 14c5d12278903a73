"""Several processes on one state file: a mapping's identity (UUID, hence consumer group) survives config
drift between them, `triggerfish status` lists every live process, and stopping one leaves the others
shown as running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from esm_helpers import (
    RECORDER,
    RunProcess,
    delivered,
    function_dict,
    mapping_dict,
    produce,
    wait_until,
    write_config,
    write_handler,
)
from triggerfish.esm.config import MappingConfig
from triggerfish.esm.engine import Engine
from triggerfish.esm.presence import Presence, is_live, live_processes
from triggerfish.esm.store import Store
from triggerfish.functions.runtime import FunctionRuntime
from triggerfish.localkafka import KafkaEnv

N = 400


def _status(state: Path) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "triggerfish", "status", "--state", str(state), "--json"],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def _table(state: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "triggerfish", "status", "--state", str(state)],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "250"})
    return result.stdout


def _by_topic(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["Topics"][0]: m for m in doc["EventSourceMappings"]}


@pytest.mark.kafka
def test_config_drift_between_processes_never_remints_a_group(kafka: KafkaEnv, make_topic, tmp_path: Path) -> None:
    orders, audit = make_topic(), make_topic()
    produce(kafka.bootstrap, orders, [f"o{i}".encode() for i in range(N)])
    code = write_handler(tmp_path, "rec", RECORDER)
    out_a, out_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    state = tmp_path / "shared" / "state.db"
    # Process A runs `orders`; process B's config (drifted) has only `audit`.
    config_a = write_config(tmp_path / "a.yaml", [function_dict(code, Environment={"Variables": {"OUT": str(out_a)}})],
                            [mapping_dict(orders, kafka.bootstrap, BatchSize=100)])
    config_b = write_config(tmp_path / "b.yaml", [function_dict(code, Environment={"Variables": {"OUT": str(out_b)}})],
                            [mapping_dict(audit, kafka.bootstrap)])
    a = RunProcess(config_a, tmp_path / "a.log", "--state", str(state))
    b = a2 = None
    try:
        wait_until(lambda: len(delivered(out_a)) >= N, timeout=60, message="A delivered every record")
        wait_until(lambda: _by_topic(_status(state))[orders]["Partitions"][0]["CommittedOffset"] == N, timeout=30)
        uuid = _by_topic(_status(state))[orders]["UUID"]

        b = RunProcess(config_b, tmp_path / "b.log", "--state", str(state))
        b.wait_log("is also used by another live engine", timeout=60)
        assert f"pid {a.proc.pid}" in b.log()
        wait_until(lambda: len(_status(state)["Engines"]) == 2, timeout=30, message="both processes listed")
        doc = _status(state)
        assert {e["Pid"] for e in doc["Engines"]} == {a.proc.pid, b.proc.pid}
        assert all(e["Host"] and e["Started"] for e in doc["Engines"])
        mappings = _by_topic(doc)
        assert mappings[orders]["RunBy"] and mappings[orders]["RunBy"][0].endswith(f":{a.proc.pid}")
        wait_until(lambda: _by_topic(_status(state))[audit]["State"] == "Enabled", timeout=30)
        table = _table(state)
        assert "in use by 2 live engine processes" in table and str(a.proc.pid) in table and str(b.proc.pid) in table

        assert a.terminate() == 0
        doc = _status(state)
        assert doc["Engine"]["Running"] is True, "B still runs"
        assert [e["Pid"] for e in doc["Engines"]] == [b.proc.pid]
        mappings = _by_topic(doc)
        assert mappings[audit]["State"] == "Enabled"
        assert mappings[orders]["State"] == "Stopped" and mappings[orders]["RunBy"] == []
        assert "engine not running" not in _table(state)

        # A starts again after B (with its drifted config) started: same UUID, same group, no redelivery.
        a2 = RunProcess(config_a, tmp_path / "a2.log", "--state", str(state))
        wait_until(lambda: _by_topic(_status(state))[orders].get("RunBy"), timeout=60, message="A runs again")
        assert _by_topic(_status(state))[orders]["UUID"] == uuid
        produce(kafka.bootstrap, orders, [b"fresh"])
        wait_until(lambda: len(delivered(out_a)) >= N + 1, timeout=60, message="the new record")
        time.sleep(2)
        redelivered = len(delivered(out_a)) - N - 1
        print(f"\nredelivered after config drift: {redelivered} of {N}")
        assert redelivered == 0
    finally:
        for proc in (a, b, a2):
            if proc is not None and proc.proc.poll() is None:
                proc.terminate()


def test_engine_load_keeps_config_rows_it_does_not_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    try:
        body = {"FunctionName": "f", "Topics": ["orders"], "StartingPosition": "TRIM_HORIZON",
                "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:1"]}}}
        first = Engine(FunctionRuntime([]), store).load([MappingConfig.from_dict(body)])[0].uuid
        Engine(FunctionRuntime([]), store).load([])  # another process, whose config lacks the mapping
        assert [r["uuid"] for r in store.mappings()] == [first]
        again = Engine(FunctionRuntime([]), store).load([MappingConfig.from_dict(body)])[0].uuid
        assert again == first
    finally:
        store.close()


def test_presence_lists_live_processes_and_forgets_dead_ones(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        store.put_process("ghost", Presence(store).host, dead.pid, time.time(), {"mappings": []})
        store.put_process("elsewhere", "other-host", 1, time.time() - 60, {"mappings": []})
        store.beat("elsewhere", {"mappings": ["m"]})  # a fresh heartbeat from another host: live
        assert {p["id"] for p in live_processes(store)} == {"elsewhere"}
        me = Presence(store)
        assert [p["id"] for p in me.join(config="x.yaml", api=None, mappings=lambda: ["u"])] == ["elsewhere"]
        rows = {p["id"]: p for p in store.processes()}
        assert "ghost" not in rows, "a dead pid on this host is forgotten"
        assert rows[me.id]["mappings"] == ["u"] and rows[me.id]["config"] == "x.yaml"
        assert not is_live({**rows["elsewhere"], "heartbeat": time.time() - 60})
        me.leave()
        assert me.id not in {p["id"] for p in store.processes()}
    finally:
        store.close()
