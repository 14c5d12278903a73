"""``TickingServer`` (``ticking_server.py``), under the control API and the bridge: an idle server wakes once a
second, not ten times, and a stop, from another thread or by a signal, does not wait for the next tick."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import trustme
import uvicorn
from starlette.applications import Starlette

from triggerfish import ticking_server
from triggerfish.bridge.config import from_properties
from triggerfish.bridge.server import prepare
from triggerfish.localkafka import KafkaEnv
from triggerfish.ticking_server import TickingServer


class _Counting(TickingServer):
    ticks = 0

    async def on_tick(self, counter: int) -> bool:
        self.ticks += 1
        return await super().on_tick(counter)


def _serve(server: TickingServer) -> threading.Thread:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    return thread


def _config() -> uvicorn.Config:
    return uvicorn.Config(Starlette(), log_level="warning", lifespan="off")


def test_an_idle_server_ticks_once_a_second() -> None:
    server = _Counting(_config())
    thread = _serve(server)
    time.sleep(2.5)
    server.exit_soon()
    thread.join(10)
    assert not thread.is_alive()
    assert 2 <= server.ticks <= 4  # uvicorn's own server: ~25 in the same time


def test_exit_soon_does_not_wait_for_the_next_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ticking_server, "TICK_S", 60.0)
    server = TickingServer(_config())
    thread = _serve(server)
    time.sleep(0.2)  # waiting for its next tick, a minute away
    server.exit_soon()
    thread.join(10)
    assert not thread.is_alive()


# The bridge's CLI with its tick a minute long: a signal must end it without waiting for the tick.
_RUN_BRIDGE = """
import runpy, sys
import triggerfish.ticking_server
triggerfish.ticking_server.TICK_S = 60.0
sys.argv = ["triggerfish", "bridge", "--config-file", sys.argv[1]]
runpy.run_module("triggerfish", run_name="__main__")
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("tls", [False, True], ids=["one-server", "tls-and-plain-management"])
def test_a_signal_stops_the_bridge_at_once(kafka: KafkaEnv, tmp_path: Path, tls: bool) -> None:
    props = {"kafka.bootstrap.servers": kafka.bootstrap, "http.port": str(_free_port()),
             "http.management.port": str(_free_port())}
    if tls:  # two uvicorn servers in one loop (Strimzi keeps the management port plain): both must stop
        cert = trustme.CA().issue_cert("127.0.0.1")
        cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
        cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
        props |= {"http.ssl.enable": "true", "http.ssl.certificate.location": str(tmp_path / "server.pem"),
                  "http.ssl.key.location": str(tmp_path / "key.pem")}
    config = tmp_path / "bridge.properties"
    config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    log = tmp_path / "bridge.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", _RUN_BRIDGE, str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "listening on" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        time.sleep(0.3)  # into the wait for its next tick
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)  # a minute without the signal handler's wake-up
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
            pytest.fail(f"the bridge did not stop on SIGTERM:\n{log.read_text()}")
    assert "Traceback" not in log.read_text()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="Linux's per-thread counters")
def test_an_idle_bridge_wakes_once_a_second(kafka: KafkaEnv) -> None:
    prepared = prepare(from_properties({"http.port": "0", "kafka.bootstrap.servers": kafka.bootstrap}, environ={}))
    thread = prepared.start_in_thread()
    try:
        time.sleep(0.5)
        status = Path(f"/proc/self/task/{thread.native_id}/status")
        before = _voluntary_switches(status)
        time.sleep(3)
        woke = _voluntary_switches(status) - before
    finally:
        prepared.stop(thread)
    assert woke <= 6  # its event loop's thread; uvicorn's own server: ~30 in the same time


def _voluntary_switches(status: Path) -> int:
    line = next(line for line in status.read_text().splitlines() if line.startswith("voluntary_ctxt_switches"))
    return int(line.split()[1])
