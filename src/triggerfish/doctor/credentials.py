"""``doctor aws-credentials``: which credential provider wins in this pod or host, and why none does.

Walks botocore's own default chain provider by provider, then looks closer at the ones that matter
on Kubernetes: IRSA (web-identity token, decoded offline and checked against the role's trust
policy), EKS Pod Identity (agent URI, token file) and IMDS (the IMDSv2 hop-limit trap). Also
resolves the STS and service endpoints the SDK would call, and can call ``sts get-caller-identity``.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import botocore
import botocore.session
from botocore.exceptions import BotoCoreError

from triggerfish.doctor import iam, jwt, trust
from triggerfish.doctor.aws_endpoints import caller_identity, endpoints
from triggerfish.doctor.report import Check, Status
from triggerfish.errors import ConfigError

_POD_IDENTITY_HOSTS = ("169.254.170.23", "fd00:ec2::23")
_CONTAINER_ALLOWED_HOSTS = ("169.254.170.2", "169.254.170.23", "fd00:ec2::23", "localhost")
_IMDS_DEFAULT = "http://169.254.169.254"
_MIN_BOTOCORE_WEB_IDENTITY = (1, 12, 200)
_MIN_BOTOCORE_POD_IDENTITY = (1, 34, 41)

# Environment variables that configure a provider: what "configured" means for the providers that matter here.
_PROVIDER_ENV = {
    "env": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    "assume-role-with-web-identity": ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"),
    "container-role": ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
}
_LABELS = {
    "env": "environment variables", "assume-role": "profile role_arn", "assume-role-with-web-identity": "web identity (IRSA)",
    "sso": "IAM Identity Center", "shared-credentials-file": "~/.aws/credentials", "login": "aws login",
    "custom-process": "credential_process", "config-file": "~/.aws/config", "ec2-credentials-file": "AWS_CREDENTIAL_FILE",
    "boto-config": "boto2 config", "container-role": "container (ECS / EKS Pod Identity)", "iam-role": "IMDS instance profile",
}


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split(".")[:3] if x.isdigit())


def diagnose(
    *,
    trust_policy: Path | None = None,
    service_account: str | None = None,
    region: str | None = None,
    services: Sequence[str] = (),
    call_sts: bool = False,
    oidc_providers: Path | None = None,
    imds_timeout: float = 1.0,
) -> list[Check]:
    env = os.environ
    checks = walk_chain()
    claims: jwt.Claims | None = None
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") or env.get("AWS_ROLE_ARN"):
        token_checks, claims = _web_identity(env, service_account)
        checks += token_checks
    if env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        checks += pod_identity(env)
    if trust_policy is not None:
        checks.append(_check_trust(trust_policy, claims, env, service_account))
    if oidc_providers is not None:
        checks.append(_check_oidc_provider(oidc_providers, claims, trust_policy))
    checks += imds(env, imds_timeout)
    region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    checks += endpoints(region, services)
    if call_sts:
        checks.append(caller_identity(region))
    return checks


# --- the chain ----------------------------------------------------------------------------------------

def walk_chain() -> list[Check]:
    """Ask each of botocore's providers in its own order; the first with credentials wins."""
    session = botocore.session.Session()
    resolver = session.get_component("credential_provider")
    checks: list[Check] = []
    winner: str | None = None
    unconfigured: list[str] = []

    def flush() -> None:
        # One row for the run of providers that aren't set up: they're context, not findings.
        if unconfigured:
            checks.append(Check.of("chain", "not configured", "skip", ", ".join(unconfigured)))
            unconfigured.clear()

    for provider in resolver.providers:
        method = provider.METHOD
        label = f"{_LABELS.get(method, method)} [{method}]"
        configured_by = [v for v in _PROVIDER_ENV.get(method, ()) if os.environ.get(v)]
        if winner is not None:
            if configured_by:
                checks.append(Check.of("chain", label, "warn", f"configured ({', '.join(configured_by)}) but never used",
                                       f"{winner} comes first in the chain and wins",
                                       f"unset the variables of {winner} if {method} should be used"))
            continue
        if method == "iam-role" and os.environ.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
            unconfigured.append(f"{method} (AWS_EC2_METADATA_DISABLED=true)")
            continue
        try:
            creds = provider.load()
        except (BotoCoreError, ValueError, OSError) as exc:
            flush()
            # Configured but broken: this is what ends the chain with an error instead of trying the next one.
            checks.append(Check.of("chain", label, "fail", f"{type(exc).__name__}: {exc}", "",
                                   _chain_fix(method)))
            return checks
        if creds is None:
            unconfigured.append(method)
            continue
        flush()
        winner = method
        access_key = getattr(creds, "access_key", None) if method not in ("assume-role-with-web-identity",) else None
        detail = f"access key {access_key[:4]}…" if access_key else "credentials are fetched on first use"
        checks.append(Check.of("chain", label, "ok", "provides the credentials (first in the chain)", detail))
    flush()
    if winner is None:
        checks.append(Check.of("chain", "default credential chain", "fail",
                               "NoCredentialsError: Unable to locate credentials",
                               "no provider returned credentials: no keys in the environment, no IRSA/Pod Identity variables "
                               "(the EKS webhook injects them only at pod creation), no profile, and IMDS gave nothing",
                               "annotate the ServiceAccount with eks.amazonaws.com/role-arn (IRSA) or create a pod identity "
                               "association, then recreate the pod"))
    return checks


def _chain_fix(method: str) -> str:
    return {
        "env": "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither",
        "assume-role-with-web-identity": "check AWS_WEB_IDENTITY_TOKEN_FILE exists and is readable (projected token volume)",
        "container-role": "the endpoint in AWS_CONTAINER_CREDENTIALS_FULL_URI/RELATIVE_URI must answer: see the "
                          "pod-identity rows (agent, host, token file)",
    }.get(method, "")


# --- IRSA ---------------------------------------------------------------------------------------------

def _web_identity(env: Mapping[str, str], service_account: str | None) -> tuple[list[Check], jwt.Claims | None]:
    checks: list[Check] = []
    role_arn = env.get("AWS_ROLE_ARN", "")
    token_file = env.get("AWS_WEB_IDENTITY_TOKEN_FILE", "")
    if not role_arn or not token_file:
        missing = "AWS_ROLE_ARN" if not role_arn else "AWS_WEB_IDENTITY_TOKEN_FILE"
        checks.append(Check.of("irsa", missing, "fail", f"{missing} is not set, so botocore ignores web identity",
                               "the EKS pod identity webhook sets both when the ServiceAccount has eks.amazonaws.com/role-arn",
                               "annotate the ServiceAccount and recreate the pod (the webhook acts only at pod creation)"))
        return checks, None
    if not role_arn.startswith("arn:aws") or ":role/" not in role_arn:
        checks.append(Check.of("irsa", "AWS_ROLE_ARN", "fail", f"{role_arn!r} is not a role ARN",
                               "", "annotate with eks.amazonaws.com/role-arn: arn:aws:iam::<account>:role/<name>"))
    if _version(botocore.__version__) < _MIN_BOTOCORE_WEB_IDENTITY:
        checks.append(Check.of("irsa", "SDK", "fail", f"botocore {botocore.__version__} predates web identity (1.12.200)",
                               "", "pip install -U boto3"))
    try:
        claims = jwt.decode(Path(token_file).read_text())
    except OSError as exc:
        checks.append(Check.of("irsa", token_file, "fail", f"cannot read the token file: {exc.strerror}",
                               "the projected service account token volume is missing or not readable by this user",
                               "check the pod's volumes/volumeMounts (aws-iam-token) and runAsUser/fsGroup"))
        return checks, None
    except jwt.TokenError as exc:
        checks.append(Check.of("irsa", token_file, "fail", f"not a JWT: {exc}"))
        return checks, None
    status: Status = "ok"
    problem, fix = "token decoded", ""
    if claims.expired():
        status, problem = "fail", "ExpiredTokenException: the projected token has expired"
        fix = "check the node clock and that kubelet refreshes projected tokens; recreate the pod"
    elif trust.IRSA_AUDIENCE not in claims.aud:
        # STS accepts it only if the IAM OIDC provider lists that audience as a client id: rarely so.
        status = "fail"
        problem = (f"token audience {list(claims.aud)} is not {trust.IRSA_AUDIENCE}: STS answers InvalidIdentityToken "
                   "(Incorrect token audience) unless the OIDC provider lists that client id")
        fix = (f"fix the token, not the trust policy: remove the ServiceAccount's eks.amazonaws.com/audience annotation "
               f"(or the projected volume's audience) so it is issued for {trust.IRSA_AUDIENCE}, and recreate the pod")
    if service_account and claims.sub != trust.expected_sub(service_account):
        status, problem = "fail", f"token sub {claims.sub!r} is not {trust.expected_sub(service_account)!r}"
        fix = "the pod runs under another ServiceAccount than expected (spec.serviceAccountName)"
    checks.append(Check.of("irsa", token_file, status, problem, f"{claims.summary()}; role {role_arn}", fix))
    return checks, claims


def _read_trust_policy(path: Path) -> tuple[Mapping[str, Any], str]:
    """A trust policy file (a bare policy or ``aws iam get-role`` output) -> (policy, role ARN if given)."""

    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError("--trust-policy", f"cannot read {path} as JSON ({exc})") from None
    role = doc.get("Role") if isinstance(doc, Mapping) else None
    found = [d for name, d in iam.documents(doc) if name in ("policy", "AssumeRolePolicyDocument")]
    if not found:
        raise ConfigError("--trust-policy", f"{path} holds no trust policy (a policy document or `aws iam get-role` output)")
    return found[0], str(role.get("Arn", "")) if isinstance(role, Mapping) else ""


def _check_trust(path: Path, claims: jwt.Claims | None, env: Mapping[str, str], service_account: str | None) -> Check:
    policy, arn = _read_trust_policy(path)
    role_arn = env.get("AWS_ROLE_ARN", "") or arn
    if env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") and claims is None:
        return trust.check_pod_identity(policy, role_arn)
    if claims is None:
        if not service_account:
            return Check.of("trust-policy", str(path), "skip", "no web-identity token to check it against",
                            "", "run inside the pod, or pass --service-account NS:SA")
        # No token here: check against what the token of that service account would say.
        issuer = _issuer_from_policy(policy)
        claims = jwt.Claims(iss=f"https://{issuer}", sub=trust.expected_sub(service_account), aud=(trust.IRSA_AUDIENCE,))
    return trust.check_irsa(policy, claims, role_arn)


def _check_oidc_provider(path: Path, claims: jwt.Claims | None, trust_policy: Path | None) -> Check:
    """Is there an IAM OIDC provider for the token's issuer (``aws iam list-open-id-connect-providers`` output)?"""
    try:
        doc = json.loads(Path(path).read_text())
        arns = [str(p["Arn"]) for p in doc["OpenIDConnectProviderList"]]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError("--oidc-providers", f"{path} is not `aws iam list-open-id-connect-providers` output ({exc})") from None
    issuer = claims.issuer_path if claims else ""
    if not issuer and trust_policy is not None:
        issuer = _issuer_from_policy(_read_trust_policy(trust_policy)[0])
    if not issuer:
        return Check.of("oidc-provider", str(path), "skip", "no token or trust policy names an issuer to look for")
    match = [a for a in arns if a.endswith(f":oidc-provider/{issuer}")]
    if match:
        return Check.of("oidc-provider", issuer, "ok", f"IAM OIDC provider exists: {match[0]}")
    return Check.of("oidc-provider", issuer, "fail",
                    f"InvalidIdentityToken: No OpenIDConnect provider found in your account for https://{issuer}",
                    f"{len(arns)} provider(s) in the account, none for this cluster's issuer",
                    "eksctl utils associate-iam-oidc-provider --cluster <cluster> --approve")


def _issuer_from_policy(policy: Mapping[str, Any]) -> str:
    for stmt in policy.get("Statement") or []:
        for fed in trust.as_list((stmt.get("Principal") or {}).get("Federated")):
            if ":oidc-provider/" in str(fed):
                return str(fed).split(":oidc-provider/", 1)[1]
    return ""


# --- EKS Pod Identity ---------------------------------------------------------------------------------

def pod_identity(env: Mapping[str, str], timeout: float = 1.0) -> list[Check]:
    """The EKS Pod Identity path, in the order the SDK walks it: agent URI, SDK version, proxy, token, agent."""
    uri = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    parsed = urlparse(uri)
    host = parsed.hostname or ""
    allowed = _container_host_allowed(parsed.scheme, host)
    checks = [] if allowed else [_unsupported_container_host(uri, host)]
    checks += _pod_identity_sdk(host)
    checks += _pod_identity_proxy(env, host)
    checks += _pod_identity_token(env)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if host and allowed:
        checks.append(_pod_identity_agent(host, port, timeout))
    return checks


def _container_host_allowed(scheme: str, host: str) -> bool:
    return host in _CONTAINER_ALLOWED_HOSTS or scheme == "https" or _is_loopback(host)


def _unsupported_container_host(uri: str, host: str) -> Check:
    return Check.of("pod-identity", uri, "fail",
                    f"Unsupported host '{host}': SDKs fetch container credentials only from loopback or "
                    f"{', '.join(_CONTAINER_ALLOWED_HOSTS)}", "", "use http://169.254.170.23/v1/credentials")


def _pod_identity_sdk(host: str) -> list[Check]:
    if host in _POD_IDENTITY_HOSTS and _version(botocore.__version__) < _MIN_BOTOCORE_POD_IDENTITY:
        return [Check.of("pod-identity", "SDK", "fail", f"botocore {botocore.__version__} predates EKS Pod Identity "
                         "(needs 1.34.41)", "", "pip install -U boto3")]
    return []


def _pod_identity_proxy(env: Mapping[str, str], host: str) -> list[Check]:
    proxy = env.get("HTTP_PROXY") or env.get("http_proxy")
    no_proxy = env.get("NO_PROXY", "") + "," + env.get("no_proxy", "")
    if proxy and host and host not in no_proxy:
        return [Check.of("pod-identity", "NO_PROXY", "fail", f"HTTP_PROXY is set and NO_PROXY lacks {host}",
                         "the credentials request goes to the proxy, which can't reach the node-local agent",
                         "add 169.254.170.23,fd00:ec2::23 to NO_PROXY")]
    return []


def _pod_identity_token(env: Mapping[str, str]) -> list[Check]:
    token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    if token_file:
        return [_pod_identity_token_file(token_file)]
    if not env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"):
        return [Check.of("pod-identity", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "warn", "not set",
                         "the agent rejects requests without the pod's token")]
    return []


def _pod_identity_token_file(token_file: str) -> Check:
    try:
        claims = jwt.decode(Path(token_file).read_text())
        expired = claims.expired()
        return Check.of("pod-identity", token_file, "fail" if expired else "ok",
                        "token expired" if expired else "token decoded", claims.summary())
    except (OSError, jwt.TokenError) as exc:
        return Check.of("pod-identity", token_file, "fail", f"cannot use the token file: {exc}",
                        "", "check the eks-pod-identity-token projected volume")


def _pod_identity_agent(host: str, port: int, timeout: float) -> Check:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return Check.of("pod-identity", f"{host}:{port}", "ok", "agent reachable")
    except OSError as exc:
        return Check.of("pod-identity", f"{host}:{port}", "fail", f"cannot connect to the agent: {exc}",
                        "the eks-pod-identity-agent DaemonSet runs with hostNetwork on 169.254.170.23:80",
                        "kubectl -n kube-system get daemonset eks-pod-identity-agent  "
                        "(install the add-on: aws eks create-addon --addon-name eks-pod-identity-agent)")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- IMDS ---------------------------------------------------------------------------------------------

def imds(env: Mapping[str, str], timeout: float = 1.0) -> list[Check]:
    """IMDSv2 token PUT, then the role: tells 'not on EC2' from the hop-limit trap from 'no instance profile'."""
    if env.get("AWS_EC2_METADATA_DISABLED", "").lower() == "true":
        return [Check.of("imds", "instance metadata", "skip", "AWS_EC2_METADATA_DISABLED=true")]
    base = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", _IMDS_DEFAULT).rstrip("/")
    parsed = urlparse(base)
    host, port = parsed.hostname or "169.254.169.254", parsed.port or 80
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return [Check.of("imds", base, "skip", "IMDS not reachable (not on EC2, or blocked for pods)")]
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    token = None
    try:
        conn.request("PUT", "/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace")
        if resp.status == 200:
            token = body
    except TimeoutError:
        v1 = _imds_get(host, port, "/latest/meta-data/iam/security-credentials/", None, timeout)
        v1_state = ("IMDSv1 is off (HttpTokens=required), so the SDK gets nothing: NoCredentialsError"
                    if v1 and v1[0] == 401 else "the SDK falls back to IMDSv1")
        return [Check.of("imds", base, "fail",
                         "IMDSv2 token PUT timed out although TCP connects: the hop-limit trap (hop limit 1: set it "
                         "to 2 or use IRSA/Pod Identity)",
                         f"the token response's IP TTL is HttpPutResponseHopLimit; with 1 it can't cross the extra hop "
                         f"into a non-hostNetwork pod (the node itself gets its token); {v1_state}",
                         "aws ec2 modify-instance-metadata-options --instance-id <i-...> --http-put-response-hop-limit 2 "
                         "(or MetadataOptions.HttpPutResponseHopLimit 2 in the launch template); better, give the pod "
                         "its own role with IRSA or EKS Pod Identity")]
    except OSError as exc:
        return [Check.of("imds", base, "fail", f"IMDS token request failed: {exc}")]
    finally:
        conn.close()
    got = _imds_get(host, port, "/latest/meta-data/iam/security-credentials/", token, timeout)
    if got is None:
        return [Check.of("imds", base, "fail", "IMDS role request timed out")]
    status, body = got
    if status == 404 or (status == 200 and not body.strip()):
        return [Check.of("imds", base, "warn", "no instance profile attached to this instance", "",
                         "attach an instance profile, or use IRSA / Pod Identity")]
    if status != 200:
        return [Check.of("imds", base, "fail", f"IMDS answered HTTP {status} for the role name")]
    return [Check.of("imds", base, "ok" if token else "warn",
                     f"instance profile role {body.strip().splitlines()[0]}" + ("" if token else " (IMDSv1)"),
                     "pods without their own role fall back to the node's role here" if token else "")]


def _imds_get(host: str, port: int, path: str, token: str | None, timeout: float) -> tuple[int, str] | None:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"X-aws-ec2-metadata-token": token} if token else {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    except OSError:
        return None
    finally:
        conn.close()
