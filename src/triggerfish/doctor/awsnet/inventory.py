"""Load a directory of AWS CLI JSON exports and index them, recognising each file by its top-level key.

File names don't matter: ``describe-security-groups`` output has ``SecurityGroups``, ``describe-network-acls``
has ``NetworkAcls`` and so on, so a user can dump them under any name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triggerfish.errors import ConfigError

# top-level key -> (Inventory attribute, id field, AWS CLI command that produces it)
KINDS: dict[str, tuple[str, str, str]] = {
    "SecurityGroups": ("security_groups", "GroupId", "aws ec2 describe-security-groups"),
    "NetworkAcls": ("network_acls", "NetworkAclId", "aws ec2 describe-network-acls"),
    "RouteTables": ("route_tables", "RouteTableId", "aws ec2 describe-route-tables"),
    "Subnets": ("subnets", "SubnetId", "aws ec2 describe-subnets"),
    "VpcEndpoints": ("vpc_endpoints", "VpcEndpointId", "aws ec2 describe-vpc-endpoints"),
    "NatGateways": ("nat_gateways", "NatGatewayId", "aws ec2 describe-nat-gateways"),
    "NetworkInterfaces": ("network_interfaces", "NetworkInterfaceId", "aws ec2 describe-network-interfaces"),
    "Vpcs": ("vpcs", "VpcId", "aws ec2 describe-vpcs"),
}


@dataclass
class Inventory:
    """Everything exported, indexed by id. Missing kinds are empty dicts; ``files`` says what came from where."""

    security_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    network_acls: dict[str, dict[str, Any]] = field(default_factory=dict)
    route_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    vpc_endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    nat_gateways: dict[str, dict[str, Any]] = field(default_factory=dict)
    network_interfaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    vpcs: dict[str, dict[str, Any]] = field(default_factory=dict)
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)  # ClusterArn -> ClusterInfo
    vpc_attributes: dict[str, dict[str, bool]] = field(default_factory=dict)  # VpcId -> {EnableDnsSupport: ...}
    files: dict[str, str] = field(default_factory=dict)  # kind -> file name(s)

    def has(self, kind: str) -> bool:
        return kind in self.files

    def missing(self, *kinds: str) -> list[str]:
        return [k for k in kinds if k not in self.files]

    # --- lookups -------------------------------------------------------------------------------------

    def subnet(self, subnet_id: str) -> dict[str, Any]:
        try:
            return self.subnets[subnet_id]
        except KeyError:
            raise ConfigError(
                "subnet", f"{subnet_id} is not in the describe-subnets export; export it with "
                f"`aws ec2 describe-subnets --subnet-ids {subnet_id} > subnets.json`"
            ) from None

    def vpc_of_subnet(self, subnet_id: str) -> str:
        return str(self.subnet(subnet_id).get("VpcId", ""))

    def nacl_for_subnet(self, subnet_id: str) -> dict[str, Any] | None:
        """The subnet's NACL: its explicit association, else the VPC's default NACL."""
        vpc = self.vpc_of_subnet(subnet_id) if subnet_id in self.subnets else None
        default = None
        for acl in self.network_acls.values():
            if any(a.get("SubnetId") == subnet_id for a in acl.get("Associations", [])):
                return acl
            if acl.get("IsDefault") and (vpc is None or acl.get("VpcId") == vpc):
                default = acl
        return default

    def route_table_for_subnet(self, subnet_id: str) -> dict[str, Any] | None:
        """The subnet's route table: its explicit association, else the VPC's main table."""
        vpc = self.vpc_of_subnet(subnet_id) if subnet_id in self.subnets else None
        main = None
        for rt in self.route_tables.values():
            for assoc in rt.get("Associations", []):
                if assoc.get("SubnetId") == subnet_id:
                    return rt
                if assoc.get("Main") and (vpc is None or rt.get("VpcId") == vpc):
                    main = rt
        return main

    def uses_main_table(self, subnet_id: str) -> bool:
        """True when the subnet has no explicit association: it follows the VPC's main route table."""
        return not any(a.get("SubnetId") == subnet_id for rt in self.route_tables.values()
                       for a in rt.get("Associations", []))

    def route_tables_of_vpc(self, vpc_id: str) -> list[dict[str, Any]]:
        return [rt for rt in self.route_tables.values() if rt.get("VpcId") == vpc_id]

    def region(self) -> str | None:
        for arn in self.clusters:
            parts = arn.split(":")
            if len(parts) > 3 and parts[3]:
                return parts[3]
        for ep in self.vpc_endpoints.values():
            parts = str(ep.get("ServiceName", "")).split(".")
            if len(parts) >= 4 and parts[0] == "com" and parts[1] == "amazonaws":
                return parts[2]
        for sn in self.subnets.values():
            az = str(sn.get("AvailabilityZone", ""))
            if az[-1:].isalpha():
                return az[:-1]
        return None


def _add(inv: Inventory, kind: str, items: list[Any], name: str) -> None:
    attr, id_field, _ = KINDS[kind]
    index = getattr(inv, attr)
    for item in items:
        if isinstance(item, dict) and item.get(id_field):
            index[item[id_field]] = item
    inv.files[kind] = ", ".join(filter(None, [inv.files.get(kind), name]))


def _load_document(inv: Inventory, doc: Any, name: str) -> list[str]:
    """Add one parsed JSON document to the inventory; return the kinds it held."""
    found: list[str] = []
    if not isinstance(doc, dict):
        return found
    for kind in KINDS:
        if isinstance(doc.get(kind), list):
            _add(inv, kind, doc[kind], name)
            found.append(kind)
    # `aws kafka describe-cluster` -> {"ClusterInfo": {...}}; list-clusters -> {"ClusterInfoList": [...]}
    infos = [doc["ClusterInfo"]] if isinstance(doc.get("ClusterInfo"), dict) else []
    infos += [c for c in doc.get("ClusterInfoList", []) if isinstance(c, dict)]
    for info in infos:
        inv.clusters[str(info.get("ClusterArn") or info.get("ClusterName") or f"cluster{len(inv.clusters)}")] = info
    if infos:
        inv.files["ClusterInfo"] = ", ".join(filter(None, [inv.files.get("ClusterInfo"), name]))
        found.append("ClusterInfo")
    # `aws ec2 describe-vpc-attribute --attribute enableDnsSupport|enableDnsHostnames` -> one attribute per file
    for attr in ("EnableDnsSupport", "EnableDnsHostnames"):
        if isinstance(doc.get(attr), dict) and doc.get("VpcId"):
            inv.vpc_attributes.setdefault(str(doc["VpcId"]), {})[attr] = bool(doc[attr].get("Value"))
            found.append(attr)
    return found


def load_dir(path: Path) -> Inventory:
    """Read every ``*.json`` under ``path`` (or one file); unrecognised files are ignored, broken ones named."""
    path = Path(path)
    if not path.exists():
        raise ConfigError("--input", f"{path} does not exist; point it at the directory holding the AWS CLI JSON exports")
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    inv = Inventory()
    for file in files:
        try:
            doc = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("--input", f"cannot read {file}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(
                "--input", f"{file} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                "re-export it with `--output json`"
            ) from None
        _load_document(inv, doc, file.name)
    return inv
