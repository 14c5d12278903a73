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
from typing import Any

from triggerfish.doctor import broker_tls, certificates, sasl
from triggerfish.doctor.kafka_plan import (
    DEFAULT_GROUP,
    Plan,
    parse_properties,
    plan_from_bridge,
    plan_from_mapping,
    plan_from_options,
)
from triggerfish.doctor.registry import check_registry
from triggerfish.doctor.report import Check
from triggerfish.esm import auth, problems, stages
from triggerfish.esm.probes.admin import (
    KAFKA_TIMEOUT_S,
    Broker,
    advertised_brokers,
    check_group,
    check_sasl,
    check_topic,
)
from triggerfish.esm.probes.network import DEFAULT_TIMEOUT_S

__all__ = [
    "DEFAULT_GROUP", "Broker", "Plan", "advertised_brokers", "broker_checks", "check_advertised", "diagnose",
    "parse_properties", "plan_from_bridge", "plan_from_mapping", "plan_from_options",
]

_POLL_TIMEOUT_S = 10.0

_OnCheck = Callable[[Check], None]


# --- running it ----------------------------------------------------------------------------------------

def diagnose(plan: Plan, *, poll: bool = True, timeout: float = DEFAULT_TIMEOUT_S,
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


def _diagnose_kafka(plan: Plan, *, poll: bool, timeout: float, kafka_timeout: float,
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

    local = certificates.check_local(plan.config)
    first_local = len(checks)
    for c in local.rows:
        add(c)
    reachable = []
    for server in plan.bootstrap:
        results = broker_checks(server, plan.config, f"{server} (bootstrap)", timeout)
        for c in results:
            add(c)
        if not any(c.failed for c in results):
            reachable.append(server)
    if reachable and local.client is not None and not local.client.key_problem():
        # A broker that completed the handshake did not refuse our certificate (it may not ask for one):
        # what is wrong with it is a warning about this path, not a failure of it.
        i = first_local
        if checks[i].failed:
            checks[i] = checks[i].replace(status="warn", detail=checks[i].detail + "; the brokers accepted the "
                                          "TLS handshake all the same (a listener without client authentication?)")
    if not reachable:
        return _skip(checks, ["sasl", "topic", "group", "first_poll"], add)

    target = ",".join(reachable)
    login, admin = check_sasl(plan.config, target, plan.who, kafka_timeout)
    add(broker_tls.explain_login_refusal(sasl.explain_refusal(login, plan.config), plan.config, local.client))
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
    client = certificates.client_material(config)
    return [broker_tls.explain(r, server, config, timeout, client).replace(target=label)
            for r in stages.check_broker(server, dict(config), timeout)]


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
        has_sasl = str(config.get("security.protocol", "PLAINTEXT")).upper().startswith("SASL")
        if has_sasl and not any(c.failed for c in results):
            # Log in through this broker alone: listeners can differ per broker.
            alone = {**config, "bootstrap.servers": b.address}
            login, _ = check_sasl(alone, b.address, who, kafka_timeout)
            results.append(sasl.explain_refusal(login, alone).replace(target=label))
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
