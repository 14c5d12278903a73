"""The Cluster: section and the --cluster* flags: validation, placeholders, owned properties, precedence."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from triggerfish import config as project_config
from triggerfish.cluster.config import ClusterConfig, default_replica_id, from_cli
from triggerfish.errors import ConfigError

SECRET = "s3cr3t-Value-42"


def section(**fields: object) -> dict[str, object]:
    return {"Name": "orders", "BootstrapServers": ["kafka-0:9092", "kafka-1:9092"], **fields}


def test_a_minimal_section_and_the_names_derived_from_it() -> None:
    cfg = ClusterConfig.from_dict(section(), replica_id="pod-1")
    assert cfg.bootstrap_servers == ("kafka-0:9092", "kafka-1:9092")
    assert (cfg.replica_id, cfg.replication_factor, cfg.create_topics, cfg.session_timeout_s) == ("pod-1", -1, True, 10.0)
    assert cfg.configs_topic == "triggerfish.orders.configs"
    assert cfg.status_topic == "triggerfish.orders.status"
    assert cfg.writer_id == "triggerfish.orders.configs-writer"
    assert cfg.client_config() == {"bootstrap.servers": "kafka-0:9092,kafka-1:9092"}


def test_bootstrap_as_a_string_and_every_optional_field() -> None:
    cfg = ClusterConfig.from_dict(section(BootstrapServers="a:1, b:2", ReplicationFactor=3, CreateTopics="false",
                                          Properties={"security.protocol": "SASL_SSL", "request.timeout.ms": 5000,
                                                      "ssl.endpoint.identification.algorithm": "https"}))
    assert cfg.bootstrap_servers == ("a:1", "b:2")
    assert (cfg.replication_factor, cfg.create_topics) == (3, False)
    assert cfg.client_config()["request.timeout.ms"] == "5000"
    assert cfg.client_config()["bootstrap.servers"] == "a:1,b:2"


def test_the_replica_id_defaults_to_host_and_pid() -> None:
    assert default_replica_id().endswith(f"-{os.getpid()}")
    assert ClusterConfig.from_dict(section()).replica_id == default_replica_id()


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"BootstrapServers": ["a:1"]}, "Cluster.Name", "Name is required"),
    ({"Name": "orders/eu"}, "Cluster.Name", "regular expression"),
    ({"Name": "x" * 101}, "Cluster.Name", "100"),
    ({"Name": "orders"}, "Cluster.BootstrapServers", "required"),
    ({"Name": "o", "BootstrapServers": "kafka-0"}, "Cluster.BootstrapServers", "HOST:PORT"),
    ({"Name": "o", "BootstrapServers": ["a:99999"]}, "Cluster.BootstrapServers", "HOST:PORT"),
    ({"Name": "o", "BootstrapServers": []}, "Cluster.BootstrapServers", "at least one"),
    ({"Name": "o", "BootstrapServers": 9092}, "Cluster.BootstrapServers", "list"),
    ({"Name": "o", "BootstrapServers": "a:1", "ReplicationFactor": 0}, "Cluster.ReplicationFactor", "-1"),
    ({"Name": "o", "BootstrapServers": "a:1", "CreateTopic": True}, "Cluster.CreateTopic", "did you mean CreateTopics"),
    ({"Name": "o", "BootstrapServers": "a:1", "Properties": ["x"]}, "Cluster.Properties", "mapping"),
])
def test_bad_fields_are_named(fields: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        ClusterConfig.from_dict(fields)
    assert info.value.field == field
    assert words in str(info.value)


@pytest.mark.parametrize("key", ["transactional.id", "group.id", "isolation.level", "bootstrap.servers",
                                 "enable.idempotence", "enable.auto.commit"])
def test_properties_the_cluster_clients_own_are_refused(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        ClusterConfig.from_dict(section(Properties={key: SECRET}))
    assert info.value.field == f"Cluster.Properties.{key}"
    assert SECRET not in str(info.value)


def test_env_and_file_placeholders_are_resolved_and_never_echoed(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TF_TEST_KAFKA_PASSWORD", SECRET)
    (tmp_path / "user").write_text("triggerfish\n")
    cfg = ClusterConfig.from_dict(section(Properties={
        "sasl.password": "${env:TF_TEST_KAFKA_PASSWORD}",
        "sasl.username": f"${{file:{tmp_path / 'user'}}}",
        "ssl.key.password": "pre-${env:TF_TEST_KAFKA_PASSWORD}-post",
    }))
    assert cfg.properties["sasl.password"] == SECRET
    assert cfg.properties["sasl.username"] == "triggerfish"  # one trailing newline dropped
    assert cfg.properties["ssl.key.password"] == f"pre-{SECRET}-post"
    assert SECRET not in repr(cfg)


@pytest.mark.parametrize(("value", "words"), [
    ("${env:TF_TEST_UNSET_VARIABLE}", "TF_TEST_UNSET_VARIABLE is not set"),
    ("${file:/nonexistent/tf/password}", "cannot read /nonexistent/tf/password"),
    ("${vault:secret/x}", "not a known placeholder"),
])
def test_unresolvable_placeholders_name_the_property(value: str, words: str, monkeypatch) -> None:
    monkeypatch.delenv("TF_TEST_UNSET_VARIABLE", raising=False)
    with pytest.raises(ConfigError) as info:
        ClusterConfig.from_dict(section(Properties={"sasl.password": value}))
    assert info.value.field == "Cluster.Properties.sasl.password"
    assert words in str(info.value)


def test_a_property_value_of_the_wrong_type_is_not_shown() -> None:
    with pytest.raises(ConfigError) as info:
        ClusterConfig.from_dict(section(Properties={"sasl.password": [SECRET]}))
    assert info.value.field == "Cluster.Properties.sasl.password"
    assert SECRET not in str(info.value)


@pytest.fixture
def no_cluster_env(monkeypatch):
    for var in ("TRIGGERFISH_CLUSTER", "TRIGGERFISH_CLUSTER_BOOTSTRAP", "TRIGGERFISH_REPLICA_ID"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_from_cli_without_section_nor_flags_is_single_process_mode(no_cluster_env) -> None:
    assert from_cli(None, name=None, bootstrap=None, replica_id=None) is None
    assert from_cli(None, name=None, bootstrap=None, replica_id="pod-1") is None


def test_from_cli_flags_alone_define_the_cluster(no_cluster_env) -> None:
    cfg = from_cli(None, name="orders", bootstrap="a:1,b:2", replica_id="pod-1")
    assert cfg is not None
    assert (cfg.name, cfg.bootstrap_servers, cfg.replica_id, dict(cfg.properties)) == ("orders", ("a:1", "b:2"), "pod-1", {})


def test_from_cli_reads_the_environment(no_cluster_env) -> None:
    no_cluster_env.setenv("TRIGGERFISH_CLUSTER", "orders")
    no_cluster_env.setenv("TRIGGERFISH_CLUSTER_BOOTSTRAP", "k:9092")
    no_cluster_env.setenv("TRIGGERFISH_REPLICA_ID", "pod-7")
    cfg = from_cli(None, name=None, bootstrap=None, replica_id=None)
    assert cfg is not None and (cfg.name, cfg.bootstrap_servers, cfg.replica_id) == ("orders", ("k:9092",), "pod-7")
    flagged = from_cli(None, name="billing", bootstrap=None, replica_id=None)
    assert flagged is not None and flagged.name == "billing"  # a flag beats the environment


@pytest.mark.parametrize(("name", "bootstrap", "flag"), [("orders", None, "--cluster-bootstrap"),
                                                         (None, "k:9092", "--cluster")])
def test_from_cli_half_a_cluster_names_the_missing_flag(no_cluster_env, name, bootstrap, flag) -> None:
    with pytest.raises(ConfigError) as info:
        from_cli(None, name=name, bootstrap=bootstrap, replica_id=None)
    assert info.value.field == flag


def test_from_cli_flags_override_the_section_and_keep_its_properties(no_cluster_env) -> None:
    file_section = ClusterConfig.from_dict(section(Properties={"security.protocol": "SSL"}, ReplicationFactor=3),
                                           replica_id="host-1")
    assert from_cli(file_section, name=None, bootstrap=None, replica_id=None) == file_section
    cfg = from_cli(file_section, name="billing", bootstrap="z:1", replica_id="pod-2")
    assert cfg is not None
    assert (cfg.name, cfg.bootstrap_servers, cfg.replica_id) == ("billing", ("z:1",), "pod-2")
    assert (dict(cfg.properties), cfg.replication_factor) == ({"security.protocol": "SSL"}, 3)


@pytest.mark.parametrize(("kw", "flag"), [({"name": "bad name"}, "--cluster"),
                                          ({"bootstrap": "nohost"}, "--cluster-bootstrap"),
                                          ({"replica_id": "a/b"}, "--replica-id")])
def test_bad_flag_values_name_the_flag(no_cluster_env, kw, flag) -> None:
    args = {"name": "orders", "bootstrap": "k:1", "replica_id": None, **kw}
    with pytest.raises(ConfigError) as info:
        from_cli(None, **args)
    assert info.value.field == flag
    assert re.search(r"not (allowed|HOST:PORT)", str(info.value))


def test_the_config_file_carries_the_section(tmp_path: Path) -> None:
    (tmp_path / "h.py").write_text("def handler(event, context):\n    return None\n")
    doc = {"Functions": [{"FunctionName": "f", "Handler": "h.handler", "CodeUri": "."}],
           "Cluster": {"Name": "orders", "BootstrapServers": ["k:9092"]}}
    project = project_config.parse(doc, base_dir=tmp_path)
    assert project.cluster is not None and project.cluster.configs_topic == "triggerfish.orders.configs"
    assert project_config.parse({**doc, "Cluster": None}, base_dir=tmp_path).cluster is None
    with pytest.raises(ConfigError) as info:
        project_config.parse({**doc, "Cluster": {"Name": "orders", "BootstrapServers": ["k:9092"], "Nmae": 1}},
                             base_dir=tmp_path)
    assert "Cluster.Nmae" in str(info.value)
