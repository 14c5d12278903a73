"""doctor aws-network: static reachability over fixture exports in the exact AWS CLI output shapes.

Each directory under tests/fixtures/aws/ differs from ``reachable`` in one thing that blocks a path.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from triggerfish.cli import app
from triggerfish.doctor import network
from triggerfish.doctor.awsnet import nacl, routes
from triggerfish.doctor.awsnet.inventory import load_dir
from triggerfish.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
LAMBDA_SG, MSK_SG = "sg-0111lambda000001", "sg-0222msk00000002"
APP1, PEER = "subnet-0aaa000000000app1", "subnet-0ddd00000000peer1"
runner = CliRunner()


def lambda_checks(scenario: str, **kw):
    d = FIXTURES / scenario
    return network.diagnose(d, lambda_config=d / "function.json", **kw)


def by(checks, stage):
    return [c for c in checks if c.stage == stage]


def test_fully_reachable_lambda_to_msk_and_services() -> None:
    checks = lambda_checks("reachable")
    # 2 function subnets x (2 broker subnets on 9096 + sts + lambda + secretsmanager)
    assert len(checks) == 10
    assert {c.status for c in checks} == {"ok"}
    assert all(c.target.endswith(":9096") for c in by(checks, "broker"))
    sts = by(checks, "sts")[0]
    assert "nat-0123456789abcdef0" in sts.detail  # went out through the NAT gateway
    secrets = by(checks, "secretsmanager")[0]
    assert "vpce-0secrets000000001" in secrets.detail  # and used the interface endpoint where there is one


def test_missing_sg_ingress_names_group_port_and_rule_to_add() -> None:
    broker = by(lambda_checks("missing-sg-ingress"), "broker")
    assert broker and all(c.status == "fail" for c in broker)
    c = broker[0]
    assert c.problem.startswith("ENI_SG_RULES_MISMATCH")
    assert MSK_SG in c.problem and "tcp/9096" in c.problem and LAMBDA_SG in c.problem
    assert c.fix == (f"aws ec2 authorize-security-group-ingress --group-id {MSK_SG} --protocol tcp --port 9096 "
                     f"--source-group {LAMBDA_SG}")


def test_missing_self_reference_breaks_only_the_msk_esm() -> None:
    d = FIXTURES / "missing-self-reference"
    # EC2/Lambda clients in their own group still work...
    assert all(c.status == "ok" for c in by(lambda_checks("missing-self-reference"), "broker"))
    # ...but the ESM, whose ENI carries the cluster's own group, is blocked.
    esm = by(network.diagnose(d, msk_esm=True, services=["sts"]), "broker")
    assert len(esm) == 4 and all(c.status == "fail" for c in esm)
    assert "self-referencing" in esm[0].problem
    assert esm[0].fix.endswith(f"--group-id {MSK_SG} --protocol tcp --port 9096 --source-group {MSK_SG}")


def test_nacl_deny_rule_found_in_rule_order_with_a_lower_numbered_fix() -> None:
    broker = by(lambda_checks("nacl-deny"), "broker")
    c = broker[0]
    assert c.status == "fail" and c.problem.startswith("SUBNET_ACL_RESTRICTION")
    assert "acl-0cccmsk000000003" in c.problem and "rule 90: deny tcp/9096" in c.problem and "inbound request" in c.problem
    assert "--ingress --rule-number 89 " in c.fix and "From=9096,To=9096" in c.fix


def test_nacl_without_ephemeral_return_range() -> None:
    checks = lambda_checks("nacl-no-ephemeral")
    c = by(checks, "broker")[0]
    assert c.status == "fail" and "inbound reply tcp/1024-32767" in c.problem and "acl-0bbbapp000000002" in c.problem
    assert "From=1024,To=65535" in c.fix
    # The interface endpoint in the same subnet isn't filtered by the ACL (same subnet), so it still works.
    assert by(checks, "secretsmanager")[0].status == "ok"
    assert by(checks, "sts")[0].status == "fail"


def test_no_route_to_a_peered_vpc_and_its_fix() -> None:
    kw = dict(subnets=[APP1], security_groups=[LAMBDA_SG], broker_subnets=[PEER], broker_groups=["sg-0444peerkafka04"],
              ports=[9092], services=[])
    assert [c.status for c in network.diagnose(FIXTURES / "reachable", **kw)] == ["ok"]
    [c] = network.diagnose(FIXTURES / "no-route", **kw)
    assert c.status == "fail" and c.problem.startswith("NO_ROUTE_TO_DESTINATION")
    assert "vpc-0f9e8d7c6b5a40002" in c.problem and "nat-0123456789abcdef0" in c.problem
    assert "--vpc-peering-connection-id" in c.fix


def test_no_nat_and_no_sts_endpoint() -> None:
    checks = lambda_checks("no-sts-path")
    sts = by(checks, "sts")
    assert sts and all(c.status == "fail" for c in sts)
    assert sts[0].problem.startswith("NO_ROUTE_TO_DESTINATION")
    assert "No interface VPC endpoint for com.amazonaws.us-east-1.sts" in sts[0].problem
    assert "create-vpc-endpoint" in sts[0].fix and "com.amazonaws.us-east-1.sts" in sts[0].fix
    assert all(c.status == "ok" for c in by(checks, "secretsmanager"))  # it has an endpoint
    assert all(c.status == "ok" for c in by(checks, "broker"))


def test_files_are_recognised_by_top_level_key_not_name(tmp_path: Path) -> None:
    for i, f in enumerate(sorted((FIXTURES / "missing-sg-ingress").glob("*.json"))):
        shutil.copy(f, tmp_path / f"export-{i}.json")
    (tmp_path / "notes.json").write_text('{"something": "else"}')
    inv = load_dir(tmp_path)
    assert set(inv.files) >= {"SecurityGroups", "NetworkAcls", "RouteTables", "Subnets", "VpcEndpoints", "NatGateways",
                              "ClusterInfo"}
    checks = network.diagnose(tmp_path, lambda_config=tmp_path / "export-1.json")  # function.json sorts second
    assert by(checks, "broker")[0].problem.startswith("ENI_SG_RULES_MISMATCH")


def test_missing_exports_are_reported_not_assumed(tmp_path: Path) -> None:
    for name in ("subnets.json", "security-groups.json", "cluster.json", "function.json"):
        shutil.copy(FIXTURES / "reachable" / name, tmp_path / name)
    checks = network.diagnose(tmp_path, lambda_config=tmp_path / "function.json", services=[])
    inputs = by(checks, "inputs")
    assert {c.target for c in inputs} == {"NetworkAcls", "RouteTables"}
    assert all(c.status == "warn" and "describe-" in c.fix for c in inputs)


def test_bad_input_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "sgs.json").write_text('{"SecurityGroups": [')
    with pytest.raises(ConfigError, match=r"sgs.json is not JSON \(line 1"):
        load_dir(tmp_path)
    with pytest.raises(ConfigError, match="--input"):
        network.diagnose(tmp_path / "nope", subnets=[APP1])


def test_unknown_source_subnet_says_how_to_export_it() -> None:
    with pytest.raises(ConfigError, match="describe-subnets --subnet-ids subnet-nope"):
        network.diagnose(FIXTURES / "reachable", subnets=["subnet-nope"], security_groups=[LAMBDA_SG])


def _mutated(tmp_path: Path, name: str, change) -> Path:
    shutil.copytree(FIXTURES / "reachable", tmp_path, dirs_exist_ok=True)
    doc = json.loads((tmp_path / name).read_text())
    change(doc)
    (tmp_path / name).write_text(json.dumps(doc))
    return tmp_path


def test_blackhole_route_and_unavailable_nat(tmp_path: Path) -> None:
    def blackhole(doc):
        for rt in doc["RouteTables"]:
            for r in rt["Routes"]:
                if r.get("NatGatewayId"):
                    r["State"] = "blackhole"

    checks = lambda_checks_in(_mutated(tmp_path / "a", "route-tables.json", blackhole))
    assert by(checks, "sts")[0].problem.startswith("BAD_STATE_ROUTE")

    def failed_nat(doc):
        doc["NatGateways"][0]["State"] = "failed"

    checks = lambda_checks_in(_mutated(tmp_path / "b", "nat-gateways.json", failed_nat))
    assert by(checks, "lambda")[0].problem == "BAD_STATE: nat-0123456789abcdef0 is failed, not available. " \
        "No interface VPC endpoint for com.amazonaws.us-east-1.lambda in the VPC either."


def test_lambda_in_a_public_subnet_gets_no_internet(tmp_path: Path) -> None:
    def public(doc):
        doc["VpcConfig"]["SubnetIds"] = ["subnet-0ccc000000000pub1"]

    d = _mutated(tmp_path, "function.json", public)
    c = by(network.diagnose(d, lambda_config=d / "function.json", services=["sts"]), "sts")[0]
    assert c.status == "fail" and "never get a public IP" in c.problem


def lambda_checks_in(d: Path):
    return network.diagnose(d, lambda_config=d / "function.json")


def test_nacl_first_match_wins_in_rule_number_order() -> None:
    from ipaddress import ip_network

    peer = ip_network("10.0.1.0/24")
    acl = {"NetworkAclId": "acl-1", "Entries": [
        {"RuleNumber": 200, "Protocol": "6", "RuleAction": "deny", "Egress": False, "CidrBlock": "0.0.0.0/0",
         "PortRange": {"From": 9092, "To": 9092}},
        {"RuleNumber": 100, "Protocol": "6", "RuleAction": "allow", "Egress": False, "CidrBlock": "10.0.0.0/16",
         "PortRange": {"From": 9000, "To": 9999}},
        {"RuleNumber": 32767, "Protocol": "-1", "RuleAction": "deny", "Egress": False, "CidrBlock": "0.0.0.0/0"},
    ]}
    assert nacl.evaluate(acl, egress=False, peer=peer, ports=(9092, 9092)).allowed  # 100 before 200
    acl["Entries"][1]["RuleNumber"] = 300
    v = nacl.evaluate(acl, egress=False, peer=peer, ports=(9092, 9092))
    assert not v.allowed and v.rule_number == 200
    # A range is allowed only if every port in it is: 10000 falls to the default rule.
    v = nacl.evaluate(acl, egress=False, peer=peer, ports=(9500, 10000))
    assert not v.allowed


def test_longest_prefix_wins_and_static_beats_propagated() -> None:
    from ipaddress import ip_network

    table = {"Routes": [
        {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1", "State": "active"},
        {"DestinationCidrBlock": "10.1.0.0/16", "VpcPeeringConnectionId": "pcx-1", "State": "active"},
        {"DestinationCidrBlock": "10.1.2.0/24", "GatewayId": "vgw-1", "Origin": "EnableVgwRoutePropagation", "State": "active"},
        {"DestinationCidrBlock": "10.1.2.0/24", "TransitGatewayId": "tgw-1", "Origin": "CreateRoute", "State": "active"},
    ]}
    assert routes.lookup(table, ip_network("10.1.2.0/24")).target == "tgw-1"
    assert routes.lookup(table, ip_network("10.1.9.0/24")).target == "pcx-1"
    assert routes.lookup(table, ip_network("8.8.8.0/24")).kind == "nat"
    assert routes.lookup({"Routes": []}, ip_network("8.8.8.0/24")) is None


def test_cli_json_shape_and_exit_codes() -> None:
    ok = runner.invoke(app, ["doctor", "aws-network", "--input", str(FIXTURES / "reachable"), "--msk-esm", "--json"])
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.stdout)
    assert set(body) == {"checks"}
    assert all(set(c) == {"stage", "target", "status", "problem", "detail", "fix"} for c in body["checks"])
    bad = runner.invoke(app, ["doctor", "aws-network", "--input", str(FIXTURES / "missing-self-reference"), "--msk-esm"])
    assert bad.exit_code == 1
    assert "FAIL" in bad.stdout and "4 fail" in bad.stdout


def test_cli_needs_exactly_one_source() -> None:
    r = runner.invoke(app, ["doctor", "aws-network", "--input", str(FIXTURES / "reachable")])
    assert r.exit_code != 0
    assert isinstance(r.exception, ConfigError) and "exactly one source" in str(r.exception)


def test_endpoint_security_group_must_allow_443_from_the_source(tmp_path: Path) -> None:
    def closed(doc):
        for g in doc["SecurityGroups"]:
            if g["GroupId"] == "sg-0333vpce0000003":
                g["IpPermissions"] = []

    d = _mutated(tmp_path, "security-groups.json", closed)
    c = by(network.diagnose(d, msk_esm=True, services=["secretsmanager"]), "secretsmanager")[0]
    assert c.status == "fail" and "sg-0333vpce0000003" in c.problem and "tcp/443" in c.problem
    assert c.fix.endswith(f"--group-id sg-0333vpce0000003 --protocol tcp --port 443 --source-group {MSK_SG}")


def test_endpoint_without_private_dns_is_a_warning(tmp_path: Path) -> None:
    def no_dns(doc):
        doc["VpcEndpoints"][0]["PrivateDnsEnabled"] = False

    d = _mutated(tmp_path, "vpc-endpoints.json", no_dns)
    c = by(network.diagnose(d, msk_esm=True, services=["secretsmanager"]), "secretsmanager")[0]
    assert c.status == "warn" and "PrivateDnsEnabled=false" in c.detail


def test_peering_needs_a_return_route_on_the_far_side(tmp_path: Path) -> None:
    def one_way(doc):
        for rt in doc["RouteTables"]:
            if rt["RouteTableId"] == "rtb-0peer000000000000d":
                rt["Routes"] = [r for r in rt["Routes"] if not r.get("VpcPeeringConnectionId")]

    d = _mutated(tmp_path, "route-tables.json", one_way)
    [c] = network.diagnose(d, subnets=[APP1], security_groups=[LAMBDA_SG], broker_subnets=[PEER],
                           broker_groups=["sg-0444peerkafka04"], ports=[9092], services=[])
    assert c.status == "fail" and "rtb-0peer000000000000d" in c.problem and "return path" in c.problem
    assert "--route-table-id rtb-0peer000000000000d --destination-cidr-block 10.0.1.0/24" in c.fix


def test_source_security_group_without_egress(tmp_path: Path) -> None:
    def no_egress(doc):
        for g in doc["SecurityGroups"]:
            if g["GroupId"] == LAMBDA_SG:
                g["IpPermissionsEgress"] = []

    d = _mutated(tmp_path, "security-groups.json", no_egress)
    c = by(lambda_checks_in(d), "broker")[0]
    assert c.status == "fail" and c.problem.startswith(f"ENI_SG_RULES_MISMATCH: no outbound rule in {LAMBDA_SG}")
    assert f"UserIdGroupPairs=[{{GroupId={MSK_SG}}}]" in c.fix


def test_private_dns_endpoint_in_a_vpc_without_dns_hostnames(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "reachable", tmp_path, dirs_exist_ok=True)
    # `aws ec2 describe-vpc-attribute --vpc-id ... --attribute enableDnsHostnames` output
    (tmp_path / "dns-hostnames.json").write_text(json.dumps(
        {"VpcId": "vpc-0a1b2c3d4e5f60001", "EnableDnsHostnames": {"Value": False}}))
    c = by(network.diagnose(tmp_path, msk_esm=True, services=["secretsmanager"]), "secretsmanager")[0]
    assert c.status == "fail" and "EnableDnsHostnames = false" in c.problem
    assert c.fix == ("aws ec2 modify-vpc-attribute --vpc-id vpc-0a1b2c3d4e5f60001 --enable-dns-hostnames "
                     "'{\"Value\":true}'")
