"""Which flows to check: sources (a subnet + groups, a Lambda function's VPC config, an MSK ESM) and
destinations (the brokers' ports, and the STS / Lambda / Secrets Manager endpoints on 443)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triggerfish.doctor.awsnet import endpoints, reach
from triggerfish.doctor.awsnet.endpoints import Caller
from triggerfish.doctor.awsnet.inventory import KINDS, Inventory
from triggerfish.doctor.report import Check
from triggerfish.errors import ConfigError

_MSK_PORTS = {"plaintext": 9092, "tls": 9094, "scram": 9096, "iam": 9098}
DEFAULT_SERVICES = ("sts", "lambda", "secretsmanager")


@dataclass(frozen=True)
class Source:
    endpoints: tuple[reach.Endpoint, ...]
    description: str
    caller: Caller = Caller()  # who calls the AWS services (for endpoint policies)


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
    caller = Caller(config.get("Role"), config.get("FunctionArn"))
    return Source(eps, f"function {config.get('FunctionName', '?')} (Hyperplane ENIs in {', '.join(subnets)})", caller)


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


def _service_check(inv: Inventory, src: reach.Endpoint, service: str, region: str, source: Source) -> Check:
    """Can ``src`` reach ``service`` on 443: through an interface or gateway endpoint if one exists, else the internet."""
    assert src.subnet_id
    to = endpoints.ServiceTarget(service, region, src.subnet_id, inv.vpc_of_subnet(src.subnet_id), src.label,
                                 source.caller)
    interface = endpoints.find(inv, to, "interface")
    if interface is not None:
        return endpoints.via_interface(inv, src, to, interface)
    gateway = endpoints.find(inv, to, "gateway")
    if gateway is not None:
        return endpoints.via_gateway(inv, src, to, gateway)
    return endpoints.via_internet(inv, src, to)


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
                checks.append(_service_check(inv, src, service, region, source))
    return checks
