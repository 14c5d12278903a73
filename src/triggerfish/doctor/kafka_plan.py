"""What ``doctor kafka`` checks, read from one of three inputs: options, a mapping in triggerfish.yaml, a bridge.properties.

A :class:`Plan` holds the bootstrap servers, the librdkafka settings (secrets included: never print them,
see :func:`triggerfish.esm.auth.redact`), the topic and group to check, and the credentials and secret
stages already run while reading the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from triggerfish import config as project
from triggerfish.bridge import config as bridge
from triggerfish.doctor.report import Check
from triggerfish.errors import ConfigError
from triggerfish.esm import auth
from triggerfish.esm.access import bootstrap_servers, parse_access
from triggerfish.esm.probes.aws import check_credentials, check_secrets
from triggerfish.esm.schema_records import Settings
from triggerfish.esm.store import Store

DEFAULT_GROUP = "triggerfish-doctor"


@dataclass
class Plan:
    """What to check: where, how to log in, and which topic and group."""

    bootstrap: list[str]
    config: dict[str, Any]  # librdkafka settings, secrets included: never print it, see auth.redact
    topic: str = ""
    group: str = DEFAULT_GROUP
    who: auth.Auth | None = None
    setup: tuple[Check, ...] = ()  # credentials / secret stages already run while building the plan
    registry: Settings | None = None  # the mapping's SchemaRegistryConfig: checked after the Kafka stages

    @property
    def failed(self) -> bool:
        return any(c.failed for c in self.setup)


def plan_from_options(
    bootstrap: Sequence[str], *, access: Sequence[str] = (), msk_arn: str = "", properties: Sequence[str] = (),
    topic: str = "", group: str = "",
) -> Plan:
    """Bootstrap servers plus the same auth options as a mapping (``TYPE=secret-ref``), plus raw ``-X key=value``."""
    servers = [s.strip() for item in bootstrap for s in item.split(",") if s.strip()]
    entries = []
    for i, item in enumerate(access):
        kind, sep, uri = item.partition("=")
        if not sep:
            raise ConfigError(f"--auth[{i}]", f"{item!r} must be TYPE=SECRET_REF, e.g. SASL_SCRAM_512_AUTH=env:KAFKA_SECRET")
        entries.append({"Type": kind.strip(), "URI": uri.strip()})
    mapping: dict[str, Any] = {"SourceAccessConfigurations": entries, "Topics": [topic] if topic else []}
    if servers:
        mapping["SelfManagedEventSource"] = {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": servers}}
    if msk_arn:
        mapping["EventSourceArn"] = msk_arn
    if not servers and not msk_arn:
        raise ConfigError("--bootstrap", "give the bootstrap servers (host:port,...), or --msk-arn, --mapping or --bridge-config")
    try:
        plan = _plan_from_mapping(mapping, topic, group or DEFAULT_GROUP)
    except ConfigError as exc:
        # Name the user's option, not the mapping field it was turned into.
        raise ConfigError(exc.field.replace("SourceAccessConfigurations", "--auth").replace(".Type", "").replace(".URI", ""),
                          exc.message) from None
    plan.config.update(parse_properties(properties))
    return plan


def plan_from_mapping(config_file: Path, name: str, group: str = "") -> Plan:
    """A mapping from a triggerfish.yaml, chosen by UUID, function name or topic."""

    loaded = project.load(config_file)
    found = [m for m in loaded.mappings if name in (m.uuid, m.function_name, m.function, m.topic)]
    if not found:
        known = ", ".join(f"{m.uuid or m.function}:{m.topic}" for m in loaded.mappings) or "none"
        raise ConfigError("--mapping", f"no mapping {name!r} in {config_file} (mappings: {known}); give its UUID, "
                          "FunctionName or topic")
    if len(found) > 1:
        raise ConfigError("--mapping", f"{name!r} matches {len(found)} mappings; give the mapping's UUID")
    m = found[0]
    note: Check | None = None
    gid = group or m.consumer_group_id or m.uuid or _uuid_from_state(loaded.state_path, m.identity())
    if not gid:
        gid = DEFAULT_GROUP
        note = Check.of("config", name, "warn", "the mapping has no UUID yet (it has never run), so its consumer "
                        f"group is unknown; checking group {DEFAULT_GROUP!r} instead", "", "pass --group, or run it once")
    plan = _plan_from_mapping(m, m.topic, gid)
    plan.registry = Settings.of(m)
    if note:
        plan.setup = (note, *plan.setup)
    return plan


def _uuid_from_state(state_path: Path, identity: str) -> str:
    """The UUID the engine gave a config-file mapping, from its state file (read only; never created here)."""
    if not Path(state_path).exists():
        return ""

    store = Store(state_path)
    try:
        return next((r["uuid"] for r in store.mappings("config") if r["identity"] == identity), "")
    finally:
        store.close()


def plan_from_bridge(path: Path, topic: str = "", group: str = "") -> Plan:
    """The Kafka side of a bridge.properties (the consumer client's settings), as the bridge would use them."""

    cfg = bridge.from_file(path)
    conf: dict[str, Any] = dict(cfg.consumer)
    servers = [s.strip() for s in str(conf.get("bootstrap.servers", "")).split(",") if s.strip()]
    if not servers:
        raise ConfigError("kafka.bootstrap.servers", f"{path} sets no kafka.bootstrap.servers")
    return Plan(servers, conf, topic, group or DEFAULT_GROUP)


def _plan_from_mapping(mapping: Any, topic: str, group: str) -> Plan:
    access_cfg = parse_access(mapping)
    setup: list[Check] = []
    cred = check_credentials(access_cfg)
    setup.append(cred)
    if cred.failed:
        return Plan(bootstrap_servers(mapping), {}, topic, group, None, tuple(setup))
    secret_results, who = check_secrets(mapping, access_cfg)
    setup += secret_results
    if who is None:
        return Plan(bootstrap_servers(mapping), {}, topic, group, None, tuple(setup))
    return Plan(list(who.bootstrap), dict(who.config), topic, group, who, tuple(setup))


def parse_properties(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, item in enumerate(items):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"-X[{i}]", f"{item.split('=')[0]!r} must be key=value (a librdkafka property)")
        out[key.strip()] = value.strip()
    return out
