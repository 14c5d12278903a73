"""The fencing decision for one SiteOffline alert, as a pure function of the load balancer's state.

Why state, not the alert, decides: Alertmanager delivers at least once and both sites may report
each other at the same moment. Deciding only from what the load balancer shows *now* makes every
repeat of an alert converge on the same end state and lets a retry finish a step that failed:

* the reporter has no endpoint left → it has already been fenced by the other site's alert: ignore
  (unless the offline site is missing too: then the names do not match, which is an error);
* the offline site still has endpoints → remove them, unless the reporter itself is UNHEALTHY
  (then the other site is the one to keep) or removing them would empty a pool;
* the offline site has no endpoints left → the removal already happened; still make sure the
  reporter's Infinispan has taken its backup to the offline site offline (a retry after an
  Infinispan failure lands here and completes the missing step).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from triggerfish.functions.fencing.balancers import Endpoint


@dataclass(frozen=True)
class SiteOffline:
    """One firing SiteOffline alert: ``reporter`` says it cannot see ``site``."""

    load_balancer: str
    site: str
    reporter: str


@dataclass(frozen=True)
class _Plan:
    action: Literal["fence", "ignore", "mismatch"]
    reason: str
    remove: tuple[Endpoint, ...] = ()
    keep_last: tuple[Endpoint, ...] = ()  # offline site's endpoints kept: each is the last of its pool
    take_offline: bool = False


def decide(alert: SiteOffline, endpoints: Sequence[Endpoint]) -> _Plan:
    """What to do about ``alert``, from the load balancer's ``endpoints`` as they are now."""
    if alert.site == alert.reporter:
        return _Plan("ignore", "the alert's site and reporter labels name the same site")
    reporter = [e for e in endpoints if e.site == alert.reporter]
    if not reporter:
        return _without_reporter(alert, endpoints)
    remove, keep_last = _offline_endpoints(alert.site, endpoints)
    if remove and all(e.health == "UNHEALTHY" for e in reporter):
        return _Plan(
            "ignore",
            f"reporter {alert.reporter} is UNHEALTHY in the load balancer; the other site's alert should fence instead",
        )
    if remove:
        reason = f"remove {len(remove)} endpoint(s) of {alert.site} and take its backup offline"
    else:
        reason = f"{alert.site} has no endpoint to remove; make sure its backup is offline"
    return _Plan("fence", reason, tuple(remove), tuple(keep_last), take_offline=True)


def _without_reporter(alert: SiteOffline, endpoints: Sequence[Endpoint]) -> _Plan:
    """The reporter has no endpoint: already fenced, unless the offline site is missing too."""
    if any(e.site == alert.site for e in endpoints):
        return _Plan(
            "ignore",
            f"reporter {alert.reporter} has no endpoint in the load balancer (already fenced); the other site decides",
        )
    # Neither site is in the load balancer: the tags and the alert's labels do not agree. Acting
    # (or "ignoring" with a 2xx) would hide that; a human has to line the names up.
    tagged = sorted({e.site for e in endpoints if e.site})
    return _Plan(
        "mismatch",
        f"neither {alert.reporter} nor {alert.site} has an endpoint in the load balancer "
        f"(sites found: {', '.join(tagged) or 'none - no endpoint has a site tag'}); "
        "the site tags and the alert's site/reporter labels must use the same names",
    )


def _offline_endpoints(site: str, endpoints: Sequence[Endpoint]) -> tuple[list[Endpoint], list[Endpoint]]:
    """(to remove, to keep) of ``site``'s endpoints: a pool keeps its last endpoints rather than go empty."""
    pools: dict[str, list[Endpoint]] = defaultdict(list)
    for endpoint in endpoints:
        pools[endpoint.pool].append(endpoint)
    remove: list[Endpoint] = []
    keep_last: list[Endpoint] = []
    for pool in pools.values():
        offline = [e for e in pool if e.site == site]
        if len(offline) < len(pool):
            remove.extend(offline)
        else:
            keep_last.extend(offline)
    return remove, keep_last
