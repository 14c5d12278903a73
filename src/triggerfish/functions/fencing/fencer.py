"""Carry out the plan for one alert: read the load balancer, decide, remove endpoints, take the backup offline.

Steps run in a fixed order (load balancer first: stop sending users to the lost site, then stop
the survivor replicating to it), and each step is safe to repeat, so a failed step is completed by
the next delivery of the same alert. ``dry_run`` runs the reads and the decision and logs what
would change.
"""

from __future__ import annotations

from triggerfish.errors import FencingError, PermanentFencingError
from triggerfish.functions.fencing.balancers import LoadBalancer
from triggerfish.functions.fencing.decisions import Decisions
from triggerfish.functions.fencing.infinispan import Infinispan
from triggerfish.functions.fencing.plan import SiteOffline, decide


class Fencer:
    def __init__(self, balancer: LoadBalancer, infinispan: Infinispan, dry_run: bool = False) -> None:
        self.balancer = balancer
        self.infinispan = infinispan
        self.dry_run = dry_run

    def fence(self, alert: SiteOffline, decisions: Decisions) -> FencingError | None:
        """Act on one alert; return the failure that stopped it, or ``None`` when done or nothing to do."""
        where = {"site": alert.site, "reporter": alert.reporter, "load_balancer": alert.load_balancer}
        try:
            endpoints = self.balancer.endpoints(alert.load_balancer)
        except FencingError as failure:
            decisions.record("read-load-balancer", "failed", error=str(failure), **where)
            return failure

        plan = decide(alert, endpoints)
        if plan.action == "mismatch":
            decisions.record("plan", "failed", error=plan.reason, **where)
            return PermanentFencingError(plan.reason)
        if plan.action == "ignore":
            decisions.record("ignore", "ignored", reason=plan.reason, **where)
            return None
        if not self.infinispan.knows(alert.reporter):
            # Checked before any change, so a misconfiguration never leaves a half-done fence.
            unknown = PermanentFencingError(f"INFINISPAN_SITE_ENDPOINTS has no entry for the reporting site {alert.reporter!r}")
            decisions.record("plan", "failed", error=str(unknown), **where)
            return unknown
        for endpoint in plan.keep_last:
            decisions.record(
                "keep-last-endpoint", "kept", endpoint=endpoint.endpoint_id, reason="it is the last endpoint of its pool", **where
            )

        if plan.remove:
            ids = [e.endpoint_id for e in plan.remove]
            if self.dry_run:
                decisions.record("remove-endpoints", "dry-run", endpoints=ids, backend=self.balancer.kind, **where)
            else:
                try:
                    self.balancer.remove(plan.remove)
                except FencingError as failure:
                    decisions.record("remove-endpoints", "failed", endpoints=ids, error=str(failure), **where)
                    return failure
                decisions.record("remove-endpoints", "done", endpoints=ids, backend=self.balancer.kind, **where)
        else:
            decisions.record("remove-endpoints", "nothing-to-remove", reason=plan.reason, **where)

        url = self.infinispan.url(alert.reporter, alert.site)
        if self.dry_run:
            decisions.record("take-backup-offline", "dry-run", via=url, **where)
            return None
        try:
            caches = self.infinispan.take_offline(alert.reporter, alert.site)
        except FencingError as failure:
            decisions.record("take-backup-offline", "failed", via=url, error=str(failure), **where)
            return failure
        if not caches:
            decisions.record(
                "take-backup-offline", "no-caches", via=url,
                reason=f"no cache of {alert.reporter} backs up to {alert.site}; check the names match Infinispan's sites",
                **where,
            )
            return None
        decisions.record("take-backup-offline", "done", via=url, caches=sorted(caches), **where)
        return None
