"""``doctor lambda-vpc``: capacity and permissions for a VPC-attached Lambda function.

Since 2019 Lambda uses one Hyperplane ENI per unique subnet + security-group combination (shared by
every function with that combination, up to 65,000 connections each), counted against a per-VPC
quota (500 today, 250 historically). The pre-2019 per-execution-environment formula is shown only
as history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from triggerfish.doctor import iam, managed_policies
from triggerfish.doctor.awsnet import paths, reach
from triggerfish.doctor.awsnet.inventory import Inventory, load_dir
from triggerfish.doctor.report import Check
from triggerfish.errors import ConfigError

_HYPERPLANE_ENI_QUOTA = 500
_LOW_FREE_IPS = 10
# (action, required?) — the first three are what Lambda itself calls to create and clean up ENIs.
_ENI_ACTIONS: tuple[tuple[str, bool], ...] = (
    ("ec2:CreateNetworkInterface", True),
    ("ec2:DescribeNetworkInterfaces", True),
    ("ec2:DeleteNetworkInterface", True),
    ("ec2:AssignPrivateIpAddresses", False),
    ("ec2:UnassignPrivateIpAddresses", False),
)


def diagnose(
    input_dir: Path,
    lambda_config: Path,
    *,
    role_policies: Sequence[Path] = (),
    peak_concurrency: int | None = None,
    quota: int = _HYPERPLANE_ENI_QUOTA,
    needs_internet: bool = False,
) -> list[Check]:
    inv = load_dir(input_dir)
    config = paths.read_lambda_config(lambda_config)
    vpc = config.get("VpcConfig") or {}
    subnets: list[str] = list(vpc.get("SubnetIds") or [])
    groups: list[str] = list(vpc.get("SecurityGroupIds") or [])
    name = str(config.get("FunctionName", "?"))
    if not subnets:
        raise ConfigError("--lambda-config", f"function {name} has no VpcConfig.SubnetIds: it is not in a VPC")
    if not inv.has("Subnets"):
        raise ConfigError("--input", "no describe-subnets export (top-level key Subnets) in the input; export it with "
                          f"`aws ec2 describe-subnets --subnet-ids {' '.join(subnets)} > subnets.json`")
    checks = _capacity(inv, subnets, groups, quota)
    checks.append(_legacy(config, peak_concurrency))
    checks.extend(_permissions(config, role_policies))
    checks.extend(_internet(inv, subnets, groups, needs_internet))
    return checks


def _lambda_enis(inv: Inventory, vpc_id: str) -> list[Mapping[str, Any]]:
    return [e for e in inv.network_interfaces.values()
            if e.get("InterfaceType") == "lambda" and e.get("VpcId") == vpc_id]


def _capacity(inv: Inventory, subnets: list[str], groups: list[str], quota: int) -> list[Check]:
    checks: list[Check] = []
    combo = frozenset(groups)
    vpc_id = inv.vpc_of_subnet(subnets[0]) if subnets[0] in inv.subnets else ""
    existing = _lambda_enis(inv, vpc_id)
    new = 0
    for s in subnets:
        if s not in inv.subnets:
            checks.append(Check.of("subnet-ips", s, "fail", f"{s} is not in the describe-subnets export",
                                   "Lambda reports InvalidSubnetIDException for subnets that don't exist",
                                   f"aws ec2 describe-subnets --subnet-ids {s}"))
            continue
        sn = inv.subnets[s]
        free = int(sn.get("AvailableIpAddressCount", 0))
        shared = any(e.get("SubnetId") == s and frozenset(g.get("GroupId") for g in e.get("Groups", [])) == combo
                     for e in existing)
        need = 0 if shared else 1
        new += need
        where = f"{s} ({sn.get('CidrBlock')}, {sn.get('AvailabilityZone')})"
        note = ("an existing Hyperplane ENI with the same security groups is shared, no new address needed" if shared
                else "one Hyperplane ENI for this subnet + security-group combination needs 1 address "
                     "(another per 65,000 connections)")
        if free < need or free == 0:
            checks.append(Check.of("subnet-ips", where, "fail", f"SubnetOutOfIPAddresses: {free} free IP addresses", note,
                                   "add a larger or another subnet to the function's VpcConfig, or free addresses in this one"))
        elif free < _LOW_FREE_IPS:
            checks.append(Check.of("subnet-ips", where, "warn", f"only {free} free IP addresses", note,
                                   "leave room for ENI scaling: use subnets with more free addresses"))
        else:
            checks.append(Check.of("subnet-ips", where, "ok", f"{free} free IP addresses", note))
    azs = {inv.subnets[s].get("AvailabilityZone") for s in subnets if s in inv.subnets}
    if len(azs) == 1:
        checks.append(Check.of("subnet-ips", "availability zones", "warn", f"all subnets are in {azs.pop()}",
                               "an AZ outage stops the function", "add a subnet in a second Availability Zone"))
    if not inv.has("NetworkInterfaces"):
        checks.append(Check.of("eni-quota", vpc_id or "VPC", "warn",
                               f"{new} new Hyperplane ENI(s) needed; existing ones not exported, quota not checked",
                               f"quota: {quota} Lambda Hyperplane ENIs per VPC",
                               "aws ec2 describe-network-interfaces --filters Name=interface-type,Values=lambda "
                               f"Name=vpc-id,Values={vpc_id or '<vpc-id>'} > enis.json"))
        return checks
    total = len(existing) + new
    detail = f"{len(existing)} Lambda Hyperplane ENI(s) in {vpc_id} now + {new} new for this function; quota {quota}"
    if total > quota:
        checks.append(Check.of("eni-quota", vpc_id, "fail", "EniLimitExceeded: You have exceeded the maximum limit for "
                               "Lambda HyperPlane ENIs for your VPC.", detail,
                               "reuse subnet + security-group combinations across functions, or request a quota increase"))
    elif total > quota * 0.8:
        checks.append(Check.of("eni-quota", vpc_id, "warn", f"{total} of {quota} Hyperplane ENIs", detail,
                               "reuse subnet + security-group combinations across functions"))
    else:
        checks.append(Check.of("eni-quota", vpc_id, "ok", f"{total} of {quota} Hyperplane ENIs", detail))
    return checks


def _legacy(config: Mapping[str, Any], peak_concurrency: int | None) -> Check:
    memory = int(config.get("MemorySize", 128))
    if peak_concurrency is None:
        return Check.of("legacy-formula", "pre-2019 ENI sizing", "skip", "history only; pass --peak-concurrency to see it",
                        "before Hyperplane ENIs (2019) Lambda needed peak concurrency x (memory GB / 3 GB) ENIs")
    enis = -(-peak_concurrency * memory // 3072)
    return Check.of("legacy-formula", "pre-2019 ENI sizing", "skip",
                    f"history only: the old formula would have needed {enis} ENIs "
                    f"({peak_concurrency} x {memory / 1024:g} GB / 3 GB)",
                    "not how Lambda allocates ENIs since 2019; shown because old runbooks still quote it")


def _permissions(config: Mapping[str, Any], role_policies: Sequence[Path]) -> list[Check]:
    role = str(config.get("Role", "the execution role"))
    if not role_policies:
        return [Check.of("role-permissions", role, "skip", "no --role-policy given",
                         "needed: " + ", ".join(a for a, _ in _ENI_ACTIONS),
                         f"aws iam list-attached-role-policies --role-name {role.rsplit('/', 1)[-1]} > attached.json "
                         f"(and get-role-policy for inline policies), then pass them with --role-policy")]
    role_name = role.rsplit("/", 1)[-1]
    policy_set = iam.read_policies(role_policies, "--role-policy", role_name)
    parts = role.split(":")
    region = str(config.get("FunctionArn", "")).split(":")[3] if config.get("FunctionArn") else "*"
    account = parts[4] if len(parts) > 4 else "*"
    context = _eni_context(config, region, account)
    checks = []
    for action, required in _ENI_ACTIONS:
        # DescribeNetworkInterfaces doesn't support resource-level permissions: it must be granted on "*".
        resource = "*" if action == "ec2:DescribeNetworkInterfaces" else f"arn:aws:ec2:{region}:{account}:network-interface/*"
        d = iam.decide(policy_set.policies, action, resource, context=context)
        if d.allowed:
            checks.append(Check.of("role-permissions", action, "warn" if d.conditional else "ok", "allowed", d.reason))
            continue
        grant = managed_policies.to_attach(action, role_name)
        fix = ("attach the AWS managed policy: " if grant.startswith("aws iam attach-role-policy")
               else "add an inline policy: ") + grant
        if action == "ec2:DescribeNetworkInterfaces":
            fix += ' (DescribeNetworkInterfaces must be on "Resource": "*")'
        problem = ("EC2AccessDeniedException / InsufficientRolePermissions: the execution role cannot " +
                   action.split(":")[1]) if required else f"{action} not allowed"
        reason = d.reason
        if policy_set.unread and not d.reason.startswith("explicitly denied"):
            # Not shown to be allowed is not shown to work: exit 0 must mean the path works.
            reason += "; not read (may grant it): " + "; ".join(policy_set.unread)
            fix = f"export the policies not read, then run again; if none grants {action}: {fix}"
        checks.append(Check.of("role-permissions", action, "fail" if required else "warn", problem, reason, fix))
    return checks


def _eni_context(config: Mapping[str, Any], region: str, account: str) -> iam.Context:
    """The condition keys an ENI call by Lambda carries that the function's configuration tells."""
    vpc = config.get("VpcConfig") or {}
    arn = f"arn:aws:ec2:{region}:{account}"
    if region == "*":  # no FunctionArn: the region, and so the ARNs, are not known
        return {}
    context: dict[str, list[str]] = {"aws:RequestedRegion": [region], "ec2:Region": [region]}
    if vpc.get("VpcId"):
        context["ec2:Vpc"] = [f"{arn}:vpc/{vpc['VpcId']}"]
    if vpc.get("SubnetIds"):
        context["ec2:Subnet"] = [f"{arn}:subnet/{s}" for s in vpc["SubnetIds"]]
    return context


def _internet(inv: Inventory, subnets: list[str], groups: list[str], needs_internet: bool) -> list[Check]:
    checks = []
    endpoints = sorted({str(e.get("ServiceName", "")).rsplit(".", 1)[-1] for e in inv.vpc_endpoints.values()
                        if str(e.get("State", "")).lower() == "available"})
    private = f"interface/gateway endpoints in the exports: {', '.join(endpoints)}" if endpoints else "no VPC endpoints exported"
    for s in subnets:
        if s not in inv.subnets:
            continue
        src = reach.in_subnet(inv, f"function in {s}", s, tuple(groups), lambda_eni=True)
        w = reach.internet_flow(inv, src, 443, "the internet")
        check = reach.to_check("internet", f"{s} -> internet:443", w)
        if w.blocked:
            check = Check.of("internet", check.target, "fail" if needs_internet else "warn",
                             f"no internet from this subnet: {w.code}: {w.problem}",
                             f"{private}; AWS APIs without an endpoint time out (connect ETIMEDOUT / Task timed out); "
                             f"{check.detail}".rstrip("; "),
                             w.fix or "route 0.0.0.0/0 to a NAT gateway in a public subnet, or add interface endpoints")
        else:
            check = Check.of("internet", check.target, check.status, "reaches the internet (NAT path)",
                             f"{private}; {check.detail}".rstrip("; "))
        checks.append(check)
    return checks
