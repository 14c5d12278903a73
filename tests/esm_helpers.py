"""Helpers for tests of the ESM engine (and anyone building on it): handler files, configs, producing,
reading what handlers saw, waiting, committed offsets, and ``RunningEngine`` / ``RunProcess``.

    code = write_handler(tmp_path, "rec", RECORDER)                   # records every event it gets
    fn = function_config(code, "rec.handler", Environment={"Variables": {"OUT": str(out)}})
    with RunningEngine([fn], [mapping_config(topic, kafka.bootstrap, BatchSize=10)], tmp_path) as eng:
        produce(kafka.bootstrap, topic, [b"a", b"b"])
        wait_until(lambda: len(delivered(out)) == 2)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from base64 import b64decode
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Consumer, Producer, TopicPartition

from triggerfish import App, FunctionConfig, MappingConfig

#: A handler that appends {"pid", "ppid", "t", "event"} per invocation to $OUT as one whole line
#: (O_APPEND, one write; a short write is finished before returning); ``ppid`` is the engine process
#: (``pid`` is its worker). Readers parse complete lines only (``read_invocations``).
RECORDER = """
import json, os, time

def handler(event, context):
    line = (json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "t": time.time(), "event": event}) + "\\n").encode()
    fd = os.open(os.environ["OUT"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    delay = float(os.environ.get("DELAY", "0"))
    if delay:
        time.sleep(delay)
    return {"ok": True}
"""


def write_handler(directory: Path, module: str, source: str) -> Path:
    """Write ``module.py`` into ``directory/code`` and return the code directory."""
    code = directory / "code"
    code.mkdir(parents=True, exist_ok=True)
    (code / f"{module}.py").write_text(textwrap.dedent(source))
    return code


def function_dict(code: Path, handler: str = "rec.handler", name: str = "f", **fields: Any) -> dict[str, Any]:
    return {"FunctionName": name, "CodeUri": str(code), "Handler": handler, **fields}


def function_config(code: Path, handler: str = "rec.handler", name: str = "f", **fields: Any) -> FunctionConfig:
    return FunctionConfig.from_dict(function_dict(code, handler, name, **fields))


def mapping_dict(topic: str, bootstrap: str, function: str = "f", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "FunctionName": function,
        "Topics": [topic],
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}},
        "StartingPosition": "TRIM_HORIZON",
        "MaximumBatchingWindowInSeconds": 0,
    }
    base.update(fields)
    return base


def mapping_config(topic: str, bootstrap: str, function: str = "f", **fields: Any) -> MappingConfig:
    return MappingConfig.from_dict(mapping_dict(topic, bootstrap, function, **fields))


def produce(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes | None],
    *,
    keys: Iterable[bytes | None] | None = None,
    partition: int | None = None,
    headers: Sequence[tuple[str, bytes | None]] | None = None,
    timestamp_ms: int | None = None,
) -> int:
    """Produce and flush; returns how many were produced."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "message.max.bytes": 2_000_000})
    values = list(values)
    key_list = list(keys) if keys is not None else [None] * len(values)
    for value, key in zip(values, key_list, strict=False):
        kwargs: dict[str, Any] = {"value": value, "key": key}
        if partition is not None:
            kwargs["partition"] = partition
        if headers is not None:
            kwargs["headers"] = list(headers)
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} records not delivered"
    return len(values)


def read_invocations(out: Path) -> list[dict[str, Any]]:
    """Every complete line the RECORDER handler wrote: {"pid", "t", "event"}.

    A handler may be appending while this reads (a 6 MB line is copied in pieces): only bytes up to
    the last newline are parsed, as bytes, so a half-written line is never decoded nor parsed.
    """
    try:
        data = out.read_bytes()
    except FileNotFoundError:
        return []
    complete = data[: data.rfind(b"\n") + 1]
    return [json.loads(line) for line in complete.split(b"\n") if line.strip()]


def delivered(out: Path) -> list[tuple[int, int, bytes | None]]:
    """(partition, offset, value) of every delivered record, in delivery order."""
    rows = []
    for inv in read_invocations(out):
        for records in inv["event"]["records"].values():
            for r in records:
                value = None if r.get("value") is None else b64decode(r["value"])
                rows.append((r["partition"], r["offset"], value))
    return rows


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message or predicate}")
        time.sleep(interval)


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets per partition, read from the broker (-1001 when none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in tps}


class RunningEngine:
    """An in-process ``triggerfish.App`` without the control API (its own runtime and state file),
    stopped on exit; ``engine``, ``runtime`` and ``store`` are the App's."""

    def __init__(self, functions: Sequence[FunctionConfig], mappings: Sequence[MappingConfig], state_dir: Path) -> None:
        self.app = App(functions, mappings, state=state_dir / "state.db", api=False).start()
        self.runtime = self.app.runtime
        self.store = self.app.store
        self.engine = self.app.engine
        self.views = self.engine.list()

    @property
    def uuids(self) -> list[str]:
        return [v.uuid for v in self.views]

    def status(self, uuid: str | None = None) -> dict[str, Any]:
        return self.engine.get(uuid or self.uuids[0]).status.to_dict()

    def stop(self) -> None:
        self.app.stop()

    def __enter__(self) -> RunningEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_config(path: Path, functions: Sequence[dict[str, Any]], mappings: Sequence[dict[str, Any]], **top: Any) -> Path:
    """Write a triggerfish.yaml."""
    doc = {"Functions": list(functions), "EventSourceMappings": list(mappings), **top}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


class RunProcess:
    """``triggerfish run`` as a subprocess; output goes to a log file for ``wait_log``."""

    def __init__(self, config: Path, log: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.log_path = log
        self._log = open(log, "ab")
        cmd = [sys.executable, "-m", "triggerfish", "run", "--config", str(config), "--no-api", *extra]
        full_env = {**os.environ, "COLUMNS": "250", **(env or {})}
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=full_env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = 30.0, count: int = 1) -> None:
        wait_until(lambda: self.log().count(text) >= count or self.proc.poll() is not None, timeout,
                   message=f"{text!r} in {self.log_path}")
        assert self.log().count(text) >= count, f"process exited ({self.proc.returncode}):\n{self.log()[-3000:]}"

    def terminate(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()

    def wait(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()
