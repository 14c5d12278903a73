"""Secret references: Secrets Manager (moto server), file:// and env:, with errors that never leak values."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from triggerfish import secrets
from triggerfish.errors import ConfigError, SecretError


def test_secrets_manager_arn(moto_server: str) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="kafka-user", SecretString=json.dumps({"username": "u", "password": "p4ss"}))["ARN"]
    assert secrets.read_json(arn) == {"username": "u", "password": "p4ss"}


def test_missing_secrets_manager_secret_names_the_arn(moto_server: str) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"
    with pytest.raises(SecretError, match="nope-AbCdEf.*ResourceNotFoundException"):
        secrets.read_json(arn)


def test_file_and_env(tmp_path, monkeypatch) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"certificate": "x"}')
    assert secrets.read_json(f"file://{path}") == {"certificate": "x"}
    monkeypatch.setenv("TF_SECRET", '{"username": "a", "password": "b"}')
    assert secrets.read_json("env:TF_SECRET")["username"] == "a"


def test_bad_content_never_echoes_the_value(monkeypatch) -> None:
    monkeypatch.setenv("TF_SECRET", "hunter2-not-json")
    with pytest.raises(SecretError) as info:
        secrets.read_json("env:TF_SECRET")
    assert "hunter2" not in str(info.value)
    assert "env:TF_SECRET" in str(info.value)


def test_unknown_reference_says_what_is_accepted() -> None:
    with pytest.raises(SecretError, match="file:///path.json or env:VAR"):
        secrets.read_text("vault://x")


def test_bare_name_is_read_from_secrets_manager_only_with_a_region(moto_server: str) -> None:
    boto3.client("secretsmanager", region_name="eu-west-1").create_secret(Name="by-name", SecretString="pw-by-name")
    assert secrets.read_text("by-name", region="eu-west-1") == "pw-by-name"
    with pytest.raises(SecretError, match="not understood"):
        secrets.read_text("by-name")


def test_botocore_debug_logs_never_carry_the_secret(moto_server: str, caplog) -> None:
    import logging

    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="debug-leak", SecretString="s3cr3t-debug-value")["ARN"]
    with caplog.at_level(logging.DEBUG):
        assert secrets.read_text(arn) == "s3cr3t-debug-value"
    assert caplog.records, "botocore logged nothing at DEBUG: the test would prove nothing"
    assert "s3cr3t-debug-value" not in caplog.text


def test_reference_policy_limits_files_and_variables(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "escape").symlink_to(tmp_path)
    policy = secrets.ReferencePolicy(file_roots=(str(root),), env_prefixes=("KAFKA_",))
    policy.check(f"file://{root}/a.json", "F")
    policy.check(f"file://{root}/sub/../a.json", "F")
    policy.check("env:KAFKA_PASSWORD", "F")
    policy.check("arn:aws:secretsmanager:us-east-1:1:secret:x", "F")
    for ref in (f"file://{root}/../other.json", f"file://{root}/escape/other.json", "file:///etc/passwd",
                "env:HOME", "env:KAFKA"):
        with pytest.raises(ConfigError) as info:
            policy.check(ref, "SourceAccessConfigurations[0].URI")
        assert info.value.field == "SourceAccessConfigurations[0].URI" and ref in info.value.message
    with pytest.raises(ConfigError, match="none configured"):
        secrets.ReferencePolicy().check("env:KAFKA_PASSWORD", "F")
