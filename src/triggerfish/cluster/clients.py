"""What every cluster client of the state Kafka shares: librdkafka's chatter in logging, its last error kept.

librdkafka reports why it cannot connect (refused, TLS, SASL) through ``error_cb`` while a call only
times out; ``Health`` keeps that reason so an UnavailableError can say it. Messages never carry a
property value (they hold passwords), only the bootstrap servers, which are not secret.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from triggerfish.cluster.config import ClusterConfig
from triggerfish.errors import ClusterError, UnavailableError

log = logging.getLogger("triggerfish.cluster")
_kafka_log = logging.getLogger("triggerfish.cluster.kafka")
_writer_log = logging.getLogger("triggerfish.cluster.kafka.writer")


class _FencingIsExpected(logging.Filter):
    """librdkafka logs a fenced transactional producer as FATAL; for the config writers it is the
    compare-and-set working (another replica's write came first), and the attempt is retried."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "fenced by a newer instance" not in record.getMessage()


_writer_log.addFilter(_FencingIsExpected())

_AUTH_CODES = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}
_DENIED_CODES = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                 KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED}


class Health:
    """The last error librdkafka reported for one client (``error_cb``), with when it came."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.error: KafkaError | None = None
        self.since = 0.0

    def on_error(self, err: KafkaError) -> None:
        with self._lock:
            if self.error is None:
                self.since = time.monotonic()
            self.error = err

    def clear(self) -> None:
        with self._lock:
            self.error = None

    def reason(self) -> str | None:
        with self._lock:
            return None if self.error is None else describe(self.error)


def settings(cfg: ClusterConfig, health: Health, **extra: Any) -> dict[str, Any]:
    """``cfg.client_config()`` plus the hooks and ``extra`` (the client's own settings)."""
    return {**cfg.client_config(), "error_cb": health.on_error, "logger": _kafka_log, **extra}


def writer_settings(cfg: ClusterConfig, health: Health, **extra: Any) -> dict[str, Any]:
    """``settings`` for a config writer, whose fencing is logged as expected, not as fatal."""
    return {**settings(cfg, health, **extra), "logger": _writer_log}


def describe(err: KafkaError) -> str:
    """librdkafka's error as one line without its prefix noise."""
    text = err.str() or err.name()
    return text.split(": ", 1)[1] if text.startswith(("GroupCoordinator:", "sasl_", "ssl:")) else text


def error_of(exc: BaseException) -> KafkaError | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def unavailable(cfg: ClusterConfig, what: str, reason: str | None) -> UnavailableError:
    """``what`` cannot be done now because the state Kafka cannot be reached (or answered ``reason``)."""
    because = reason or "no answer"
    return UnavailableError(f"cluster {cfg.name}: {what}: the Kafka that holds the cluster's state "
                            f"({cfg.bootstrap}) cannot be reached: {because}; check Cluster.BootstrapServers "
                            "and that the brokers are up, then retry")


def refusal(cfg: ClusterConfig, stage: str, err: KafkaError, commands: list[str]) -> ClusterError | None:
    """A ClusterError when ``err`` is an authentication or authorization failure (retrying cannot help);
    ``commands`` grant what the principal needs."""
    code = err.code()
    if code in _AUTH_CODES:
        return ClusterError(stage, f"the Kafka at {cfg.bootstrap} refused the credentials ({describe(err)})",
                            "check the SASL/TLS settings in Cluster.Properties")
    if code in _DENIED_CODES:
        return ClusterError(stage, f"the Kafka at {cfg.bootstrap} denied access ({err.name()})",
                            "a Kafka admin can create the topics and grant the principal its ACLs with:", commands)
    return None
