"""Route 53 backend: weighted or failover records of one name, one endpoint per set identifier.

For users without Global Accelerator: the "load balancer" is a record name in a hosted zone, each
site is the record sets whose ``SetIdentifier`` is the site's name (A and AAAA records of a site share
it), and health comes from the records' Route 53 health check when they have one. Removing a site
deletes its record sets in one change batch, so the name keeps answering with the remaining site.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from triggerfish.errors import PermanentFencingError
from triggerfish.functions.fencing import failures
from triggerfish.functions.fencing.balancers import Endpoint, Health


class Route53:
    kind = "route53"

    def __init__(self, hosted_zone_id: str) -> None:
        import boto3
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=5, read_timeout=10)
        # Route 53 is a global service; boto3 signs it for us-east-1 whatever the region.
        self._client = boto3.client("route53", region_name="us-east-1", config=config)
        self._zone = hosted_zone_id

    def endpoints(self, name: str) -> list[Endpoint]:
        wanted = _fqdn(name)
        by_identifier: dict[str, list[dict[str, Any]]] = defaultdict(list)
        try:
            pages = self._client.get_paginator("list_resource_record_sets").paginate(
                HostedZoneId=self._zone, StartRecordName=wanted
            )
            for page in pages:
                records = page.get("ResourceRecordSets", [])
                for record in records:
                    if _fqdn(record["Name"]) != wanted:
                        continue
                    if record.get("SetIdentifier") and record["Type"] in ("A", "AAAA", "CNAME"):
                        by_identifier[record["SetIdentifier"]].append(record)
                # Records come sorted by name: once past ours, later pages cannot hold it.
                if records and _fqdn(records[-1]["Name"]) != wanted:
                    break
        except Exception as exc:
            raise failures.from_boto("route53:ListResourceRecordSets", exc) from None
        if not by_identifier:
            raise PermanentFencingError(
                f"hosted zone {self._zone} has no weighted or failover records named {wanted!r}; the alert's "
                "accelerator label must be the record name and each record's SetIdentifier the site name"
            )
        return [
            Endpoint(endpoint_id=identifier, site=identifier, health=self._health(records), pool=wanted, ref=tuple(records))
            for identifier, records in sorted(by_identifier.items())
        ]

    def remove(self, endpoints: Sequence[Endpoint]) -> None:
        changes = [{"Action": "DELETE", "ResourceRecordSet": record} for e in endpoints for record in e.ref]
        if not changes:
            return
        try:
            self._client.change_resource_record_sets(
                HostedZoneId=self._zone,
                ChangeBatch={"Comment": "triggerfish site fencing", "Changes": changes},
            )
        except Exception as exc:
            raise failures.from_boto("route53:ChangeResourceRecordSets", exc) from None

    def _health(self, records: list[dict[str, Any]]) -> Health:
        check_ids = {r["HealthCheckId"] for r in records if r.get("HealthCheckId")}
        if not check_ids:
            return "UNKNOWN"
        for check_id in check_ids:
            try:
                observations = self._client.get_health_check_status(HealthCheckId=check_id)["HealthCheckObservations"]
            except Exception as exc:
                raise failures.from_boto("route53:GetHealthCheckStatus", exc) from None
            statuses = [o.get("StatusReport", {}).get("Status", "") for o in observations]
            # A check is healthy while any checker still reports success (Route 53 uses a share threshold).
            if statuses and not any(s.startswith("Success") for s in statuses):
                return "UNHEALTHY"
        return "HEALTHY"


def _fqdn(name: str) -> str:
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."
