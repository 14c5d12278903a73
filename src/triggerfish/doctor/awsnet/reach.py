"""Walk one flow hop by hop (SG egress, NACLs both ways, route, NACLs, SG ingress) and name the first blocker.

Explanation codes are AWS Reachability Analyzer's own (``ENI_SG_RULES_MISMATCH``,
``SUBNET_ACL_RESTRICTION``, ``NO_ROUTE_TO_DESTINATION``, ``BAD_STATE_ROUTE``, ``BAD_STATE``) so they
read the same as its explanations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, ip_network

from triggerfish.doctor.awsnet import nacl, routes, sg
from triggerfish.doctor.awsnet.inventory import Inventory
from triggerfish.doctor.report import TRACE, Check

_ANYWHERE = IPv4Network("0.0.0.0/0")


@dataclass(frozen=True)
class Endpoint:
    """One end of a flow: an ENI in a subnet with security groups, or (subnet None) an address outside the VPC."""

    label: str
    cidr: IPv4Network
    subnet_id: str | None = None
    groups: tuple[str, ...] = ()
    lambda_eni: bool = False  # a Lambda Hyperplane ENI: never has a public IP
    prefix_lists: tuple[str, ...] = ()  # a gateway endpoint's service addresses, as SG rules name them

    @property
    def peer(self) -> sg.Peer:
        return sg.Peer(self.cidr, frozenset(self.groups), frozenset(self.prefix_lists))


def in_subnet(inv: Inventory, label: str, subnet_id: str, groups: tuple[str, ...] = (), lambda_eni: bool = False) -> Endpoint:
    subnet = inv.subnet(subnet_id)
    return Endpoint(label, ip_network(subnet["CidrBlock"], strict=False), subnet_id, tuple(groups), lambda_eni)  # type: ignore[arg-type]


@dataclass
class Walk:
    """The hops passed so far, and the first blocker once there is one."""

    passed: list[str] = field(default_factory=list)
    code: str = ""
    problem: str = ""
    fix: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return bool(self.code)

    def block(self, code: str, problem: str, fix: str = "") -> Walk:
        self.code, self.problem, self.fix = code, problem, fix
        return self


def _sg_egress(inv: Inventory, w: Walk, src: Endpoint, dst: Endpoint, port: int) -> bool:
    if not inv.has("SecurityGroups") or not src.groups:
        return True
    missing = sg.unknown_groups(inv.security_groups, src.groups)
    if missing:
        w.warnings.append(f"{', '.join(missing)} not in the describe-security-groups export")
    v = sg.evaluate(inv.security_groups, src.groups, egress=True, peer=dst.peer, port=port)
    if v.allowed:
        w.passed.append(f"{v.group_id} egress allows {v.rule}")
        return True
    dst_group = dst.groups[0] if dst.groups else None
    dst_pl = sorted(dst.peer.prefix_lists)
    v6 = sg.ipv6_only(inv.security_groups, src.groups, egress=True, port=port)
    w.block(
        "ENI_SG_RULES_MISMATCH",
        f"no outbound rule in {', '.join(src.groups)} allows tcp/{port} to {dst.label} "
        f"({dst_group or (dst_pl[0] if dst_pl else dst.cidr)})" + (f"; {v6}" if v6 else ""),
        sg.egress_fix(src.groups[0], port, dst.peer, dst_group),
    )
    return False


def _sg_ingress(inv: Inventory, w: Walk, src: Endpoint, dst: Endpoint, port: int) -> bool:
    if not inv.has("SecurityGroups") or not dst.groups:
        return True
    v = sg.evaluate(inv.security_groups, dst.groups, egress=False, peer=src.peer, port=port)
    if v.allowed:
        w.passed.append(f"{v.group_id} ingress allows {v.rule}")
        return True
    shared = [g for g in dst.groups if g in src.groups]
    if shared:
        # The ESM's ENI carries the cluster's own group, so only a rule naming that group lets it in.
        w.block(
            "ENI_SG_RULES_MISMATCH",
            f"{shared[0]} has no self-referencing inbound rule for tcp/{port}: {src.label} carries {shared[0]} "
            f"itself (a Lambda ESM for MSK uses the cluster's own security groups), so rules for client "
            f"groups or CIDRs don't match it",
            sg.ingress_fix(shared[0], port, src.peer, shared[0]),
        )
    else:
        v6 = sg.ipv6_only(inv.security_groups, dst.groups, egress=False, port=port)
        w.block(
            "ENI_SG_RULES_MISMATCH",
            f"no inbound rule in {', '.join(dst.groups)} allows tcp/{port} from {src.label} "
            f"({', '.join(src.groups) or src.cidr})" + (f"; {v6}" if v6 else ""),
            sg.ingress_fix(dst.groups[0], port, src.peer, src.groups[0] if src.groups else None),
        )
    return False


def _acl(inv: Inventory, w: Walk, subnet_id: str, *, egress: bool, peer: IPv4Network, ports: tuple[int, int],
         why: str) -> bool:
    if not inv.has("NetworkAcls"):
        return True
    acl = inv.nacl_for_subnet(subnet_id)
    if acl is None:
        w.warnings.append(f"no network ACL for {subnet_id} in the export")
        return True
    v = nacl.evaluate(acl, egress=egress, peer=peer, ports=ports)
    span = f"{ports[0]}" if ports[0] == ports[1] else f"{ports[0]}-{ports[1]}"
    if v.allowed:
        w.passed.append(f"{v.acl_id} ({subnet_id}) {'outbound' if egress else 'inbound'} {why} tcp/{span}: {v.rule}")
        return True
    blocked = f"{v.blocked[0]}" if v.blocked and v.blocked[0] == v.blocked[1] else (
        f"{v.blocked[0]}-{v.blocked[1]}" if v.blocked else span)
    v6 = nacl.ipv6_allow(acl, egress=egress, ports=ports)
    w.block(
        "SUBNET_ACL_RESTRICTION",
        f"{v.acl_id} on {subnet_id} blocks {'outbound' if egress else 'inbound'} {why} tcp/{blocked} "
        f"{'to' if egress else 'from'} {peer} ({v.rule})" + (f"; {v6}" if v6 else ""),
        nacl.fix(acl, egress=egress, peer=peer, ports=ports, below=v.rule_number),
    )
    return False


def _acls_both_ways(inv: Inventory, w: Walk, subnet_id: str, *, outbound_to: IPv4Network | None,
                    inbound_from: IPv4Network | None, port: int) -> bool:
    """Request and reply through one subnet's ACL: the request on ``port``, the reply on ephemeral ports."""
    if outbound_to is not None:  # this subnet sends the request and receives the reply
        return (_acl(inv, w, subnet_id, egress=True, peer=outbound_to, ports=(port, port), why="request")
                and _acl(inv, w, subnet_id, egress=False, peer=outbound_to, ports=nacl.EPHEMERAL, why="reply"))
    assert inbound_from is not None  # this subnet receives the request and sends the reply
    return (_acl(inv, w, subnet_id, egress=False, peer=inbound_from, ports=(port, port), why="request")
            and _acl(inv, w, subnet_id, egress=True, peer=inbound_from, ports=nacl.EPHEMERAL, why="reply"))


def _route(inv: Inventory, w: Walk, subnet_id: str, dst: IPv4Network, dst_label: str) -> routes.Route | None:
    rt = inv.route_table_for_subnet(subnet_id)
    if rt is None:
        w.block("NO_ROUTE_TO_DESTINATION", f"no route table for {subnet_id} in the describe-route-tables export")
        return None
    r = routes.lookup(rt, dst)
    if r is None:
        v6 = routes.ipv6_only_defaults(rt)
        w.block("NO_ROUTE_TO_DESTINATION", f"{rt['RouteTableId']} ({_used_by(inv, subnet_id)}) has no route to "
                f"{dst_label} ({dst})" + (f"; {', '.join(v6)} routes IPv6 only, not IPv4 traffic" if v6 else ""))
        return None
    if r.state != "active":
        option = {"nat": "--nat-gateway-id <nat-...>", "pcx": "--vpc-peering-connection-id <pcx-...>",
                  "tgw": "--transit-gateway-id <tgw-...>", "igw": "--gateway-id <igw-...>"}.get(r.kind, "<a live target>")
        w.block("BAD_STATE_ROUTE", f"{rt['RouteTableId']} route {r} is {r.state}: its target no longer exists or is down",
                f"aws ec2 replace-route --route-table-id {rt['RouteTableId']} --destination-cidr-block {r.destination} "
                f"{option}")
        return None
    w.passed.append(f"{rt['RouteTableId']} ({_used_by(inv, subnet_id)}) route {r}")
    return r


def _used_by(inv: Inventory, subnet_id: str) -> str:
    if inv.uses_main_table(subnet_id):
        return f"the VPC's main table, which {subnet_id} follows implicitly (no explicit association)"
    return f"used by {subnet_id}"


def association_fix(inv: Inventory, subnet_id: str, dst: IPv4Network, kinds: tuple[str, ...]) -> str | None:
    """For a subnet implicitly on the main table: associate it with a table that routes ``dst`` right.

    Changing the main table would change every other subnet that follows it implicitly, so the fix is the
    subnet's own association, to an existing table when one has such a route, else to a new one.
    """
    if not inv.uses_main_table(subnet_id):
        return None
    vpc = inv.vpc_of_subnet(subnet_id)
    for rt in inv.route_tables_of_vpc(vpc):
        if any(a.get("Main") for a in rt.get("Associations", [])):
            continue
        r = routes.lookup(rt, dst)
        if r is not None and r.state == "active" and r.kind in kinds:
            return (f"aws ec2 associate-route-table --route-table-id {rt['RouteTableId']} --subnet-id {subnet_id} "
                    f"({rt['RouteTableId']} routes {r}; leave the main table as it is: other subnets follow it)")
    return (f"aws ec2 create-route-table --vpc-id {vpc}, add the route to it (aws ec2 create-route), then aws ec2 "
            f"associate-route-table --route-table-id <the new rtb> --subnet-id {subnet_id} (leave the main table "
            "as it is: other subnets follow it)")


_CROSS_VPC = ("pcx", "tgw", "vgw", "eni", "i", "lgw")


def _return_route(inv: Inventory, w: Walk, src: Endpoint, dst: Endpoint) -> bool:
    """Across VPCs the reply needs a route back on the far side too."""
    assert dst.subnet_id
    if inv.route_table_for_subnet(dst.subnet_id) is None:
        w.warnings.append(f"the far side's route table for {dst.subnet_id} is not exported: its return route to "
                          f"{src.cidr} was not checked")
        return True
    back = _route(inv, w, dst.subnet_id, src.cidr, f"{src.label} (return path)")
    rt_id = (inv.route_table_for_subnet(dst.subnet_id) or {}).get("RouteTableId", "<rtb>")
    fix = (f"aws ec2 create-route --route-table-id {rt_id} --destination-cidr-block {src.cidr} "
           "--vpc-peering-connection-id <pcx-...>")
    if back is None:
        w.fix = w.fix or fix
        return False
    if back.kind not in _CROSS_VPC:
        w.block("NO_ROUTE_TO_DESTINATION", f"the return path from {dst.subnet_id} to {src.cidr} follows {back} in "
                f"{rt_id}, not the peering or transit gateway", fix)
        return False
    return True


def private_flow(inv: Inventory, src: Endpoint, dst: Endpoint, port: int) -> Walk:
    """A TCP flow between two ENIs in (peered) subnets of the exported VPCs."""
    w = Walk()
    if not _sg_egress(inv, w, src, dst, port):
        return w
    assert src.subnet_id and dst.subnet_id
    same_subnet = src.subnet_id == dst.subnet_id  # NACLs don't filter traffic inside one subnet
    if not same_subnet and not _acls_both_ways(inv, w, src.subnet_id, outbound_to=dst.cidr, inbound_from=None, port=port):
        return w
    if not same_subnet and inv.has("RouteTables"):
        r = _route(inv, w, src.subnet_id, dst.cidr, dst.label)
        if r is None:
            return w
        other_vpc = inv.vpc_of_subnet(dst.subnet_id) != inv.vpc_of_subnet(src.subnet_id)
        if other_vpc and r.kind not in _CROSS_VPC:
            rt_id = (inv.route_table_for_subnet(src.subnet_id) or {}).get("RouteTableId", "<rtb>")
            return w.block(
                "NO_ROUTE_TO_DESTINATION",
                f"{dst.cidr} is in another VPC ({inv.vpc_of_subnet(dst.subnet_id)}) but {rt_id} sends it to "
                f"{r.target} ({r}); private addresses of another VPC are reachable only through peering, a transit "
                "gateway or a VPN",
                association_fix(inv, src.subnet_id, dst.cidr, _CROSS_VPC) or
                f"aws ec2 create-route --route-table-id {rt_id} --destination-cidr-block <the other VPC's CIDR> "
                "--vpc-peering-connection-id <pcx-...>  (or --transit-gateway-id <tgw-...>)",
            )
        if other_vpc:
            if r.kind == "tgw":
                w.warnings.append(f"via {r.target}: the transit gateway's own route tables are not in the exports"
                                  "; group references across it need SecurityGroupReferencingSupport")
            if not _return_route(inv, w, src, dst):
                return w
        elif r.kind != "local":
            w.warnings.append(f"traffic to {dst.cidr} is sent to {r.target} (a middlebox?) rather than the local route")
    if not same_subnet and not _acls_both_ways(inv, w, dst.subnet_id, outbound_to=None, inbound_from=src.cidr, port=port):
        return w
    _sg_ingress(inv, w, src, dst, port)
    return w


def internet_flow(inv: Inventory, src: Endpoint, port: int, what: str) -> Walk:
    """A TCP flow from an ENI to a public address (an AWS API endpoint without a VPC endpoint)."""
    w = Walk()
    public = Endpoint(what, _ANYWHERE)
    if not _sg_egress(inv, w, src, public, port):
        return w
    assert src.subnet_id
    if not _acls_both_ways(inv, w, src.subnet_id, outbound_to=_ANYWHERE, inbound_from=None, port=port):
        return w
    if not inv.has("RouteTables"):
        w.warnings.append("routes not checked: export `aws ec2 describe-route-tables`")
        return w
    r = _route(inv, w, src.subnet_id, _ANYWHERE, f"{what} (public address)")
    internet = ("nat",) if src.lambda_eni else ("nat", "igw")
    if r is None:
        w.fix = association_fix(inv, src.subnet_id, _ANYWHERE, internet) or (
            "give the subnet a NAT gateway route (`aws ec2 create-route --route-table-id "
            f"{(inv.route_table_for_subnet(src.subnet_id) or {}).get('RouteTableId', '<rtb>')} "
            "--destination-cidr-block 0.0.0.0/0 --nat-gateway-id <nat-...>`) or add an interface VPC endpoint")
        return w
    if r.kind == "nat":
        return _through_nat(inv, w, src, r, port)
    if r.kind == "igw":
        if src.lambda_eni:
            return w.block(
                "IGW_PRIVATE_IP_ASSOCIATION_FOR_INGRESS",
                f"{src.subnet_id} routes 0.0.0.0/0 to {r.target}, but Lambda's ENIs never get a public IP, so a route "
                "to an internet gateway gives a VPC function (or ESM) no internet",
                association_fix(inv, src.subnet_id, _ANYWHERE, internet) or
                "put the function/ESM in private subnets whose route table sends 0.0.0.0/0 to a NAT gateway, "
                "or add interface VPC endpoints for the services it calls",
            )
        w.warnings.append(f"route to {r.target}: works only if the ENI has a public or Elastic IP")
        return w
    w.warnings.append(f"0.0.0.0/0 goes to {r.target} ({r.kind}); what lies beyond is not in the exports")
    return w


def _through_nat(inv: Inventory, w: Walk, src: Endpoint, r: routes.Route, port: int) -> Walk:
    if not inv.has("NatGateways"):
        w.warnings.append(f"{r.target} not checked: export `aws ec2 describe-nat-gateways`")
        return w
    nat = inv.nat_gateways.get(r.target)
    if nat is None:
        return w.block("BAD_STATE", f"route target {r.target} is not in the describe-nat-gateways export (deleted?)")
    state = str(nat.get("State", "")).lower()
    if state != "available":
        return w.block("BAD_STATE", f"{r.target} is {state}, not available",
                       "create a new NAT gateway and point the route at it")
    if str(nat.get("ConnectivityType", "public")).lower() == "private":
        return w.block("BAD_STATE", f"{r.target} is a private NAT gateway: it cannot reach the internet",
                       "use a public NAT gateway (with an Elastic IP) in a public subnet")
    nat_subnet = str(nat.get("SubnetId"))
    w.passed.append(f"{r.target} available in {nat_subnet}")
    # NAT subnet ACL: request in from the source, out to the internet, and both replies.
    if nat_subnet != src.subnet_id and nat_subnet in inv.subnets:
        if not _acls_both_ways(inv, w, nat_subnet, outbound_to=None, inbound_from=src.cidr, port=port):
            return w
    if nat_subnet in inv.subnets and not _acls_both_ways(inv, w, nat_subnet, outbound_to=_ANYWHERE, inbound_from=None, port=port):
        return w
    if inv.has("RouteTables") and nat_subnet in inv.subnets:
        nr = _route(inv, w, nat_subnet, _ANYWHERE, "the internet")
        if nr is None:
            w.fix = f"aws ec2 create-route --route-table-id <table of {nat_subnet}> --destination-cidr-block 0.0.0.0/0 --gateway-id <igw-...>"
            return w
        if nr.kind != "igw":
            return w.block("NO_ROUTE_TO_DESTINATION",
                           f"{r.target} sits in {nat_subnet}, whose default route goes to {nr.target}, not an internet gateway",
                           "move the NAT gateway to a public subnet (0.0.0.0/0 -> igw-...)")
    return w


def gateway_flow(inv: Inventory, src: Endpoint, dst: Endpoint, port: int, route: routes.Route) -> Walk:
    """To a gateway endpoint (S3, DynamoDB): the source's SG egress, its subnet's ACL both ways, the route to it."""
    w = Walk()
    if not _sg_egress(inv, w, src, dst, port):
        return w
    assert src.subnet_id
    if not _acls_both_ways(inv, w, src.subnet_id, outbound_to=dst.cidr, inbound_from=None, port=port):
        return w
    if route.state != "active":
        return w.block("BAD_STATE_ROUTE", f"route {route} is {route.state}")
    w.passed.append(f"route {route}")
    return w


def to_check(stage: str, target: str, w: Walk) -> Check:
    notes = "; ".join("note: " + x for x in w.warnings)
    trace = (TRACE + "; ".join(w.passed)) if w.passed else ""
    # Notes first: a table hides a detail that starts with the trace of passed hops.
    detail = "; ".join(filter(None, [notes, trace]))
    if w.blocked:
        return Check.of(stage, target, "fail", f"{w.code}: {w.problem}", detail, w.fix)
    return Check.of(stage, target, "warn" if w.warnings else "ok", "reachable", detail, "")
