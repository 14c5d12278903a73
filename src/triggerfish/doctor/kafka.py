"""``doctor kafka``: the ESM's own setup stages, run live against every broker a client will talk to.

The probes themselves (DNS, TCP, TLS, SASL, topic, group) are the ESM's own, in :mod:`triggerfish.esm.probes`;
this module only orders them per broker: first the bootstrap servers, then every broker the cluster
advertises in its metadata, because a client connects to the advertised addresses after the first
metadata answer. A bootstrap that works while an advertised address doesn't is the
advertised-listener trap, reported as such. One poll (assign, no group join) proves Fetch works.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from triggerfish import config as project
from triggerfish.bridge import config as bridge
from triggerfish.doctor.registry import check_registry
from triggerfish.doctor.report import Check
from triggerfish.errors import ConfigError
from triggerfish.esm import auth, problems, stages
from triggerfish.esm.access import bootstrap_servers, parse_access
from triggerfish.esm.probes.admin import (
    KAFKA_TIMEOUT_S,
    Broker,
    advertised_brokers,
    check_group,
    check_sasl,
    check_topic,
)
from triggerfish.esm.probes.aws import check_credentials, check_secrets
from triggerfish.esm.probes.network import DEFAULT_TIMEOUT_S, split_hostport
from triggerfish.esm.probes.tls import peer_certificate
from triggerfish.esm.schema_records import Settings
from triggerfish.esm.store import Store

DEFAULT_GROUP = "triggerfish-doctor"
_CERT_WARN_DAYS = 30
_POLL_TIMEOUT_S = 10.0

_OnCheck = Callable[[Check], None]


@dataclass
class _Plan:
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


# --- building a plan from the three kinds of input ---------------------------------------------------

def plan_from_options(
    bootstrap: Sequence[str], *, access: Sequence[str] = (), msk_arn: str = "", properties: Sequence[str] = (),
    topic: str = "", group: str = "",
) -> _Plan:
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


def plan_from_mapping(config_file: Path, name: str, group: str = "") -> _Plan:
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


def plan_from_bridge(path: Path, topic: str = "", group: str = "") -> _Plan:
    """The Kafka side of a bridge.properties (the consumer client's settings), as the bridge would use them."""

    cfg = bridge.from_file(path)
    conf: dict[str, Any] = dict(cfg.consumer)
    servers = [s.strip() for s in str(conf.get("bootstrap.servers", "")).split(",") if s.strip()]
    if not servers:
        raise ConfigError("kafka.bootstrap.servers", f"{path} sets no kafka.bootstrap.servers")
    return _Plan(servers, conf, topic, group or DEFAULT_GROUP)


def _plan_from_mapping(mapping: Any, topic: str, group: str) -> _Plan:
    access_cfg = parse_access(mapping)
    setup: list[Check] = []
    cred = check_credentials(access_cfg)
    setup.append(cred)
    if cred.failed:
        return _Plan(bootstrap_servers(mapping), {}, topic, group, None, tuple(setup))
    secret_results, who = check_secrets(mapping, access_cfg)
    setup += secret_results
    if who is None:
        return _Plan(bootstrap_servers(mapping), {}, topic, group, None, tuple(setup))
    return _Plan(list(who.bootstrap), dict(who.config), topic, group, who, tuple(setup))


def parse_properties(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, item in enumerate(items):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"-X[{i}]", f"{item.split('=')[0]!r} must be key=value (a librdkafka property)")
        out[key.strip()] = value.strip()
    return out


# --- running it ----------------------------------------------------------------------------------------

def diagnose(plan: _Plan, *, poll: bool = True, timeout: float = DEFAULT_TIMEOUT_S,
             kafka_timeout: float = KAFKA_TIMEOUT_S, on_check: _OnCheck | None = None) -> list[Check]:
    """Every stage in order; a failed stage skips what depends on it (topic and group are both checked,
    so missing ACLs on each show up in one run). ``on_check`` sees each row as it is decided (progress).
    A mapping's schema registry is checked last, whatever the Kafka stages found."""
    checks = _diagnose_kafka(plan, poll=poll, timeout=timeout, kafka_timeout=kafka_timeout, on_check=on_check)
    if plan.registry is not None:
        checks.append(check_registry(plan.registry))
        if on_check:
            on_check(checks[-1])
    return checks


def _diagnose_kafka(plan: _Plan, *, poll: bool, timeout: float, kafka_timeout: float,
                    on_check: _OnCheck | None) -> list[Check]:
    checks: list[Check] = []

    def add(c: Check) -> Check:
        checks.append(c)
        if on_check:
            on_check(c)
        return c

    for c in plan.setup:
        add(c)
    if plan.failed:
        return _skip(checks, ["dns", "tcp", "tls", "sasl", "topic", "group", "first_poll"], add)

    reachable = []
    for server in plan.bootstrap:
        results = broker_checks(server, plan.config, f"{server} (bootstrap)", timeout)
        for c in results:
            add(c)
        if not any(c.failed for c in results):
            reachable.append(server)
    if not reachable:
        return _skip(checks, ["sasl", "topic", "group", "first_poll"], add)

    target = ",".join(reachable)
    sasl, admin = check_sasl(plan.config, target, plan.who, kafka_timeout)
    add(sasl)
    if admin is None:
        return _skip(checks, ["advertised", "topic", "group", "first_poll"], add)

    try:
        brokers = advertised_brokers(admin.client, kafka_timeout)
    except Exception as exc:  # KafkaException after a successful login: the cluster went away mid-check
        add(Check.of("advertised", target, "fail", problems.CONNECTION_ERROR, f"metadata request failed: {exc}"))
        return checks
    for c in check_advertised(brokers, plan.bootstrap, plan.config, timeout, who=plan.who, kafka_timeout=kafka_timeout):
        add(c)

    principal = plan.who.principal if plan.who else auth.principal_of(plan.config)
    if not plan.topic:
        return _skip(checks, ["topic", "group", "first_poll"], add, "no --topic given")
    topic = check_topic(admin, target, plan.topic, plan.group, principal, kafka_timeout)
    add(topic)
    group = check_group(admin, target, plan.group, plan.topic, principal, kafka_timeout)
    add(group)
    if topic.failed or group.failed:
        return _skip(checks, ["first_poll"], add)
    if not poll:
        return _skip(checks, ["first_poll"], add, "--no-poll")
    add(_poll_once(plan.config, plan.topic, plan.group, target, principal))
    return checks


def broker_checks(server: str, config: Mapping[str, Any], label: str, timeout: float) -> list[Check]:
    """DNS, TCP and TLS for one broker (the ESM's own stage functions), the TLS row with its certificate."""
    out = []
    for r in stages.check_broker(server, dict(config), timeout):
        c = r.replace(target=label)
        if r.stage == "tls" and r.status == "ok":
            c = _with_certificate(c, server, config, timeout)
        out.append(c)
    return out


def _with_certificate(check: Check, server: str, config: Mapping[str, Any], timeout: float) -> Check:
    """Add what the verified certificate says (names, issuer, expiry) and warn before it expires."""
    host, port = split_hostport(server)
    info = peer_certificate(host, port, host, timeout)
    if not info:
        return check
    detail = (f"{check.detail}; certificate for {', '.join(info.get('cert_names') or ['?'])}; issued by "
              f"{info.get('issuer', '?')}; valid until {info.get('not_after', '?')}")
    chain = _chain_from_trust(str(info.get("issuer", "")), config)
    if chain:
        detail += f"; chain: {' <- '.join([host, *chain])}"
    try:
        not_after = datetime.strptime(info["not_after"], "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return check.replace(detail=detail)
    days = (not_after - datetime.now(UTC)).days
    if days < _CERT_WARN_DAYS:
        return check.replace(status="warn", problem=f"the broker certificate expires in {days} days", detail=detail,
                       fix="renew the broker certificate before it expires (clients will then fail the handshake)")
    return check.replace(detail=detail)


def _chain_from_trust(issuer_cn: str, config: Mapping[str, Any]) -> list[str]:
    """The verified path above the leaf, read from the configured CA bundle (Python's ssl doesn't expose it)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    pem = config.get("ssl.ca.pem")
    source = "the CA secret"
    if not pem and config.get("ssl.ca.location") not in (None, "", "probe"):
        source = str(config["ssl.ca.location"])
        try:
            pem = Path(source).read_text()
        except OSError:
            return []
    if not pem:
        return [f"{issuer_cn} (system trust store)"] if issuer_cn else []
    try:
        certs = x509.load_pem_x509_certificates(str(pem).encode())
    except ValueError:
        return []

    def cn(name: x509.Name) -> str:
        attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else name.rfc4514_string()

    chain: list[str] = []
    want = issuer_cn
    for _ in range(len(certs)):
        cert = next((c for c in certs if cn(c.subject) == want), None)
        if cert is None:
            break
        root = cert.subject == cert.issuer
        chain.append(f"{want} ({'root' if root else 'intermediate'}, from {source})")
        if root:
            break
        want = cn(cert.issuer)
    return chain


def _same(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


def check_advertised(brokers: Sequence[Broker], bootstrap: Sequence[str], config: Mapping[str, Any],
                     timeout: float = DEFAULT_TIMEOUT_S, *, who: auth.Auth | None = None,
                     kafka_timeout: float = KAFKA_TIMEOUT_S) -> list[Check]:
    """DNS/TCP/TLS (and SASL, when the listener has it) for every advertised broker that isn't a bootstrap
    address already checked.

    A failure here while the bootstrap passed is the advertised-listener trap: the first connection
    works, every later one (to the address the broker advertises) does not.
    """
    out: list[Check] = []
    if not brokers:
        return [Check.of("advertised", ",".join(bootstrap), "fail", problems.CONNECTION_ERROR,
                         "the metadata lists no brokers", "check the cluster's health")]
    for b in brokers:
        label = f"broker {b.id} {b.address} (advertised)"
        if any(_same(b.address, s) for s in bootstrap):
            out.append(Check.of("advertised", label, "ok", "same address as a bootstrap server, checked above"))
            continue
        results = broker_checks(b.address, config, label, timeout)
        sasl = str(config.get("security.protocol", "PLAINTEXT")).upper().startswith("SASL")
        if sasl and not any(c.failed for c in results):
            # Log in through this broker alone: listeners can differ per broker.
            login, _ = check_sasl({**config, "bootstrap.servers": b.address}, b.address, who, kafka_timeout)
            results.append(login.replace(target=label))
        out += results
        failed = next((c for c in results if c.failed), None)
        if failed:
            why = ("" if failed.stage in ("dns", "tcp") else
                   " (a different listener or security protocol behind the advertised address?)")
            out.append(Check.of(
                "advertised", label, "fail",
                f"advertised-listener trap: the bootstrap answered, but broker {b.id} advertises {b.address}, "
                f"which fails at {failed.stage.upper()} from here{why}",
                "after the first metadata answer clients connect to the advertised host:port of every broker, "
                "not to the bootstrap address",
                f"make {b.host} resolvable and reachable from the client (DNS, routes, security groups), or set the "
                f"broker's advertised.listeners to an address clients can reach (e.g. a separate EXTERNAL listener)"))
        else:
            out.append(Check.of("advertised", label, "ok", "reachable as advertised"))
    return out


def _poll_once(config: Mapping[str, Any], topic: str, group: str, target: str, principal: str = "",
              timeout: float = _POLL_TIMEOUT_S) -> Check:
    """Fetch from the topic without joining the group (assign, not subscribe), so live consumers aren't rebalanced."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    started = time.monotonic()
    errors: list[Any] = []
    logger = logging.getLogger("triggerfish.doctor.kafka.poll")
    logger.propagate = False
    conf = {k: v for k, v in config.items() if k not in ("logger",)}
    conf.update({"group.id": group, "enable.auto.commit": False, "enable.partition.eof": True,
                 "auto.offset.reset": "earliest", "error_cb": errors.append, "logger": logger})
    consumer = Consumer(conf)
    try:
        meta = consumer.list_topics(topic, timeout=timeout)
        parts = sorted(meta.topics[topic].partitions) if topic in meta.topics else []
        if not parts:
            return Check.of("first_poll", topic, "fail", problems.CONNECTION_ERROR, f"{topic!r} has no partitions")
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        eof: set[int] = set()
        while time.monotonic() - started < timeout:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            err = msg.error()
            if err is None:
                return Check.of("first_poll", topic, "ok", "fetched a record",
                                f"partition {msg.partition()} offset {msg.offset()}, {len(msg.value() or b'')} bytes")
            if err.code() == KafkaError._PARTITION_EOF:
                eof.add(int(msg.partition() or 0))
                if eof >= set(parts):
                    return Check.of("first_poll", topic, "ok", "fetch allowed; the topic is empty",
                                    f"reached the end of {len(parts)} partition(s)")
                continue
            d = problems.from_kafka_error(err.name(), err.str(), target=target, topic=topic, group=group, principal=principal)
            if d is not None:
                return Check("fail", d.at("first_poll", topic))
        detail = "; ".join(problems.clean(e.str()) for e in errors[-2:]) or "no record and no end-of-partition"
        return Check.of("first_poll", topic, "fail", problems.CONNECTION_ERROR,
                        f"no answer to Fetch within {timeout:g}s ({detail})",
                        "check the partition leaders are reachable (see the advertised rows)")
    finally:
        consumer.close()


def _skip(checks: list[Check], stages_: Sequence[str], add: Callable[[Check], Check], why: str = "not reached") -> list[Check]:
    for stage in stages_:
        add(Check.of(stage, "-", "skip", why))
    return checks
