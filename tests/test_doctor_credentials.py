"""doctor aws-credentials: botocore's chain walked for real, crafted web-identity tokens and trust policies,
a fake IMDS speaking the IMDSv2 protocol, and STS served by moto."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fake_imds import ROLE, FakeImds
from triggerfish.cli import app
from triggerfish.doctor import aws_endpoints, credentials, jwt, trust

ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/5C3A1F0E9B7D4E2A8C6B1D3F0A9E7C5B"
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/orders-consumer"
SUB = "system:serviceaccount:orders:consumer"
AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_STS", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_STS_REGIONAL_ENDPOINTS", "HTTP_PROXY",
            "http_proxy", "NO_PROXY", "no_proxy")


def make_token(*, sub: str = SUB, aud: str | list[str] = "sts.amazonaws.com", iss: str = f"https://{ISSUER}",
               exp_in: int = 86400) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(time.time())
    payload = {"aud": aud if isinstance(aud, list) else [aud], "exp": now + exp_in, "iat": now - 60, "nbf": now - 60,
               "iss": iss, "sub": sub, "kubernetes.io": {"namespace": "orders", "serviceaccount": {"name": "consumer"}}}
    return f"{part({'alg': 'RS256', 'kid': 'k1'})}.{part(payload)}.c2lnbmF0dXJl"


def trust_policy(conditions: dict | None = None, provider: str = ISSUER, account: str = ACCOUNT) -> dict:
    if conditions is None:
        conditions = {"StringEquals": {f"{provider}:sub": SUB, f"{provider}:aud": "sts.amazonaws.com"}}
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
        "Principal": {"Federated": f"arn:aws:iam::{account}:oidc-provider/{provider}"},
        "Condition": conditions}]}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No credentials from this machine leak into a test: no env keys, no ~/.aws, no IMDS."""
    for var in AWS_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    yield monkeypatch


def irsa(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, token: str) -> Path:
    path = tmp_path / "token"
    path.write_text(token)
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE_ARN)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(path))
    return path


def stage(checks, name):
    return [c for c in checks if c.stage == name]


def test_nothing_configured_is_no_credentials_error(clean_env) -> None:
    chain = credentials.walk_chain()
    assert chain[-1].status == "fail" and chain[-1].problem == "NoCredentialsError: Unable to locate credentials"
    assert "assume-role-with-web-identity" in chain[0].problem and "container-role" in chain[0].problem


def test_env_keys_shadow_irsa(clean_env, tmp_path: Path) -> None:
    irsa(clean_env, tmp_path, make_token())
    clean_env.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE000000000")
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    chain = credentials.walk_chain()
    assert chain[0].target == "environment variables [env]" and chain[0].status == "ok"
    shadowed = [c for c in chain if "web-identity" in c.target]
    assert shadowed[0].status == "warn" and "never used" in shadowed[0].problem
    assert "not-a-real-secret" not in json.dumps([c.to_dict() for c in chain])


def test_partial_env_keys_stop_the_chain(clean_env) -> None:
    clean_env.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE000000000")
    [c] = credentials.walk_chain()
    assert c.status == "fail" and "PartialCredentialsError" in c.problem and "AWS_SECRET_ACCESS_KEY" in c.problem


def test_irsa_token_is_decoded_offline(clean_env, tmp_path: Path) -> None:
    irsa(clean_env, tmp_path, make_token())
    checks = credentials.diagnose()
    winner = [c for c in stage(checks, "chain") if c.status == "ok"]
    assert winner[0].target == "web identity (IRSA) [assume-role-with-web-identity]"
    [token] = stage(checks, "irsa")
    assert token.status == "ok" and f"sub={SUB}" in token.detail and f"iss=https://{ISSUER}" in token.detail
    assert "aud=sts.amazonaws.com" in token.detail and "expires in 23h" in token.detail


def test_expired_token_and_wrong_service_account(clean_env, tmp_path: Path) -> None:
    irsa(clean_env, tmp_path, make_token(exp_in=-3600))
    [token] = stage(credentials.diagnose(), "irsa")
    assert token.status == "fail" and token.problem.startswith("ExpiredTokenException")
    irsa(clean_env, tmp_path, make_token())
    [token] = stage(credentials.diagnose(service_account="payments:worker"), "irsa")
    assert token.status == "fail" and "system:serviceaccount:payments:worker" in token.problem


def test_unreadable_token_file(clean_env, tmp_path: Path) -> None:
    clean_env.setenv("AWS_ROLE_ARN", ROLE_ARN)
    clean_env.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(tmp_path / "missing"))
    [token] = stage(credentials.diagnose(), "irsa")
    assert token.status == "fail" and "cannot read the token file" in token.problem


@pytest.mark.parametrize(("policy", "status", "needle"), [
    (trust_policy(), "ok", "admits this token"),
    (trust_policy({"StringLike": {f"{ISSUER}:sub": "system:serviceaccount:orders:*"}}), "ok", "admits"),
    (trust_policy({"StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:order:consumer"}}), "fail",
     "does not match the token's sub 'system:serviceaccount:orders:consumer'"),
    (trust_policy({"StringEquals": {f"{ISSUER}:aud": SUB}}), "fail", ":aud was used where :sub was meant"),
    (trust_policy({"StringEquals": {f"{ISSUER}:sub": SUB, f"{ISSUER}:aud": "sts.amazonaws.com.cn"}}), "fail",
     "but the token's aud is ['sts.amazonaws.com']"),
    (trust_policy(provider="oidc.eks.us-east-1.amazonaws.com/id/0000OTHERCLUSTER"), "fail", "another cluster?"),
    (trust_policy(account="210987654321"), "fail", "the OIDC provider is in account 210987654321"),
    ({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                               "Principal": {"Service": "lambda.amazonaws.com"}}]},
     "fail", "no Allow statement for sts:AssumeRoleWithWebIdentity"),
    (trust_policy({}), "warn", "no condition on"),
])
def test_trust_policy_against_the_token(clean_env, tmp_path: Path, policy: dict, status: str, needle: str) -> None:
    irsa(clean_env, tmp_path, make_token())
    path = tmp_path / "role.json"
    # `aws iam get-role` output shape
    path.write_text(json.dumps({"Role": {"RoleName": "orders-consumer", "Arn": ROLE_ARN, "AssumeRolePolicyDocument": policy}}))
    [c] = stage(credentials.diagnose(trust_policy=path), "trust-policy")
    assert c.status == status, c
    assert needle in c.problem + c.detail


def test_trust_policy_without_a_token_uses_the_service_account(clean_env, tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    path.write_text(json.dumps(trust_policy()))
    [c] = stage(credentials.diagnose(trust_policy=path, service_account="orders:consumer"), "trust-policy")
    assert c.status == "ok"
    [c] = stage(credentials.diagnose(trust_policy=path, service_account="orders:other"), "trust-policy")
    assert c.status == "fail" and "system:serviceaccount:orders:other" in c.problem


def test_pod_identity_trust_policy_needs_tag_session() -> None:
    policy = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "pods.eks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    c = trust.check_pod_identity(policy, ROLE_ARN)
    assert c.status == "fail" and "sts:TagSession" in c.problem
    policy["Statement"][0]["Action"] = ["sts:AssumeRole", "sts:TagSession"]
    assert trust.check_pod_identity(policy, ROLE_ARN).status == "ok"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_pod_identity_agent_unreachable_and_proxy_trap(clean_env, tmp_path: Path) -> None:
    token = tmp_path / "eks-pod-identity-token"
    token.write_text(make_token(aud="pods.eks.amazonaws.com", sub=SUB))
    clean_env.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", f"http://127.0.0.1:{_closed_port()}/v1/credentials")
    clean_env.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", str(token))
    checks = credentials.diagnose()
    chain_fail = [c for c in stage(checks, "chain") if c.status == "fail"]
    assert chain_fail and "container-role" in chain_fail[0].target  # botocore itself gave up here
    pod = {c.target: c for c in stage(checks, "pod-identity")}
    assert pod[str(token)].status == "ok" and "aud=pods.eks.amazonaws.com" in pod[str(token)].detail
    agent = [c for c in pod.values() if c.problem.startswith("cannot connect to the agent")]
    assert agent and "eks-pod-identity-agent" in agent[0].fix
    # Behind a proxy the request to the node-local agent goes to the proxy unless NO_PROXY lists it.
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
           "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token), "HTTP_PROXY": "http://proxy.corp:3128"}
    proxy = [c for c in credentials.pod_identity(env, timeout=0.2) if c.target == "NO_PROXY"]
    assert proxy and proxy[0].status == "fail" and "169.254.170.23" in proxy[0].fix
    env["NO_PROXY"] = "169.254.170.23,fd00:ec2::23"
    assert not [c for c in credentials.pod_identity(env, timeout=0.2) if c.target == "NO_PROXY"]


def test_pod_identity_unsupported_host(clean_env) -> None:
    clean_env.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/v1/credentials")
    [c] = [c for c in stage(credentials.diagnose(), "pod-identity") if c.status == "fail"]
    assert c.problem.startswith("Unsupported host '10.1.2.3'")


def test_imds_hop_limit_trap(clean_env) -> None:
    imds = FakeImds("hop_limit")
    try:
        env = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url}
        [c] = credentials.imds(env, timeout=0.5)
    finally:
        imds.close()
    assert c.status == "fail" and "hop-limit trap" in c.problem
    assert "HttpTokens=required" in c.detail  # the v1 fallback got 401
    assert "--http-put-response-hop-limit 2" in c.fix


def test_imds_instance_profile_wins_the_chain(clean_env) -> None:
    imds = FakeImds("ok")
    clean_env.delenv("AWS_EC2_METADATA_DISABLED")
    clean_env.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
    try:
        checks = credentials.diagnose()
    finally:
        imds.close()
    winner = [c for c in stage(checks, "chain") if c.status == "ok"]
    assert winner[0].target == "IMDS instance profile [iam-role]" and "ASIA" in winner[0].detail
    [c] = stage(checks, "imds")
    assert c.status == "ok" and ROLE in c.problem


def test_endpoint_that_does_not_resolve(clean_env) -> None:
    clean_env.setenv("AWS_ENDPOINT_URL_STS", "https://sts.nowhere.invalid")
    [c] = aws_endpoints.endpoints("us-east-1", [])
    assert c.status == "fail" and c.problem.startswith('EndpointConnectionError: Could not connect to the endpoint URL: "https://sts.nowhere.invalid"')
    assert "does not resolve" in c.detail


def test_no_region(clean_env) -> None:
    clean_env.delenv("AWS_REGION")
    clean_env.delenv("AWS_DEFAULT_REGION", raising=False)
    [c] = stage(credentials.diagnose(), "endpoint")
    assert c.status == "fail" and "no region" in c.problem


def test_irsa_get_caller_identity_through_moto_sts(clean_env, moto_server: str, tmp_path: Path) -> None:
    # moto_server set keys in os.environ; this test wants web identity to be the only way in.
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        clean_env.delenv(var, raising=False)
    clean_env.setenv("AWS_ENDPOINT_URL", moto_server)
    irsa(clean_env, tmp_path, make_token())
    checks = credentials.diagnose(call_sts=True, services=["kafka"])
    endpoints = stage(checks, "endpoint")
    assert [c.status for c in endpoints] == ["ok", "ok"] and "127.0.0.1" in endpoints[0].detail
    [sts] = stage(checks, "sts")
    assert sts.status == "ok" and ":assumed-role/orders-consumer/" in sts.problem


def test_sts_without_credentials_is_explained(clean_env, moto_server: str) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        clean_env.delenv(var, raising=False)
    clean_env.setenv("AWS_ENDPOINT_URL", moto_server)
    c = aws_endpoints.caller_identity("us-east-1")
    assert c.status == "fail" and c.problem.startswith("NoCredentialsError")
    assert "doctor aws-credentials" in c.fix


def test_jwt_decode_errors_never_echo_the_token() -> None:
    with pytest.raises(jwt.TokenError, match="3 dot-separated parts, this has 1"):
        jwt.decode("secret-looking-value")
    with pytest.raises(jwt.TokenError) as info:
        jwt.decode("a.!!!notbase64-secretvalue.c")
    assert "secretvalue" not in str(info.value)


def test_cli_explain_mode(clean_env) -> None:
    r = CliRunner().invoke(app, ["doctor", "aws-credentials", "--json", "--explain",
                                 "botocore.exceptions.NoCredentialsError: Unable to locate credentials"])
    assert r.exit_code == 0
    [c] = json.loads(r.stdout)["checks"]
    assert c["target"] == "NoCredentialsError" and "triggerfish doctor aws-credentials" in c["fix"]


def test_missing_iam_oidc_provider(clean_env, tmp_path: Path) -> None:
    irsa(clean_env, tmp_path, make_token())
    providers = tmp_path / "providers.json"
    other = "oidc.eks.us-east-1.amazonaws.com/id/0000OTHERCLUSTER"
    providers.write_text(json.dumps({"OpenIDConnectProviderList": [{"Arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{other}"}]}))
    [c] = stage(credentials.diagnose(oidc_providers=providers), "oidc-provider")
    assert c.status == "fail" and c.problem == f"InvalidIdentityToken: No OpenIDConnect provider found in your account for https://{ISSUER}"
    assert "associate-iam-oidc-provider" in c.fix
    providers.write_text(json.dumps({"OpenIDConnectProviderList": [{"Arn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"}]}))
    [c] = stage(credentials.diagnose(oidc_providers=providers), "oidc-provider")
    assert c.status == "ok"


def test_oidc_provider_checked_from_the_trust_policy_without_a_token(clean_env, tmp_path: Path) -> None:
    role = tmp_path / "role.json"
    role.write_text(json.dumps({"Role": {"Arn": ROLE_ARN, "AssumeRolePolicyDocument": trust_policy()}}))
    providers = tmp_path / "providers.json"
    providers.write_text(json.dumps({"OpenIDConnectProviderList": []}))
    [c] = stage(credentials.diagnose(trust_policy=role, oidc_providers=providers), "oidc-provider")
    assert c.status == "fail" and ISSUER in c.problem


def test_cli_aws_credentials_json(clean_env, tmp_path: Path) -> None:
    irsa(clean_env, tmp_path, make_token())
    clean_env.setenv("AWS_ENDPOINT_URL_STS", f"http://127.0.0.1:{_closed_port()}")
    r = CliRunner().invoke(app, ["doctor", "aws-credentials", "--json"])
    checks = json.loads(r.stdout)["checks"]
    assert r.exit_code == 1  # STS endpoint refuses connections
    assert [c["status"] for c in checks if c["stage"] == "irsa"] == ["ok"]
    endpoint = [c for c in checks if c["stage"] == "endpoint"][0]
    assert endpoint["status"] == "fail" and "Connection refused" in endpoint["detail"]


def test_wrong_token_audience_with_a_right_trust_policy_fixes_the_token(clean_env, tmp_path: Path) -> None:
    # A ServiceAccount annotated eks.amazonaws.com/audience: the webhook projects a token for that audience.
    irsa(clean_env, tmp_path, make_token(aud="https://kubernetes.default.svc"))
    path = tmp_path / "role.json"
    path.write_text(json.dumps({"Role": {"RoleName": "orders-consumer", "Arn": ROLE_ARN,
                                         "AssumeRolePolicyDocument": trust_policy()}}))
    checks = credentials.diagnose(trust_policy=path)
    [token] = stage(checks, "irsa")
    assert token.status == "fail" and "Incorrect token audience" in token.problem
    assert token.fix.startswith("fix the token, not the trust policy")
    [policy] = stage(checks, "trust-policy")
    assert policy.status == "fail" and "the token is wrong, not the policy" in policy.problem
    assert "eks.amazonaws.com/audience annotation" in policy.fix and "leave the trust policy as it is" in policy.fix


def test_imds_hop_limit_names_the_setting_and_both_fixes(clean_env) -> None:
    imds = FakeImds("hop_limit")
    try:
        [c] = credentials.imds({"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url}, timeout=0.5)
    finally:
        imds.close()
    assert "hop limit 1: set it to 2 or use IRSA/Pod Identity" in c.problem
    assert "IRSA or EKS Pod Identity" in c.fix
