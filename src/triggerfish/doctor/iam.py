"""A small IAM policy reader: does a set of identity (or VPC endpoint) policies allow an action on a resource?

It reads every shape the AWS CLI prints for a role's policies: a bare document, ``get-role-policy``
(inline), ``get-policy-version`` (managed, with ``get-policy`` naming it), ``get-role`` (trust policy),
``list-attached-role-policies`` (names: the AWS managed ones it knows are evaluated, others are listed
as not read) and ``list-role-policies`` (inline names without documents). A valid input is never
refused. Decisions follow IAM: an explicit Deny wins, else an Allow, else implicit deny; Action /
NotAction, Resource / NotResource and Principal with wildcards; conditions evaluated where the context
has the keys (:mod:`triggerfish.doctor.iam_conditions`), else reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from triggerfish.doctor import managed_policies
from triggerfish.doctor.iam_conditions import Context, evaluate

__all__ = ["Context", "Decision", "Policy", "PolicySet", "decide", "documents", "read_policies"]
from triggerfish.errors import ConfigError

Policy = tuple[str, Mapping[str, Any]]  # (name to show, document)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # which statement decided, or why nothing did
    conditional: bool = False  # an Allow (or a Deny that did not apply) hinges on a condition key not known here


@dataclass
class PolicySet:
    """The documents read, and the policies named without a document (each with the command to export it)."""

    policies: list[Policy] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _document(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, str):  # the API (and some SDKs) return URL-encoded JSON; VPC endpoints a JSON string
        for text in (value, unquote(value)):
            try:
                value = json.loads(text)
                break
            except json.JSONDecodeError:
                continue
        else:
            return None
    return value if isinstance(value, Mapping) and "Statement" in value else None


def _managed_name(attached: Mapping[str, Any]) -> tuple[str, str]:
    arn = str(attached.get("PolicyArn") or attached.get("Arn") or "")
    return str(attached.get("PolicyName") or arn.rsplit("/", 1)[-1]), arn


def documents(doc: Any) -> list[Policy]:
    """Every policy document inside one JSON document, named."""
    found: list[Policy] = []
    if not isinstance(doc, Mapping):
        return found
    if _document(doc):
        found.append(("policy", doc))
    inline = _document(doc.get("PolicyDocument"))
    if inline:  # get-role-policy / get-user-policy / get-group-policy
        found.append((f"inline policy {doc.get('PolicyName', '?')}", inline))
    version = doc.get("PolicyVersion")
    if isinstance(version, Mapping) and _document(version.get("Document")):
        found.append((f"policy version {version.get('VersionId', '?')}", _document(version["Document"])))  # type: ignore[arg-type]
    role = doc.get("Role")
    if isinstance(role, Mapping) and _document(role.get("AssumeRolePolicyDocument")):
        found.append(("AssumeRolePolicyDocument", _document(role["AssumeRolePolicyDocument"])))  # type: ignore[arg-type]
    for attached in _as_list(doc.get("AttachedPolicies")):
        if isinstance(attached, Mapping):
            name, arn = _managed_name(attached)
            known = managed_policies.document(name) if managed_policies.is_aws_managed(arn) or not arn else None
            if known:
                found.append((f"{name} (AWS managed)", known))
    return found


@dataclass(frozen=True)
class _Named:
    """A policy named by a listing (attached: managed, by ARN; or inline, by name) or by ``get-policy``."""

    name: str
    arn: str = ""  # managed policies
    version: str = ""  # get-policy's DefaultVersionId

    def export(self, role: str) -> str:
        if not self.arn:
            return f"{self.name} (inline: `aws iam get-role-policy --role-name {role} --policy-name {self.name}`)"
        version = self.version or (f"$(aws iam get-policy --policy-arn {self.arn} --query Policy.DefaultVersionId "
                                   "--output text)")
        return f"{self.name} (managed: `aws iam get-policy-version --policy-arn {self.arn} --version-id {version}`)"


def _named(doc: Any) -> list[_Named]:
    """The policies a document names without carrying their documents."""
    if not isinstance(doc, Mapping):
        return []
    out: list[_Named] = []
    for attached in _as_list(doc.get("AttachedPolicies")):  # list-attached-role-policies
        if isinstance(attached, Mapping):
            name, arn = _managed_name(attached)
            if not (managed_policies.is_aws_managed(arn) and managed_policies.document(name)):
                out.append(_Named(name, arn or name))
    out += [_Named(str(name)) for name in _as_list(doc.get("PolicyNames"))]  # list-role-policies
    policy = doc.get("Policy")
    if isinstance(policy, Mapping) and policy.get("Arn"):  # get-policy
        out.append(_Named(str(policy.get("PolicyName") or policy["Arn"]), str(policy["Arn"]),
                          str(policy.get("DefaultVersionId") or "")))
    return out


def _recognised(doc: Any) -> bool:
    return bool(documents(doc) or _named(doc)) or (
        isinstance(doc, Mapping) and any(isinstance(doc.get(k), list) for k in ("PolicyNames", "AttachedPolicies")))


def read_policies(paths: Iterable[Path], option: str, role: str = "ROLE") -> PolicySet:
    """Every document in the files, and the policies they name whose documents are not among them."""
    out = PolicySet()
    loaded: list[tuple[Path, Any]] = []
    for path in paths:
        try:
            loaded.append((Path(path), json.loads(Path(path).read_text())))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(option, f"cannot read {path} as JSON ({exc})") from None
        if not _recognised(loaded[-1][1]):
            raise ConfigError(option, f"{path} holds no IAM policy (expected a policy document, or the output of "
                              "`aws iam get-role-policy`, `get-policy`, `get-policy-version`, `get-role`, "
                              "`list-role-policies` or `list-attached-role-policies`)")
    named = [n for _, doc in loaded for n in _named(doc)]
    by_version = {n.version: n for n in named if n.version}  # get-policy: which version document is which policy
    inline_read: set[str] = set()
    versions_read: list[str] = []
    for path, doc in loaded:
        for name, d in documents(doc):
            if name.startswith("inline policy"):
                inline_read.add(str(doc.get("PolicyName")))
            if name.startswith("policy version"):
                version = str(doc["PolicyVersion"].get("VersionId", ""))
                versions_read.append(version)
                if version in by_version and len(by_version) == 1:
                    name = f"{by_version[version].name} ({name})"
            out.policies.append((f"{path.name}: {name}", d))
    described = {n.arn for n in named if n.version}
    unlinked = [v for v in versions_read if v not in by_version or len(by_version) > 1]
    seen: set[str] = set()
    for n in named:
        read = (n.name in inline_read if not n.arn else
                n.version in versions_read if n.version else
                n.arn in described or len(unlinked) >= sum(1 for m in named if m.arn and not m.version))
        if not read and (n.arn or n.name) not in seen:
            seen.add(n.arn or n.name)
            out.unread.append(n.export(role))
    return out


def _matches(patterns: Sequence[Any], value: str, *, case: bool) -> bool:
    v = value if case else value.lower()
    return any(fnmatchcase(v, str(p) if case else str(p).lower()) for p in patterns)


def _principal_matches(stmt: Mapping[str, Any], principal: str | None) -> bool | None:
    """Resource-style policies (VPC endpoint, trust): None when the statement names principals and the caller
    is not known here."""
    if "Principal" not in stmt and "NotPrincipal" not in stmt:
        return True
    given = stmt.get("Principal", stmt.get("NotPrincipal"))
    if isinstance(given, Mapping):
        values = [v for vs in given.values() for v in _as_list(vs)]
    else:
        values = _as_list(given)
    if "*" in values:
        return "Principal" in stmt
    if principal is None:
        return None
    hit = _matches(values, principal, case=True)
    return hit if "Principal" in stmt else not hit


def _applies(stmt: Mapping[str, Any], action: str, resource: str | None) -> bool | None:
    """Does the statement cover the action and resource? None: only if the resource (not known) matches."""
    if "NotAction" in stmt:
        if _matches(_as_list(stmt["NotAction"]), action, case=False):
            return False
    elif not _matches(_as_list(stmt.get("Action")), action, case=False):
        return False
    if resource is None:
        patterns = _as_list(stmt.get("Resource", "*")) if "NotResource" not in stmt else []
        return True if "*" in patterns else None
    if "NotResource" in stmt:
        return not _matches(_as_list(stmt["NotResource"]), resource, case=True)
    return _matches(_as_list(stmt.get("Resource", "*")), resource, case=True)


def decide(policies: Sequence[Policy], action: str, resource: str | None = "*", *, context: Context | None = None,
           principal: str | None = None) -> Decision:
    """Explicit Deny > Allow > implicit deny, over every statement of every policy.

    ``resource`` None means the resource is not known: statements naming specific resources then apply only
    conditionally; ``principal`` matters for statements with a Principal (endpoint and trust policies).
    """
    allow: tuple[str, tuple[str, ...]] | None = None
    maybe_denied: list[str] = []
    for name, doc in policies:
        for i, stmt in enumerate(_as_list(doc.get("Statement"))):
            if not isinstance(stmt, Mapping):
                continue
            covers, who = _applies(stmt, action, resource), _principal_matches(stmt, principal)
            if covers is False or who is False:
                continue
            label = f"{name} statement {stmt.get('Sid') or i}"
            condition = evaluate(stmt.get("Condition"), context or {})
            if condition.value is False:
                continue
            unknown = (*condition.unknown_keys, *(["Resource"] if covers is None else []),
                       *(["Principal"] if who is None else []))
            if stmt.get("Effect") == "Deny":
                if unknown:
                    maybe_denied.append(f"{label} (if {', '.join(unknown)} match)")
                    continue
                return Decision(False, f"explicitly denied by {label}")
            if stmt.get("Effect") == "Allow" and (allow is None or (allow[1] and not unknown)):
                allow = (label, unknown)
    if allow:
        unknown = allow[1]
        reason = f"allowed by {allow[0]}" + (f" (if its {', '.join(unknown)} match: not known here)" if unknown else "")
        if maybe_denied:
            reason += f"; may be denied by {'; '.join(maybe_denied)}"
        return Decision(True, reason, bool(unknown or maybe_denied))
    return Decision(False, "no statement allows it (implicit deny)" +
                    (f"; denied by {'; '.join(maybe_denied)}" if maybe_denied else ""))
