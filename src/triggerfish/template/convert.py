"""Turn an expanded CloudFormation template into triggerfish's own config document.

The result has the shape of ``triggerfish.yaml`` (``Functions``, ``EventSourceMappings``, with
Lambda's API field names), so ``triggerfish.config.parse`` validates it with the same checks and
texts as any config; each item keeps an :class:`~triggerfish.template.paths.Origin` so an error
names the template path. What runs: ``AWS::Lambda::Function`` with a Python runtime and local code,
``AWS::Lambda::EventSourceMapping`` of Kafka (self-managed or MSK), ``AWS::Lambda::Url``. A function
that cannot run here gets one line saying why; every other resource is listed as not run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from triggerfish.errors import ConfigError
from triggerfish.esm.access import SECRET_TYPES
from triggerfish.template import envvars, physical
from triggerfish.template.intrinsics import Resolver
from triggerfish.template.overrides import Overrides
from triggerfish.template.paths import Origin, relocate
from triggerfish.template.sam import LOCAL_CODE_BUCKET, Expanded

_FUNCTION_FIELDS = ("FunctionName", "Handler", "Runtime", "Description", "Timeout", "MemorySize",
                    "ReservedConcurrentExecutions")
_URL_FIELDS = ("AuthType", "Cors", "InvokeMode")


@dataclass
class Conversion:
    """The config document, where each item came from, and what is not run."""

    functions: list[dict[str, Any]] = field(default_factory=list)
    function_origins: list[Origin] = field(default_factory=list)
    mappings: list[dict[str, Any]] = field(default_factory=list)
    mapping_origins: list[Origin] = field(default_factory=list)
    #: logical id -> function name, for ``invoke LOGICAL_ID``
    aliases: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)

    @property
    def document(self) -> dict[str, Any]:
        return {"Functions": self.functions, "EventSourceMappings": self.mappings}


def convert(expanded: Expanded, resolver: Resolver, overrides: Overrides, env_vars: envvars.EnvVars) -> Conversion:
    out = Conversion()
    active: dict[str, Any] = {}
    for logical_id, resource in expanded.template["Resources"].items():
        condition = resource.get("Condition") if isinstance(resource, dict) else None
        if isinstance(condition, str) and not resolver.condition(condition, f"Resources.{logical_id}.Condition"):
            out.not_run.append(f"{logical_id} (condition {condition} is false)")
            continue
        active[logical_id] = resource
    resolver.resources = active
    urls = _urls(active, resolver)
    skipped_functions: set[str] = set()
    for logical_id, resource in active.items():
        kind = resource.get("Type") if isinstance(resource, dict) else None
        if kind == "AWS::Lambda::Function":
            if not _function(out, expanded, resolver, env_vars, logical_id, resource, urls.get(logical_id)):
                skipped_functions.add(physical.name_of(logical_id, resource, resolver.resolve))
        elif kind not in ("AWS::Lambda::EventSourceMapping", "AWS::Lambda::Url"):
            out.not_run.append(f"{logical_id} ({kind})")
    secrets = _reverse(active, ("AWS::SecretsManager::Secret",), resolver)
    clusters = _reverse(active, ("AWS::MSK::Cluster", "AWS::MSK::ServerlessCluster"), resolver)
    for logical_id, resource in active.items():
        if resource.get("Type") == "AWS::Lambda::EventSourceMapping":
            _mapping(out, expanded, resolver, overrides, logical_id, resource, skipped_functions, secrets, clusters)
    return out


def _props(resolver: Resolver, logical_id: str, resource: dict[str, Any], origin: Origin) -> dict[str, Any]:
    raw = resource.get("Properties") or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"Resources.{logical_id}.Properties", "must be a mapping of properties")
    try:
        props = resolver.resolve(raw)
    except ConfigError as exc:
        raise relocate(exc, origin.path(exc.field)) from None
    return props if isinstance(props, dict) else {}


def _urls(active: dict[str, Any], resolver: Resolver) -> dict[str, tuple[str, dict[str, Any]]]:
    """Function logical id -> (the Url's logical id, its FunctionUrlConfig)."""
    by_target: dict[str, str] = {}
    for logical_id, resource in active.items():
        if resource.get("Type") == "AWS::Lambda::Function":
            by_target[physical.name_of(logical_id, resource, resolver.resolve)] = logical_id
            by_target[physical.arn_of(logical_id, resource, resolver.place, resolver.resolve)] = logical_id
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for logical_id, resource in active.items():
        if resource.get("Type") != "AWS::Lambda::Url":
            continue
        props = _props(resolver, logical_id, resource, Origin.cfn_mapping(logical_id))
        arn = str(props.get("TargetFunctionArn"))
        # an alias's ARN (AutoPublishAlias) carries a qualifier: the function is the ARN without it
        target = by_target.get(arn) or by_target.get(arn.rsplit(":", 1)[0])
        if target is None:
            raise ConfigError(f"Resources.{logical_id}.Properties.TargetFunctionArn",
                              f"'{props.get('TargetFunctionArn')}' names no function of this template; use "
                              "!Ref FunctionLogicalId or !GetAtt FunctionLogicalId.Arn")
        found[target] = (logical_id, {k: props[k] for k in _URL_FIELDS if k in props})
    return found


def _skip(out: Conversion, logical_id: str, why: str) -> bool:
    out.skipped.append(f"{logical_id}: skipped: {why}")
    return False


def _function(out: Conversion, expanded: Expanded, resolver: Resolver, env_vars: envvars.EnvVars, logical_id: str,
              resource: dict[str, Any], url: tuple[str, dict[str, Any]] | None) -> bool:
    sam = logical_id in expanded.sam_functions
    url_path = None
    if url is not None:
        url_path = (f"Resources.{logical_id}.Properties.FunctionUrlConfig" if sam
                    else f"Resources.{url[0]}.Properties")
    origin = Origin.function(logical_id, sam=sam, from_globals=expanded.from_globals.get(logical_id, ()), url=url_path)
    props = _props(resolver, logical_id, resource, origin)
    runtime = str(props.get("Runtime", ""))
    code = _code(props.get("Code"))
    if props.get("PackageType") == "Image" or "ImageUri" in code:
        return _skip(out, logical_id, "a container image (PackageType: Image) is not run; triggerfish runs Python "
                                      "handlers from a local CodeUri directory")
    if not runtime.startswith("python"):
        return _skip(out, logical_id, f"runtime {runtime or '(none)'} is not Python; triggerfish runs Python "
                                      "handlers only")
    if "ZipFile" in code:
        return _skip(out, logical_id, "inline code (InlineCode / ZipFile) is not run; move it to a file and point "
                                      "CodeUri at its directory")
    if code.get("S3Bucket") != LOCAL_CODE_BUCKET and "Directory" not in code:
        where = "CodeUri" if sam else "Code"
        return _skip(out, logical_id, f"its {where} is in S3 (s3://{code.get('S3Bucket')}/{code.get('S3Key')}), not "
                                      f"on this machine; point {where} at the local directory of the handler")
    doc: dict[str, Any] = {k: props[k] for k in _FUNCTION_FIELDS if k in props}
    doc.setdefault("FunctionName", logical_id)
    doc["CodeUri"] = code["Directory"] if "Directory" in code else expanded.code[str(code.get("S3Key"))]
    env = props.get("Environment")
    if isinstance(env, dict) and isinstance(env.get("Variables"), dict):
        variables = envvars.apply(env_vars, env["Variables"], (logical_id, str(doc["FunctionName"])))
        doc["Environment"] = {**env, "Variables": variables}
    elif env is not None:
        doc["Environment"] = env
    if url is not None:
        doc["FunctionUrlConfig"] = url[1]
    out.functions.append(doc)
    out.function_origins.append(origin)
    out.aliases[logical_id] = str(doc["FunctionName"])
    return True


def _code(code: Any) -> dict[str, Any]:
    """``Code`` as a dict; a plain ``Code: ./dir`` (what ``aws cloudformation package`` takes) is a local directory."""
    if isinstance(code, str):
        if code.startswith("s3://"):
            bucket, _, key = code[len("s3://"):].partition("/")
            return {"S3Bucket": bucket, "S3Key": key}
        return {"Directory": code}
    return code if isinstance(code, dict) else {}


def _reverse(active: dict[str, Any], kinds: tuple[str, ...], resolver: Resolver) -> dict[str, str]:
    """Physical ARN -> logical id, for the template's own secrets and clusters."""
    return {physical.arn_of(lid, r, resolver.place, resolver.resolve): lid
            for lid, r in active.items() if r.get("Type") in kinds}


def _mapping(out: Conversion, expanded: Expanded, resolver: Resolver, overrides: Overrides, logical_id: str,
             resource: dict[str, Any], skipped_functions: set[str], secrets: dict[str, str],
             clusters: dict[str, str]) -> None:
    event = expanded.events.get(logical_id)
    origin = Origin.sam_event(*event) if event else Origin.cfn_mapping(logical_id)
    props = _props(resolver, logical_id, resource, origin)
    arn = props.get("EventSourceArn")
    if "SelfManagedEventSource" not in props and not (isinstance(arn, str) and arn.split(":")[2:3] == ["kafka"]):
        out.not_run.append(f"{logical_id} (AWS::Lambda::EventSourceMapping of {arn or 'an unknown source'})")
        return
    function = str(props.get("FunctionName", ""))
    if function.split(":")[-1] in skipped_functions or function in skipped_functions:
        out.skipped.append(f"{logical_id}: skipped: its function {function.split(':')[-1]} is skipped")
        return
    if "KmsKeyArn" in props:
        props["KMSKeyArn"] = props.pop("KmsKeyArn")
    tags = props.get("Tags")
    if isinstance(tags, list):
        props["Tags"] = {str(t.get("Key")): str(t.get("Value")) for t in tags if isinstance(t, dict)}
    keys = [logical_id] + ([f"{event[0]}.{event[1]}"] if event else [])
    if isinstance(arn, str):
        keys += [arn] + ([clusters[arn]] if arn in clusters else [])
    elsewhere = dict(origin.elsewhere)
    brokers = overrides.brokers(keys)
    if brokers is not None:
        elsewhere["BootstrapServers"] = elsewhere["SelfManagedEventSource"] = brokers.where
        if isinstance(arn, str):
            props["BootstrapServers"] = brokers.value
        else:
            props["SelfManagedEventSource"] = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": brokers.value}}
    elif isinstance(arn, str) and arn in clusters:
        raise ConfigError(origin.path("EventSourceArn"), f"the MSK cluster {clusters[arn]} is created by this "
                          "template and does not exist outside AWS; pass --kafka-bootstrap HOST:PORT (or "
                          f"{clusters[arn]}: {{BootstrapServers: [HOST:PORT]}} in --overrides)")
    access = overrides.access(keys)
    if access is not None:
        props["SourceAccessConfigurations"] = access.value
        elsewhere["SourceAccessConfigurations"] = access.where
    _local_secrets(props, origin, overrides, secrets, elsewhere)
    out.mappings.append(props)
    out.mapping_origins.append(Origin(origin.base, origin.renames, elsewhere))


def _local_secrets(props: dict[str, Any], origin: Origin, overrides: Overrides, secrets: dict[str, str],
                   elsewhere: dict[str, str]) -> None:
    """Each secret URI through the overrides; a secret this template creates must have one."""
    entries = props.get("SourceAccessConfigurations")
    if not isinstance(entries, list):
        return
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("Type") not in SECRET_TYPES or not isinstance(entry.get("URI"), str):
            continue
        uri = entry["URI"]
        keys = [uri] + ([secrets[uri]] if uri in secrets else [])
        found = overrides.secret(keys)
        if found is not None:
            entries[i] = {**entry, "URI": found.value}
            elsewhere[f"SourceAccessConfigurations[{i}].URI"] = found.where
        elif uri in secrets:
            raise ConfigError(origin.path(f"SourceAccessConfigurations[{i}].URI"),
                              f"the secret {secrets[uri]} is created by this template and does not exist outside AWS; "
                              f"give it a local value in --overrides ({secrets[uri]}: {{Secret: env:VAR}} or "
                              "{Secret: file://secret.json})")
