"""doctor aws-network: VPC endpoints (private DNS, policies, gateway endpoints), IPv4 vs IPv6, the main route table.

Each case changes the ``reachable`` (or ``no-sts-path``: no NAT) fixture the way the AWS CLI would print
the misconfiguration: ``describe-vpc-endpoints`` carries ``PolicyDocument`` as a JSON string, gateway
endpoints appear in ``describe-route-tables`` as ``DestinationPrefixListId`` -> ``vpce-`` routes, IPv6
rules as ``Ipv6Ranges[].CidrIpv6`` / ``Ipv6CidrBlock`` / ``DestinationIpv6CidrBlock``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from triggerfish.doctor import network
from triggerfish.doctor.report import exit_code

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
LAMBDA_SG = "sg-0111lambda000001"
APP1 = "subnet-0aaa000000000app1"
PRIVATE_RTB, MAIN_RTB = "rtb-0private000000000b", "rtb-0main00000000000a"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:orders-consumer"
ROLE_ARN = "arn:aws:iam::123456789012:role/orders-consumer"
S3_PL, S3_VPCE = "pl-63a5400a", "vpce-0s3gateway00000001"


def scenario(tmp: Path, base: str, **changes: Callable[[Any], None]) -> Path:
    shutil.copytree(FIXTURES / base, tmp, dirs_exist_ok=True)
    for name, change in changes.items():
        path = tmp / f"{name.replace('_', '-')}.json"
        doc = json.loads(path.read_text())
        change(doc)
        path.write_text(json.dumps(doc, indent=2))
    return tmp


def run(d: Path, services: list[str]) -> list:
    return network.diagnose(d, lambda_config=d / "function.json", services=services)


def first(checks: list, stage: str):
    return next(c for c in checks if c.stage == stage)


def endpoint(doc: Any, service: str = "secretsmanager") -> dict[str, Any]:
    return next(e for e in doc["VpcEndpoints"] if e["ServiceName"].endswith(f".{service}"))


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2008-10-17", "Statement": list(statements)}, indent=2)  # a string, as AWS prints it


# --- interface endpoints without private DNS ------------------------------------------------------------------


def test_private_dns_off_without_a_nat_is_never_reachable(tmp_path: Path) -> None:
    d = scenario(tmp_path, "no-sts-path",
                 vpc_endpoints=lambda doc: endpoint(doc).__setitem__("PrivateDnsEnabled", False))
    checks = run(d, ["secretsmanager"])
    c = first(checks, "secretsmanager")
    assert c.status == "fail" and exit_code(checks) == 1
    assert c.problem.startswith("PRIVATE_DNS_DISABLED: vpce-0secrets000000001 has PrivateDnsEnabled=false: SDKs "
                                "resolve secretsmanager.us-east-1.amazonaws.com to its public addresses")
    assert "the public path is blocked: NO_ROUTE_TO_DESTINATION" in c.problem
    assert c.fix.startswith("aws ec2 modify-vpc-endpoint --vpc-endpoint-id vpce-0secrets000000001 --private-dns-enabled")
    assert "https://vpce-0secrets000000001-abcdefgh.secretsmanager.us-east-1.vpce.amazonaws.com" in c.fix


# --- endpoint policies ----------------------------------------------------------------------------------------


def test_endpoint_policy_that_denies_the_action(tmp_path: Path) -> None:
    deny = policy({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"},
                  {"Sid": "NoSecretReads", "Effect": "Deny", "Principal": "*", "Action": "secretsmanager:Get*",
                   "Resource": "*"})
    d = scenario(tmp_path, "reachable", vpc_endpoints=lambda doc: endpoint(doc).__setitem__("PolicyDocument", deny))
    c = first(run(d, ["secretsmanager"]), "secretsmanager")
    assert c.status == "fail" and c.problem.startswith(
        "VPC_ENDPOINT_POLICY: the policy of vpce-0secrets000000001 does not allow secretsmanager:GetSecretValue")
    assert "explicitly denied by vpce-0secrets000000001 policy statement NoSecretReads" in c.problem
    assert "--vpc-endpoint-id vpce-0secrets000000001" in c.fix and "Deny statement" in c.fix


def test_endpoint_policy_that_allows_another_action_only(tmp_path: Path) -> None:
    only = policy({"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:DescribeSecret", "Resource": "*"})
    d = scenario(tmp_path, "reachable", vpc_endpoints=lambda doc: endpoint(doc).__setitem__("PolicyDocument", only))
    c = first(run(d, ["secretsmanager"]), "secretsmanager")
    assert c.status == "fail" and "implicit deny" in c.problem


def _lambda_endpoint(resource: str, principal: Any = "*") -> Callable[[Any], None]:
    def add(doc: Any) -> None:
        ep = json.loads(json.dumps(endpoint(doc)))
        ep.update(VpcEndpointId="vpce-0lambda0000000001", ServiceName="com.amazonaws.us-east-1.lambda",
                  DnsEntries=[], NetworkInterfaceIds=[],
                  PolicyDocument=policy({"Effect": "Allow", "Principal": principal, "Action": "lambda:InvokeFunction",
                                         "Resource": resource}))
        doc["VpcEndpoints"].append(ep)
    return add


def test_endpoint_policy_for_another_function_names_the_resource(tmp_path: Path) -> None:
    other = "arn:aws:lambda:us-east-1:123456789012:function:billing"
    d = scenario(tmp_path / "a", "no-sts-path", vpc_endpoints=_lambda_endpoint(other))
    c = first(run(d, ["lambda"]), "lambda")
    assert c.status == "fail" and f"does not allow lambda:InvokeFunction on {FUNCTION_ARN}" in c.problem
    # The same policy naming this function (and this role as principal) passes through the endpoint.
    d = scenario(tmp_path / "b", "no-sts-path", vpc_endpoints=_lambda_endpoint(f"{FUNCTION_ARN}*", {"AWS": ROLE_ARN}))
    c = first(run(d, ["lambda"]), "lambda")
    assert c.status == "ok" and "via interface endpoint vpce-0lambda0000000001" in c.detail


# --- gateway endpoints and prefix lists -----------------------------------------------------------------------


def _s3_gateway(in_route_table: bool) -> dict[str, Callable[[Any], None]]:
    def endpoints(doc: Any) -> None:
        doc["VpcEndpoints"].append({
            "VpcEndpointId": S3_VPCE, "VpcEndpointType": "Gateway", "VpcId": "vpc-0a1b2c3d4e5f60001",
            "ServiceName": "com.amazonaws.us-east-1.s3", "State": "available",
            "PolicyDocument": policy({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}),
            "RouteTableIds": [PRIVATE_RTB] if in_route_table else [], "SubnetIds": [], "Groups": [],
            "PrivateDnsEnabled": False, "RequesterManaged": False, "NetworkInterfaceIds": [], "DnsEntries": [],
            "CreationTimestamp": "2026-01-05T10:00:00+00:00", "Tags": [], "OwnerId": "123456789012"})

    def route_tables(doc: Any) -> None:
        if in_route_table:
            rt = next(t for t in doc["RouteTables"] if t["RouteTableId"] == PRIVATE_RTB)
            rt["Routes"].append({"DestinationPrefixListId": S3_PL, "GatewayId": S3_VPCE,
                                 "Origin": "CreateRoute", "State": "active"})

    return {"vpc_endpoints": endpoints, "route_tables": route_tables}


def _lambda_egress(*rules: dict[str, Any]) -> Callable[[Any], None]:
    def change(doc: Any) -> None:
        next(g for g in doc["SecurityGroups"] if g["GroupId"] == LAMBDA_SG)["IpPermissionsEgress"] = list(rules)
    return change


def _tcp(port: int, **peer: Any) -> dict[str, Any]:
    rule = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [], "Ipv6Ranges": [],
            "PrefixListIds": [], "UserIdGroupPairs": []}
    rule.update(peer)
    return rule


def test_gateway_endpoint_needs_the_prefix_list_in_the_security_group(tmp_path: Path) -> None:
    kafka_only = _tcp(9096, UserIdGroupPairs=[{"GroupId": "sg-0222msk00000002", "UserId": "123456789012"}])
    d = scenario(tmp_path / "a", "no-sts-path", security_groups=_lambda_egress(kafka_only), **_s3_gateway(True))
    c = first(run(d, ["s3"]), "s3")
    assert c.status == "fail" and c.problem.startswith(f"ENI_SG_RULES_MISMATCH: no outbound rule in {LAMBDA_SG} "
                                                       f"allows tcp/443 to {S3_VPCE}")
    assert f"PrefixListIds=[{{PrefixListId={S3_PL}}}]" in c.fix
    # The rule the fix describes makes it work, through the gateway endpoint and without a NAT.
    to_s3 = _tcp(443, PrefixListIds=[{"PrefixListId": S3_PL}])
    d = scenario(tmp_path / "b", "no-sts-path", security_groups=_lambda_egress(kafka_only, to_s3), **_s3_gateway(True))
    c = first(run(d, ["s3"]), "s3")
    assert c.status == "ok" and f"via gateway endpoint {S3_VPCE}" in c.detail and f"{S3_PL} -> {S3_VPCE}" in c.detail


def test_gateway_endpoint_missing_from_the_subnets_route_table(tmp_path: Path) -> None:
    d = scenario(tmp_path, "no-sts-path", **_s3_gateway(False))
    c = first(run(d, ["s3"]), "s3")
    assert c.status == "fail" and f"The gateway endpoint {S3_VPCE} is not in {PRIVATE_RTB}'s routes" in c.problem
    assert c.fix == f"aws ec2 modify-vpc-endpoint --vpc-endpoint-id {S3_VPCE} --add-route-table-ids {PRIVATE_RTB}"


# --- IPv4 vs IPv6 ---------------------------------------------------------------------------------------------


def test_ipv6_only_egress_rule_does_not_admit_ipv4(tmp_path: Path) -> None:
    v6_only = {"IpProtocol": "-1", "IpRanges": [], "Ipv6Ranges": [{"CidrIpv6": "::/0"}], "PrefixListIds": [],
               "UserIdGroupPairs": []}
    d = scenario(tmp_path, "reachable", security_groups=_lambda_egress(v6_only))
    checks = run(d, ["sts"])
    c = first(checks, "sts")
    assert c.status == "fail" and "ENI_SG_RULES_MISMATCH" in c.problem
    assert f"{LAMBDA_SG} has all traffic to ::/0, an IPv6 range: it does not admit IPv4 traffic" in c.problem
    assert first(checks, "broker").status == "fail"


def test_ipv6_default_route_does_not_route_ipv4(tmp_path: Path) -> None:
    def eigw(doc: Any) -> None:
        rt = next(t for t in doc["RouteTables"] if t["RouteTableId"] == PRIVATE_RTB)
        rt["Routes"].append({"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": "eigw-0123456789abcdef0",
                             "Origin": "CreateRoute", "State": "active"})

    d = scenario(tmp_path, "no-sts-path", route_tables=eigw)
    c = first(run(d, ["sts"]), "sts")
    assert c.status == "fail" and "::/0 -> eigw-0123456789abcdef0 routes IPv6 only, not IPv4 traffic" in c.problem


def test_nacl_allowing_ipv6_only(tmp_path: Path) -> None:
    def v6(doc: Any) -> None:
        acl = next(a for a in doc["NetworkAcls"] if any(s.get("SubnetId") == APP1 for s in a["Associations"]))
        for e in acl["Entries"]:
            if not e["Egress"] and e["RuleAction"] == "allow":
                e.pop("CidrBlock", None)
                e["Ipv6CidrBlock"] = "::/0"

    d = scenario(tmp_path, "reachable", network_acls=v6)
    c = first(run(d, ["sts"]), "sts")
    assert c.status == "fail" and "SUBNET_ACL_RESTRICTION" in c.problem
    assert "allows ::/0, IPv6 only: it does not apply to IPv4 traffic" in c.problem


# --- the main route table -------------------------------------------------------------------------------------


def test_subnet_on_the_main_table_is_associated_not_the_main_table_changed(tmp_path: Path) -> None:
    def implicit(doc: Any) -> None:
        rt = next(t for t in doc["RouteTables"] if t["RouteTableId"] == PRIVATE_RTB)
        rt["Associations"] = [a for a in rt["Associations"] if a.get("SubnetId") != APP1]

    d = scenario(tmp_path, "reachable", route_tables=implicit)
    checks = network.diagnose(d, subnets=[APP1], security_groups=[LAMBDA_SG], services=["sts"])
    c = first(checks, "sts")
    assert c.status == "fail" and c.problem.startswith(
        f"NO_ROUTE_TO_DESTINATION: {MAIN_RTB} (the VPC's main table, which {APP1} follows implicitly")
    assert c.fix.startswith(f"aws ec2 associate-route-table --route-table-id {PRIVATE_RTB} --subnet-id {APP1}")
    assert MAIN_RTB not in c.fix.split(";")[0] and "create-route --route-table-id" not in c.fix


def test_main_table_subnet_and_a_gateway_endpoint_on_another_table(tmp_path: Path) -> None:
    gateway = _s3_gateway(True)

    def implicit(doc: Any) -> None:
        gateway["route_tables"](doc)
        rt = next(t for t in doc["RouteTables"] if t["RouteTableId"] == PRIVATE_RTB)
        rt["Associations"] = [a for a in rt["Associations"] if a.get("SubnetId") != APP1]

    d = scenario(tmp_path, "no-sts-path", vpc_endpoints=gateway["vpc_endpoints"], route_tables=implicit)
    c = first(network.diagnose(d, subnets=[APP1], security_groups=[LAMBDA_SG], services=["s3"]), "s3")
    assert c.status == "fail" and f"The gateway endpoint {S3_VPCE} is not in {MAIN_RTB}'s routes" in c.problem
    assert c.fix.startswith(f"aws ec2 associate-route-table --route-table-id {PRIVATE_RTB} --subnet-id {APP1}")
