"""A single-node KRaft Kafka broker on 127.0.0.1 for development and tests.

One instance lives in ``<cache>/kafka/instance-<port_base>``: its server.properties, certificates,
generated admin password, data and log. Four ports starting at ``port_base``:

    port_base       PLAINTEXT   principal User:ANONYMOUS (super user, so plain development just works)
    port_base + 1   SASL_SSL    SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN; admin is a super user
    port_base + 2   SSL (mTLS)  client certificate required; principal User:<certificate CN>
    port_base + 3   CONTROLLER  KRaft controller, internal

The StandardAuthorizer is on with ``allow.everyone.if.no.acl.found=false``, so every principal but
the super users needs ACLs: authorization failures are real.

The broker is node 0, as in Strimzi's and Kafka's own single-node setups (tests that name the leader
expect 0). KRaft storage is formatted for one node id, so the data directory is named for its layout:
``data-node0``. A ``data`` directory an older triggerfish formatted as node 1 is left as it was (a
broker running on it keeps running) and a fresh one is used from the next start, saying so in the log.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from triggerfish.errors import LocalKafkaError
from triggerfish.localkafka import certs, jars

_log = logging.getLogger("triggerfish.localkafka")

#: The broker's KRaft node id; its data directory is named for it (see the module docstring).
NODE_ID = 0
_LEGACY_DATA = "data"  # node 1, before the layout had a name

# TRIGGERFISH_KAFKA_PORT_BASE moves the default, e.g. for a second checkout beside a running broker.
DEFAULT_PORT_BASE = int(os.environ.get("TRIGGERFISH_KAFKA_PORT_BASE", "9092"))
_ADMIN_USER = "admin"
_START_TIMEOUT_S = 120.0

_LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders><Console name="out" target="SYSTEM_OUT"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers>
    <Logger name="kafka.server.KafkaRaftServer" level="INFO"/>
    <Logger name="kafka.authorizer.logger" level="INFO"/>
    <Root level="WARN"><AppenderRef ref="out"/></Root>
  </Loggers>
</Configuration>
"""


@dataclass(frozen=True)
class KafkaEnv:
    """Where the local broker listens and the credentials to reach it."""

    bootstrap: str
    sasl_bootstrap: str
    mtls_bootstrap: str
    ca_file: str
    client_cert_file: str
    client_key_file: str
    admin_user: str
    admin_password: str

    def lines(self) -> list[str]:
        """The shell-sourceable ``KAFKA_*=...`` lines `triggerfish kafka up` prints."""
        return [f"KAFKA_{name.upper()}={value}" for name, value in asdict(self).items()]

    def plaintext(self) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap}

    def sasl(self, mechanism: str = "SCRAM-SHA-512", user: str | None = None, password: str | None = None) -> dict[str, str]:
        return {
            "bootstrap.servers": self.sasl_bootstrap,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": mechanism,
            "sasl.username": user or self.admin_user,
            "sasl.password": password if password is not None else self.admin_password,
            "ssl.ca.location": self.ca_file,
        }

    def mtls(self) -> dict[str, str]:
        return {
            "bootstrap.servers": self.mtls_bootstrap,
            "security.protocol": "SSL",
            "ssl.ca.location": self.ca_file,
            "ssl.certificate.location": self.client_cert_file,
            "ssl.key.location": self.client_key_file,
        }


@dataclass(frozen=True)
class Instance:
    """The files of one local broker, found by its port base."""

    port_base: int

    @property
    def home(self) -> Path:
        return jars.cache_root() / "kafka" / f"instance-{self.port_base}"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    @property
    def env_file(self) -> Path:
        return self.home / "env.json"

    @property
    def data_dir(self) -> Path:
        return self.home / f"data-node{NODE_ID}"

    @property
    def legacy_data_dir(self) -> Path:
        return self.home / _LEGACY_DATA

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if b"kafka.Kafka" in cmdline else None

    def env(self) -> KafkaEnv | None:
        try:
            return KafkaEnv(**json.loads(self.env_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def _port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _server_properties(inst: Instance, files: certs.CertFiles, password: str) -> str:
    p = inst.port_base
    jaas_scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    jaas_plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{_ADMIN_USER}="{password}";'
    )
    props = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{p + 3}",
        "listeners": (
            f"PLAINTEXT://127.0.0.1:{p},SASL_SSL://127.0.0.1:{p + 1},"
            f"SSL://127.0.0.1:{p + 2},CONTROLLER://127.0.0.1:{p + 3}"
        ),
        "advertised.listeners": (
            f"PLAINTEXT://127.0.0.1:{p},SASL_SSL://127.0.0.1:{p + 1},SSL://127.0.0.1:{p + 2}"
        ),
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(inst.data_dir),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": f"User:{_ADMIN_USER};User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN",
        "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": jaas_scram,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas_scram,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas_plain,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(files.broker_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(files.ca_cert),
        "listener.name.ssl.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+).*$/$1/,DEFAULT",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _java(libs: Path, inst: Instance, *args: str) -> list[str]:
    return [
        "java", "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={inst.home / 'log4j2.xml'}",
        "-cp", f"{libs}/*", *args,
    ]


def cluster_id() -> str:
    """A random KRaft cluster id, as Kafka makes them: never starting with "-", which the storage
    tool would read as an option (1 id in 64 would fail the format step)."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def _format(libs: Path, inst: Instance, password: str) -> None:
    cid = cluster_id()
    scram = [
        arg
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512")
        for arg in ("--add-scram", f"{mech}=[name={_ADMIN_USER},password={password}]")
    ]
    cmd = _java(libs, inst, "kafka.tools.StorageTool", "format", "-t", cid,
                "-c", str(inst.home / "server.properties"), *scram)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise LocalKafkaError(f"formatting Kafka storage failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")


def _note_legacy_data(inst: Instance) -> None:
    """Say, in the broker's log and on stderr, that an older layout's topics stay where they were."""
    if not (inst.legacy_data_dir / "meta.properties").exists():
        return
    message = (f"the local Kafka broker is node {NODE_ID} now; the data an older triggerfish wrote as node 1 stays "
               f"in {inst.legacy_data_dir} and is not served (its topics are not in the new broker). Delete it "
               f"when you no longer need it, or run `triggerfish kafka down` to remove both")
    _log.warning(message)
    with open(inst.log_file, "a") as log:
        log.write(f"[triggerfish] {message}\n")


def _wait_ready(inst: Instance, proc: subprocess.Popen[bytes], timeout: float) -> None:
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = inst.log_file.read_text(errors="replace")[-3000:]
            raise LocalKafkaError(f"the Kafka broker exited with code {proc.returncode}; its log ends:\n{tail}")
        if all(_port_open(inst.port_base + i) for i in range(3)):
            try:
                AdminClient({"bootstrap.servers": f"127.0.0.1:{inst.port_base}"}).list_topics(timeout=5)
                return
            except Exception:  # the broker may accept TCP before it serves metadata
                pass
        time.sleep(0.5)
    raise LocalKafkaError(f"the Kafka broker did not become ready within {timeout:.0f}s; see {inst.log_file}")


def up(port_base: int = DEFAULT_PORT_BASE, on_line: Callable[[str], None] | None = None) -> KafkaEnv:
    """Start the local broker (or reuse the running one) and return how to reach it."""
    inst = Instance(port_base)
    env = inst.env()
    if inst.pid() is not None and env is not None:
        return env
    jars.require_tools()
    for offset in range(4):
        if _port_open(port_base + offset):
            raise LocalKafkaError(
                f"port {port_base + offset} on 127.0.0.1 is taken by another process; "
                f"stop it or choose other ports with --port-base"
            )
    libs = jars.fetch(on_line=on_line)
    inst.home.mkdir(parents=True, exist_ok=True)
    files = certs.generate(inst.home / "certs")
    password = env.admin_password if env else secrets.token_urlsafe(18)
    env = KafkaEnv(
        bootstrap=f"127.0.0.1:{port_base}",
        sasl_bootstrap=f"127.0.0.1:{port_base + 1}",
        mtls_bootstrap=f"127.0.0.1:{port_base + 2}",
        ca_file=str(files.ca_cert),
        client_cert_file=str(files.client_cert),
        client_key_file=str(files.client_key),
        admin_user=_ADMIN_USER,
        admin_password=password,
    )
    inst.env_file.write_text(json.dumps(asdict(env)))
    inst.env_file.chmod(0o600)
    (inst.home / "log4j2.xml").write_text(_LOG4J2)
    props = inst.home / "server.properties"
    props.write_text(_server_properties(inst, files, password))
    props.chmod(0o600)
    if not (inst.data_dir / "meta.properties").exists():
        _note_legacy_data(inst)
        _format(libs, inst, password)
    with open(inst.log_file, "ab") as log:
        proc = subprocess.Popen(
            _java(libs, inst, "kafka.Kafka", str(props)),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    inst.pid_file.write_text(str(proc.pid))
    try:
        _wait_ready(inst, proc, _START_TIMEOUT_S)
    except LocalKafkaError:
        _stop_pid(proc.pid)
        raise
    return env


def status(port_base: int = DEFAULT_PORT_BASE) -> KafkaEnv | None:
    """The running broker's details, or None when it is down."""
    inst = Instance(port_base)
    if inst.pid() is None:
        return None
    return inst.env()


def _stop_pid(pid: int, timeout: float = 30.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/stat").exists() and " Z " in Path(f"/proc/{pid}/stat").read_text():
            return
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def down(port_base: int = DEFAULT_PORT_BASE, keep_data: bool = False) -> bool:
    """Stop the broker; unless ``keep_data``, remove its data, certificates and password.

    Returns whether a running broker was stopped.
    """
    inst = Instance(port_base)
    pid = inst.pid()
    if pid is not None:
        _stop_pid(pid)
    inst.pid_file.unlink(missing_ok=True)
    if not keep_data:
        shutil.rmtree(inst.home, ignore_errors=True)
    return pid is not None
