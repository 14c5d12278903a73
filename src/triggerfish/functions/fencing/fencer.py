"""Carry out the plan for one alert: read the load balancer, decide, remove endpoints, take the backup offline.

Steps run in a fixed order (load balancer first: stop sending users to the lost site, then stop
the survivor replicating to it), and each step is safe to repeat, so a failed step is completed by
the next delivery of the same alert. ``dry_run`` runs the reads and the decision and logs what
would change.

Safe without a lock: after removing, the load balancer is read again. An endpoint someone else had
already removed counts as removed. If a pool we removed from is now empty (another instance removed
the reporter's endpoints at the same moment), the endpoints this fence meant to keep are added back
and reported (``restore-endpoints``); if the lost site is back too (the other instance restored it),
the alert is answered 503 without taking the backup offline, and the retry decides from fresh state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from triggerfish.errors import FencingError, PermanentFencingError, TransientFencingError
from triggerfish.functions.fencing.balancers import Endpoint, LoadBalancer
from triggerfish.functions.fencing.decisions import Decisions
from triggerfish.functions.fencing.infinispan import Infinispan
from triggerfish.functions.fencing.plan import SiteOffline, decide
from triggerfish.functions.fencing.reserved import ConcurrencyGuard


class Fencer:
    def __init__(
        self, balancer: LoadBalancer, infinispan: Infinispan, dry_run: bool = False,
        guard: Callable[[], str | None] | None = None,
    ) -> None:
        self.balancer = balancer
        self.infinispan = infinispan
        self.dry_run = dry_run
        # Built here, i.e. at the function's start-up: on AWS Lambda it reads the reserved concurrency.
        self.guard = guard if guard is not None else ConcurrencyGuard()

    def fence(self, alert: SiteOffline, decisions: Decisions) -> FencingError | None:
        """Act on one alert; return the failure that stopped it, or ``None`` when done or nothing to do."""
        where = {"site": alert.site, "reporter": alert.reporter, "load_balancer": alert.load_balancer}
        refused = self.guard()
        if refused is not None and not self.dry_run:
            decisions.record("check-concurrency", "refused", error=refused, **where)
            return PermanentFencingError(refused)
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
                stopped = self._remove(alert, endpoints, plan.remove, decisions, where)
                if stopped is not None:
                    return stopped
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

    def _remove(
        self, alert: SiteOffline, before: Sequence[Endpoint], remove: Sequence[Endpoint], decisions: Decisions,
        where: dict[str, Any],
    ) -> FencingError | None:
        """Remove ``remove``, then re-read: a pool left empty gets back what this fence meant to keep."""
        ids = [e.endpoint_id for e in remove]
        try:
            gone = self.balancer.remove(remove)
        except FencingError as failure:
            decisions.record("remove-endpoints", "failed", endpoints=ids, error=str(failure), **where)
            return failure
        decisions.record(
            "remove-endpoints", "done", endpoints=ids, already_gone=gone or None, backend=self.balancer.kind, **where
        )
        removed_pools = {e.pool for e in remove}
        try:
            empty = {pool for pool, held in self.balancer.present(removed_pools).items() if not held}
            keep = [e for e in before if e.pool in empty and e not in remove]
            if not keep:
                return None
            # Another instance removed the rest of the pool at the same moment: never leave it empty.
            self.balancer.restore(keep)
            decisions.record(
                "restore-endpoints", "restored", endpoints=[e.endpoint_id for e in keep],
                reason="the pool was left empty (another fence removed the reporter at the same moment); "
                "its endpoints are added back", **where,
            )
            now = self.balancer.present(removed_pools)
        except FencingError as failure:
            decisions.record("restore-endpoints", "failed", error=str(failure), **where)
            return failure
        if any(e.endpoint_id in now.get(e.pool, set()) for e in remove):
            return TransientFencingError(
                f"{alert.site} is in the load balancer again (restored by a concurrent fence); the retry decides"
            )
        return None
