"""AWS service calls on 443 from a VPC: through an interface endpoint, a gateway endpoint, or the internet.

An interface endpoint only carries the call when its private DNS is on (else the SDK resolves the
service's public name and takes the internet path, which without a NAT fails); a gateway endpoint (S3,
DynamoDB) only when the subnet's route table has its prefix-list route and the security group lets
443 out to that prefix list (or to everywhere). Either way the endpoint's policy must allow the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

from triggerfish.doctor import iam
from triggerfish.doctor.awsnet import reach, routes
from triggerfish.doctor.awsnet.inventory import Inventory
from triggerfish.doctor.report import Check

_ANYWHERE = IPv4Network("0.0.0.0/0")

# The call a Lambda function / ESM makes to each service (what an endpoint policy must allow).
_ACTIONS = {
    "sts": "sts:AssumeRole", "lambda": "lambda:InvokeFunction", "secretsmanager": "secretsmanager:GetSecretValue",
    "kms": "kms:Decrypt", "sqs": "sqs:SendMessage", "sns": "sns:Publish", "s3": "s3:PutObject",
    "dynamodb": "dynamodb:PutItem", "logs": "logs:PutLogEvents", "kafka": "kafka:GetBootstrapBrokers",
    "glue": "glue:GetSchemaVersion", "eks-auth": "eks-auth:AssumeRoleForPodIdentity",
}


@dataclass(frozen=True)
class Caller:
    """Who makes the calls, when the input says so: the execution role, and the function (Invoke's resource)."""

    role_arn: str | None = None
    function_arn: str | None = None


@dataclass(frozen=True)
class ServiceTarget:
    """One AWS service endpoint as seen from one source subnet."""

    service: str
    region: str
    subnet_id: str
    vpc_id: str
    source_label: str
    caller: Caller = Caller()

    @property
    def host(self) -> str:
        return f"{self.service}.{self.region}.amazonaws.com"

    @property
    def flow(self) -> str:
        return f"{self.source_label} -> {self.host}:443"

    @property
    def service_name(self) -> str:
        return f"com.amazonaws.{self.region}.{self.service}"


def find(inv: Inventory, to: ServiceTarget, kind: str) -> dict[str, Any] | None:
    """The VPC's endpoint of ``kind`` (interface or gateway) for the service."""
    for ep in inv.vpc_endpoints.values():
        if (ep.get("ServiceName") == to.service_name and ep.get("VpcId") == to.vpc_id
                and str(ep.get("VpcEndpointType", "Interface")).lower() == kind):
            return ep
    return None


def via_internet(inv: Inventory, src: reach.Endpoint, to: ServiceTarget, why: str = "") -> Check:
    """No endpoint carries the call: the internet path decides; if it is blocked, an endpoint is the other way out."""
    w = reach.internet_flow(inv, src, 443, to.host)
    check = reach.to_check(to.service, to.flow, w)
    if not w.blocked:
        return check
    fix = w.fix or ""
    fix = (f"{fix}; or " if fix else "") + (
        f"aws ec2 create-vpc-endpoint --vpc-endpoint-type Interface --vpc-id {to.vpc_id} "
        f"--service-name {to.service_name} --subnet-ids {to.subnet_id} "
        f"--security-group-ids <sg allowing tcp/443 from {', '.join(src.groups) or src.cidr}> --private-dns-enabled")
    extra = why or f" No interface VPC endpoint for {to.service_name} in the VPC either."
    if to.service == "sts":
        extra += f" (Use the regional name {to.host}; the global sts.amazonaws.com is not served by a VPC endpoint.)"
    return Check.of(check.stage, check.target, "fail", check.problem + "." + extra, check.detail, fix)


def via_interface(inv: Inventory, src: reach.Endpoint, to: ServiceTarget, ep: dict[str, Any]) -> Check:
    """An interface endpoint exists: private DNS on (else the public path decides), available, reachable, resolving,
    and a policy that allows the call."""
    unusable = _unusable(to, ep)
    if unusable is not None:
        return unusable
    if not ep.get("PrivateDnsEnabled", False):
        return _without_private_dns(inv, src, to, ep)
    ep_subnet = _nearest_subnet(inv, to.subnet_id, list(ep["SubnetIds"]))
    groups = tuple(g.get("GroupId") for g in ep.get("Groups") or [] if g.get("GroupId"))
    dst = reach.in_subnet(inv, f"{ep['VpcEndpointId']} ({to.service})", ep_subnet, groups)
    w = reach.private_flow(inv, src, dst, 443)
    unresolved = None if w.blocked else _unresolved_private_dns(inv, ep, to.host)
    if unresolved is not None:
        w.block("BAD_STATE", *unresolved)
    if not w.blocked:
        _policy(w, to, ep)
    w.passed.insert(0, f"via interface endpoint {ep['VpcEndpointId']}")
    return reach.to_check(to.service, to.flow, w)


def _without_private_dns(inv: Inventory, src: reach.Endpoint, to: ServiceTarget, ep: dict[str, Any]) -> Check:
    vpce = ep["VpcEndpointId"]
    names = [str(d.get("DnsName")) for d in ep.get("DnsEntries") or [] if d.get("DnsName")]
    fix = (f"aws ec2 modify-vpc-endpoint --vpc-endpoint-id {vpce} --private-dns-enabled"
           + (f" (or point the SDK's endpoint URL at https://{names[0]})" if names else ""))
    note = (f"{vpce} has PrivateDnsEnabled=false: SDKs resolve {to.host} to its public addresses, so the call does not "
            "use the endpoint")
    w = reach.internet_flow(inv, src, 443, to.host)
    if w.blocked:
        w.problem = f"{note}, and the public path is blocked: {w.code}: {w.problem}"
        w.code, w.fix = "PRIVATE_DNS_DISABLED", fix
        return reach.to_check(to.service, to.flow, w)
    w.warnings.append(f"{note}; it goes out through the internet path instead ({fix} keeps it private)")
    return reach.to_check(to.service, to.flow, w)


def via_gateway(inv: Inventory, src: reach.Endpoint, to: ServiceTarget, ep: dict[str, Any]) -> Check:
    """A gateway endpoint exists: the subnet's table must route its prefix list to it; else the internet decides."""
    vpce = ep["VpcEndpointId"]
    table = inv.route_table_for_subnet(to.subnet_id) or {}
    route = routes.prefix_list_route(table, vpce)
    if route is None:
        rt_id = table.get("RouteTableId", "<rtb>")
        fix = _gateway_association(inv, to.subnet_id, vpce) or \
            f"aws ec2 modify-vpc-endpoint --vpc-endpoint-id {vpce} --add-route-table-ids {rt_id}"
        check = via_internet(inv, src, to, why=f" The gateway endpoint {vpce} is not in {rt_id}'s routes either.")
        if check.status == "fail":
            return Check.of(check.stage, check.target, "fail", check.problem, check.detail, fix)
        return Check.of(check.stage, check.target, "warn", check.problem,
                        f"note: {rt_id} has no route to the gateway endpoint {vpce}, so {to.host} is reached through "
                        f"the internet path instead; {check.detail}", fix)
    dst = reach.Endpoint(f"{vpce} ({to.service}, prefix list {route.destination})", _ANYWHERE,
                         prefix_lists=(route.destination,))
    w = reach.gateway_flow(inv, src, dst, 443, route)
    if not w.blocked:
        _policy(w, to, ep)
    w.passed.insert(0, f"via gateway endpoint {vpce}")
    return reach.to_check(to.service, to.flow, w)


def _gateway_association(inv: Inventory, subnet_id: str, vpce: str) -> str | None:
    """A subnet on the main table implicitly: associate it with a table that already routes to the endpoint."""
    if not inv.uses_main_table(subnet_id):
        return None
    for rt in inv.route_tables_of_vpc(inv.vpc_of_subnet(subnet_id)):
        if routes.prefix_list_route(rt, vpce) is not None:
            return (f"aws ec2 associate-route-table --route-table-id {rt['RouteTableId']} --subnet-id {subnet_id} "
                    "(leave the main table as it is: other subnets follow it)")
    return None


def _policy(w: reach.Walk, to: ServiceTarget, ep: dict[str, Any]) -> None:
    """Block the walk when the endpoint policy denies the call (or allows it only conditionally: a note)."""
    action = _ACTIONS.get(to.service)
    policy = iam.documents({"PolicyDocument": ep.get("PolicyDocument")}) if ep.get("PolicyDocument") else []
    if action is None or not policy:
        return  # no policy: the default endpoint policy allows everything
    resource = to.caller.function_arn if to.service == "lambda" else (
        to.caller.role_arn if to.service == "sts" else None)
    d = iam.decide([(f"{ep['VpcEndpointId']} policy", policy[0][1])], action, resource, principal=to.caller.role_arn)
    if d.allowed:
        if d.conditional:
            w.warnings.append(f"{ep['VpcEndpointId']}'s policy allows {action} only conditionally: {d.reason}")
        return
    on = f" on {resource}" if resource else ""
    w.block("VPC_ENDPOINT_POLICY", f"the policy of {ep['VpcEndpointId']} does not allow {action}{on}: {d.reason}",
            f"add a statement allowing {action}{on} to the endpoint policy (aws ec2 modify-vpc-endpoint "
            f"--vpc-endpoint-id {ep['VpcEndpointId']} --policy-document file://policy.json replaces the whole "
            "document)" + ("; narrow or remove the Deny statement" if "denied by" in d.reason else ""))


def _unusable(to: ServiceTarget, ep: dict[str, Any]) -> Check | None:
    state = str(ep.get("State", "")).lower()
    if state != "available":
        return Check.of(to.service, to.flow, "fail", f"BAD_STATE: {ep['VpcEndpointId']} ({ep['ServiceName']}) is {state}",
                        "", "wait for it or recreate it; check its State in `aws ec2 describe-vpc-endpoints`")
    if not ep.get("SubnetIds"):
        return Check.of(to.service, to.flow, "fail", f"{ep['VpcEndpointId']} has no subnets (no ENIs)", "",
                        f"aws ec2 modify-vpc-endpoint --vpc-endpoint-id {ep['VpcEndpointId']} --add-subnet-ids {to.subnet_id}")
    return None


def _nearest_subnet(inv: Inventory, subnet_id: str, ep_subnets: list[str]) -> str:
    # Prefer the endpoint's ENI in the source's own subnet/AZ: that's the address its DNS answer favours.
    az = inv.subnets.get(subnet_id, {}).get("AvailabilityZone")
    return next((s for s in ep_subnets if s == subnet_id), None) or next(
        (s for s in ep_subnets if inv.subnets.get(s, {}).get("AvailabilityZone") == az), ep_subnets[0])


def _unresolved_private_dns(inv: Inventory, ep: dict[str, Any], host: str) -> tuple[str, str] | None:
    """(problem, fix) when the endpoint's private DNS name cannot resolve: the VPC has DNS turned off."""
    attrs = inv.vpc_attributes.get(str(ep.get("VpcId")), {})
    off = [a for a in ("EnableDnsSupport", "EnableDnsHostnames") if attrs.get(a) is False]
    if not (ep.get("PrivateDnsEnabled", False) and off):
        return None
    attr = off[0][0].lower() + off[0][1:]
    return (f"{ep['VpcEndpointId']} has private DNS, but {ep.get('VpcId')} has {', '.join(off)} = false, "
            f"so {host} does not resolve to the endpoint",
            f"aws ec2 modify-vpc-attribute --vpc-id {ep.get('VpcId')} --{attr.replace('Dns', '-dns-').lower()} "
            "'{\"Value\":true}'")
