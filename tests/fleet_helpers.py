"""Helpers for fleet tests: replicas of one cluster as real ``triggerfish run`` processes, each with its
control API on its own port, started, killed and restarted by the test.

    fleet = Fleet(config, tmp_path, cluster="c-1234", bootstrap=kafka.bootstrap)
    fleet.start(3)                      # r1, r2, r3; returns when every /readyz answers 200
    fleet.client(1).create_event_source_mapping(...)
    fleet.kill(2); fleet.restart(2); fleet.terminate(3)
    fleet.stop()
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config
from confluent_kafka import Producer

from esm_helpers import read_invocations, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def plain_client(url: str) -> Any:
    """A boto3 Lambda client as a user has it (no shape hook: fleet responses carry TriggerfishFleet)."""
    return boto3.client("lambda", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x",
                        aws_secret_access_key="y",
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=30))


class ReplicaProcess:
    """One ``triggerfish run --cluster`` process."""

    def __init__(self, name: str, config: Path, log: Path, cluster: str, bootstrap: str,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "ab")
        cmd = [sys.executable, "-m", "triggerfish", "run", "--config", str(config), "--port", str(self.port),
               "--cluster", cluster, "--cluster-bootstrap", bootstrap, "--replica-id", name]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "COLUMNS": "250", **(env or {})})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        wait_until(lambda: self.ready() or self.proc.poll() is not None, timeout, message=f"{self.name} ready")
        assert self.proc.poll() is None, f"{self.name} exited ({self.proc.returncode}):\n{self.log()[-3000:]}"

    def terminate(self, timeout: float = 90.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()


class Fleet:
    """Replicas r1..rN of one cluster, all running the same config file."""

    def __init__(self, config: Path, directory: Path, *, cluster: str, bootstrap: str) -> None:
        self.config = config
        self.directory = directory
        self.cluster = cluster
        self.bootstrap = bootstrap
        self.replicas: dict[int, ReplicaProcess] = {}

    def launch(self, i: int) -> ReplicaProcess:
        replica = ReplicaProcess(f"r{i}", self.config, self.directory / f"r{i}.log", self.cluster, self.bootstrap)
        self.replicas[i] = replica
        return replica

    def start(self, n: int, timeout: float = 90.0) -> None:
        for i in range(1, n + 1):
            self.launch(i)
        for replica in self.replicas.values():
            replica.wait_ready(timeout)

    def restart(self, i: int, timeout: float = 90.0) -> None:
        """Replica ``i`` again: stopped first if it still runs (never two processes under one id, none left behind)."""
        old = self.replicas.get(i)
        if old is not None and old.proc.poll() is None:
            old.terminate()
        self.launch(i).wait_ready(timeout)

    def client(self, i: int) -> Any:
        return plain_client(self.replicas[i].url)

    def get(self, i: int, uuid: str) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.replicas[i].url}/2015-03-31/event-source-mappings/{uuid}",
                                         timeout=10).json()
        return body

    def kill(self, i: int) -> None:
        self.replicas[i].kill()

    def terminate(self, i: int) -> int:
        return self.replicas[i].terminate()

    def stop(self) -> None:
        for replica in self.replicas.values():
            if replica.proc.poll() is None:
                replica.proc.send_signal(signal.SIGTERM)
        for replica in self.replicas.values():
            try:
                replica.proc.wait(90)
            except subprocess.TimeoutExpired:
                replica.kill()


def produce_at_rate(bootstrap: str, topic: str, rate: int, stop: threading.Event, sent: list[int]) -> threading.Thread:
    """Produce ``v0``, ``v1``, ... at ``rate`` per second until ``stop``; then append the count to ``sent``."""

    def run() -> None:
        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
        n, began = 0, time.monotonic()
        while not stop.is_set():
            due = int((time.monotonic() - began) * rate)
            while n < due:
                producer.produce(topic, value=f"v{n}".encode())
                n += 1
            producer.poll(0.005)
        assert producer.flush(60) == 0
        sent.append(n)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def longest_pause(out: Path, partitions: int, since: float, until: float) -> float:
    """The longest time any partition went without an invocation between ``since`` and ``until``."""
    times: dict[int, list[float]] = defaultdict(list)
    for inv in read_invocations(out):
        for records in inv["event"]["records"].values():
            for r in records[:1]:
                times[r["partition"]].append(inv["t"])
    worst = 0.0
    for p in range(partitions):
        seen = sorted(t for t in times[p] if since <= t <= until)
        edges = [since, *seen, until]
        worst = max(worst, max(b - a for a, b in zip(edges, edges[1:], strict=False)))
    return worst
