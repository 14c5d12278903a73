"""A small IAM policy reader: does a set of identity policies allow an action on a resource?

Enough for diagnosis (Allow/Deny, Action/NotAction, Resource/NotResource, wildcards); conditions are
reported, not evaluated.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from triggerfish.errors import ConfigError

# AWS managed policies whose EC2 network-interface actions matter to a VPC function (by name).
_MANAGED_ENI_ACTIONS: dict[str, tuple[str, ...]] = {
    "AWSLambdaVPCAccessExecutionRole": (
        "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
        "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
    ),
    "AWSLambdaENIManagementAccess": (
        "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
    ),
    "AWSLambdaMSKExecutionRole": (
        "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVpcs",
        "ec2:DeleteNetworkInterface", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
    ),
    "AdministratorAccess": ("*",),
}


@dataclass(frozen=True)
class _Decision:
    allowed: bool
    reason: str  # which statement decided, or why nothing did
    conditional: bool = False


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _document(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, str):  # get-role output carries URL-encoded JSON in some SDKs
        try:
            value = json.loads(unquote(value))
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, Mapping) and "Statement" in value else None


def documents(doc: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """Every policy document inside one JSON file, named: a bare policy, ``get-role-policy``,
    ``get-policy-version``, ``get-role`` (trust policy) or ``list-attached-role-policies`` (managed names)."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    if not isinstance(doc, Mapping):
        return found
    if _document(doc):
        found.append(("policy", doc))
    if _document(doc.get("PolicyDocument")):
        found.append((str(doc.get("PolicyName", "inline policy")), _document(doc["PolicyDocument"])))  # type: ignore[arg-type]
    version = doc.get("PolicyVersion")
    if isinstance(version, Mapping) and _document(version.get("Document")):
        found.append((str(version.get("VersionId", "policy version")), _document(version["Document"])))  # type: ignore[arg-type]
    role = doc.get("Role")
    if isinstance(role, Mapping) and _document(role.get("AssumeRolePolicyDocument")):
        found.append(("AssumeRolePolicyDocument", _document(role["AssumeRolePolicyDocument"])))  # type: ignore[arg-type]
    for attached in doc.get("AttachedPolicies", []) or []:
        name = str(attached.get("PolicyName") or str(attached.get("PolicyArn", "")).rsplit("/", 1)[-1])
        if name in _MANAGED_ENI_ACTIONS:
            stmt = {"Effect": "Allow", "Action": list(_MANAGED_ENI_ACTIONS[name]), "Resource": "*"}
            found.append((f"{name} (AWS managed)", {"Version": "2012-10-17", "Statement": [stmt]}))
    return found


def read_policies(paths: Iterable[Path], option: str) -> list[tuple[str, Mapping[str, Any]]]:
    out: list[tuple[str, Mapping[str, Any]]] = []
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(option, f"cannot read {path} as JSON ({exc})") from None
        found = documents(doc)
        if not found:
            raise ConfigError(option, f"{path} holds no IAM policy (expected a policy document, or the output of "
                              "`aws iam get-role-policy`, `get-policy-version`, `get-role` or `list-attached-role-policies`)")
        out.extend((f"{Path(path).name}: {name}", d) for name, d in found)
    return out


def _matches(patterns: Sequence[Any], value: str, *, case: bool) -> bool:
    v = value if case else value.lower()
    return any(fnmatchcase(v, str(p) if case else str(p).lower()) for p in patterns)


def _applies(stmt: Mapping[str, Any], action: str, resource: str) -> bool:
    if "NotAction" in stmt:
        if _matches(_as_list(stmt["NotAction"]), action, case=False):
            return False
    elif not _matches(_as_list(stmt.get("Action")), action, case=False):
        return False
    if "NotResource" in stmt:
        return not _matches(_as_list(stmt["NotResource"]), resource, case=True)
    return _matches(_as_list(stmt.get("Resource", "*")), resource, case=True)


def decide(policies: Sequence[tuple[str, Mapping[str, Any]]], action: str, resource: str = "*") -> _Decision:
    allow: tuple[str, bool] | None = None
    for name, doc in policies:
        for i, stmt in enumerate(_as_list(doc.get("Statement"))):
            if not isinstance(stmt, Mapping) or not _applies(stmt, action, resource):
                continue
            label = f"{name} statement {stmt.get('Sid') or i}"
            if stmt.get("Effect") == "Deny":
                return _Decision(False, f"explicitly denied by {label}")
            if stmt.get("Effect") == "Allow" and allow is None:
                allow = (label, bool(stmt.get("Condition")))
    if allow:
        return _Decision(True, f"allowed by {allow[0]}" + (" (with a Condition, not evaluated)" if allow[1] else ""), allow[1])
    return _Decision(False, "no statement allows it (implicit deny)")
