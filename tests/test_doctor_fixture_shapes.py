"""The doctor's AWS fixtures use only the member names the AWS CLI prints: checked against botocore's model.

Every key of every structure must be a member of the operation's output shape (recursively), so a test
cannot pass on a field AWS never sends. The CLI prints the API's PascalCase member names as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.session
import pytest

import test_doctor_network_endpoints as endpoints_tests

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
_SESSION = botocore.session.get_session()


def unknown_keys(shape: Any, value: Any, path: str = "$") -> list[str]:
    """Paths of keys that are not members of ``shape``."""
    if shape.type_name == "structure" and isinstance(value, dict):
        found = [f"{path}.{k}" for k in value if k not in shape.members]
        for k, v in value.items():
            if k in shape.members:
                found += unknown_keys(shape.members[k], v, f"{path}.{k}")
        return found
    if shape.type_name == "list" and isinstance(value, list):
        return [p for i, item in enumerate(value) for p in unknown_keys(shape.member, item, f"{path}[{i}]")]
    return []


def output(service: str, operation: str) -> Any:
    return _SESSION.get_service_model(service).operation_model(operation).output_shape


@pytest.mark.parametrize(("name", "operation"), [
    ("list-role-policies.json", "ListRolePolicies"),
    ("list-attached-with-customer.json", "ListAttachedRolePolicies"),
    ("attached-vpc-access.json", "ListAttachedRolePolicies"),
    ("inline-eni-partial.json", "GetRolePolicy"),
    ("get-policy-orders-eni.json", "GetPolicy"),
    ("get-policy-version-orders-eni.json", "GetPolicyVersion"),
])
def test_iam_fixtures(name: str, operation: str) -> None:
    doc = json.loads((FIXTURES / "iam" / name).read_text())
    assert unknown_keys(output("iam", operation), doc) == []


_EC2 = {"vpc-endpoints": "DescribeVpcEndpoints", "route-tables": "DescribeRouteTables",
        "security-groups": "DescribeSecurityGroups", "network-acls": "DescribeNetworkAcls"}


def test_the_endpoint_tests_mutations(tmp_path: Path) -> None:
    # The gateway endpoint, its prefix-list route, IPv6 rules and routes the endpoint tests add.
    gateway = endpoints_tests._s3_gateway(True)
    d = endpoints_tests.scenario(tmp_path, "no-sts-path", vpc_endpoints=gateway["vpc_endpoints"],
                                 route_tables=gateway["route_tables"],
                                 security_groups=endpoints_tests._lambda_egress(
                                     endpoints_tests._tcp(443, PrefixListIds=[{"PrefixListId": endpoints_tests.S3_PL}]),
                                     {"IpProtocol": "-1", "IpRanges": [], "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
                                      "PrefixListIds": [], "UserIdGroupPairs": []}))
    for name, operation in _EC2.items():
        doc = json.loads((d / f"{name}.json").read_text())
        assert unknown_keys(output("ec2", operation), doc) == [], name


def test_the_check_sees_a_key_aws_never_sends() -> None:
    assert unknown_keys(output("iam", "GetPolicy"), {"Policy": {"Arn": "a", "DefaultVersion": "v1"}}) == \
        ["$.Policy.DefaultVersion"]
    assert unknown_keys(output("ec2", "DescribeRouteTables"),
                        {"RouteTables": [{"Routes": [{"DestinationPrefixList": "pl-1"}]}]}) == \
        ["$.RouteTables[0].Routes[0].DestinationPrefixList"]
