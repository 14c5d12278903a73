"""AWS Global Accelerator backend: endpoints of an accelerator found by DNS name, sites from ELB tags.

The accelerator control plane is called in one region (``us-west-2`` for the commercial partition);
ELBv2 ``DescribeTags`` is called in each load balancer's own region, at most 20 ARNs per call.
Endpoints are removed with ``RemoveEndpoints``, which touches only the named endpoints; the older
read-modify-write ``UpdateEndpointGroup`` would race with any concurrent change and has to resend
the whole list. A refused removal is checked against a fresh read: an endpoint someone else removed
first (GA answers ``InvalidArgumentException``, or ``EndpointNotFoundException``) counts as done.
``AddEndpoints`` puts endpoints back with the weight and client-IP setting they were read with.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from triggerfish.errors import PermanentFencingError
from triggerfish.functions.fencing import failures
from triggerfish.functions.fencing.balancers import Endpoint
from triggerfish.functions.fencing.decisions import logger

_DESCRIBE_TAGS_BATCH = 20  # ELBv2 DescribeTags accepts at most 20 ARNs
_HEALTH = {"HEALTHY", "UNHEALTHY", "INITIAL"}


class GlobalAccelerator:
    """Global Accelerator + ELBv2 through boto3. ``endpoint_url`` overrides the GA endpoint (tests)."""

    kind = "global-accelerator"

    def __init__(self, region: str = "us-west-2", endpoint_url: str | None = None, site_tag: str = "site") -> None:
        import boto3
        from botocore.config import Config

        self._config = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5, read_timeout=10)
        self._ga = boto3.client("globalaccelerator", region_name=region, endpoint_url=endpoint_url, config=self._config)
        self._elb_clients: dict[str, Any] = {}
        self._site_tag = site_tag

    def endpoints(self, name: str) -> list[Endpoint]:
        accelerator = self._find_accelerator(name)
        groups: list[tuple[str, dict[str, Any]]] = []
        for listener in self._pages("ListListeners", "list_listeners", "Listeners", AcceleratorArn=accelerator):
            for group in self._pages(
                "ListEndpointGroups", "list_endpoint_groups", "EndpointGroups", ListenerArn=listener["ListenerArn"]
            ):
                groups.append((listener["ListenerArn"], group))
        ids = {d["EndpointId"] for _, g in groups for d in g.get("EndpointDescriptions", [])}
        sites = self._sites(sorted(ids))
        result: list[Endpoint] = []
        for listener_arn, group in groups:
            for description in group.get("EndpointDescriptions", []):
                endpoint_id = description["EndpointId"]
                health = description.get("HealthState", "UNKNOWN")
                result.append(
                    Endpoint(
                        endpoint_id=endpoint_id,
                        site=sites.get(endpoint_id),
                        health=health if health in _HEALTH else "UNKNOWN",
                        pool=listener_arn,
                        ref=(group["EndpointGroupArn"], _configuration(description)),
                    )
                )
        return result

    def remove(self, endpoints: Sequence[Endpoint]) -> list[str]:
        gone: list[str] = []
        for (group_arn, listener_arn), ids in _by_group(endpoints).items():
            try:
                self._remove(group_arn, ids)
            except Exception as exc:
                # Decide from the state, not the error code: what is no longer there was removed by
                # someone else (another fence, an operator), which is what this call wanted.
                left = [i for i in ids if i in self._group_ids(listener_arn, group_arn)]
                gone.extend(i for i in ids if i not in left)
                if left == ids:
                    raise failures.from_boto("globalaccelerator:RemoveEndpoints", exc) from None
                if left:
                    try:
                        self._remove(group_arn, left)
                    except Exception as again:
                        raise failures.from_boto("globalaccelerator:RemoveEndpoints", again) from None
        return gone

    def present(self, pools: Iterable[str]) -> dict[str, set[str]]:
        now: dict[str, set[str]] = {}
        for listener_arn in pools:
            now[listener_arn] = {
                d["EndpointId"]
                for group in self._pages("ListEndpointGroups", "list_endpoint_groups", "EndpointGroups", ListenerArn=listener_arn)
                for d in group.get("EndpointDescriptions", [])
            }
        return now

    def restore(self, endpoints: Sequence[Endpoint]) -> None:
        for group_arn, listener_arn in _by_group(endpoints):
            present = self._group_ids(listener_arn, group_arn)
            configurations = [e.ref[1] for e in endpoints if e.ref[0] == group_arn and e.endpoint_id not in present]
            if not configurations:
                continue
            try:
                self._ga.add_endpoints(EndpointGroupArn=group_arn, EndpointConfigurations=configurations)
            except Exception as exc:
                raise failures.from_boto("globalaccelerator:AddEndpoints", exc) from None

    def _remove(self, group_arn: str, ids: list[str]) -> None:
        self._ga.remove_endpoints(EndpointGroupArn=group_arn, EndpointIdentifiers=[{"EndpointId": i} for i in ids])

    def _group_ids(self, listener_arn: str, group_arn: str) -> set[str]:
        """Endpoint ids of one endpoint group as they are now (empty if the group is gone)."""
        for group in self._pages("ListEndpointGroups", "list_endpoint_groups", "EndpointGroups", ListenerArn=listener_arn):
            if group["EndpointGroupArn"] == group_arn:
                return {d["EndpointId"] for d in group.get("EndpointDescriptions", [])}
        return set()

    def _find_accelerator(self, name: str) -> str:
        wanted = _dns(name)
        for accelerator in self._pages("ListAccelerators", "list_accelerators", "Accelerators", MaxResults=100):
            if wanted in (_dns(accelerator.get("DnsName", "")), _dns(accelerator.get("DualStackDnsName", ""))):
                return str(accelerator["AcceleratorArn"])
        raise PermanentFencingError(
            f"no Global Accelerator has the DNS name {name!r}; the alert's accelerator label must be the "
            "accelerator's DnsName or DualStackDnsName"
        )

    def _pages(self, operation: str, method: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        try:
            for page in self._ga.get_paginator(method).paginate(**params):
                yield from page.get(key, [])
        except PermanentFencingError:
            raise
        except Exception as exc:
            raise failures.from_boto(f"globalaccelerator:{operation}", exc) from None

    def _sites(self, endpoint_ids: list[str]) -> dict[str, str]:
        """Site tag of each ELB endpoint, one DescribeTags call per region and 20 ARNs."""
        by_region: dict[str, list[str]] = defaultdict(list)
        for endpoint_id in endpoint_ids:
            parts = endpoint_id.split(":")
            # Only load balancers carry ELB tags; EIPs and instances are left without a site.
            if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "elasticloadbalancing":
                by_region[parts[3]].append(endpoint_id)
        sites: dict[str, str] = {}
        for region, arns in by_region.items():
            client = self._elb(region)
            for start in range(0, len(arns), _DESCRIBE_TAGS_BATCH):
                for description in _describe_tags(client, arns[start : start + _DESCRIBE_TAGS_BATCH]):
                    tags = {t["Key"]: t.get("Value", "") for t in description.get("Tags", [])}
                    if tags.get(self._site_tag):
                        sites[description["ResourceArn"]] = tags[self._site_tag]
        return sites

    def _elb(self, region: str) -> Any:
        if region not in self._elb_clients:
            import boto3

            self._elb_clients[region] = boto3.client("elbv2", region_name=region, config=self._config)
        return self._elb_clients[region]


def _describe_tags(client: Any, arns: list[str]) -> list[dict[str, Any]]:
    """Tag descriptions of ``arns``; a load balancer deleted behind the accelerator's back gets none.

    ELBv2 fails the whole call with LoadBalancerNotFound when any one ARN is gone, so that batch is
    asked again ARN by ARN: one stale endpoint must not stop the fencing of the others.
    """
    try:
        found: list[dict[str, Any]] = client.describe_tags(ResourceArns=arns).get("TagDescriptions", [])
        return found
    except Exception as exc:
        if _error_code(exc) != "LoadBalancerNotFound":
            raise failures.from_boto("elasticloadbalancing:DescribeTags", exc) from None
    if len(arns) > 1:
        return [description for arn in arns for description in _describe_tags(client, [arn])]
    logger.warning(json.dumps({"action": "read-site-tag", "result": "load-balancer-gone", "endpoint": arns[0]},
                              separators=(",", ":")))
    return []


def _by_group(endpoints: Sequence[Endpoint]) -> dict[tuple[str, str], list[str]]:
    """Endpoint ids keyed by (endpoint group ARN, listener ARN)."""
    by_group: dict[tuple[str, str], list[str]] = defaultdict(list)
    for endpoint in endpoints:
        by_group[(endpoint.ref[0], endpoint.pool)].append(endpoint.endpoint_id)
    return by_group


def _configuration(description: dict[str, Any]) -> dict[str, Any]:
    """The ``EndpointConfiguration`` that adds this endpoint back as it was (HealthState is output only)."""
    keep = ("EndpointId", "Weight", "ClientIPPreservationEnabled")
    return {k: description[k] for k in keep if k in description}


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _dns(name: str) -> str:
    return name.strip().rstrip(".").lower()
