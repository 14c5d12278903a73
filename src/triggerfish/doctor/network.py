"""``doctor aws-network``: every path from a source to the brokers and AWS endpoints, judged from exports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from triggerfish.doctor.awsnet import paths, reach
from triggerfish.doctor.awsnet.inventory import Inventory, load_dir
from triggerfish.doctor.report import Check
from triggerfish.errors import ConfigError


def diagnose(
    input_dir: Path,
    *,
    subnets: Sequence[str] = (),
    security_groups: Sequence[str] = (),
    lambda_config: Path | None = None,
    msk_esm: bool = False,
    cluster: str | None = None,
    broker_subnets: Sequence[str] = (),
    broker_groups: Sequence[str] = (),
    ports: Sequence[int] = (),
    services: Sequence[str] = paths.DEFAULT_SERVICES,
    region: str | None = None,
) -> list[Check]:
    inv = load_dir(input_dir)
    if not inv.files:
        raise ConfigError("--input", f"no AWS CLI exports recognised in {input_dir} (looked for top-level keys "
                          "SecurityGroups, NetworkAcls, RouteTables, Subnets, VpcEndpoints, NatGateways, ClusterInfo)")
    source = _source(inv, subnets, security_groups, lambda_config, msk_esm, cluster)
    brokers, broker_ports = _brokers(inv, cluster, broker_subnets, broker_groups, ports)
    return paths.analyse(inv, source, brokers=brokers, ports=broker_ports, services=services,
                         region=region or inv.region())


def _source(inv: Inventory, subnets: Sequence[str], groups: Sequence[str], lambda_config: Path | None,
            msk_esm: bool, cluster: str | None) -> paths.Source:
    chosen = sum([bool(subnets), lambda_config is not None, msk_esm])
    if chosen != 1:
        raise ConfigError("source", "give exactly one source: --subnet (with --security-group), --lambda-config "
                          "FILE, or --msk-esm (an MSK event source mapping uses the cluster's subnets and groups)")
    if subnets:
        return paths.source_from_subnet(inv, subnets, groups)
    if lambda_config is not None:
        return paths.source_from_lambda(inv, paths.read_lambda_config(lambda_config))
    return paths.source_from_msk_esm(inv, paths.cluster(inv, cluster))


def _brokers(inv: Inventory, cluster: str | None, broker_subnets: Sequence[str], broker_groups: Sequence[str],
             ports: Sequence[int]) -> tuple[list[reach.Endpoint], list[int]]:
    if broker_subnets:
        if not ports:
            raise ConfigError("--port", "give the brokers' port(s) with --port (e.g. 9092) for --broker-subnet")
        return paths.broker_endpoints(inv, broker_subnets, broker_groups), list(ports)
    if not inv.clusters:
        return [], []
    info = paths.cluster(inv, cluster)
    subnets, groups = paths.cluster_network(info)
    return paths.broker_endpoints(inv, subnets, groups), list(ports) or paths.broker_ports(info)
