"""Route 53 backend: weighted or failover records of one name, one endpoint per set identifier.

For users without Global Accelerator: the "load balancer" is a record name in a hosted zone, each
site is the record sets whose ``SetIdentifier`` is the site's name (A and AAAA records of a site share
it), and health comes from the records' Route 53 health check when they have one. Removing a site
deletes its record sets in one change batch, so the name keeps answering with the remaining site.
A refused deletion is checked against a fresh read: record sets someone else deleted first count as
done, and record sets changed meanwhile (a new weight) are deleted as they are now.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
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
        self.client = boto3.client("route53", region_name="us-east-1", config=config)
        self._zone = hosted_zone_id

    def endpoints(self, name: str) -> list[Endpoint]:
        wanted = _fqdn(name)
        by_identifier = self._record_sets(wanted)
        if not by_identifier:
            raise PermanentFencingError(
                f"hosted zone {self._zone} has no weighted or failover records named {wanted!r}; the alert's "
                "accelerator label must be the record name and each record's SetIdentifier the site name"
            )
        return [
            Endpoint(endpoint_id=identifier, site=identifier, health=self._health(records), pool=wanted, ref=tuple(records))
            for identifier, records in sorted(by_identifier.items())
        ]

    def remove(self, endpoints: Sequence[Endpoint]) -> list[str]:
        records = [record for e in endpoints for record in e.ref]
        if not records:
            return []
        try:
            self._change("DELETE", records)
            return []
        except Exception as exc:
            refused = exc
        # The batch is atomic, so nothing changed: compare with what the zone holds now.
        now: dict[tuple[str, str, str], dict[str, Any]] = {}
        for pool in {e.pool for e in endpoints}:
            for identifier, current in self._record_sets(pool).items():
                now.update({(pool, identifier, r["Type"]): r for r in current})
        keys = [(_fqdn(r["Name"]), r["SetIdentifier"], r["Type"]) for r in records]
        left = [now[key] for key in keys if key in now]
        gone = sorted({e.endpoint_id for e in endpoints} - {r["SetIdentifier"] for r in left})
        if left == records:  # all still there as read: the refusal was about something else
            raise failures.from_boto("route53:ChangeResourceRecordSets", refused) from None
        if left:
            try:
                self._change("DELETE", left)
            except Exception as again:
                raise failures.from_boto("route53:ChangeResourceRecordSets", again) from None
        return gone

    def present(self, pools: Iterable[str]) -> dict[str, set[str]]:
        return {pool: set(self._record_sets(pool)) for pool in pools}

    def restore(self, endpoints: Sequence[Endpoint]) -> None:
        records = [record for e in endpoints for record in e.ref]
        if records:
            try:
                self._change("UPSERT", records)  # UPSERT: a record someone else put back first is fine
            except Exception as exc:
                raise failures.from_boto("route53:ChangeResourceRecordSets", exc) from None

    def _change(self, action: str, records: Sequence[dict[str, Any]]) -> None:
        self.client.change_resource_record_sets(
            HostedZoneId=self._zone,
            ChangeBatch={"Comment": "triggerfish site fencing", "Changes": [{"Action": action, "ResourceRecordSet": r} for r in records]},
        )

    def _record_sets(self, wanted: str) -> dict[str, list[dict[str, Any]]]:
        """The weighted/failover record sets named ``wanted``, by SetIdentifier."""
        by_identifier: dict[str, list[dict[str, Any]]] = defaultdict(list)
        try:
            pages = self.client.get_paginator("list_resource_record_sets").paginate(
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
        return by_identifier

    def _health(self, records: list[dict[str, Any]]) -> Health:
        check_ids = {r["HealthCheckId"] for r in records if r.get("HealthCheckId")}
        if not check_ids:
            return "UNKNOWN"
        for check_id in check_ids:
            try:
                observations = self.client.get_health_check_status(HealthCheckId=check_id)["HealthCheckObservations"]
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
