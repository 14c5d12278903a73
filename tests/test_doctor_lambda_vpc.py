"""doctor lambda-vpc: free IPs, Hyperplane ENIs and quota, execution-role ENI permissions, internet path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from triggerfish.doctor import lambda_vpc

FIXTURES = Path(__file__).parent / "fixtures" / "aws"
IAM = FIXTURES / "iam"
APP1, APP2 = "subnet-0aaa000000000app1", "subnet-0aaa000000000app2"
VPC = "vpc-0a1b2c3d4e5f60001"


def scenario(tmp_path: Path, base: str = "reachable") -> Path:
    shutil.copytree(FIXTURES / base, tmp_path, dirs_exist_ok=True)
    return tmp_path


def edit(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def enis(n: int, *, subnet: str = "subnet-other", groups: tuple[str, ...] = ("sg-other",)) -> list[dict]:
    """describe-network-interfaces entries for Lambda Hyperplane ENIs."""
    return [{"NetworkInterfaceId": f"eni-{subnet[-4:]}{i:08d}", "InterfaceType": "lambda", "SubnetId": subnet, "VpcId": VPC,
             "Groups": [{"GroupId": g, "GroupName": g} for g in groups], "Status": "in-use",
             "PrivateIpAddress": "10.0.9.9", "RequesterId": "123456789012", "RequesterManaged": True}
            for i in range(n)]


def stage(checks, name):
    return [c for c in checks if c.stage == name]


def test_healthy_function_with_the_managed_policy(tmp_path: Path) -> None:
    d = scenario(tmp_path)
    checks = lambda_vpc.diagnose(d, d / "function.json", role_policies=[IAM / "attached-vpc-access.json"])
    assert [c.status for c in stage(checks, "subnet-ips")] == ["ok", "ok"]
    assert all(c.status == "ok" for c in stage(checks, "role-permissions"))
    assert all(c.status == "ok" and "nat-0123456789abcdef0" in c.detail for c in stage(checks, "internet"))
    [quota] = stage(checks, "eni-quota")
    assert quota.status == "warn" and "describe-network-interfaces" in quota.fix  # not exported: said so


def test_subnet_out_of_ips_and_low_ips(tmp_path: Path) -> None:
    d = scenario(tmp_path)

    def shrink(doc):
        for s in doc["Subnets"]:
            s["AvailableIpAddressCount"] = {APP1: 0, APP2: 3}.get(s["SubnetId"], s["AvailableIpAddressCount"])

    edit(d / "subnets.json", shrink)
    ips = stage(lambda_vpc.diagnose(d, d / "function.json"), "subnet-ips")
    assert ips[0].status == "fail" and ips[0].problem.startswith("SubnetOutOfIPAddresses")
    assert ips[1].status == "warn" and "3 free" in ips[1].problem


def test_existing_hyperplane_eni_is_shared_and_quota_is_counted(tmp_path: Path) -> None:
    d = scenario(tmp_path)
    shared = enis(1, subnet=APP1, groups=("sg-0111lambda000001",))
    (d / "enis.json").write_text(json.dumps({"NetworkInterfaces": shared + enis(497)}))
    checks = lambda_vpc.diagnose(d, d / "function.json")
    app1 = stage(checks, "subnet-ips")[0]
    assert "shared" in app1.detail
    [quota] = stage(checks, "eni-quota")
    # 498 existing + 1 new (APP2; APP1 reuses its ENI) = 499 of 500: close to the limit
    assert quota.status == "warn" and quota.problem == "499 of 500 Hyperplane ENIs"
    (d / "enis.json").write_text(json.dumps({"NetworkInterfaces": enis(500)}))
    [quota] = stage(lambda_vpc.diagnose(d, d / "function.json"), "eni-quota")
    assert quota.status == "fail" and "EniLimitExceeded" in quota.problem
    [quota] = stage(lambda_vpc.diagnose(d, d / "function.json", quota=1000), "eni-quota")
    assert quota.status == "ok"


def test_role_without_delete_and_with_scoped_describe(tmp_path: Path) -> None:
    d = scenario(tmp_path)
    perms = {c.target: c for c in stage(lambda_vpc.diagnose(d, d / "function.json",
                                                            role_policies=[IAM / "inline-eni-partial.json"]), "role-permissions")}
    assert perms["ec2:CreateNetworkInterface"].status == "ok"
    assert perms["ec2:DeleteNetworkInterface"].status == "fail"
    # Granted, but on a resource ARN: DescribeNetworkInterfaces only works on "*".
    describe = perms["ec2:DescribeNetworkInterfaces"]
    assert describe.status == "fail" and 'must be on "Resource": "*"' in describe.fix
    assert "AWSLambdaVPCAccessExecutionRole" in describe.fix


def test_explicit_deny_beats_the_managed_allow(tmp_path: Path) -> None:
    d = scenario(tmp_path)
    deny = tmp_path / "deny.json"
    deny.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "NoDelete", "Effect": "Deny", "Action": "ec2:Delete*", "Resource": "*"}]}))
    perms = {c.target: c for c in stage(lambda_vpc.diagnose(
        d, d / "function.json", role_policies=[IAM / "attached-vpc-access.json", deny]), "role-permissions")}
    assert perms["ec2:DeleteNetworkInterface"].status == "fail"
    assert "explicitly denied by deny.json: policy statement NoDelete" in perms["ec2:DeleteNetworkInterface"].detail


def test_no_nat_is_a_warning_unless_internet_is_needed(tmp_path: Path) -> None:
    d = scenario(tmp_path, "no-sts-path")
    inet = stage(lambda_vpc.diagnose(d, d / "function.json"), "internet")
    assert [c.status for c in inet] == ["warn", "warn"]
    assert "NO_ROUTE_TO_DESTINATION" in inet[0].problem and "secretsmanager" in inet[0].detail
    inet = stage(lambda_vpc.diagnose(d, d / "function.json", needs_internet=True), "internet")
    assert [c.status for c in inet] == ["fail", "fail"]


def test_legacy_formula_is_history_only(tmp_path: Path) -> None:
    d = scenario(tmp_path)
    [legacy] = stage(lambda_vpc.diagnose(d, d / "function.json", peak_concurrency=300), "legacy-formula")
    # 300 concurrent x 1 GB / 3 GB = 100 ENIs under the pre-2019 rule; never a failure today
    assert legacy.status == "skip" and "100 ENIs" in legacy.problem and "history" in legacy.problem


def test_cli_lambda_vpc_json_and_exit_code() -> None:
    from typer.testing import CliRunner

    from triggerfish.cli import app

    d = FIXTURES / "reachable"
    r = CliRunner().invoke(app, ["doctor", "lambda-vpc", "--input", str(d), "--lambda-config", str(d / "function.json"),
                                 "--role-policy", str(IAM / "attached-vpc-access.json"), "--json"])
    assert r.exit_code == 0, r.output
    assert {c["stage"] for c in json.loads(r.stdout)["checks"]} == {
        "subnet-ips", "eni-quota", "legacy-formula", "role-permissions", "internet"}
    r = CliRunner().invoke(app, ["doctor", "lambda-vpc", "--input", str(d), "--lambda-config", str(d / "function.json"),
                                 "--role-policy", str(IAM / "inline-eni-partial.json")])
    assert r.exit_code == 1 and "FAIL" in r.stdout
