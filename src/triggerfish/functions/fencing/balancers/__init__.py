"""The load balancer interface fencing needs: list endpoints with their site and health, remove some.

Two backends implement it: :mod:`.globalaccelerator` (AWS Global Accelerator) and :mod:`.route53`
(Route 53 weighted or failover records). The decision logic in :mod:`..plan` only sees
:class:`Endpoint` values, so it stays the same whichever backend is configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Health = Literal["HEALTHY", "UNHEALTHY", "INITIAL", "UNKNOWN"]


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of the load balancer.

    ``pool`` groups endpoints that serve the same traffic (a Global Accelerator listener, a Route 53
    record name): "never remove the last endpoint" holds per pool. ``site`` is ``None`` when the
    endpoint carries no site tag; such endpoints are never removed. ``ref`` is backend detail
    (the endpoint group ARN, the record sets) the backend needs to remove it.
    """

    endpoint_id: str
    site: str | None
    health: Health
    pool: str
    ref: tuple[Any, ...] = field(default=(), compare=False, repr=False)


class LoadBalancer(Protocol):
    """What the fencing logic asks of a load balancer."""

    kind: str

    def endpoints(self, name: str) -> list[Endpoint]:
        """Every endpoint of the load balancer called ``name``; raise PermanentFencingError if there is none."""
        ...

    def remove(self, endpoints: Sequence[Endpoint]) -> list[str]:
        """Remove these endpoints (as returned by :meth:`endpoints`); return the ids someone else removed first.

        An endpoint that is already gone counts as removed: the backend re-reads after a refused
        removal and fails only if an endpoint it was asked to remove is still there.
        """
        ...

    def present(self, pools: Iterable[str]) -> dict[str, set[str]]:
        """The endpoint ids each pool holds now (a cheap re-read: no site tags, no health)."""
        ...

    def restore(self, endpoints: Sequence[Endpoint]) -> None:
        """Put these endpoints (as returned by :meth:`endpoints`) back with their settings; present ones are fine."""
        ...


def _tag_site(tags: dict[str, str], key: str = "site") -> str | None:
    value = tags.get(key)
    return value if value else None
