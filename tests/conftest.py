"""Shared fixtures: one real Kafka broker per test session, unique names, admin clients.

The broker is started through the same code path as `triggerfish kafka up` and left running at the
end of the session (several test sessions may share it; `.ci/run` stops it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from cluster_replica import delete_cluster_topics
from triggerfish import localkafka
from triggerfish.cluster.config import ClusterConfig
from triggerfish.localkafka import KafkaEnv

# The site-fencing fixtures (aws, ca, ga, infinispan, make_world) for the test_fencing_* modules;
# the schema registry (schema_registry: one Apicurio per session) for the schema registry tests.
pytest_plugins = ["fencing_support", "registry_helpers"]


@pytest.fixture(scope="session")
def kafka() -> KafkaEnv:
    return localkafka.up()


@pytest.fixture(scope="session")
def admin(kafka: KafkaEnv) -> AdminClient:
    return AdminClient(kafka.plaintext())


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Names unique to this test run, readable in broker logs: <prefix>-<test>-<random>."""
    test = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:40]

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{test}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def make_topic(admin: AdminClient, unique_name: Callable[[str], str]) -> Iterator[Callable[..., str]]:
    """Create a uniquely named topic and delete it after the test."""
    created: list[str] = []

    def make(partitions: int = 1, prefix: str = "topic") -> str:
        name = unique_name(prefix)
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        futures[name].result(timeout=30)
        created.append(name)
        return name

    yield make
    if created:
        for future in admin.delete_topics(created).values():
            try:
                future.result(timeout=30)
            except Exception:
                pass


@pytest.fixture
def cluster(kafka: KafkaEnv, admin: AdminClient, unique_name: Callable[[str], str]) -> Iterator[Callable[..., ClusterConfig]]:
    """``cluster(replica_id)``: configs of one fresh cluster; its topics are deleted after the test."""
    name = unique_name("cl")

    def make(replica: str = "a", **kw: Any) -> ClusterConfig:
        return ClusterConfig(name=name, bootstrap_servers=(kafka.bootstrap,), replica_id=replica, **kw)

    yield make
    delete_cluster_topics(admin, make())


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A real moto server on 127.0.0.1 (HTTP, all services); yields its endpoint URL.

    Sets the standard AWS_* variables for this process so boto3 and subprocesses reach it.
    """
    import os

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(
        AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    yield url
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@pytest.fixture
def running_engine(tmp_path):
    """Start in-process ESM engines: ``running_engine([FunctionConfig], [MappingConfig])`` returns an
    ``esm_helpers.RunningEngine`` (engine, runtime, store, uuids, status()); all are stopped after the test.
    More helpers (handler files, produce, delivered, committed_offsets, RunProcess) are in tests/esm_helpers.py."""
    from esm_helpers import RunningEngine

    started: list[RunningEngine] = []

    def start(functions, mappings, state_dir=None):
        engine = RunningEngine(functions, mappings, state_dir or tmp_path)
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.stop()


@pytest.fixture
def acls(admin: AdminClient) -> Iterator[Callable[[list], None]]:
    """``acls([kafka_helpers.allow(...), ...])`` creates ACL bindings; the ones created are deleted after the test."""
    from kafka_helpers import create_acls, delete_acls

    made: list = []

    def grant(bindings: list) -> None:
        create_acls(admin, bindings)
        made.extend(bindings)

    yield grant
    if made:
        delete_acls(admin, made)


@pytest.fixture
def scram_user(admin: AdminClient) -> Iterator[tuple[str, str]]:
    """A fresh SCRAM-SHA-512 (user, password) with no ACLs; the user and its ACLs are removed afterwards."""
    from kafka_helpers import create_scram_user, delete_scram_user

    user, password = create_scram_user(admin)
    yield user, password
    delete_scram_user(admin, user)
