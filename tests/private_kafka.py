"""A private single-node Kafka broker with listeners of a test's own, beside the shared one.

For what the shared broker must not carry: a SASL_SSL listener that validates OAUTHBEARER tokens
(test_oauth_login), an MSK-like listener enabling SCRAM-SHA-512 only (test_doctor_sasl). The jars and
certificates come from :mod:`triggerfish.localkafka`; the test names its extra listeners and settings.

    port_base       PLAINTEXT   for test setup (topics, producing, admin)
    port_base + N   each extra listener, named as its security protocol
    port_base + 3   CONTROLLER
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from triggerfish.localkafka import broker, certs, jars

_LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="out" target="SYSTEM_OUT"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="out"/></Root></Loggers>
</Configuration>
"""


@dataclass(frozen=True)
class PrivateKafka:
    port_base: int
    ca_file: Path
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def bootstrap(self) -> str:
        """The PLAINTEXT listener, for setup."""
        return f"127.0.0.1:{self.port_base}"

    def listener(self, offset: int) -> str:
        return f"127.0.0.1:{self.port_base + offset}"


def _properties(home: Path, port_base: int, listeners: Mapping[str, int], files: certs.CertFiles) -> dict[str, str]:
    p = port_base
    named = {"PLAINTEXT": 0, **listeners}
    served = ",".join(f"{name}://127.0.0.1:{p + offset}" for name, offset in named.items())
    return {
        "process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": f"1@127.0.0.1:{p + 3}",
        "listeners": f"{served},CONTROLLER://127.0.0.1:{p + 3}",
        "advertised.listeners": served,
        "listener.security.protocol.map": ",".join(f"{name}:{name}" for name in named) + ",CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER", "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(home / "data"), "num.partitions": "1",
        "offsets.topic.replication.factor": "1", "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1", "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1", "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "ssl.keystore.type": "PEM", "ssl.keystore.location": str(files.broker_keystore),
        "ssl.truststore.type": "PEM", "ssl.truststore.location": str(files.ca_cert),
    }


def _open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start(home: Path, port_base: int, listeners: Mapping[str, int], settings: Mapping[str, str], *,
          java_options: Sequence[str] = (), format_args: Sequence[str] = ()) -> PrivateKafka:
    """Format and start the broker under ``home`` (a fresh directory); ready once PLAINTEXT serves metadata."""
    for offset in (0, 3, *listeners.values()):
        if _open(port_base + offset):
            raise RuntimeError(f"port {port_base + offset} is taken; the private test broker needs it")
    jars.require_tools()
    libs = jars.fetch()
    files = certs.generate(home / "certs")
    config = home / "server.properties"
    props = {**_properties(home, port_base, listeners, files), **settings}
    config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    (home / "log4j2.xml").write_text(_LOG4J2)
    java = ["java", "-Xms128m", "-Xmx512m", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={home / 'log4j2.xml'}", *java_options, "-cp", f"{libs}/*"]
    subprocess.run([*java, "kafka.tools.StorageTool", "format", "-t", broker.cluster_id(), "-c", str(config),
                    *format_args], check=True, capture_output=True)
    log_file = home / "kafka.log"
    with open(log_file, "ab") as log:
        proc = subprocess.Popen([*java, "kafka.Kafka", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    env = PrivateKafka(port_base, files.ca_cert, proc, log_file)
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(env)
            raise RuntimeError(f"the private test broker did not start; its log ends:\n{log_file.read_text()[-3000:]}")
        try:
            AdminClient({"bootstrap.servers": env.bootstrap}).list_topics(timeout=2)
            return env
        except KafkaException:  # accepting TCP before serving metadata
            time.sleep(0.5)


def stop(env: PrivateKafka) -> None:
    if env.process.poll() is None:
        env.process.terminate()
        try:
            env.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            env.process.kill()
            env.process.wait(timeout=10)
