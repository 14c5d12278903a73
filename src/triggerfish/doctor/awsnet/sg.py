"""Security groups: stateful, allow-only rules, unioned over every group on an ENI.

Only the initiating direction is evaluated (egress on the source, ingress on the destination); replies
of an allowed flow are always allowed. A referenced-group rule matches the private IP of any ENI that
carries that group, which is how MSK's self-referencing rule lets a Lambda ESM reach the brokers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, ip_network
from typing import Any

_TCP = "6"


@dataclass(frozen=True)
class Peer:
    """The other end of a flow as a security group sees it: an address range and the groups it carries."""

    cidr: IPv4Network
    groups: frozenset[str] = frozenset()
    prefix_lists: frozenset[str] = frozenset()  # a gateway endpoint's service (S3, DynamoDB) is its prefix list


@dataclass(frozen=True)
class _SgVerdict:
    allowed: bool
    group_id: str = ""  # group holding the matching rule
    rule: str = ""  # the matching rule, written out


def _protocol_matches(rule_proto: Any, proto: str) -> bool:
    p = str(rule_proto).lower()
    return p in ("-1", "all") or p == proto or (p == "tcp" and proto == _TCP) or (p == "udp" and proto == "17")


def _port_matches(rule: Mapping[str, Any], port: int) -> bool:
    if str(rule.get("IpProtocol")) in ("-1", "all"):
        return True
    lo, hi = rule.get("FromPort"), rule.get("ToPort")
    if lo is None or hi is None or lo == -1:
        return True
    return int(lo) <= port <= int(hi)


def _describe_rule(rule: Mapping[str, Any]) -> str:
    proto = str(rule.get("IpProtocol"))
    if proto in ("-1", "all"):
        ports = "all traffic"
    else:
        lo, hi = rule.get("FromPort"), rule.get("ToPort")
        ports = f"{proto}/{lo}" if lo == hi else f"{proto}/{lo}-{hi}"
    return ports


def _peer_matches(rule: Mapping[str, Any], peer: Peer) -> str | None:
    """Which part of the rule matches the peer (a CIDR or a group id), or None."""
    for r in rule.get("IpRanges", []) or []:
        cidr = str(r.get("CidrIp") or "")
        if cidr and ip_network(cidr, strict=False).supernet_of(peer.cidr):  # type: ignore[arg-type]
            return cidr
    for pair in rule.get("UserIdGroupPairs", []) or []:
        gid = str(pair.get("GroupId") or "")
        if gid and gid in peer.groups:
            return gid
    for pl in rule.get("PrefixListIds", []) or []:
        pid = str(pl.get("PrefixListId") or "")
        if pid and pid in peer.prefix_lists:
            return pid
    return None


def ipv6_only(groups: Mapping[str, Mapping[str, Any]], group_ids: Iterable[str], *, egress: bool, port: int,
              proto: str = _TCP) -> str | None:
    """A rule that would allow the port but names only IPv6 ranges (``::/0`` admits no IPv4 traffic)."""
    key = "IpPermissionsEgress" if egress else "IpPermissions"
    for gid in group_ids:
        for rule in groups.get(gid, {}).get(key, []) or []:
            v6 = [str(r.get("CidrIpv6")) for r in rule.get("Ipv6Ranges", []) or [] if r.get("CidrIpv6")]
            if v6 and _protocol_matches(rule.get("IpProtocol"), proto) and _port_matches(rule, port):
                return (f"{gid} has {_describe_rule(rule)} {'to' if egress else 'from'} {', '.join(v6)}, an IPv6 "
                        "range: it does not admit IPv4 traffic (add the IPv4 CIDR too)")
    return None


def evaluate(
    groups: Mapping[str, Mapping[str, Any]], group_ids: Iterable[str], *, egress: bool, peer: Peer, port: int,
    proto: str = _TCP,
) -> _SgVerdict:
    """Does any rule of any group in ``group_ids`` allow this flow (egress to / ingress from ``peer``)?"""
    key = "IpPermissionsEgress" if egress else "IpPermissions"
    for gid in group_ids:
        for rule in groups.get(gid, {}).get(key, []) or []:
            if not (_protocol_matches(rule.get("IpProtocol"), proto) and _port_matches(rule, port)):
                continue
            who = _peer_matches(rule, peer)
            if who:
                direction = "to" if egress else "from"
                return _SgVerdict(True, gid, f"{_describe_rule(rule)} {direction} {who}")
    return _SgVerdict(False)


def unknown_groups(groups: Mapping[str, Any], group_ids: Iterable[str]) -> list[str]:
    return [g for g in group_ids if g not in groups]


def ingress_fix(group_id: str, port: int, source: Peer, source_group: str | None) -> str:
    if source_group:
        return (f"aws ec2 authorize-security-group-ingress --group-id {group_id} --protocol tcp "
                f"--port {port} --source-group {source_group}")
    return (f"aws ec2 authorize-security-group-ingress --group-id {group_id} --protocol tcp "
            f"--port {port} --cidr {source.cidr}")


def egress_fix(group_id: str, port: int, dest: Peer, dest_group: str | None) -> str:
    if dest_group:
        target = f"UserIdGroupPairs=[{{GroupId={dest_group}}}]"
    elif dest.prefix_lists:
        target = f"PrefixListIds=[{{PrefixListId={sorted(dest.prefix_lists)[0]}}}]"
    else:
        target = f"IpRanges=[{{CidrIp={dest.cidr}}}]"
    return (f"aws ec2 authorize-security-group-egress --group-id {group_id} "
            f"--ip-permissions IpProtocol=tcp,FromPort={port},ToPort={port},{target}")
