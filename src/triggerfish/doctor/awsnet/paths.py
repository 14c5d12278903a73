"""Which flows to check: sources (a subnet + groups, a Lambda function's VPC config, an MSK ESM) and
destinations (the brokers' ports, and the STS / Lambda / Secrets Manager endpoints on 443)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triggerfish.doctor.awsnet import reach
from triggerfish.doctor.awsnet.inventory import KINDS, Inventory
from triggerfish.doctor.report import Check
from triggerfish.errors import ConfigError

_MSK_PORTS = {"plaintext": 9092, "tls": 9094, "scram": 9096, "iam": 9098}
DEFAULT_SERVICES = ("sts", "lambda", "secretsmanager")


@dataclass(frozen=True)
class Source:
    endpoints: tuple[reach.Endpoint, ...]
    description: str


def source_from_subnet(inv: Inventory, subnet_ids: Sequence[str], groups: Sequence[str]) -> Source:
    eps = tuple(reach.in_subnet(inv, f"source in {s}", s, tuple(groups)) for s in subnet_ids)
    return Source(eps, f"subnets {', '.join(subnet_ids)} with {', '.join(groups) or 'no security groups'}")


def read_lambda_config(path: Path) -> dict[str, Any]:
    """``aws lambda get-function-configuration`` output (or ``get-function``'s, which nests it)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError("--lambda-config", f"cannot read {path} as JSON ({exc}); export it with "
                          "`aws lambda get-function-configuration --function-name NAME > function.json`") from None
    if isinstance(doc, dict) and isinstance(doc.get("Configuration"), dict):
        doc = doc["Configuration"]
    if not isinstance(doc, dict):
        raise ConfigError("--lambda-config", f"{path} is not a get-function-configuration document")
    return doc


def source_from_lambda(inv: Inventory, config: dict[str, Any]) -> Source:
    vpc = config.get("VpcConfig") or {}
    subnets, groups = vpc.get("SubnetIds") or [], vpc.get("SecurityGroupIds") or []
    if not subnets:
        raise ConfigError("--lambda-config", f"function {config.get('FunctionName', '?')} has no VpcConfig.SubnetIds: "
                          "it is not attached to a VPC, so VPC rules don't apply to it")
    eps = tuple(reach.in_subnet(inv, f"Lambda ENI in {s}", s, tuple(groups), lambda_eni=True) for s in subnets)
    return Source(eps, f"function {config.get('FunctionName', '?')} (Hyperplane ENIs in {', '.join(subnets)})")


def cluster(inv: Inventory, name: str | None) -> dict[str, Any]:
    if not inv.clusters:
        raise ConfigError("--input", "no `aws kafka describe-cluster` export (top-level key ClusterInfo) in the input; "
                          "export it with `aws kafka describe-cluster --cluster-arn ARN > cluster.json`")
    if name is None:
        if len(inv.clusters) > 1:
            raise ConfigError("--cluster", f"several clusters exported ({', '.join(inv.clusters)}); pick one")
        return next(iter(inv.clusters.values()))
    for arn, info in inv.clusters.items():
        if name in (arn, info.get("ClusterName")):
            return info
    raise ConfigError("--cluster", f"{name} is not among the exported clusters ({', '.join(inv.clusters)})")


def cluster_network(info: dict[str, Any]) -> tuple[list[str], list[str]]:
    group_info = info.get("BrokerNodeGroupInfo") or {}
    return list(group_info.get("ClientSubnets") or []), list(group_info.get("SecurityGroups") or [])


def source_from_msk_esm(inv: Inventory, info: dict[str, Any]) -> Source:
    """An MSK ESM ignores the function's VPC: its ENIs sit in the cluster's subnets with the cluster's groups."""
    subnets, groups = cluster_network(info)
    eps = tuple(reach.in_subnet(inv, f"ESM ENI in {s}", s, tuple(groups), lambda_eni=True) for s in subnets)
    return Source(eps, f"MSK event source mapping of {info.get('ClusterName', '?')} (cluster subnets and groups)")


def broker_ports(info: dict[str, Any]) -> list[int]:
    """The listener ports the cluster's settings enable (2.1 of the reference)."""
    auth = info.get("ClientAuthentication") or {}
    sasl = auth.get("Sasl") or {}
    transit = ((info.get("EncryptionInfo") or {}).get("EncryptionInTransit") or {}).get("ClientBroker", "TLS")
    ports = []
    if transit in ("PLAINTEXT", "TLS_PLAINTEXT"):
        ports.append(_MSK_PORTS["plaintext"])
    tls_auth = (auth.get("Tls") or {}).get("Enabled") or (auth.get("Unauthenticated") or {}).get("Enabled") or not auth
    if transit in ("TLS", "TLS_PLAINTEXT") and tls_auth:
        ports.append(_MSK_PORTS["tls"])
    if (sasl.get("Scram") or {}).get("Enabled"):
        ports.append(_MSK_PORTS["scram"])
    if (sasl.get("Iam") or {}).get("Enabled"):
        ports.append(_MSK_PORTS["iam"])
    return ports


def broker_endpoints(inv: Inventory, subnets: Sequence[str], groups: Sequence[str]) -> list[reach.Endpoint]:
    return [reach.in_subnet(inv, f"broker in {s}", s, tuple(groups)) for s in subnets]


def _interface_endpoint(inv: Inventory, vpc_id: str, service: str, region: str) -> dict[str, Any] | None:
    name = f"com.amazonaws.{region}.{service}"
    for ep in inv.vpc_endpoints.values():
        if (ep.get("ServiceName") == name and ep.get("VpcId") == vpc_id
                and str(ep.get("VpcEndpointType", "Interface")).lower() == "interface"):
            return ep
    return None


def _service_check(inv: Inventory, src: reach.Endpoint, service: str, region: str) -> Check:
    """Can ``src`` reach ``service`` on 443: through an interface endpoint if one exists, else via the internet path."""
    assert src.subnet_id
    to = _ServiceTarget(service, region, src.subnet_id, inv.vpc_of_subnet(src.subnet_id), src.label)
    ep = _interface_endpoint(inv, to.vpc_id, service, region)
    if ep is None:
        return _service_via_internet(inv, src, to)
    return _service_via_endpoint(inv, src, to, ep)


@dataclass(frozen=True)
class _ServiceTarget:
    """One AWS service endpoint as seen from one source subnet."""

    service: str
    region: str
    subnet_id: str
    vpc_id: str
    source_label: str

    @property
    def host(self) -> str:
        return f"{self.service}.{self.region}.amazonaws.com"

    @property
    def flow(self) -> str:
        return f"{self.source_label} -> {self.host}:443"

    @property
    def service_name(self) -> str:
        return f"com.amazonaws.{self.region}.{self.service}"


def _service_via_internet(inv: Inventory, src: reach.Endpoint, to: _ServiceTarget) -> Check:
    """No interface endpoint: the internet path decides; if it is blocked, an endpoint is the other way out."""
    w = reach.internet_flow(inv, src, 443, to.host)
    check = reach.to_check(to.service, to.flow, w)
    if not w.blocked:
        return check
    fix = w.fix or ""
    fix = (f"{fix}; or " if fix else "") + (
        f"aws ec2 create-vpc-endpoint --vpc-endpoint-type Interface --vpc-id {to.vpc_id} "
        f"--service-name {to.service_name} --subnet-ids {to.subnet_id} "
        f"--security-group-ids <sg allowing tcp/443 from {', '.join(src.groups) or src.cidr}> --private-dns-enabled")
    extra = f" No interface VPC endpoint for {to.service_name} in the VPC either."
    if to.service == "sts":
        extra += f" (Use the regional name {to.host}; the global sts.amazonaws.com is not served by a VPC endpoint.)"
    return Check.of(check.stage, check.target, "fail", check.problem + "." + extra, check.detail, fix)


def _service_via_endpoint(inv: Inventory, src: reach.Endpoint, to: _ServiceTarget, ep: dict[str, Any]) -> Check:
    """An interface endpoint exists: it must be available, have an ENI the source can reach, and resolve."""
    unusable = _unusable_endpoint(to, ep)
    if unusable is not None:
        return unusable
    ep_subnet = _nearest_endpoint_subnet(inv, to.subnet_id, list(ep["SubnetIds"]))
    groups = tuple(g.get("GroupId") for g in ep.get("Groups") or [] if g.get("GroupId"))
    dst = reach.in_subnet(inv, f"{ep['VpcEndpointId']} ({to.service})", ep_subnet, groups)
    w = reach.private_flow(inv, src, dst, 443)
    unresolved = None if w.blocked else _unresolved_private_dns(inv, ep, to.host)
    if unresolved is not None:
        w.block("BAD_STATE", *unresolved)
    if not ep.get("PrivateDnsEnabled", False):
        w.warnings.append(f"{ep['VpcEndpointId']} has PrivateDnsEnabled=false: SDKs resolve {to.host} to public addresses; "
                          f"enable private DNS or point the SDK at the endpoint's DNS name")
    w.passed.insert(0, f"via interface endpoint {ep['VpcEndpointId']}")
    return reach.to_check(to.service, to.flow, w)


def _unusable_endpoint(to: _ServiceTarget, ep: dict[str, Any]) -> Check | None:
    state = str(ep.get("State", "")).lower()
    if state != "available":
        return Check.of(to.service, to.flow, "fail", f"BAD_STATE: {ep['VpcEndpointId']} ({ep['ServiceName']}) is {state}",
                        "", "wait for it or recreate it; check its State in `aws ec2 describe-vpc-endpoints`")
    if not ep.get("SubnetIds"):
        return Check.of(to.service, to.flow, "fail", f"{ep['VpcEndpointId']} has no subnets (no ENIs)", "",
                        f"aws ec2 modify-vpc-endpoint --vpc-endpoint-id {ep['VpcEndpointId']} --add-subnet-ids {to.subnet_id}")
    return None


def _nearest_endpoint_subnet(inv: Inventory, subnet_id: str, ep_subnets: list[str]) -> str:
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


def analyse(
    inv: Inventory, source: Source, *, brokers: Sequence[reach.Endpoint], ports: Sequence[int],
    services: Sequence[str], region: str | None,
) -> list[Check]:
    checks: list[Check] = []
    wanted = ["Subnets", "SecurityGroups", "NetworkAcls", "RouteTables"] + (["VpcEndpoints", "NatGateways"] if services else [])
    for kind in inv.missing(*wanted):
        checks.append(Check.of("inputs", kind, "warn", f"no {kind} export: that layer was not checked",
                               "", f"{KINDS[kind][2]} --output json > {kind.lower()}.json"))
    for src in source.endpoints:
        for dst in brokers:
            for port in ports:
                w = reach.private_flow(inv, src, dst, port)
                checks.append(reach.to_check("broker", f"{src.label} -> {dst.label}:{port}", w))
        if services:
            if not region:
                raise ConfigError("--region", "cannot tell the region from the exports; pass --region (e.g. us-east-1)")
            for service in services:
                checks.append(_service_check(inv, src, service, region))
    return checks
