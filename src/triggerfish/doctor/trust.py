"""Check a role's trust policy against an IRSA web-identity token or an EKS Pod Identity setup.

IRSA: ``Principal.Federated`` must be the cluster's IAM OIDC provider, and the conditions on
``<issuer>:sub`` / ``<issuer>:aud`` must match ``system:serviceaccount:NS:SA`` / ``sts.amazonaws.com``.
Pod Identity: ``Principal.Service`` ``pods.eks.amazonaws.com`` with ``sts:AssumeRole`` and ``sts:TagSession``.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from triggerfish.doctor.jwt import Claims
from triggerfish.doctor.report import Check

IRSA_AUDIENCE = "sts.amazonaws.com"
_POD_IDENTITY_SERVICE = "pods.eks.amazonaws.com"


def as_list(v: Any) -> list[Any]:
    return [] if v is None else (v if isinstance(v, list) else [v])


def _actions(stmt: Mapping[str, Any]) -> list[str]:
    return [str(a).lower() for a in as_list(stmt.get("Action"))]


def _allows(stmt: Mapping[str, Any], action: str) -> bool:
    return stmt.get("Effect") == "Allow" and any(fnmatchcase(action.lower(), a) for a in _actions(stmt))


def _conditions(stmt: Mapping[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """condition key (lower case) -> (operator, values), for the string operators IAM uses here."""
    out: dict[str, tuple[str, list[str]]] = {}
    for op, block in (stmt.get("Condition") or {}).items():
        if not isinstance(block, Mapping):
            continue
        for key, values in block.items():
            out[str(key).lower()] = (str(op), [str(v) for v in as_list(values)])
    return out


def _value_matches(op: str, patterns: list[str], values: tuple[str, ...] | list[str]) -> bool:
    like = "Like" in op
    return any((fnmatchcase(v, p) if like else v == p) for p in patterns for v in values)


def _irsa_problems(stmt: Mapping[str, Any], claims: Claims, role_arn: str) -> list[tuple[str, str]]:
    """(problem, fix) pairs explaining why this statement does not admit the token; empty = it does."""
    problems: list[tuple[str, str]] = []
    issuer = claims.issuer_path
    federated = [str(f) for f in as_list((stmt.get("Principal") or {}).get("Federated"))]
    provider = next((f for f in federated if ":oidc-provider/" in f), "")
    if not provider:
        problems.append(("the statement's Principal.Federated is not an OIDC provider ARN",
                         f'set "Principal": {{"Federated": "arn:aws:iam::<account>:oidc-provider/{issuer}"}}'))
        return problems
    prov_account, prov_path = provider.split(":")[4], provider.split(":oidc-provider/", 1)[1]
    if issuer and prov_path != issuer:
        problems.append((f"Principal.Federated names {prov_path}, but the token was issued by {issuer} (another cluster?)",
                         f"use the cluster's provider arn:aws:iam::{prov_account}:oidc-provider/{issuer}; create it with "
                         "`eksctl utils associate-iam-oidc-provider --cluster <cluster> --approve`"))
    role_account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
    if role_account and prov_account != role_account:
        problems.append((f"the OIDC provider is in account {prov_account} but the role is in {role_account}",
                         f"create the OIDC provider in account {role_account} and reference it"))
    conds = _conditions(stmt)
    sub_key, aud_key = f"{prov_path}:sub".lower(), f"{prov_path}:aud".lower()
    for key in conds:
        host = key.rsplit(":", 1)[0]
        if key.endswith((":sub", ":aud")) and host != prov_path.lower():
            problems.append((f"condition key {key} uses issuer {host}, not the provider's {prov_path}",
                             f"rename the key to {prov_path}:{key.rsplit(':', 1)[1]}"))
    if sub_key in conds:
        op, values = conds[sub_key]
        if not _value_matches(op, values, [claims.sub]):
            problems.append((f"{op} {prov_path}:sub = {values} does not match the token's sub {claims.sub!r} "
                             "(namespace or service account name differ; case-sensitive)",
                             f'set "{prov_path}:sub": "{claims.sub}"'))
    else:
        problems.append((f"no condition on {prov_path}:sub: any service account of the cluster could assume the role",
                         f'add "StringEquals": {{"{prov_path}:sub": "{claims.sub}"}}'))
    if aud_key in conds:
        op, values = conds[aud_key]
        if any(v.startswith("system:serviceaccount:") for v in values):
            problems.append((f"{prov_path}:aud holds a service account ({values}); :aud was used where :sub was meant",
                             f'use "{prov_path}:sub": "{values[0]}" and "{prov_path}:aud": "{IRSA_AUDIENCE}"'))
        elif not _value_matches(op, values, claims.aud) and IRSA_AUDIENCE in values:
            # The policy asks for the standard audience: the token is what is wrong, not the policy.
            problems.append((f"the token's aud is {list(claims.aud)}, not {IRSA_AUDIENCE} that the trust policy (rightly) "
                             "requires: the token is wrong, not the policy",
                             "remove the ServiceAccount's eks.amazonaws.com/audience annotation (or fix the projected "
                             f"token volume's audience) so the token is issued for {IRSA_AUDIENCE}, then recreate the pod; "
                             "leave the trust policy as it is"))
        elif not _value_matches(op, values, claims.aud):
            problems.append((f"{op} {prov_path}:aud = {values} but the token's aud is {list(claims.aud)}",
                             f'set "{prov_path}:aud": "{IRSA_AUDIENCE}" (or match the eks.amazonaws.com/audience annotation)'))
    return problems


def check_irsa(policy: Mapping[str, Any], claims: Claims, role_arn: str) -> Check:
    target = role_arn or "trust policy"
    statements = [s for s in as_list(policy.get("Statement")) if isinstance(s, Mapping)
                  and _allows(s, "sts:AssumeRoleWithWebIdentity")]
    if not statements:
        return Check.of("trust-policy", target, "fail",
                        "no Allow statement for sts:AssumeRoleWithWebIdentity: AccessDenied on AssumeRoleWithWebIdentity",
                        "", f'add a statement: "Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity", '
                        f'"Principal": {{"Federated": "arn:aws:iam::<account>:oidc-provider/{claims.issuer_path}"}}')
    best: list[tuple[str, str]] | None = None
    for stmt in statements:
        problems = _irsa_problems(stmt, claims, role_arn)
        hard = [p for p in problems if not p[0].startswith("no condition on")]
        if not hard:
            warn = [p for p in problems if p not in hard]
            return Check.of("trust-policy", target, "warn" if warn else "ok",
                            warn[0][0] if warn else "admits this token",
                            f"sub={claims.sub} aud={','.join(claims.aud)} issuer={claims.issuer_path}",
                            warn[0][1] if warn else "")
        if best is None or len(hard) < len(best):
            best = hard
    assert best
    return Check.of("trust-policy", target, "fail",
                    "AccessDenied on AssumeRoleWithWebIdentity: " + best[0][0],
                    "; ".join(p for p, _ in best[1:]), "; ".join(f for _, f in best))


def expected_sub(service_account: str) -> str:
    """``NS:SA`` (or ``NS/SA``) -> ``system:serviceaccount:NS:SA``."""
    ns, _, sa = service_account.replace("/", ":").partition(":")
    return f"system:serviceaccount:{ns}:{sa}"


def check_pod_identity(policy: Mapping[str, Any], role_arn: str) -> Check:
    target = role_arn or "trust policy"
    for stmt in as_list(policy.get("Statement")):
        if not isinstance(stmt, Mapping) or stmt.get("Effect") != "Allow":
            continue
        services = [str(s) for s in as_list((stmt.get("Principal") or {}).get("Service"))]
        if _POD_IDENTITY_SERVICE not in services:
            continue
        missing = [a for a in ("sts:AssumeRole", "sts:TagSession") if not _allows(stmt, a)]
        if missing:
            return Check.of("trust-policy", target, "fail", f"the {_POD_IDENTITY_SERVICE} statement lacks {', '.join(missing)}",
                            "EKS Pod Identity assumes the role with session tags",
                            '"Action": ["sts:AssumeRole", "sts:TagSession"]')
        return Check.of("trust-policy", target, "ok", f"trusts {_POD_IDENTITY_SERVICE} with sts:AssumeRole + sts:TagSession")
    return Check.of("trust-policy", target, "fail", f"no Allow statement for Principal.Service {_POD_IDENTITY_SERVICE}",
                    "EKS Pod Identity needs it", f'add "Principal": {{"Service": "{_POD_IDENTITY_SERVICE}"}}, '
                    '"Action": ["sts:AssumeRole", "sts:TagSession"]')
