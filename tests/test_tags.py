"""TagResource, UntagResource and ListTags on mapping and function ARNs, driven with boto3 (and the AWS CLI)
against a running triggerfish: Lambda's paths, errors and limits; tags survive a restart, and in a fleet
every replica reads the same tags from the configs topic."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from esm_helpers import RECORDER, function_dict, mapping_dict, wait_until, write_config, write_handler
from fleet_helpers import Fleet
from test_api_mappings import Stack, kafka_body, wait_state
from triggerfish.cluster.catalog import ClusterCatalog
from triggerfish.cluster.config import ClusterConfig
from triggerfish.tags import MAX_TAGS

pytestmark = pytest.mark.kafka

FN_ARN = "arn:aws:lambda:us-east-1:000000000000:function:f"


def _error(call: Callable[..., Any], **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response = info.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_tags_on_a_mapping_and_a_function_survive_a_restart(kafka, make_topic, tmp_path: Path) -> None:
    topic = make_topic()
    first = Stack(tmp_path)
    try:
        created = first.client.create_event_source_mapping(**kafka_body(topic, kafka.bootstrap,
                                                                        Tags={"team": "orders", "env": "dev"}))
        arn = created["EventSourceMappingArn"]
        assert "Tags" not in created  # Lambda never echoes them
        assert first.client.list_tags(Resource=arn)["Tags"] == {"team": "orders", "env": "dev"}
        enabled = wait_state(first.client, created["UUID"], "Enabled")
        first.client.tag_resource(Resource=arn, Tags={"env": "prod", "cost-center": "42"})
        first.client.untag_resource(Resource=arn, TagKeys=["team", "not-there"])
        assert first.client.list_tags(Resource=arn)["Tags"] == {"env": "prod", "cost-center": "42"}
        upper = arn.rsplit(":", 1)[0] + ":" + created["UUID"].upper()  # the same mapping, however it is spelt
        assert first.client.list_tags(Resource=upper)["Tags"] == {"env": "prod", "cost-center": "42"}
        after = first.client.get_event_source_mapping(UUID=created["UUID"])
        assert after["State"] == "Enabled" and after["LastModified"] == enabled["LastModified"]  # not an update

        assert first.client.list_tags(Resource=FN_ARN)["Tags"] == {}
        assert "Tags" not in first.client.get_function(FunctionName="f")
        first.client.tag_resource(Resource=FN_ARN, Tags={"owner": "alice"})
        assert first.client.get_function(FunctionName="f")["Tags"] == {"owner": "alice"}
        assert first.client.list_tags(Resource=FN_ARN[:-1] + "g")["Tags"] == {}  # per function
    finally:
        first.stop()

    second = Stack(tmp_path)
    try:
        assert second.client.list_tags(Resource=arn)["Tags"] == {"env": "prod", "cost-center": "42"}
        assert second.client.list_tags(Resource=FN_ARN)["Tags"] == {"owner": "alice"}
        second.client.untag_resource(Resource=FN_ARN, TagKeys=["owner"])
        assert second.client.list_tags(Resource=FN_ARN)["Tags"] == {}
    finally:
        second.stop()


def test_tagging_errors_and_limits_are_lambdas(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    try:
        client, raw = stack.client, stack.raw
        missing = "arn:aws:lambda:us-east-1:000000000000:event-source-mapping:0b8f7c2e-0000-4000-8000-000000000000"
        for call, extra in ((client.list_tags, {}), (client.tag_resource, {"Tags": {"a": "b"}}),
                            (client.untag_resource, {"TagKeys": ["a"]})):
            assert _error(call, Resource=missing, **extra)[::2] == ("ResourceNotFoundException", 404)
        assert _error(client.list_tags, Resource=FN_ARN[:-1] + "nope")[::2] == ("ResourceNotFoundException", 404)
        other_account = FN_ARN.replace("000000000000", "123456789012")
        assert _error(client.list_tags, Resource=other_account)[::2] == ("ResourceNotFoundException", 404)
        code, message, status = _error(client.tag_resource, Resource=FN_ARN + ":live", Tags={"a": "b"})
        assert (code, status) == ("InvalidParameterValueException", 400) and "versions or aliases" in message

        code, message, _ = _error(client.tag_resource, Resource=FN_ARN, Tags={"aws:owner": "x"})
        assert code == "InvalidParameterValueException" and "aws:" in message
        code, message, _ = _error(raw.tag_resource, Resource=FN_ARN, Tags={"k" * 129: "v"})
        assert code == "ValidationException" and "between 1 and 128" in message
        code, message, _ = _error(raw.tag_resource, Resource=FN_ARN, Tags={"k": "v" * 257})
        assert code == "ValidationException" and "less than or equal to 256" in message
        code, message, _ = _error(raw.tag_resource, Resource=FN_ARN, Tags={"bad<key>": "v"})
        assert code == "ValidationException" and "regular expression pattern" in message

        client.tag_resource(Resource=FN_ARN, Tags={f"k{i}": "v" for i in range(MAX_TAGS)})
        code, message, _ = _error(client.tag_resource, Resource=FN_ARN, Tags={"one-more": "v"})
        assert code == "InvalidParameterValueException" and "at most 50" in message
        client.tag_resource(Resource=FN_ARN, Tags={"k0": "replaced"})  # replacing a value is not one more
        assert len(client.list_tags(Resource=FN_ARN)["Tags"]) == MAX_TAGS
        assert _error(raw.create_event_source_mapping, FunctionName="f", Topics=["t"], StartingPosition="LATEST",
                      SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
                      Tags={"aws:x": "y"})[0] == "InvalidParameterValueException"
    finally:
        stack.stop()


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_aws_cli_tags_a_function(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}

    def aws(*args: str) -> Any:
        done = subprocess.run(["aws", "lambda", *args, "--endpoint-url", stack.url, "--output", "json"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    try:
        aws("tag-resource", "--resource", FN_ARN, "--tags", "team=orders,env=dev")
        aws("untag-resource", "--resource", FN_ARN, "--tag-keys", "env")
        assert aws("list-tags", "--resource", FN_ARN) == {"Tags": {"team": "orders"}}
    finally:
        stack.stop()


def test_every_replica_of_a_fleet_reads_the_same_tags(cluster: Callable[..., ClusterConfig]) -> None:
    arn = "arn:aws:lambda:us-east-1:000000000000:event-source-mapping:0b8f7c2e-0000-4000-8000-00000000abcd"
    a, b = ClusterCatalog(cluster("a")), ClusterCatalog(cluster("b"))
    changes: list[str] = []
    b.subscribe(lambda uuid, stored: changes.append(uuid))
    a.start()
    b.start()
    try:
        assert b.tags(arn) is None
        a.put_tags(arn, {"team": "orders"})
        wait_until(lambda: b.tags(arn) == {"team": "orders"}, timeout=15, message="replica b sees a's tags")
        b.put_tags(arn, {})
        wait_until(lambda: a.tags(arn) == {}, timeout=15, message="replica a sees b's untag")
        assert a.definitions() == {} and changes == []  # tags are no mapping definition
    finally:
        a.stop()
        b.stop()
    late = ClusterCatalog(cluster("c"))  # a replica started afterwards reads them from the topic
    late.start()
    try:
        assert late.tags(arn) == {}
    finally:
        late.stop()


def test_tags_set_through_one_replica_are_every_replicas(
    kafka, make_topic, cluster: Callable[..., ClusterConfig], tmp_path: Path
) -> None:
    code = write_handler(tmp_path, "rec", RECORDER)
    fn = function_dict(code, "rec.handler", Environment={"Variables": {"OUT": str(tmp_path / "out.jsonl")}},
                       Tags={"declared": "in-the-file"})
    config = write_config(tmp_path / "triggerfish.yaml", [fn], [mapping_dict(make_topic(), kafka.bootstrap)])
    fleet = Fleet(config, tmp_path, cluster=cluster().name, bootstrap=kafka.bootstrap)
    try:
        fleet.start(2)
        one, two = fleet.client(1), fleet.client(2)
        [mapping] = two.list_event_source_mappings()["EventSourceMappings"]
        arn = mapping["EventSourceMappingArn"]
        assert two.list_tags(Resource=FN_ARN)["Tags"] == {"declared": "in-the-file"}
        one.tag_resource(Resource=arn, Tags={"team": "orders"})
        one.tag_resource(Resource=FN_ARN, Tags={"owner": "alice"})
        wait_until(lambda: two.list_tags(Resource=arn)["Tags"] == {"team": "orders"}, timeout=5,
                   message="r2 lists the tags r1 set")
        assert two.list_tags(Resource=FN_ARN)["Tags"] == {"declared": "in-the-file", "owner": "alice"}
        fleet.restart(2)
        assert fleet.client(2).list_tags(Resource=arn)["Tags"] == {"team": "orders"}
    finally:
        fleet.stop()
