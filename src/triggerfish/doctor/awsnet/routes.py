"""Route tables: the longest matching prefix wins; static routes beat propagated ones on a tie."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, ip_network
from typing import Any

_TARGET_FIELDS = (
    "GatewayId", "NatGatewayId", "TransitGatewayId", "VpcPeeringConnectionId", "NetworkInterfaceId",
    "InstanceId", "EgressOnlyInternetGatewayId", "LocalGatewayId", "CarrierGatewayId", "CoreNetworkArn",
)


@dataclass(frozen=True)
class Route:
    destination: str
    target: str  # "local", "igw-...", "nat-...", "vpce-...", "pcx-...", "tgw-...", "eni-..."
    state: str
    raw: Mapping[str, Any]

    @property
    def kind(self) -> str:
        """Target kind by id prefix: local, igw, nat, vpce, pcx, tgw, eni, i, vgw, eigw ..."""
        return "local" if self.target == "local" else self.target.split("-", 1)[0]

    def __str__(self) -> str:
        return f"{self.destination} -> {self.target}" + ("" if self.state == "active" else f" ({self.state})")


def _target_of(route: Mapping[str, Any]) -> str:
    for f in _TARGET_FIELDS:
        if route.get(f):
            return str(route[f])
    return "?"


def lookup(route_table: Mapping[str, Any], destination: IPv4Network) -> Route | None:
    """The route a packet to (every address of) ``destination`` takes, or None when nothing matches."""
    best: tuple[int, int, Mapping[str, Any]] | None = None
    for r in route_table.get("Routes", []) or []:
        cidr = r.get("DestinationCidrBlock")
        if not cidr:
            continue  # IPv6 and prefix-list routes don't carry IPv4 unicast to arbitrary addresses
        net = ip_network(cidr, strict=False)
        if not net.supernet_of(destination):  # type: ignore[arg-type]
            continue
        static = 0 if r.get("Origin") == "EnableVgwRoutePropagation" else 1
        rank = (net.prefixlen, static)
        if best is None or rank > best[:2]:
            best = (net.prefixlen, static, r)
    if best is None:
        return None
    r = best[2]
    return Route(str(r["DestinationCidrBlock"]), _target_of(r), str(r.get("State", "active")), r)


def ipv6_only_defaults(route_table: Mapping[str, Any]) -> list[str]:
    """IPv6 default routes (``::/0``): they carry no IPv4 traffic, whatever their target."""
    return [f"{r['DestinationIpv6CidrBlock']} -> {_target_of(r)}" for r in route_table.get("Routes", []) or []
            if r.get("DestinationIpv6CidrBlock") == "::/0"]


def prefix_list_route(route_table: Mapping[str, Any], target: str) -> Route | None:
    """The route to a gateway endpoint (``pl-...`` -> ``vpce-...``), if the table has one."""
    for r in route_table.get("Routes", []) or []:
        if r.get("DestinationPrefixListId") and _target_of(r) == target:
            return Route(str(r["DestinationPrefixListId"]), target, str(r.get("State", "active")), r)
    return None
