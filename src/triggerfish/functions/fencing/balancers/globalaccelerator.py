"""AWS Global Accelerator backend: endpoints of an accelerator found by DNS name, sites from ELB tags.

The accelerator control plane is called in one region (``us-west-2`` for the commercial partition);
ELBv2 ``DescribeTags`` is called in each load balancer's own region, at most 20 ARNs per call.
Endpoints are removed with ``RemoveEndpoints``, which touches only the named endpoints; the older
read-modify-write ``UpdateEndpointGroup`` would race with any concurrent change and has to resend
the whole list.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
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
                        ref=(group["EndpointGroupArn"],),
                    )
                )
        return result

    def remove(self, endpoints: Sequence[Endpoint]) -> None:
        by_group: dict[str, list[str]] = defaultdict(list)
        for endpoint in endpoints:
            by_group[endpoint.ref[0]].append(endpoint.endpoint_id)
        for group_arn, ids in by_group.items():
            try:
                self._ga.remove_endpoints(
                    EndpointGroupArn=group_arn, EndpointIdentifiers=[{"EndpointId": i} for i in ids]
                )
            except Exception as exc:
                raise failures.from_boto("globalaccelerator:RemoveEndpoints", exc) from None

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


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _dns(name: str) -> str:
    return name.strip().rstrip(".").lower()
