"""The cluster's two compacted topics: created when allowed, checked always, and how an admin pre-creates them.

``triggerfish.<Name>.configs`` holds the mapping definitions (1 partition: one total order);
``triggerfish.<Name>.status`` the replicas' heartbeats and statuses (LogAppendTime: liveness is judged
by the broker's clock). ``precreate_commands`` gives the same lines to the README and to the error
a replica raises when it may not create them.
"""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported without __all__
    AdminClient,
    ClusterMetadata,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from triggerfish.cluster.clients import Health, describe, error_of, log, refusal, settings, unavailable
from triggerfish.cluster.config import ClusterConfig
from triggerfish.errors import ClusterError

CONFIGS_SETTINGS = {"cleanup.policy": "compact"}
STATUS_SETTINGS = {
    "cleanup.policy": "compact",
    "segment.ms": "600000",              # roll often so compaction can drop old heartbeats
    "min.cleanable.dirty.ratio": "0.1",
    "message.timestamp.type": "LogAppendTime",
}
PRINCIPAL = "User:<principal>"


def precreate_commands(cfg: ClusterConfig, *, principal: str = PRINCIPAL) -> list[str]:
    """The kafka-topics.sh / kafka-acls.sh lines that create the topics and grant ``principal`` what it needs."""
    server = f"--bootstrap-server {cfg.bootstrap_servers[0]}"
    if cfg.properties.get("security.protocol", "PLAINTEXT").upper() != "PLAINTEXT":
        server += " --command-config admin.properties"
    rf = f" --replication-factor {cfg.replication_factor}" if cfg.replication_factor > 0 else ""
    acl = f"kafka-acls.sh {server} --add --allow-principal '{principal}'"
    return [
        f"kafka-topics.sh {server} --create --topic {cfg.configs_topic} --partitions 1{rf}"
        + "".join(f" --config {k}={v}" for k, v in CONFIGS_SETTINGS.items()),
        f"kafka-topics.sh {server} --create --topic {cfg.status_topic} --partitions 1{rf}"
        + "".join(f" --config {k}={v}" for k, v in STATUS_SETTINGS.items()),
        f"{acl} --operation Read --operation Write --operation Describe --operation DescribeConfigs"
        f" --topic {cfg.configs_topic} --topic {cfg.status_topic}",
        f"{acl} --operation Write --operation Describe --transactional-id {cfg.writer_id}",
        f"{acl} --operation IdempotentWrite --cluster   # brokers before Kafka 3.0 only",
        "# the engine's consumer groups (each mapping's ConsumerGroupId, by default its UUID) need Read on the "
        "Kafka of the mapping's BootstrapServers; `triggerfish doctor` checks them",
    ]


def ensure_topics(cfg: ClusterConfig, timeout: float = 15.0) -> None:
    """Create the missing topics (when ``cfg.create_topics``) and check both; ClusterError with the fix,
    UnavailableError when the state Kafka cannot be reached within ``timeout``."""
    deadline = time.monotonic() + timeout
    health = Health()
    admin = AdminClient(settings(cfg, health))
    wanted = (cfg.configs_topic, cfg.status_topic)
    metadata = _metadata(admin, cfg, health, deadline)
    missing = [t for t in wanted if t not in metadata.topics]
    if missing:
        if not cfg.create_topics:
            raise ClusterError("topics", f"{' and '.join(missing)} not found at {cfg.bootstrap} (missing, or the "
                               "principal may not Describe it) and Cluster.CreateTopics is false",
                               "a Kafka admin can create the topics and grant the ACLs with:", precreate_commands(cfg))
        _create(admin, cfg, missing, health, deadline)
        while True:  # a new topic takes a moment to show in metadata
            metadata = _metadata(admin, cfg, health, deadline)
            if all(t in metadata.topics for t in wanted) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    _check(admin, cfg, metadata)


def _metadata(admin: AdminClient, cfg: ClusterConfig, health: Health, deadline: float) -> ClusterMetadata:
    # all topics, never one by name: a metadata request for a name may auto-create it uncompacted
    while True:
        try:
            return admin.list_topics(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
        except KafkaException as exc:
            admin.poll(0)  # serves error_cb: the cause (refused, TLS, SASL) arrives there
            err = health.error or error_of(exc)
            refused = refusal(cfg, "topics", err, precreate_commands(cfg)) if err is not None else None
            if refused is not None:  # retrying cannot help: say so now, not at the deadline
                raise refused from None
            if time.monotonic() >= deadline:
                raise unavailable(cfg, "cannot check the cluster's topics",
                                  health.reason() or (describe(err) if err else str(exc))) from None


def _create(admin: AdminClient, cfg: ClusterConfig, missing: list[str], health: Health, deadline: float) -> None:
    new = [NewTopic(t, num_partitions=1, replication_factor=cfg.replication_factor,
                    config=dict(CONFIGS_SETTINGS if t == cfg.configs_topic else STATUS_SETTINGS)) for t in missing]
    futures = admin.create_topics(new, request_timeout=max(1.0, deadline - time.monotonic()))
    for topic, future in futures.items():
        try:
            future.result(timeout=max(1.0, deadline - time.monotonic()))
            log.info("cluster %s: created topic %s", cfg.name, topic)
        except KafkaException as exc:
            err = error_of(exc)
            if err is not None and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue  # another replica created it meanwhile
            if err is not None and err.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                                  KafkaError.CLUSTER_AUTHORIZATION_FAILED):
                raise ClusterError("topics", f"{topic} does not exist and the principal may not create it at "
                                   f"{cfg.bootstrap} ({err.name()})",
                                   "a Kafka admin can create the topics and grant the ACLs with:",
                                   precreate_commands(cfg)) from None
            if err is not None and err.code() == KafkaError.INVALID_REPLICATION_FACTOR:
                raise ClusterError("topics", f"cannot create {topic}: {describe(err)}",
                                   "set Cluster.ReplicationFactor to at most the number of brokers") from None
            reason = describe(err) if err is not None else str(exc)
            if err is not None and (err.retriable() or err.code() in (KafkaError._TIMED_OUT, KafkaError._TRANSPORT)):
                raise unavailable(cfg, f"cannot create {topic}", health.reason() or reason) from None
            raise ClusterError("topics", f"cannot create {topic}: {reason}", "create it as the README's "
                               "'Running a fleet' section shows", precreate_commands(cfg)) from None


def _check(admin: AdminClient, cfg: ClusterConfig, metadata: ClusterMetadata) -> None:
    configs = metadata.topics.get(cfg.configs_topic)
    if configs is not None and len(configs.partitions) != 1:
        raise ClusterError("topics", f"{cfg.configs_topic} has {len(configs.partitions)} partitions; the mapping "
                           "definitions need exactly 1 (one total order)", "delete the topic (API-created mappings "
                           "are lost; recreate them) or choose another Cluster.Name", precreate_commands(cfg)[:1])
    policies = _cleanup_policies(admin, cfg)
    policy = policies.get(cfg.configs_topic)
    if policy is not None and "compact" not in policy:
        server = f"--bootstrap-server {cfg.bootstrap_servers[0]}"
        raise ClusterError("topics", f"{cfg.configs_topic} has cleanup.policy={policy}: deleted segments would lose "
                           "mapping definitions", "make it compacted:", [
                               f"kafka-configs.sh {server} --alter --entity-type topics --entity-name "
                               f"{cfg.configs_topic} --add-config cleanup.policy=compact"])
    status = policies.get(cfg.status_topic)
    if status is not None and "compact" not in status:
        log.warning("cluster %s: %s has cleanup.policy=%s; use compact so that it stays small",
                    cfg.name, cfg.status_topic, status)


def _cleanup_policies(admin: AdminClient, cfg: ClusterConfig) -> dict[str, str]:
    """topic -> cleanup.policy; a principal without DescribeConfigs gets no answer, and no check."""
    out: dict[str, str] = {}
    resources = [ConfigResource(ResourceType.TOPIC, t) for t in (cfg.configs_topic, cfg.status_topic)]
    for resource, future in admin.describe_configs(resources, request_timeout=10).items():
        try:
            entries = future.result(timeout=10)
        except KafkaException as exc:
            log.info("cluster %s: cannot check %s's cleanup.policy (%s)", cfg.name, resource.name, exc)
            continue
        entry = entries.get("cleanup.policy")
        if entry is not None and entry.value is not None:
            out[resource.name] = entry.value
    return out
