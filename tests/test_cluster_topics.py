"""The cluster's topics on the real broker: created with their configs, checked, and the way to pre-create them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from kafka_helpers import closed_port
from triggerfish.cluster.config import ClusterConfig
from triggerfish.cluster.topics import ensure_topics, precreate_commands
from triggerfish.errors import ClusterError, UnavailableError
from triggerfish.localkafka import KafkaEnv


@pytest.fixture
def cluster(kafka: KafkaEnv, admin: AdminClient, unique_name: Callable[[str], str]) -> Iterator[ClusterConfig]:
    cfg = ClusterConfig(name=unique_name("cl"), bootstrap_servers=(kafka.bootstrap,), replica_id="a")
    yield cfg
    for future in admin.delete_topics([cfg.configs_topic, cfg.status_topic]).values():
        try:
            future.result(timeout=30)
        except Exception:
            pass  # not created by this test


def topic_configs(admin: AdminClient, topic: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return {k: v.value for k, v in entries.items()}


def test_precreate_commands_hold_the_topics_their_configs_and_the_acls() -> None:
    cfg = ClusterConfig(name="orders", bootstrap_servers=("k0:9092", "k1:9092"), replica_id="a", replication_factor=3,
                        properties={"security.protocol": "SASL_SSL", "sasl.password": "hunter2"})
    lines = precreate_commands(cfg)
    assert lines[0] == ("kafka-topics.sh --bootstrap-server k0:9092 --command-config admin.properties --create "
                        "--topic triggerfish.orders.configs --partitions 1 --replication-factor 3 "
                        "--config cleanup.policy=compact")
    assert "--topic triggerfish.orders.status --partitions 1 --replication-factor 3 --config cleanup.policy=compact " \
           "--config segment.ms=600000 --config min.cleanable.dirty.ratio=0.1 " \
           "--config message.timestamp.type=LogAppendTime" in lines[1]
    acls = "\n".join(lines[2:])
    assert "--operation Read --operation Write --operation Describe" in acls
    assert "--topic triggerfish.orders.configs --topic triggerfish.orders.status" in acls
    assert "--operation Write --operation Describe --transactional-id triggerfish.orders.configs-writer" in acls
    assert "--operation IdempotentWrite --cluster" in acls
    assert "hunter2" not in "\n".join(lines)
    plain = precreate_commands(ClusterConfig(name="o", bootstrap_servers=("k:9092",), replica_id="a"))
    assert "--command-config" not in plain[0] and "--replication-factor" not in plain[0]


@pytest.mark.kafka
def test_both_topics_are_created_compacted_and_a_second_start_accepts_them(cluster: ClusterConfig,
                                                                           admin: AdminClient) -> None:
    started = time.monotonic()
    ensure_topics(cluster)
    print(f"\nensure_topics (create) took {time.monotonic() - started:.2f} s")
    topics = admin.list_topics(timeout=10).topics
    assert len(topics[cluster.configs_topic].partitions) == 1
    assert len(topics[cluster.status_topic].partitions) == 1
    assert topic_configs(admin, cluster.configs_topic)["cleanup.policy"] == "compact"
    status = topic_configs(admin, cluster.status_topic)
    assert (status["cleanup.policy"], status["segment.ms"], status["min.cleanable.dirty.ratio"],
            status["message.timestamp.type"]) == ("compact", "600000", "0.1", "LogAppendTime")
    ensure_topics(cluster)  # existing and right: nothing to do
    ensure_topics(ClusterConfig(name=cluster.name, bootstrap_servers=cluster.bootstrap_servers, replica_id="b",
                                create_topics=False))


@pytest.mark.kafka
def test_a_configs_topic_with_two_partitions_is_refused_with_the_fix(cluster: ClusterConfig, admin: AdminClient) -> None:
    admin.create_topics([NewTopic(cluster.configs_topic, num_partitions=2, replication_factor=1,
                                  config={"cleanup.policy": "compact"})])[cluster.configs_topic].result(timeout=30)
    with pytest.raises(ClusterError) as info:
        ensure_topics(cluster)
    assert "has 2 partitions" in str(info.value) and "exactly 1" in str(info.value)
    assert "another Cluster.Name" in str(info.value)


@pytest.mark.kafka
def test_a_configs_topic_that_is_not_compacted_is_refused_with_the_fix(cluster: ClusterConfig, admin: AdminClient) -> None:
    admin.create_topics([NewTopic(cluster.configs_topic, num_partitions=1,
                                  replication_factor=1)])[cluster.configs_topic].result(timeout=30)
    with pytest.raises(ClusterError) as info:
        ensure_topics(cluster)
    assert "cleanup.policy=delete" in str(info.value)
    assert f"--entity-name {cluster.configs_topic} --add-config cleanup.policy=compact" in str(info.value)


@pytest.mark.kafka
def test_missing_topics_without_create_topics_give_the_commands(cluster: ClusterConfig, admin: AdminClient) -> None:
    cfg = ClusterConfig(name=cluster.name, bootstrap_servers=cluster.bootstrap_servers, replica_id="a",
                        create_topics=False)
    with pytest.raises(ClusterError) as info:
        ensure_topics(cfg)
    assert f"{cfg.configs_topic} and {cfg.status_topic} not found" in str(info.value)
    assert "Cluster.CreateTopics is false" in str(info.value)
    assert info.value.commands == precreate_commands(cfg)
    assert all(line in str(info.value) for line in precreate_commands(cfg))
    assert cfg.configs_topic not in admin.list_topics(timeout=10).topics  # nothing was created


@pytest.mark.kafka
def test_a_principal_that_may_not_create_topics_gets_the_commands_and_no_secret(
        kafka: KafkaEnv, cluster: ClusterConfig, scram_user: tuple[str, str], admin: AdminClient) -> None:
    user, password = scram_user
    sasl = kafka.sasl(user=user, password=password)
    sasl.pop("bootstrap.servers")
    cfg = ClusterConfig(name=cluster.name, bootstrap_servers=(kafka.sasl_bootstrap,), replica_id="a", properties=sasl)
    with pytest.raises(ClusterError) as info:
        ensure_topics(cfg)
    text = str(info.value)
    assert "may not create it" in text and "AUTHORIZATION_FAILED" in text
    assert info.value.commands == precreate_commands(cfg)
    assert "--command-config admin.properties" in text
    assert password not in text and user not in text
    assert cfg.configs_topic not in admin.list_topics(timeout=10).topics


@pytest.mark.kafka
def test_wrong_credentials_are_a_cluster_error_naming_the_properties(kafka: KafkaEnv, unique_name) -> None:
    sasl = kafka.sasl(password="wrong-password-1234")
    sasl.pop("bootstrap.servers")
    cfg = ClusterConfig(name=unique_name("cl"), bootstrap_servers=(kafka.sasl_bootstrap,), replica_id="a",
                        properties=sasl)
    with pytest.raises(ClusterError) as info:
        ensure_topics(cfg, timeout=10)
    assert "refused the credentials" in str(info.value) and "Cluster.Properties" in str(info.value)
    assert "wrong-password-1234" not in str(info.value)


def test_an_unreachable_kafka_is_unavailable_naming_it_within_the_timeout(unique_name) -> None:
    port = closed_port()
    cfg = ClusterConfig(name=unique_name("cl"), bootstrap_servers=(f"127.0.0.1:{port}",), replica_id="a")
    started = time.monotonic()
    with pytest.raises(UnavailableError) as info:
        ensure_topics(cfg, timeout=3)
    assert time.monotonic() - started < 6
    assert f"127.0.0.1:{port}" in str(info.value) and "refused" in str(info.value).lower()
