"""The fencing decision as a pure function of the load balancer's endpoints."""

from __future__ import annotations

from triggerfish.functions.fencing.balancers import Endpoint
from triggerfish.functions.fencing.plan import SiteOffline, decide

ALERT = SiteOffline("lb", site="b", reporter="a")


def ep(site: str | None, health: str = "HEALTHY", pool: str = "p1", name: str = "") -> Endpoint:
    return Endpoint(endpoint_id=name or f"{site}-{pool}", site=site, health=health, pool=pool)  # type: ignore[arg-type]


def test_removes_the_offline_site_and_takes_its_backup_offline():
    plan = decide(ALERT, [ep("a"), ep("b")])
    assert plan.action == "fence" and plan.take_offline
    assert [e.endpoint_id for e in plan.remove] == ["b-p1"]


def test_reporter_already_fenced_is_ignored_without_touching_infinispan():
    plan = decide(ALERT, [ep("b")])
    assert plan.action == "ignore" and not plan.take_offline and not plan.remove
    assert "already fenced" in plan.reason


def test_unhealthy_reporter_is_ignored_only_while_a_removal_is_pending():
    assert decide(ALERT, [ep("a", "UNHEALTHY"), ep("b")]).action == "ignore"
    # The removal already happened in the reporter's favour: finishing the Infinispan step is still right.
    finishing = decide(ALERT, [ep("a", "UNHEALTHY")])
    assert finishing.action == "fence" and finishing.take_offline and not finishing.remove


def test_one_healthy_reporter_endpoint_is_enough():
    plan = decide(ALERT, [ep("a", "UNHEALTHY", name="a1"), ep("a", "INITIAL", name="a2"), ep("b")])
    assert plan.action == "fence" and len(plan.remove) == 1


def test_untagged_and_third_site_endpoints_stay():
    plan = decide(ALERT, [ep("a"), ep("b"), ep("c"), ep(None)])
    assert [e.site for e in plan.remove] == ["b"]


def test_never_empties_a_pool():
    # Listener p2 only holds the offline site: removing it would leave that listener with nothing.
    plan = decide(ALERT, [ep("a", pool="p1"), ep("b", pool="p1"), ep("b", pool="p2")])
    assert [e.endpoint_id for e in plan.remove] == ["b-p1"]
    assert [e.endpoint_id for e in plan.keep_last] == ["b-p2"]


def test_same_site_and_reporter_is_ignored():
    assert decide(SiteOffline("lb", "a", "a"), [ep("a"), ep("b")]).action == "ignore"


def test_no_endpoints_at_all_is_a_mismatch():
    plan = decide(ALERT, [])
    assert plan.action == "mismatch" and not plan.take_offline


def test_names_that_match_no_endpoint_are_a_mismatch_not_a_silent_ignore():
    plan = decide(ALERT, [ep("cluster-1"), ep("cluster-2")])
    assert plan.action == "mismatch" and not plan.remove and not plan.take_offline
    assert "cluster-1, cluster-2" in plan.reason
    assert "no endpoint has a site tag" in decide(ALERT, [ep(None), ep(None, name="x")]).reason


# ---- properties over arbitrary load balancer states ------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

endpoints_strategy = st.lists(
    st.builds(
        Endpoint,
        endpoint_id=st.uuids().map(str),
        site=st.sampled_from(["a", "b", "c", None]),
        health=st.sampled_from(["HEALTHY", "UNHEALTHY", "INITIAL", "UNKNOWN"]),
        pool=st.sampled_from(["p1", "p2"]),
    ),
    max_size=8,
    unique_by=lambda e: e.endpoint_id,
)


@settings(max_examples=300, deadline=None)
@given(endpoints_strategy, st.sampled_from(["a", "b", "c"]), st.sampled_from(["a", "b", "c"]))
def test_a_plan_never_empties_a_pool_nor_touches_other_sites(endpoints, site, reporter):
    plan = decide(SiteOffline("lb", site, reporter), endpoints)
    removed = set(plan.remove)
    assert all(e.site == site and site != reporter for e in removed)
    for pool in {e.pool for e in endpoints}:
        assert any(e not in removed for e in endpoints if e.pool == pool)
    if plan.action != "fence":
        assert not removed and not plan.take_offline


@settings(max_examples=300, deadline=None)
@given(endpoints_strategy, st.booleans())
def test_mutual_alerts_in_either_order_never_fence_both_sites(endpoints, a_first):
    alerts = [SiteOffline("lb", "b", "a"), SiteOffline("lb", "a", "b")]
    if not a_first:
        alerts.reverse()
    state = list(endpoints)
    had = {s for s in ("a", "b") if any(e.site == s for e in state)}
    for alert in alerts:
        plan = decide(alert, state)
        state = [e for e in state if e not in set(plan.remove)]
    left = {s for s in ("a", "b") if any(e.site == s for e in state)}
    assert left or not had  # whichever alert wins, one of the two sites keeps serving
    assert len(state) >= min(1, len(endpoints))
