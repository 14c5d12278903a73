"""AWS managed policies the doctor knows by name, so ``list-attached-role-policies`` output (names and ARNs,
no documents) can be evaluated, and the managed policy to attach for a missing action.

Only policies whose whole document is listed here (from the AWS managed policy reference, current
versions) are evaluated; any other attached policy is reported as not read, with the command that
exports its document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
_ENI = ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]


def _allow(actions: list[str] | str, *, not_action: bool = False) -> dict[str, Any]:
    return {"Effect": "Allow", "NotAction" if not_action else "Action": actions, "Resource": "*"}


#: name -> (ARN, statements)
MANAGED: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "AWSLambdaBasicExecutionRole": ("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole", [_allow(_LOGS)]),
    "AWSLambdaVPCAccessExecutionRole": ("arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
                                        [_allow([*_LOGS, *_ENI, "ec2:DescribeSubnets"])]),
    "AWSLambdaENIManagementAccess": ("arn:aws:iam::aws:policy/service-role/AWSLambdaENIManagementAccess",
                                     [_allow(_ENI)]),
    "AWSLambdaMSKExecutionRole": ("arn:aws:iam::aws:policy/service-role/AWSLambdaMSKExecutionRole", [_allow([
        "kafka:DescribeCluster", "kafka:DescribeClusterV2", "kafka:GetBootstrapBrokers",
        "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
        "ec2:DeleteNetworkInterface", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", *_LOGS])]),
    "AWSLambdaRole": ("arn:aws:iam::aws:policy/service-role/AWSLambdaRole", [_allow("lambda:InvokeFunction")]),
    "AdministratorAccess": ("arn:aws:iam::aws:policy/AdministratorAccess", [_allow("*")]),
    "PowerUserAccess": ("arn:aws:iam::aws:policy/PowerUserAccess", [
        _allow(["iam:*", "organizations:*", "account:*"], not_action=True),
        _allow(["iam:CreateServiceLinkedRole", "iam:DeleteServiceLinkedRole", "iam:ListRoles",
                "organizations:DescribeOrganization", "account:ListRegions", "account:GetAccountInformation"])]),
}

# The managed policy to attach for an action, checked in this order (Lambda's documented ones first).
_FOR_ACTION = ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole", "AWSLambdaMSKExecutionRole",
               "AWSLambdaRole")


def document(name: str) -> Mapping[str, Any] | None:
    """The policy document of a known AWS managed policy (by name or ARN), or None."""
    entry = MANAGED.get(name.rsplit("/", 1)[-1])
    return {"Version": "2012-10-17", "Statement": entry[1]} if entry else None


def is_aws_managed(arn: str) -> bool:
    """``arn:<partition>:iam::aws:policy/...``: owned by AWS, not by the account."""
    parts = arn.split(":")
    return len(parts) > 5 and parts[2] == "iam" and parts[4] == "aws" and parts[5].startswith("policy/")


def to_attach(action: str, role_name: str) -> str:
    """The command that grants ``action``: a managed policy that has it, else an inline policy with just it."""
    for name in _FOR_ACTION:
        arn, statements = MANAGED[name]
        if any(action in s.get("Action", []) or s.get("Action") == action for s in statements):
            return f"aws iam attach-role-policy --role-name {role_name} --policy-arn {arn}"
    statement = f'{{"Effect":"Allow","Action":"{action}","Resource":"*"}}'
    return (f"aws iam put-role-policy --role-name {role_name} --policy-name allow-{action.replace(':', '-')} "
            f"--policy-document '{{\"Version\":\"2012-10-17\",\"Statement\":[{statement}]}}' (narrow Resource if you can)")
