"""Probes through librdkafka's AdminClient: SASL login, topic, consumer group, advertised brokers.

An AdminClient never joins the consumer group, so a running consumer is not disturbed. librdkafka
reports the cause of a failed request separately (``error_cb``), so a :class:`Probe` keeps those errors
and the client's log lines as evidence for the diagnosis.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from triggerfish.checks import Check, timed
from triggerfish.diagnosis import Diagnosis
from triggerfish.esm import auth, problems

KAFKA_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Broker:
    """A broker as the cluster's metadata advertises it."""

    id: int
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: deque[str] = deque(maxlen=50)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class Probe:
    """A librdkafka AdminClient plus what it reported: errors (error_cb) and log lines."""

    client: Any
    errors: list[Any]
    log: _Collector
    config: dict[str, Any]


def _open_admin(config: dict[str, Any]) -> Probe:
    from confluent_kafka.admin import AdminClient

    errors: list[Any] = []
    collector = _Collector()
    # An unregistered logger (no parent, nothing kept in logging's registry after the probe is gone):
    # librdkafka's chatter is evidence for the detail, not for the user's log.
    logger = logging.Logger("triggerfish.esm.probes.rdkafka")
    logger.addHandler(collector)
    logger.setLevel(logging.DEBUG)
    conf = {k: v for k, v in config.items() if k not in _CONSUMER_ONLY}
    conf.update({"error_cb": errors.append, "logger": logger, "allow.auto.create.topics": False,
                 "reconnect.backoff.max.ms": 2000})
    return Probe(AdminClient(conf), errors, collector, config)


_CONSUMER_ONLY = {
    "group.id", "auto.offset.reset", "enable.auto.commit", "enable.auto.offset.store", "session.timeout.ms",
    "max.poll.interval.ms", "isolation.level", "fetch.min.bytes", "fetch.wait.max.ms", "partition.assignment.strategy",
    "on_commit", "stats_cb", "group.instance.id", "enable.partition.eof", "fetch.max.bytes", "max.partition.fetch.bytes",
    "queued.min.messages", "queued.max.messages.kbytes", "group.protocol", "heartbeat.interval.ms",
}


def _login_diagnosis(a: Probe, target: str, who: auth.Auth | None) -> Diagnosis | None:
    """The first setup-relevant error librdkafka reported, as a diagnosis."""
    mechanism = who.mechanism if who else str(a.config.get("sasl.mechanism") or a.config.get("sasl.mechanisms") or "")
    user = who.user if who else str(a.config.get("sasl.username") or "")
    endpoint = str(a.config.get("sasl.oauthbearer.token.endpoint.url") or "")
    for err in a.errors:
        d = problems.from_kafka_error(err.name(), err.str(), target=target, mechanism=mechanism, user=user,
                                      token_endpoint=endpoint)
        if d is not None:
            return d
    return None


def check_sasl(config: dict[str, Any], target: str, who: auth.Auth | None = None,
               timeout: float = KAFKA_TIMEOUT_S) -> tuple[Check, Probe | None]:
    """Log in (metadata request through librdkafka); returns the admin client for the next stages."""
    started = time.monotonic()
    a = _open_admin(config)
    protocol = str(config.get("security.protocol", "PLAINTEXT")).upper()
    deadline = started + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            a.client.list_topics(timeout=1.0)
        except Exception as exc:  # KafkaException: the cause arrives separately through error_cb
            last = str(exc)
            a.client.poll(0.2)
            d = _login_diagnosis(a, target, who)
            if d is not None and (d.problem != problems.CONNECTION_ERROR or time.monotonic() > deadline - 1):
                return timed("sasl", target, started, d), None
            continue
        mech = config.get("sasl.mechanism") or config.get("sasl.mechanisms")
        if protocol.startswith("SASL"):
            user = f" as {who.user!r}" if who and who.user else ""
            return timed("sasl", target, started, detail=f"{mech} login{user} accepted"), a
        return timed("sasl", target, started, status="skip", detail=f"no SASL ({protocol}); connected"), a
    d = _login_diagnosis(a, target, who) or Diagnosis(
        problems.CONNECTION_ERROR,
        f"{target}: no metadata within {timeout:g}s: {problems.clean(last) or 'no answer'}"
        + (f"; client log: {problems.clean(a.log.lines[-1])}" if a.log.lines else ""),
        "check that the bootstrap servers are Kafka listeners of the configured security protocol, and that the "
        "brokers' advertised addresses are reachable from here",
        "_TRANSPORT",
    )
    return timed("sasl", target, started, d), None


def _describe_failed(err: Any, what: str, fix: str, target: str, topic: str, group: str,
                     principal: str) -> Diagnosis:
    """A Describe call failed for a reason other than a missing resource or a missing ACL."""
    return problems.from_kafka_error(err.name(), err.str(), target=target, topic=topic, group=group,
                                     principal=principal) or Diagnosis(
        problems.CONNECTION_ERROR, f"{target}: describing {what} failed: {err.str()}", fix, err.name())


def _read_denied(ops: Any) -> bool:
    """The broker reported the principal's operations (KIP-430) and Read is not among them."""
    from confluent_kafka.admin import AclOperation  # type: ignore[attr-defined]  # re-exported, no __all__

    return ops is not None and AclOperation.READ not in ops and AclOperation.ALL not in ops


def check_topic(a: Probe, target: str, topic: str, group: str = "", principal: str = "",
                timeout: float = KAFKA_TIMEOUT_S) -> Check:
    """The topic exists and the principal may Describe and Read it."""
    from confluent_kafka import KafkaError, KafkaException, TopicCollection

    started = time.monotonic()
    try:
        futures = a.client.describe_topics(
            TopicCollection([topic]), request_timeout=timeout, include_authorized_operations=True
        )
        description = futures[topic].result(timeout=timeout + 1)
    except KafkaException as exc:
        err: KafkaError = exc.args[0]
        if err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return timed("topic", topic, started, problems.topic_missing(target, topic))
        if err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED:
            return timed("topic", topic, started, problems.topic_denied(target, topic, group, principal, "Describe"))
        return timed("topic", topic, started, _describe_failed(
            err, f"topic {topic!r}", "check the broker's health and the mapping's Topics", target, topic, group, principal))
    if _read_denied(description.authorized_operations):
        return timed("topic", topic, started, problems.topic_denied(target, topic, group, principal, "Read"))
    partitions = len(description.partitions)
    return timed("topic", topic, started, detail=f"{partitions} partition{'s' if partitions != 1 else ''}")


def _describe_group(a: Probe, group: str, timeout: float) -> Any:
    """DescribeConsumerGroups, asked again while the group coordinator is still being elected.

    A new cluster has no coordinator until ``__consumer_offsets`` exists (the first group request
    creates it), and one moves when its broker restarts; both clear within seconds.
    """
    from confluent_kafka import KafkaError, KafkaException

    moving = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
    deadline = time.monotonic() + timeout
    while True:
        futures = a.client.describe_consumer_groups([group], request_timeout=timeout, include_authorized_operations=True)
        try:
            return futures[group].result(timeout=timeout + 1)
        except KafkaException as exc:
            if exc.args[0].code() not in moving or time.monotonic() + 0.5 > deadline:
                raise
        time.sleep(0.5)


def check_group(a: Probe, target: str, group: str, topic: str = "", principal: str = "",
                timeout: float = KAFKA_TIMEOUT_S) -> Check:
    """The principal may Read (join) the consumer group; checked without joining it."""
    from confluent_kafka import KafkaError, KafkaException

    started = time.monotonic()
    try:
        description = _describe_group(a, group, timeout)
    except KafkaException as exc:
        err: KafkaError = exc.args[0]
        if err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
            return timed("group", group, started, problems.group_denied(target, topic, group, principal, "Describe/Read"))
        return timed("group", group, started, _describe_failed(
            err, f"consumer group {group!r}", "check the broker's group coordinator", target, topic, group, principal))
    if _read_denied(description.authorized_operations):
        return timed("group", group, started, problems.group_denied(target, topic, group, principal, "Read"))
    state = getattr(description.state, "name", str(description.state))
    if state == "DEAD":
        return timed("group", group, started, detail="Read allowed; the group does not exist yet (the first join creates it)")
    return timed("group", group, started, detail=f"Read allowed; state {state}, {len(description.members)} member(s)")


def check_lambda_parity(a: Probe, target: str, principal: str, login: str) -> Check | None:
    """Lambda also wants DescribeConfigs on the cluster for SCRAM and mTLS logins; triggerfish does not.

    A warning, so a mapping that works here does not meet ``Cluster failed to authorize Lambda`` on AWS.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]  # no __all__

    if login not in ("SASL_SCRAM_256_AUTH", "SASL_SCRAM_512_AUTH", "CLIENT_CERTIFICATE_TLS_AUTH"):
        return None
    started = time.monotonic()
    try:
        brokers = a.client.list_topics(timeout=KAFKA_TIMEOUT_S).brokers
        resource = ConfigResource(ResourceType.BROKER, str(min(brokers)))
        for future in a.client.describe_configs([resource], request_timeout=KAFKA_TIMEOUT_S).values():
            future.result(timeout=KAFKA_TIMEOUT_S + 1)
    except KafkaException as exc:
        err = exc.args[0]
        if err.code() != KafkaError.CLUSTER_AUTHORIZATION_FAILED:
            return None
        d = Diagnosis(
            problems.AUTHORIZATION,
            f"{target}: {principal or 'the principal'} lacks DescribeConfigs on the cluster; triggerfish does not "
            "need it, but Lambda does for SCRAM and mTLS logins",
            problems.acl_fix(principal, cluster=True) + " before moving this mapping to AWS Lambda",
            err.name(),
        )
        return timed("group", "cluster", started, d, status="warn")
    except Exception:  # noqa: BLE001 - best effort: a warning only
        return None
    return None


def advertised_brokers(client: Any, timeout: float = KAFKA_TIMEOUT_S) -> list[Broker]:
    """Every broker the cluster's metadata lists (``client``: an AdminClient), by id: the addresses clients
    connect to after bootstrap."""
    metadata = client.list_topics(timeout=timeout)
    return sorted((Broker(b.id, b.host, b.port) for b in metadata.brokers.values()), key=lambda b: b.id)
