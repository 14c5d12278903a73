"""What ``Ref`` and ``Fn::GetAtt`` give for a template's resources when nothing is deployed.

CloudFormation returns physical names and ARNs that exist only after a deployment. Locally we make
the same shapes from the resource's name property (``FunctionName``, ``QueueName`` ...) or its
logical id, in the pseudo parameters' region and account, so a mapping's ``FunctionName: !Ref Orders``
names the local function and a secret's ``!Ref`` gives an ARN the overrides file can be keyed by.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Evaluates the intrinsics in a name property (``FunctionName: !Sub ${AWS::StackName}-orders``).
Resolve = Callable[[Any], Any]


def _as_is(value: Any) -> Any:
    return value

#: type -> (name property, ARN format, what Ref returns: "name" | "arn" | "url")
_KINDS: dict[str, tuple[str, str, str]] = {
    "AWS::Lambda::Function": ("FunctionName", "arn:{p}:lambda:{r}:{a}:function:{n}", "name"),
    "AWS::SQS::Queue": ("QueueName", "arn:{p}:sqs:{r}:{a}:{n}", "url"),
    "AWS::SNS::Topic": ("TopicName", "arn:{p}:sns:{r}:{a}:{n}", "arn"),
    "AWS::S3::Bucket": ("BucketName", "arn:{p}:s3:::{n}", "name"),
    "AWS::SecretsManager::Secret": ("Name", "arn:{p}:secretsmanager:{r}:{a}:secret:{n}", "arn"),
    "AWS::MSK::Cluster": ("ClusterName", "arn:{p}:kafka:{r}:{a}:cluster/{n}/local", "arn"),
    "AWS::MSK::ServerlessCluster": ("ClusterName", "arn:{p}:kafka:{r}:{a}:cluster/{n}/local", "arn"),
    "AWS::IAM::Role": ("RoleName", "arn:{p}:iam::{a}:role/{n}", "name"),
    "AWS::Logs::LogGroup": ("LogGroupName", "arn:{p}:logs:{r}:{a}:log-group:{n}", "name"),
}


@dataclass(frozen=True)
class Place:
    """The partition, region and account the template is "deployed" to locally."""

    partition: str
    region: str
    account: str


def name_of(logical_id: str, resource: dict[str, Any], resolve: Resolve = _as_is) -> str:
    """The resource's physical name: its name property when it has one, else its logical id."""
    kind = _KINDS.get(str(resource.get("Type")))
    props = resource.get("Properties") or {}
    value = resolve(props.get(kind[0])) if kind and isinstance(props, dict) else None
    return value if isinstance(value, str) and value else logical_id


def arn_of(logical_id: str, resource: dict[str, Any], place: Place, resolve: Resolve = _as_is) -> str:
    kind = _KINDS.get(str(resource.get("Type")))
    fmt = kind[1] if kind else "arn:{p}:cloudformation:{r}:{a}:local/{n}"
    return fmt.format(p=place.partition, r=place.region, a=place.account, n=name_of(logical_id, resource, resolve))


def _qualified(resource: dict[str, Any], place: Place, resolve: Resolve) -> str:
    """An alias's or version's ARN: the function's ARN and its qualifier (``AutoPublishAlias`` makes them)."""
    props = resource.get("Properties") or {}
    function = str(resolve(props.get("FunctionName"))).split(":")[-1]
    qualifier = resolve(props.get("Name")) if resource.get("Type") == "AWS::Lambda::Alias" else "1"
    return f"arn:{place.partition}:lambda:{place.region}:{place.account}:function:{function}:{qualifier}"


def ref(logical_id: str, resource: dict[str, Any], place: Place, resolve: Resolve = _as_is) -> str:
    """``{"Ref": logical_id}``."""
    if resource.get("Type") in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
        return _qualified(resource, place, resolve)
    kind = _KINDS.get(str(resource.get("Type")))
    returns = kind[2] if kind else "name"
    name = name_of(logical_id, resource, resolve)
    if returns == "arn":
        return arn_of(logical_id, resource, place, resolve)
    if returns == "url":
        return f"https://sqs.{place.region}.amazonaws.com/{place.account}/{name}"
    return name


def get_att(logical_id: str, resource: dict[str, Any], attribute: str, place: Place,
            resolve: Resolve = _as_is) -> str:
    """``{"Fn::GetAtt": [logical_id, attribute]}``: ARNs and names; any other attribute is a stand-in string."""
    if attribute in ("Arn", "TopicArn", "ClusterArn", "Id"):
        return arn_of(logical_id, resource, place, resolve)
    if attribute in ("QueueName", "TopicName", "Name"):
        return name_of(logical_id, resource, resolve)
    if attribute == "QueueUrl":
        return ref(logical_id, resource, place, resolve)
    return f"{logical_id}.{attribute}"
