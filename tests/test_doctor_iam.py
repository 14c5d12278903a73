"""The IAM reader behind ``doctor lambda-vpc --role-policy``: every shape the AWS CLI prints, never refused.

Fixtures under tests/fixtures/aws/iam/ are the outputs of ``list-attached-role-policies``,
``list-role-policies``, ``get-role-policy``, ``get-policy`` and ``get-policy-version`` for the role
``orders-consumer`` (the shapes of the IAM API's responses as the CLI prints them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from triggerfish.doctor import iam, lambda_vpc
from triggerfish.doctor.iam_conditions import evaluate
from triggerfish.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
IAM = FIXTURES / "iam"
ATTACHED, LISTED = IAM / "list-attached-with-customer.json", IAM / "list-role-policies.json"
INLINE, POLICY, VERSION = IAM / "inline-eni-partial.json", IAM / "get-policy-orders-eni.json", \
    IAM / "get-policy-version-orders-eni.json"
ARN = "arn:aws:iam::123456789012:policy/orders-eni"


def permissions(tmp: Path, *files: Path) -> dict[str, object]:
    shutil.copytree(FIXTURES / "reachable", tmp, dirs_exist_ok=True)
    checks = lambda_vpc.diagnose(tmp, tmp / "function.json", role_policies=list(files))
    return {c.target: c for c in checks if c.stage == "role-permissions"}


def test_every_shape_together_is_read_and_evaluated(tmp_path: Path) -> None:
    perms = permissions(tmp_path, ATTACHED, LISTED, INLINE, POLICY, VERSION)
    assert {c.status for c in perms.values()} == {"ok"}, perms  # type: ignore[attr-defined]
    delete = perms["ec2:DeleteNetworkInterface"]
    # The version document is named after its policy (from get-policy), and its ec2:Vpc condition is evaluated.
    assert delete.detail == ("allowed by get-policy-version-orders-eni.json: orders-eni (policy version v3) "  # type: ignore[attr-defined]
                             "statement TeardownInOurVpc")
    # kafka-describe was listed but not given: it grants nothing asked here, so nothing hangs on it.
    assert "kafka-describe" not in " ".join(c.detail for c in perms.values())  # type: ignore[attr-defined]


def test_policies_named_without_documents_are_listed_with_their_export_command(tmp_path: Path) -> None:
    perms = permissions(tmp_path, ATTACHED, LISTED, INLINE, POLICY)
    delete = perms["ec2:DeleteNetworkInterface"]
    assert delete.status == "fail"  # type: ignore[attr-defined]
    unread = delete.detail.split("not read (may grant it): ", 1)[1].split("; ")  # type: ignore[attr-defined]
    assert sorted(unread) == [
        "kafka-describe (inline: `aws iam get-role-policy --role-name orders-consumer --policy-name kafka-describe`)",
        f"orders-eni (managed: `aws iam get-policy-version --policy-arn {ARN} --version-id v3`)"]
    assert delete.fix.startswith("export the policies not read")  # type: ignore[attr-defined]
    # Only names (no get-policy): the version to export is looked up by the command itself.
    perms = permissions(tmp_path, ATTACHED)
    assert (f"--policy-arn {ARN} --version-id $(aws iam get-policy --policy-arn {ARN} --query "
            "Policy.DefaultVersionId --output text)") in perms["ec2:CreateNetworkInterface"].detail  # type: ignore[attr-defined]


def test_a_condition_that_does_not_hold_names_the_missing_action_and_the_policy(tmp_path: Path) -> None:
    other = tmp_path / "other-vpc.json"
    doc = json.loads(VERSION.read_text())
    doc["PolicyVersion"]["Document"]["Statement"][0]["Condition"]["ArnEquals"]["ec2:Vpc"] = \
        "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-0ffffffffffffffff"
    other.write_text(json.dumps(doc))
    perms = permissions(tmp_path / "d", INLINE, other)
    delete = perms["ec2:DeleteNetworkInterface"]
    assert delete.status == "fail" and delete.detail == "no statement allows it (implicit deny)"  # type: ignore[attr-defined]
    assert "cannot DeleteNetworkInterface" in delete.problem  # type: ignore[attr-defined]
    assert delete.fix == ("attach the AWS managed policy: aws iam attach-role-policy --role-name orders-consumer "  # type: ignore[attr-defined]
                          "--policy-arn arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole")


def test_a_condition_on_a_key_not_known_here_is_a_warning_naming_the_key(tmp_path: Path) -> None:
    tagged = tmp_path / "tagged.json"
    tagged.write_text(json.dumps({"RoleName": "orders-consumer", "PolicyName": "tagged", "PolicyDocument": {
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*",
                                                "Condition": {"StringEquals": {"aws:PrincipalTag/team": "orders"}}}]}}))
    perms = permissions(tmp_path / "d", tagged)
    create = perms["ec2:CreateNetworkInterface"]
    assert create.status == "warn" and "if its aws:PrincipalTag/team match: not known here" in create.detail  # type: ignore[attr-defined]


def test_power_user_by_name_and_a_wildcard_deny(tmp_path: Path) -> None:
    power = tmp_path / "power.json"
    power.write_text(json.dumps({"AttachedPolicies": [
        {"PolicyName": "PowerUserAccess", "PolicyArn": "arn:aws:iam::aws:policy/PowerUserAccess"}]}))
    assert {c.status for c in permissions(tmp_path / "a", power).values()} == {"ok"}  # type: ignore[attr-defined]
    deny = tmp_path / "deny.json"
    deny.write_text(json.dumps({"RoleName": "orders-consumer", "PolicyName": "guard", "PolicyDocument": {
        "Version": "2012-10-17", "Statement": [{"Sid": "NoEniChanges", "Effect": "Deny",
                                                "Action": "EC2:*NetworkInterface", "Resource": "*"}]}}))
    perms = permissions(tmp_path / "b", power, deny)
    assert perms["ec2:CreateNetworkInterface"].detail == \
        "explicitly denied by deny.json: inline policy guard statement NoEniChanges"  # type: ignore[attr-defined]
    assert perms["ec2:AssignPrivateIpAddresses"].status == "ok"  # type: ignore[attr-defined]


def test_an_empty_listing_is_valid_input_and_not_json_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "none.json"
    empty.write_text(json.dumps({"AttachedPolicies": []}))
    assert iam.read_policies([empty], "--role-policy").policies == []
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"Functions": []}))
    with pytest.raises(ConfigError, match="list-role-policies"):
        iam.read_policies([other], "--role-policy")


def test_condition_operators() -> None:
    ctx = {"aws:SourceVpc": ["vpc-1"], "aws:TagKeys": ["team", "env"], "aws:SourceIp": ["10.0.1.5"],
           "aws:MultiFactorAuthPresent": []}
    assert evaluate({"StringEquals": {"aws:SourceVpc": ["vpc-2", "vpc-1"]}}, ctx).value is True
    assert evaluate({"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}, ctx).value is False
    assert evaluate({"ForAllValues:StringLike": {"aws:TagKeys": ["team", "e*"]}}, ctx).value is True
    assert evaluate({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}}, ctx).value is False
    assert evaluate({"IpAddress": {"aws:SourceIp": "10.0.0.0/16"}}, ctx).value is True
    assert evaluate({"Null": {"aws:MultiFactorAuthPresent": "true"}}, ctx).value is True
    assert evaluate({"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}, ctx).value is True  # absent: holds
    assert evaluate({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, ctx).value is False
    unknown = evaluate({"StringEquals": {"aws:SourceVpc": "vpc-1", "aws:PrincipalOrgID": "o-1"}}, ctx)
    assert unknown.value is None and unknown.unknown_keys == ("aws:PrincipalOrgID",)
