"""A private single-node Kafka broker whose SASL_SSL listener takes OAUTHBEARER tokens, validated as JWTs.

Kafka's own ``OAuthBearerValidatorCallbackHandler`` checks each token's signature against a JWKS endpoint
(``sasl.oauthbearer.jwks.endpoint.url``) and its audience and issuer; Kafka 4 only fetches URLs named in the
``org.apache.kafka.sasl.oauthbearer.allowed.urls`` system property. The jars and certificates come from
:mod:`triggerfish.localkafka`; the broker's settings are this module's (the shared broker is left alone).

    port_base       PLAINTEXT   for test setup (topics, producing)
    port_base + 1   SASL_SSL    OAUTHBEARER only
    port_base + 3   CONTROLLER
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from triggerfish.localkafka import broker, certs, jars

_HANDLER = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
_LOGIN_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;"


@dataclass(frozen=True)
class OAuthKafka:
    bootstrap: str  # PLAINTEXT, for setup
    oauth_bootstrap: str  # SASL_SSL + OAUTHBEARER
    ca_file: Path
    process: subprocess.Popen[bytes]
    log_file: Path


def _properties(home: Path, port_base: int, files: certs.CertFiles, jwks_url: str, audience: str, issuer: str) -> str:
    p = port_base
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{p + 3}",
        "listeners": f"PLAINTEXT://127.0.0.1:{p},SASL_SSL://127.0.0.1:{p + 1},CONTROLLER://127.0.0.1:{p + 3}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{p},SASL_SSL://127.0.0.1:{p + 1}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(home / "data"),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config": _LOGIN_MODULE,
        "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class": _HANDLER,
        "sasl.oauthbearer.jwks.endpoint.url": jwks_url,
        "sasl.oauthbearer.expected.audience": audience,
        "sasl.oauthbearer.expected.issuer": issuer,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(files.broker_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(files.ca_cert),
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def start(home: Path, port_base: int, *, jwks_url: str, token_url: str, audience: str, issuer: str) -> OAuthKafka:
    """Format and start the broker under ``home``; the JWKS endpoint must already answer."""
    for offset in (0, 1, 3):
        if _open(port_base + offset):
            raise RuntimeError(f"port {port_base + offset} is taken; the OAuth test broker needs it")
    libs = jars.fetch()
    files = certs.generate(home / "certs")
    props = home / "server.properties"
    props.write_text(_properties(home, port_base, files, jwks_url, audience, issuer))
    java = ["java", "-Xms128m", "-Xmx512m", "-Djava.awt.headless=true",
            f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={jwks_url},{token_url}", "-cp", f"{libs}/*"]
    subprocess.run([*java, "kafka.tools.StorageTool", "format", "-t", broker.cluster_id(), "-c", str(props)],
                   check=True, capture_output=True)
    log_file = home / "kafka.log"
    with open(log_file, "ab") as log:
        proc = subprocess.Popen([*java, "kafka.Kafka", str(props)], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    env = OAuthKafka(f"127.0.0.1:{port_base}", f"127.0.0.1:{port_base + 1}", files.ca_cert, proc, log_file)
    deadline = time.monotonic() + 120
    while not (_open(port_base) and _open(port_base + 1)):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(env)
            raise RuntimeError(f"the OAuth test broker did not start; its log ends:\n{log_file.read_text()[-3000:]}")
        time.sleep(0.5)
    return env


def stop(env: OAuthKafka) -> None:
    if env.process.poll() is None:
        env.process.terminate()
        try:
            env.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            env.process.kill()
            env.process.wait(timeout=10)
