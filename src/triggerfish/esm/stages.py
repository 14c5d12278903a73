"""The setup stages a Kafka mapping goes through before its first invoke: their order, and which failure counts.

    credentials → secret → dns → tcp → tls → sasl → topic → group → first_poll → first_invoke

Each stage is a probe in :mod:`triggerfish.esm.probes` (AWS and secrets; DNS and TCP; TLS; librdkafka's
AdminClient). This module runs them in order, stops at the first failure (marking the stages after it
skipped) and turns that failure into the mapping's problem. ``first_poll`` and ``first_invoke`` are
recorded by whoever polls and invokes (the engine).

Inputs are plain (bootstrap list, librdkafka config, topic, group id) or a MappingConfig-like object,
so ``triggerfish doctor kafka`` runs the same probes per broker. Outputs are :class:`~triggerfish.checks.Check` results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from triggerfish.checks import Check
from triggerfish.diagnosis import Diagnosis
from triggerfish.esm import auth
from triggerfish.esm.access import lambda_field, parse_access
from triggerfish.esm.cluster_probe import settings_key, shared_connect
from triggerfish.esm.probes.admin import (
    KAFKA_TIMEOUT_S,
    Probe,
    advertised_brokers,
    check_group,
    check_lambda_parity,
    check_sasl,
    check_topic,
)
from triggerfish.esm.probes.aws import check_credentials, check_secrets
from triggerfish.esm.probes.network import DEFAULT_TIMEOUT_S, check_dns, check_tcp, split_hostport
from triggerfish.esm.probes.tls import check_tls

__all__ = [
    "DEFAULT_TIMEOUT_S", "KAFKA_TIMEOUT_S", "STAGES", "check_broker", "check_cluster",
    "check_mapping", "first_failure", "setup_problem",
]

STAGES = ("credentials", "secret", "dns", "tcp", "tls", "sasl", "topic", "group", "first_poll", "first_invoke")


def first_failure(results: list[Check]) -> Check | None:
    return next((r for r in results if r.failed), None)


def setup_problem(results: list[Check]) -> Diagnosis | None:
    """The mapping's problem after a setup run: the first failed stage, its target named in the detail
    (a status shows the problem without the target)."""
    failed = first_failure(results)
    if failed is None:
        return None
    detail = failed.detail if failed.target in failed.detail else f"{failed.target}: {failed.detail}"
    return failed.replace(detail=detail).diagnosis


def check_broker(server: str, config: dict[str, Any], timeout: float = DEFAULT_TIMEOUT_S) -> list[Check]:
    """DNS, TCP and TLS for one ``host:port``; stops at the first failure."""
    host, port = split_hostport(server)
    dns, addresses = check_dns(host, port)
    if dns.failed:
        return [dns]
    tcp = check_tcp(host, port, addresses, timeout)
    if tcp.failed:
        return [dns, tcp]
    address = tcp.detail.rsplit(" ", 1)[-1]
    return [dns, tcp, check_tls(host, port, config, address, timeout)]


def _check_advertised(a: Probe, bootstrap: list[str], config: dict[str, Any], timeout: float = DEFAULT_TIMEOUT_S,
                     kafka_timeout: float = KAFKA_TIMEOUT_S) -> list[Check]:
    """DNS, TCP and TLS for every broker the cluster advertises that is not a bootstrap server.

    After bootstrap, clients talk to the addresses brokers advertise (``advertised.listeners``);
    a name only resolvable inside the cluster's network fails here, not at bootstrap.
    """
    try:
        brokers = advertised_brokers(a.client, kafka_timeout)
    except Exception:  # noqa: BLE001 - metadata just worked in the sasl stage; the topic stage will say more
        return []
    known = {server.strip().lower() for server in bootstrap}
    results: list[Check] = []
    for b in brokers:
        if b.address.lower() in known:
            continue
        for r in check_broker(b.address, config, timeout):
            note = f"broker {b.id} advertises {b.address}"
            fix = f"{r.fix}; or correct advertised.listeners of broker {b.id}" if r.failed else r.fix
            results.append(r.replace(detail=f"{note}: {r.detail}", fix=fix))
            if r.failed:
                return results
    return results


def check_cluster(
    bootstrap: list[str], config: dict[str, Any], topic: str, group: str, *,
    who: auth.Auth | None = None, timeout: float = DEFAULT_TIMEOUT_S, kafka_timeout: float = KAFKA_TIMEOUT_S,
    on_result: Callable[[Check], None] | None = None,
) -> list[Check]:
    """Every stage from DNS to group for a cluster; stops at the first failure (later stages are skipped)."""
    run = _Run(on_result)
    if not _cluster_stages(run, bootstrap, config, topic, group, who, timeout, kafka_timeout):
        run.stop()
    return run.results


def check_mapping(
    mapping: Any, group: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S,
    kafka_timeout: float = KAFKA_TIMEOUT_S, on_result: Callable[[Check], None] | None = None,
) -> tuple[list[Check], auth.Auth | None]:
    """All stages up to (not including) the first poll for a MappingConfig-like object.

    Returns the results and, when the secret stage passed, the resolved :class:`auth.Auth`
    (its ``config`` is what the consumer should use).
    """
    run = _Run(on_result)
    access = parse_access(mapping)
    if not run.add(check_credentials(access)):
        return run.stop(), None
    secret_results, who = check_secrets(mapping, access)
    for r in secret_results:
        if not run.add(r):
            return run.stop(), None
    assert who is not None
    if not _cluster_stages(run, who.bootstrap, who.config, _topic_of(mapping), group or _group_of(mapping), who,
                           timeout, kafka_timeout, share=True):
        run.stop()
    return run.results, who


def _cluster_stages(run: _Run, bootstrap: list[str], config: dict[str, Any], topic: str, group: str,
                    who: auth.Auth | None, timeout: float, kafka_timeout: float, *, share: bool = False) -> bool:
    """DNS to group, added to ``run``; False when a stage failed (the stages after it are not run). With
    ``share``, concurrent setups of the same cluster and settings run the stages up to sasl once."""
    target = ",".join(bootstrap)
    config = {**config, "bootstrap.servers": target}  # the servers checked below, whatever the config said

    def connect() -> tuple[list[Check], Probe | None]:
        own = _Run(None)
        return own.results, _connect_stages(own, bootstrap, config, who, timeout, kafka_timeout)

    if share:
        with shared_connect(settings_key(bootstrap, config), connect) as (results, a):
            return all(run.add(r) for r in results) and a is not None and \
                _group_stages(run, a, target, topic, group, who, config, kafka_timeout)
    a = _connect_stages(run, bootstrap, config, who, timeout, kafka_timeout)
    return a is not None and _group_stages(run, a, target, topic, group, who, config, kafka_timeout)


def _connect_stages(run: _Run, bootstrap: list[str], config: dict[str, Any], who: auth.Auth | None,
                    timeout: float, kafka_timeout: float) -> Probe | None:
    """DNS, TCP, TLS and login, added to ``run``; the admin client when they passed."""
    for server in bootstrap:
        for r in check_broker(server, config, timeout):
            if not run.add(r):
                return None
    sasl, a = check_sasl(config, config["bootstrap.servers"], who, kafka_timeout)
    if not run.add(sasl) or a is None:
        return None
    for r in _check_advertised(a, bootstrap, config, timeout, kafka_timeout):
        if not run.add(r):
            return None
    return a


def _group_stages(run: _Run, a: Probe, target: str, topic: str, group: str, who: auth.Auth | None,
                  config: dict[str, Any], kafka_timeout: float) -> bool:
    """Topic, group and Lambda parity, added to ``run``."""
    principal = who.principal if who else auth.principal_of(config)
    if not run.add(check_topic(a, target, topic, group, principal, kafka_timeout)):
        return False
    if run.add(check_group(a, target, group, topic, principal, kafka_timeout)) and who is not None:
        parity = check_lambda_parity(a, target, principal, who.login)
        if parity is not None:
            run.add(parity)
    return True


class _Run:
    """The results of one run of setup stages, each passed to ``on_result`` as it comes."""

    def __init__(self, on_result: Callable[[Check], None] | None) -> None:
        self.results: list[Check] = []
        self._on_result = on_result

    def add(self, r: Check) -> bool:
        """Record ``r``; False when it failed and the run must stop."""
        self.results.append(r)
        if self._on_result:
            self._on_result(r)
        return not r.failed

    def stop(self) -> list[Check]:
        """Mark the stages after the failed one (up to ``group``; polling and invoking are the runner's) as
        skipped, so a report shows where the run stopped."""
        done = {r.stage for r in self.results}
        failed_at = STAGES.index(self.results[-1].stage) if self.results else -1
        for stage in STAGES[failed_at + 1: STAGES.index("group") + 1]:
            if stage not in done:
                self.add(Check.of(stage, "-", "skip", detail="not reached"))
        return self.results


def _topic_of(mapping: Any) -> str:
    topics = lambda_field(mapping, "Topics") or []
    return str(list(topics)[0]) if topics else ""


def _group_of(mapping: Any) -> str:
    try:
        gid = getattr(mapping, "group_id", None)
    except ValueError:
        gid = None
    if gid:
        return str(gid)
    cfg = lambda_field(mapping, "SelfManagedKafkaEventSourceConfig") or lambda_field(mapping, "AmazonManagedKafkaEventSourceConfig") or {}
    return str(cfg.get("ConsumerGroupId") or lambda_field(mapping, "UUID") or "")
