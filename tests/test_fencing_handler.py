"""The site-fencing handler end to end: 2.0 events in, Global Accelerator (fake), ELBv2 + Secrets
Manager (moto server) and Infinispan (HTTPS fake) changed — or, when it must not act, untouched."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from fencing_support import (
    CACHES,
    ISPN_PASSWORD,
    WEBHOOK_PASSWORD,
    WEBHOOK_USER,
    basic,
    decisions,
    fire,
    notification,
    results,
    url_event,
)
from fencing_support import alert as site_offline

pytestmark = pytest.mark.timeout(60)


def test_offline_site_is_removed_and_its_backup_taken_offline_on_the_reporter(make_world):
    world = make_world(["site-a", "site-b"])

    response = fire(world.handler(), site_offline(site="site-b", reporter="site-a"))

    assert response["statusCode"] == 200, response["body"]
    assert world.sites_left() == ["site-a"]
    assert world.ispn["site-a"].actions == [("take-offline", "site-b")]
    assert {c: s["site-b"] for c, s in world.ispn["site-a"].state.items()} == dict.fromkeys(CACHES, "offline")
    assert world.ispn["site-b"].actions == []  # the lost site's Infinispan is never asked
    assert world.ga.mutating_calls() == ["RemoveEndpoints"]
    # 12 other accelerators and 5 per page: the one we want is on the third page.
    assert world.ga.calls.count("ListAccelerators") == 3
    assert results(response) == [("remove-endpoints", "done"), ("take-backup-offline", "done")]


def test_both_sites_in_one_notification_leave_exactly_one_endpoint(make_world):
    world = make_world(["site-a", "site-b"])

    response = fire(world.handler(), site_offline("site-b", "site-a"), site_offline("site-a", "site-b"))

    assert response["statusCode"] == 200
    assert world.sites_left() == ["site-a"]
    assert results(response)[-1] == ("ignore", "ignored")  # site-b's alert finds site-b already fenced
    assert world.ispn["site-a"].actions == [("take-offline", "site-b")]
    assert world.ispn["site-b"].actions == []


def test_both_sites_firing_concurrently_leave_exactly_one_endpoint(make_world):
    world = make_world(["site-a", "site-b"])
    # Two function instances (as with two workers of one host); a slow read keeps the first call
    # inside its decision while the second arrives.
    first_handler, second_handler = world.handler(), world.handler()
    world.ga.delay["ListEndpointGroups"] = 1.0
    responses: dict[str, dict] = {}

    def call(reporter: str, site: str, handler) -> None:
        responses[reporter] = fire(handler, site_offline(site, reporter))

    first = threading.Thread(target=call, args=("site-a", "site-b", first_handler))
    first.start()
    while "ListEndpointGroups" not in world.ga.calls:  # site-a's call is deciding right now
        time.sleep(0.01)
    call("site-b", "site-a", second_handler)
    first.join()

    busy = responses["site-b"]
    assert busy["statusCode"] == 503 and busy["headers"]["retry-after"] == "5"
    assert results(busy) == [("lock", "busy")]
    assert responses["site-a"]["statusCode"] == 200
    assert world.sites_left() == ["site-a"]

    # Alertmanager retries the 503; the retry sees its reporter fenced and does nothing.
    world.ga.delay.clear()
    retry = fire(second_handler, site_offline("site-a", "site-b"))
    assert retry["statusCode"] == 200
    assert results(retry) == [("ignore", "ignored")]
    assert world.sites_left() == ["site-a"]
    assert world.ispn["site-a"].actions == [("take-offline", "site-b")]
    assert world.ispn["site-b"].actions == []


def test_unhealthy_reporter_is_ignored_and_the_other_site_fences(make_world):
    world = make_world(["site-a", "site-b"], health={"site-a": "UNHEALTHY"})
    handler = world.handler()

    ignored = fire(handler, site_offline("site-b", "site-a"))
    assert ignored["statusCode"] == 200
    assert results(ignored) == [("ignore", "ignored")]
    assert "UNHEALTHY" in decisions(ignored)[0]["reason"]
    assert world.sites_left() == ["site-a", "site-b"]
    assert world.ga.mutating_calls() == []
    assert all(f.actions == [] for f in world.ispn.values())

    fenced = fire(handler, site_offline("site-a", "site-b"))
    assert fenced["statusCode"] == 200
    assert world.sites_left() == ["site-b"]
    assert world.ispn["site-b"].actions == [("take-offline", "site-a")]


def test_last_endpoint_is_never_removed(make_world):
    world = make_world(["site-b"])  # only the "offline" site is left; its reporter was fenced before

    response = fire(world.handler(), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 200
    assert results(response) == [("ignore", "ignored")]
    assert world.sites_left() == ["site-b"]
    assert world.ga.mutating_calls() == []
    assert all(f.actions == [] for f in world.ispn.values())


def test_one_endpoint_left_still_ensures_the_backup_is_offline(make_world):
    world = make_world(["site-a"])  # site-b was removed already (by an earlier alert or an operator)

    response = fire(world.handler(), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 200
    assert results(response) == [("remove-endpoints", "nothing-to-remove"), ("take-backup-offline", "done")]
    assert world.sites_left() == ["site-a"]
    assert world.ga.mutating_calls() == []
    assert world.ispn["site-a"].actions == [("take-offline", "site-b")]


def test_resolved_alerts_change_nothing(make_world):
    world = make_world(["site-a", "site-b"])
    handler = world.handler()

    resolved = fire(handler, site_offline("site-b", "site-a", status="resolved"))
    # A firing group may carry a resolved SiteOffline next to another firing alert: judged per alert.
    mixed = fire(handler, site_offline("site-b", "site-a", status="resolved"), site_offline("x", "y", alertname="Watchdog"))

    assert resolved["statusCode"] == 200 and mixed["statusCode"] == 200
    assert json.loads(mixed["body"])["decisions"][0]["reason"] == "alert is resolved"
    assert world.ga.calls == [] and all(f.actions == [] for f in world.ispn.values())
    assert world.sites_left() == ["site-a", "site-b"]


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer abc", 401),
        ("Basic !!!not-base64", 401),
        (basic(WEBHOOK_USER, "wrong-password"), 403),
        (basic("someone-else", WEBHOOK_PASSWORD), 403),  # the original accepted this (user OR password)
        (basic(WEBHOOK_USER, ""), 403),
    ],
    ids=["none", "bearer", "garbage", "wrong-password", "wrong-user", "empty-password"],
)
def test_bad_credentials_are_rejected_and_nothing_else_happens(make_world, caplog, authorization, status):
    world = make_world(["site-a", "site-b"])
    handler = world.handler()
    event = url_event(notification(site_offline("site-b", "site-a")), authorization)
    assert ("authorization" in event["headers"]) is (authorization is not None)

    with caplog.at_level(logging.INFO, logger="triggerfish.functions.fencing"):
        response = handler(event, None)

    assert response["statusCode"] == status
    if status == 401:
        assert response["headers"]["www-authenticate"].startswith("Basic ")
    assert results(response) == [("authenticate", "rejected")]
    assert world.ga.calls == [] and all(f.actions == [] for f in world.ispn.values())
    assert world.sites_left() == ["site-a", "site-b"]
    for secret in filter(None, [authorization, WEBHOOK_PASSWORD, "wrong-password"]):
        assert secret not in caplog.text and secret not in response["body"]


def test_infinispan_500_then_the_retry_completes_the_missing_step(make_world):
    world = make_world(["site-a", "site-b"])
    handler = world.handler()
    world.ispn["site-a"].fail_next(500)

    first = fire(handler, site_offline("site-b", "site-a"))
    assert first["statusCode"] == 503  # Alertmanager retries 5xx
    assert results(first) == [("remove-endpoints", "done"), ("take-backup-offline", "failed")]
    assert world.sites_left() == ["site-a"]
    assert world.ispn["site-a"].status("site-b") == "online"

    retry = fire(handler, site_offline("site-b", "site-a"))
    assert retry["statusCode"] == 200
    assert results(retry) == [("remove-endpoints", "nothing-to-remove"), ("take-backup-offline", "done")]
    assert world.ispn["site-a"].status("site-b") == "offline"
    assert world.sites_left() == ["site-a"]


def test_a_cache_that_fails_to_go_offline_is_retried(make_world):
    world = make_world(["site-a", "site-b"])
    handler = world.handler()
    world.ispn["site-a"].cache_errors["work"] = "ISPN000123: Timed out waiting for the backup"

    first = fire(handler, site_offline("site-b", "site-a"))  # Infinispan answers 200 with one cache failed
    assert first["statusCode"] == 503
    assert "work: ISPN000123" in decisions(first)[-1]["error"]
    assert world.ispn["site-a"].status("site-b") == "mixed"

    retry = fire(handler, site_offline("site-b", "site-a"))
    assert retry["statusCode"] == 200
    assert world.ispn["site-a"].status("site-b") == "offline"


def test_three_endpoints_remove_only_the_offline_site(make_world):
    # Three sites; the lost one is UNHEALTHY with a HealthReason, which the original Lambda resent
    # in UpdateEndpointGroup and failed on. An untagged endpoint is kept, never guessed at.
    world = make_world(["site-a", "site-b", "site-c", ""], health={"site-b": "UNHEALTHY"})

    response = fire(world.handler(), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 200, response["body"]
    assert world.sites_left() == ["(untagged)", "site-a", "site-c"]
    assert world.ispn["site-a"].actions == [("take-offline", "site-b")]


def test_two_load_balancers_of_the_offline_site_are_both_removed(make_world):
    world = make_world(["site-a", "site-b", "site-b#1"])

    response = fire(world.handler(), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 200
    assert world.sites_left() == ["site-a"]
    assert decisions(response)[0]["endpoints"] == [world.nlb("site-b", 0), world.nlb("site-b", 1)]


def test_dry_run_logs_the_plan_and_changes_nothing(make_world, caplog):
    world = make_world(["site-a", "site-b"])

    with caplog.at_level(logging.INFO, logger="triggerfish.functions.fencing"):
        response = fire(world.handler(DRY_RUN="true"), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 200
    assert results(response) == [("remove-endpoints", "dry-run"), ("take-backup-offline", "dry-run")]
    assert decisions(response)[0]["endpoints"] == [world.nlb("site-b")]
    assert world.sites_left() == ["site-a", "site-b"]
    assert world.ga.mutating_calls() == [] and all(f.actions == [] for f in world.ispn.values())
    assert '"result":"dry-run"' in caplog.text


def test_every_decision_is_one_structured_line_without_secrets(make_world, caplog, capsys):
    world = make_world(["site-a", "site-b"])
    handler = world.handler()
    authorization = basic(WEBHOOK_USER, WEBHOOK_PASSWORD)

    with caplog.at_level(logging.DEBUG):  # every logger, boto and httpx included
        fire(handler, site_offline("site-b", "site-a"), authorization=authorization)
        fire(handler, site_offline("site-b", "site-a"), authorization=basic(WEBHOOK_USER, "guess"))

    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "triggerfish.functions.fencing"]
    assert [(line["action"], line["result"]) for line in lines] == [
        ("remove-endpoints", "done"),
        ("take-backup-offline", "done"),
        ("authenticate", "rejected"),
    ]
    assert all({"site", "reporter", "action", "result"} <= set(line) for line in lines)
    assert lines[0]["site"] == "site-b" and lines[0]["reporter"] == "site-a"
    everything = caplog.text + "".join(capsys.readouterr())
    for secret in (WEBHOOK_PASSWORD, ISPN_PASSWORD, authorization, authorization.split()[1], "guess"):
        assert secret not in everything


def test_global_accelerator_endpoint_from_the_service_specific_variable(make_world, ga, monkeypatch):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    env = dict(world.env)
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLOBAL_ACCELERATOR", env.pop("GLOBAL_ACCELERATOR_ENDPOINT_URL"))
    from triggerfish.functions.fencing import load_handler

    response = fire(load_handler(env), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 200
    assert world.sites_left() == ["site-a"]


def test_dual_stack_dns_name_finds_the_accelerator(make_world):
    world = make_world(["site-a", "site-b"], other_accelerators=0)

    response = fire(world.handler(), site_offline("site-b", "site-a", accelerator="A0123456789ABCDEF.dualstack.awsglobalaccelerator.com."))

    assert response["statusCode"] == 200
    assert world.sites_left() == ["site-a"]


def test_site_tags_that_match_neither_label_are_a_permanent_failure(make_world):
    world = make_world(["site-a", "site-b"])

    response = fire(world.handler(), site_offline("dc-2", "dc-1"))

    assert response["statusCode"] == 424
    assert "sites found: site-a, site-b" in decisions(response)[0]["error"]
    assert world.ga.mutating_calls() == [] and all(f.actions == [] for f in world.ispn.values())


def test_no_cache_backing_up_to_the_site_is_reported(make_world):
    world = make_world(["site-a", "site-b"])
    for caches in world.ispn["site-a"].state.values():
        del caches["site-b"]  # site-a's caches back up to site-c only

    response = fire(world.handler(), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 200
    assert results(response) == [("remove-endpoints", "done"), ("take-backup-offline", "no-caches")]


def test_truncated_notification_is_logged(make_world):
    world = make_world(["site-a", "site-b"])
    body = notification(site_offline("site-b", "site-a"))
    body["truncatedAlerts"] = 3

    response = world.handler()(url_event(body, basic(WEBHOOK_USER, WEBHOOK_PASSWORD)), None)

    assert response["statusCode"] == 200
    assert results(response)[0] == ("receive", "truncated") and "max_alerts" in decisions(response)[0]["reason"]


def test_unknown_accelerator_is_a_permanent_failure(make_world):
    world = make_world(["site-a", "site-b"])

    response = fire(world.handler(), site_offline("site-b", "site-a", accelerator="nope.awsglobalaccelerator.com"))

    assert response["statusCode"] == 424  # not retried until the next group_interval: a human must fix the label
    assert "nope.awsglobalaccelerator.com" in decisions(response)[0]["error"]
    assert world.sites_left() == ["site-a", "site-b"] and world.ga.mutating_calls() == []


def test_global_accelerator_busy_is_retryable(make_world):
    world = make_world(["site-a", "site-b"])
    handler = world.handler()
    world.ga.fail_next("RemoveEndpoints", "TransactionInProgressException", times=3)  # boto3 tries 3 times

    first = fire(handler, site_offline("site-b", "site-a"))
    assert first["statusCode"] == 503
    assert results(first) == [("remove-endpoints", "failed")]
    assert world.sites_left() == ["site-a", "site-b"] and world.ispn["site-a"].actions == []

    assert fire(handler, site_offline("site-b", "site-a"))["statusCode"] == 200
    assert world.sites_left() == ["site-a"] and world.ispn["site-a"].status("site-b") == "offline"


def test_reporter_without_infinispan_endpoint_changes_nothing(make_world):
    world = make_world(["site-a", "site-b"])
    endpoints = json.loads(world.env["INFINISPAN_SITE_ENDPOINTS"])
    del endpoints["site-a"]

    response = fire(world.handler(INFINISPAN_SITE_ENDPOINTS=json.dumps(endpoints)), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 424
    assert "site-a" in decisions(response)[0]["error"]
    assert world.sites_left() == ["site-a", "site-b"]


def test_infinispan_certificate_is_verified(make_world):
    world = make_world(["site-a"])
    env = {k: v for k, v in world.env.items() if k != "INFINISPAN_CA_FILE"}
    from triggerfish.functions.fencing import load_handler

    response = fire(load_handler(env), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 424
    assert "INFINISPAN_CA_FILE" in decisions(response)[-1]["error"]
    assert world.ispn["site-a"].actions == []


def test_infinispan_rejecting_the_credentials_is_permanent(make_world, monkeypatch):
    world = make_world(["site-a"])
    monkeypatch.setenv("ISPN_WRONG", "not-the-password")

    response = fire(world.handler(INFINISPAN_USER_SECRET="env:ISPN_WRONG"), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 424
    assert "INFINISPAN_USER_SECRET" in decisions(response)[-1]["error"]
    assert "not-the-password" not in response["body"]
    assert world.ispn["site-a"].rejected == 1 and world.ispn["site-a"].actions == []


def test_base64_body_and_bad_requests(make_world):
    world = make_world(["site-a", "site-b"])
    handler = world.handler()
    auth = basic(WEBHOOK_USER, WEBHOOK_PASSWORD)

    encoded = handler(url_event(notification(site_offline("site-b", "site-a")), auth, base64_body=True), None)
    assert encoded["statusCode"] == 200 and world.sites_left() == ["site-a"]

    not_json = handler(url_event("{not json", auth), None)
    assert not_json["statusCode"] == 400
    wrong_version = handler(url_event({**notification(), "version": "5"}, auth), None)
    assert wrong_version["statusCode"] == 400 and "version" in decisions(wrong_version)[0]["reason"]
    get = handler(url_event("", auth, method="GET"), None)
    assert get["statusCode"] == 405 and get["headers"]["allow"] == "POST"
    unlabelled = site_offline("site-b", "site-a")
    del unlabelled["labels"]["reporter"]
    invalid = fire(handler, unlabelled)
    assert invalid["statusCode"] == 422 and "reporter" in decisions(invalid)[0]["reason"]


def test_every_listener_is_fenced_and_a_listener_is_never_emptied(make_world):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    accelerator = next(a for a, d in world.ga.accelerators.items() if d["Name"] == "keycloak")
    http = world.ga.add_listener(accelerator, port=80)
    both = world.ga.add_endpoint_group(http, "eu-west-1", [{"EndpointId": world.nlb("site-a")}, {"EndpointId": world.nlb("site-b")}])
    only_b = world.ga.add_endpoint_group(world.ga.add_listener(accelerator, port=8443), "eu-west-1", [{"EndpointId": world.nlb("site-b")}])

    response = fire(world.handler(), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 200, response["body"]
    assert world.sites_left() == ["site-a"]
    assert world.ga.endpoint_ids(both) == [world.nlb("site-a")]
    assert world.ga.endpoint_ids(only_b) == [world.nlb("site-b")]  # the last endpoint of its listener stays
    assert ("keep-last-endpoint", "kept") in results(response)


def test_site_tags_are_read_in_batches_of_twenty(make_world):
    from triggerfish.functions.fencing.balancers.globalaccelerator import GlobalAccelerator

    world = make_world(["site-a", "site-b"], other_accelerators=0)
    accelerator = next(a for a, d in world.ga.accelerators.items() if d["Name"] == "keycloak")
    for port in (80, 8080, 8443):  # 3 x 8 more endpoints: 26 load balancer ARNs in all
        world.ga.add_endpoint_group(
            world.ga.add_listener(accelerator, port=port),
            "eu-west-1",
            [{"EndpointId": f"arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/gone-{port}-{i}/0{i}"} for i in range(8)],
        )
    balancer = GlobalAccelerator(endpoint_url=world.env["GLOBAL_ACCELERATOR_ENDPOINT_URL"])
    batches: list[int] = []
    balancer._elb("eu-west-1").meta.events.register(
        "provide-client-params.elastic-load-balancing-v2.DescribeTags", lambda params, **_: batches.append(len(params["ResourceArns"]))
    )

    endpoints = balancer.endpoints("a0123456789abcdef.awsglobalaccelerator.com")

    assert sorted(batches) == [6, 20]
    assert {e.endpoint_id: e.site for e in endpoints if e.site} == {world.nlb("site-a"): "site-a", world.nlb("site-b"): "site-b"}
    assert len(endpoints) == 26


def test_a_deleted_load_balancer_does_not_stop_the_fencing(make_world, monkeypatch):
    # Real ELBv2 fails a whole DescribeTags call when one ARN is gone (moto does not), hence the wire fake.
    from fake_elbv2_tags import FakeElbv2Tags
    from fencing_support import LB_REGION

    world = make_world(["site-a", "site-b"], other_accelerators=0)
    accelerator = next(a for a, d in world.ga.accelerators.items() if d["Name"] == "keycloak")
    gone = f"arn:aws:elasticloadbalancing:{LB_REGION}:123456789012:loadbalancer/net/deleted/0123456789abcdef"
    world.ga.add_endpoint_group(world.ga.add_listener(accelerator, port=8443), LB_REGION, [{"EndpointId": gone}])
    elb = FakeElbv2Tags({world.nlb("site-a"): {"site": "site-a"}, world.nlb("site-b"): {"site": "site-b"}})
    monkeypatch.setenv("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", elb.url)
    try:
        response = fire(world.handler(), site_offline("site-b", "site-a"))
    finally:
        elb.close()

    assert response["statusCode"] == 200, response["body"]
    assert world.sites_left() == ["site-a"]
    assert world.ispn["site-a"].actions == [("take-offline", "site-b")]
    # The batch of three failed; each ARN was then asked alone, and only the deleted one came back unknown.
    assert [len(call) for call in elb.calls] == [3, 1, 1, 1]
    assert world.ga.endpoint_ids(next(g for g in world.ga.groups if g != world.group)) == [gone]  # left alone


def test_other_describe_tags_errors_still_fail(make_world, monkeypatch):
    from fake_elbv2_tags import FakeElbv2Tags

    world = make_world(["site-a", "site-b"], other_accelerators=0)
    elb = FakeElbv2Tags({})
    elb.error = (400, "AccessDenied", "not authorized to perform: elasticloadbalancing:DescribeTags")
    monkeypatch.setenv("AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2", elb.url)
    try:
        response = fire(world.handler(), site_offline("site-b", "site-a"))
    finally:
        elb.close()

    assert response["statusCode"] >= 400
    assert "DescribeTags" in response["body"] and "AccessDenied" in response["body"]
    assert world.sites_left() == ["site-a", "site-b"]


@pytest.mark.parametrize("code", ["InvalidArgumentException", "EndpointNotFoundException"])
def test_an_endpoint_removed_by_someone_else_meanwhile_counts_as_removed(make_world, code):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    world.ga.missing_endpoint_error = code
    # Between our read and our RemoveEndpoints, an operator (or another fence) removes site-b.
    world.ga.before["RemoveEndpoints"] = lambda params: world.ga.remove_endpoint(world.group, world.nlb("site-b"))

    response = fire(world.handler(), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 200, response["body"]
    assert results(response) == [("remove-endpoints", "done"), ("take-backup-offline", "done")]
    assert decisions(response)[0]["already_gone"] == [world.nlb("site-b")]
    assert world.sites_left() == ["site-a"]
    assert world.ispn["site-a"].status("site-b") == "offline"


def test_one_of_two_endpoints_removed_meanwhile_the_other_is_still_removed(make_world):
    world = make_world(["site-a", "site-b", "site-b#1"], other_accelerators=0)
    hook = {"calls": 0}

    def remove_one(params):
        hook["calls"] += 1
        if hook["calls"] == 1:
            world.ga.remove_endpoint(world.group, world.nlb("site-b", 0))

    world.ga.before["RemoveEndpoints"] = remove_one

    response = fire(world.handler(), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 200, response["body"]
    assert world.sites_left() == ["site-a"]
    assert decisions(response)[0]["already_gone"] == [world.nlb("site-b", 0)]
    assert world.ga.mutating_calls() == ["RemoveEndpoints", "RemoveEndpoints"]


def test_a_refused_removal_of_endpoints_still_there_fails(make_world):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    world.ga.fail_next("RemoveEndpoints", "AccessDeniedException")

    response = fire(world.handler(), site_offline("site-b", "site-a"))

    assert response["statusCode"] == 424
    assert results(response) == [("remove-endpoints", "failed")]
    assert "AccessDeniedException" in decisions(response)[0]["error"]
    assert world.sites_left() == ["site-a", "site-b"] and world.ispn["site-a"].actions == []


def test_two_instances_without_a_shared_lock_never_empty_the_accelerator(make_world, tmp_path):
    # Two hosts (or two Lambda execution environments): separate lock files, so nothing serialises them.
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    first = world.handler(FENCING_LOCK_FILE=str(tmp_path / "host-1.lock"))
    second = world.handler(FENCING_LOCK_FILE=str(tmp_path / "host-2.lock"))
    responses: dict[str, dict] = {}

    def interleave(params):
        # site-a's call has read (both sites present) and is about to remove site-b: site-b's call
        # runs now, reads the same state and removes site-a; then site-a's removal goes through.
        if "site-b" not in responses:
            responses["site-b"] = fire(second, site_offline("site-a", "site-b"))

    world.ga.before["RemoveEndpoints"] = interleave

    responses["site-a"] = fire(first, site_offline("site-b", "site-a"))

    assert world.sites_left() == ["site-a"]  # never zero: site-a's call put its own endpoint back
    assert responses["site-b"]["statusCode"] == 200, responses["site-b"]["body"]
    assert responses["site-a"]["statusCode"] == 200, responses["site-a"]["body"]
    assert results(responses["site-a"]) == [
        ("remove-endpoints", "done"),
        ("restore-endpoints", "restored"),
        ("take-backup-offline", "done"),
    ]
    restore = decisions(responses["site-a"])[1]
    assert restore["endpoints"] == [world.nlb("site-a")] and "empty" in restore["reason"]
    assert world.ga.mutating_calls() == ["RemoveEndpoints", "RemoveEndpoints", "AddEndpoints"]
    # The endpoint came back as it was read, not with defaults.
    group = world.ga.groups[world.group]["EndpointDescriptions"]
    assert [(d["Weight"], d["ClientIPPreservationEnabled"]) for d in group] == [(128, False)]


def test_concurrent_restores_answer_503_and_the_retry_decides(make_world, tmp_path):
    # Both calls remove at once, both find the listener empty and both put their own endpoint back:
    # neither may go on to take its backup offline, since the other site serves again.
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    first = world.handler(FENCING_LOCK_FILE=str(tmp_path / "host-1.lock"))
    second = world.handler(FENCING_LOCK_FILE=str(tmp_path / "host-2.lock"))
    both_removed = threading.Barrier(2, timeout=20)
    both_read_again = threading.Barrier(2, timeout=20)
    world.ga.before["RemoveEndpoints"] = lambda params: both_removed.wait()
    world.ga.before["AddEndpoints"] = lambda params: both_read_again.wait()
    responses: dict[str, dict] = {}

    def call(handler, site: str, reporter: str) -> None:
        responses[reporter] = fire(handler, site_offline(site, reporter))

    threads = [threading.Thread(target=call, args=(first, "site-b", "site-a")),
               threading.Thread(target=call, args=(second, "site-a", "site-b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert world.sites_left() == ["site-a", "site-b"]
    for reporter, response in responses.items():
        assert response["statusCode"] == 503, response["body"]
        assert results(response) == [("remove-endpoints", "done"), ("restore-endpoints", "restored")], reporter
    assert all(f.actions == [] for f in world.ispn.values())

    world.ga.before.clear()
    retry = fire(first, site_offline("site-b", "site-a"))
    assert retry["statusCode"] == 200 and world.sites_left() == ["site-a"]
