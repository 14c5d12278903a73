"""Network ACLs: stateless, numbered rules, first match wins, in each direction separately.

A request and its reply are judged independently, so the reply to a client's ephemeral port
(Lambda, NAT gateways and ELB use 1024-65535) must be allowed explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Network, ip_network
from typing import Any

EPHEMERAL = (1024, 65535)
_DEFAULT_RULE = 32767  # the final `*` rule as the API reports it


@dataclass(frozen=True)
class _AclVerdict:
    allowed: bool
    acl_id: str
    rule_number: int | None = None  # the deciding rule (None: implicit deny, nothing matched)
    blocked: tuple[int, int] | None = None  # the port range that is denied
    rule: str = ""


def _entry_protocol_matches(entry: Mapping[str, Any], proto: str) -> bool:
    p = str(entry.get("Protocol", "-1"))
    return p in ("-1", "all") or p == proto


def _entry_ports(entry: Mapping[str, Any]) -> tuple[int, int]:
    if str(entry.get("Protocol")) not in ("6", "17"):
        return (0, 65535)
    pr = entry.get("PortRange") or {}
    return (int(pr.get("From", 0)), int(pr.get("To", 65535)))


def _describe_entry(entry: Mapping[str, Any]) -> str:
    proto = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp"}.get(str(entry.get("Protocol")), str(entry.get("Protocol")))
    lo, hi = _entry_ports(entry)
    ports = "" if proto == "all" else (f"/{lo}" if lo == hi else f"/{lo}-{hi}")
    num = entry.get("RuleNumber")
    return f"rule {'*' if num == _DEFAULT_RULE else num}: {entry.get('RuleAction')} {proto}{ports} {entry.get('CidrBlock')}"


def evaluate(
    acl: Mapping[str, Any], *, egress: bool, peer: IPv4Network, ports: tuple[int, int], proto: str = "6",
) -> _AclVerdict:
    """Is every port in ``ports`` to/from ``peer`` allowed by the ACL's first matching rules?"""
    acl_id = str(acl.get("NetworkAclId", "?"))
    remaining = [ports]  # port intervals not yet decided
    entries = sorted(
        (e for e in acl.get("Entries", []) if bool(e.get("Egress")) == egress and e.get("CidrBlock")),
        key=lambda e: int(e.get("RuleNumber", _DEFAULT_RULE)),
    )
    last_allow = ""
    for entry in entries:
        if not _entry_protocol_matches(entry, proto):
            continue
        if not ip_network(entry["CidrBlock"], strict=False).supernet_of(peer):  # type: ignore[arg-type]
            # A deny for only part of the peer range blocks some addresses; treat overlap as a match for denies.
            if not (entry.get("RuleAction") == "deny" and ip_network(entry["CidrBlock"], strict=False).overlaps(peer)):
                continue
        lo, hi = _entry_ports(entry)
        next_remaining: list[tuple[int, int]] = []
        for a, b in remaining:
            i_lo, i_hi = max(a, lo), min(b, hi)
            if i_lo > i_hi:
                next_remaining.append((a, b))
                continue
            if entry.get("RuleAction") == "deny":
                return _AclVerdict(False, acl_id, int(entry.get("RuleNumber", _DEFAULT_RULE)), (i_lo, i_hi),
                                  _describe_entry(entry))
            last_allow = _describe_entry(entry)
            if a < i_lo:
                next_remaining.append((a, i_lo - 1))
            if i_hi < b:
                next_remaining.append((i_hi + 1, b))
        remaining = next_remaining
        if not remaining:
            return _AclVerdict(True, acl_id, int(entry.get("RuleNumber", 0)), None, last_allow)
    return _AclVerdict(False, acl_id, None, remaining[0] if remaining else ports, "no rule matches (implicit deny)")


def ipv6_allow(acl: Mapping[str, Any], *, egress: bool, ports: tuple[int, int], proto: str = "6") -> str | None:
    """An allow entry for the ports that names only an IPv6 block (it does not apply to IPv4 traffic)."""
    for entry in acl.get("Entries", []):
        if (bool(entry.get("Egress")) == egress and entry.get("Ipv6CidrBlock") and entry.get("RuleAction") == "allow"
                and _entry_protocol_matches(entry, proto)):
            lo, hi = _entry_ports(entry)
            if lo <= ports[0] and ports[1] <= hi:
                return (f"rule {entry.get('RuleNumber')} allows {entry['Ipv6CidrBlock']}, IPv6 only: it does not "
                        "apply to IPv4 traffic")
    return None


def _free_rule_number(acl: Mapping[str, Any], *, egress: bool, below: int | None) -> int:
    """A rule number not used in that direction, below ``below`` so the new allow wins."""
    used = {int(e.get("RuleNumber", 0)) for e in acl.get("Entries", []) if bool(e.get("Egress")) == egress}
    top = (below - 1) if below and below != _DEFAULT_RULE else max([n for n in used if n != _DEFAULT_RULE] + [0]) + 10
    for n in range(min(top, 32766), 0, -1):
        if n not in used:
            return n
    return 1


def fix(acl: Mapping[str, Any], *, egress: bool, peer: IPv4Network, ports: tuple[int, int], below: int | None) -> str:
    number = _free_rule_number(acl, egress=egress, below=below)
    return (f"aws ec2 create-network-acl-entry --network-acl-id {acl.get('NetworkAclId')} "
            f"{'--egress' if egress else '--ingress'} --rule-number {number} --protocol tcp "
            f"--port-range From={ports[0]},To={ports[1]} --cidr-block {peer} --rule-action allow")
