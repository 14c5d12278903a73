"""The Route 53 backend (weighted and failover records in moto) behind the same handler."""

from __future__ import annotations

import json
import uuid

import boto3
import httpx
import pytest
from botocore.awsrequest import AWSResponse

from fencing_support import WEBHOOK_PASSWORD, WEBHOOK_USER, decisions, fire, notification, results
from fencing_support import alert as site_offline
from test_fencing_url import FunctionRuntime, api, fencing_function

pytestmark = pytest.mark.timeout(60)


def zone_with(records: list[dict]) -> tuple[str, str]:
    r53 = boto3.client("route53", region_name="us-east-1")
    domain = f"fence-{uuid.uuid4().hex[:8]}.example.com"
    zone = r53.create_hosted_zone(Name=domain, CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"].split("/")[-1]
    name = f"keycloak.{domain}."
    r53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {"Name": name, **r}} for r in records]},
    )
    return zone, name


def record_sets(zone: str, name: str) -> list[tuple[str, str]]:
    r53 = boto3.client("route53", region_name="us-east-1")
    sets = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return sorted((r["SetIdentifier"], r["Type"]) for r in sets if r["Name"] == name and "SetIdentifier" in r)


def test_weighted_records_of_the_offline_site_are_deleted(make_world):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    r53 = boto3.client("route53", region_name="us-east-1")
    check = r53.create_health_check(
        CallerReference=uuid.uuid4().hex,
        HealthCheckConfig={"Type": "HTTPS", "FullyQualifiedDomainName": "a.example.com", "ResourcePath": "/lb-check", "Port": 443},
    )["HealthCheck"]["Id"]
    zone, name = zone_with(
        [
            {"Type": "A", "SetIdentifier": "site-a", "Weight": 128, "TTL": 60, "HealthCheckId": check, "ResourceRecords": [{"Value": "192.0.2.1"}]},
            {"Type": "A", "SetIdentifier": "site-b", "Weight": 128, "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.2"}]},
            {"Type": "AAAA", "SetIdentifier": "site-b", "Weight": 128, "TTL": 60, "ResourceRecords": [{"Value": "2001:db8::2"}]},
        ]
    )
    handler = world.handler(LOAD_BALANCER="route53", ROUTE53_HOSTED_ZONE_ID=zone)

    response = fire(handler, site_offline("site-b", "site-a", accelerator=name.rstrip(".")))

    assert response["statusCode"] == 200, response["body"]
    assert record_sets(zone, name) == [("site-a", "A")]
    assert world.ispn["site-a"].actions == [("take-offline", "site-b")]
    assert world.ga.calls == []  # the Global Accelerator backend is not used

    # The other site's alert now finds its reporter fenced; a repeat of the first is a no-op removal.
    assert results(fire(handler, site_offline("site-a", "site-b", accelerator=name))) == [("ignore", "ignored")]
    repeat = fire(handler, site_offline("site-b", "site-a", accelerator=name))
    assert results(repeat) == [("remove-endpoints", "nothing-to-remove"), ("take-backup-offline", "done")]
    assert record_sets(zone, name) == [("site-a", "A")]


def test_failover_pair_loses_the_offline_primary_and_keeps_the_last_record(make_world):
    world = make_world(["site-a"], other_accelerators=0)
    zone, name = zone_with(
        [
            {"Type": "CNAME", "SetIdentifier": "site-a", "Failover": "PRIMARY", "TTL": 60, "ResourceRecords": [{"Value": "lb-a.example.com"}]},
            {"Type": "CNAME", "SetIdentifier": "site-b", "Failover": "SECONDARY", "TTL": 60, "ResourceRecords": [{"Value": "lb-b.example.com"}]},
        ]
    )
    handler = world.handler(LOAD_BALANCER="route53", ROUTE53_HOSTED_ZONE_ID=zone)

    fenced = fire(handler, site_offline("site-a", "site-b", accelerator=name))
    assert fenced["statusCode"] == 200
    assert record_sets(zone, name) == [("site-b", "CNAME")]
    assert world.ispn["site-b"].actions == [("take-offline", "site-a")]

    # site-a's own alert arrives late: site-a was fenced, and the last record is never removed.
    late = fire(handler, site_offline("site-b", "site-a", accelerator=name))
    assert results(late) == [("ignore", "ignored")]
    assert record_sets(zone, name) == [("site-b", "CNAME")]
    assert world.ispn["site-a"].actions == []


def test_unknown_record_name_is_a_permanent_failure(make_world):
    world = make_world(["site-a"], other_accelerators=0)
    zone, name = zone_with([{"Type": "A", "SetIdentifier": "site-a", "Weight": 1, "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}])

    response = fire(world.handler(LOAD_BALANCER="route53", ROUTE53_HOSTED_ZONE_ID=zone), site_offline("site-b", "site-a", accelerator="other." + name))

    assert response["statusCode"] == 424


WEIGHTED = [
    {"Type": "A", "SetIdentifier": "site-a", "Weight": 128, "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]},
    {"Type": "A", "SetIdentifier": "site-b", "Weight": 128, "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.2"}]},
]


def route53_handler(world, zone: str, **overrides: str):
    return world.handler(LOAD_BALANCER="route53", ROUTE53_HOSTED_ZONE_ID=zone, **overrides)


def before_change(handler, hook) -> list[dict]:
    """Run ``hook`` before each ChangeResourceRecordSets of ``handler``; returns the change batches sent.

    DELETEs are also held to what real Route 53 enforces and moto does not: the record set must
    exist with exactly the values given, else the whole batch fails with ``InvalidChangeBatch``.
    """
    sent: list[dict] = []
    zone_of: dict[int, str] = {}
    r53 = boto3.client("route53", region_name="us-east-1")

    def run(params, **_):
        sent.append(params["ChangeBatch"])
        zone_of[len(sent)] = params["HostedZoneId"]
        hook(len(sent))

    def strict_deletes(**_):
        batch, zone = sent[-1], zone_of[len(sent)]
        current = r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
        for change in batch["Changes"]:
            wanted = change["ResourceRecordSet"]
            if change["Action"] != "DELETE" or wanted in current:
                continue
            found = any((r["Name"], r["Type"], r.get("SetIdentifier")) == (wanted["Name"], wanted["Type"], wanted.get("SetIdentifier"))
                        for r in current)
            problem = "the values provided do not match the current values" if found else "it was not found"
            message = (f"[Tried to delete resource record set [name='{wanted['Name']}', type='{wanted['Type']}', "
                       f"set-identifier='{wanted.get('SetIdentifier')}'] but {problem}]")
            return (
                AWSResponse("https://route53.amazonaws.com/", 400, {}, None),
                {"Error": {"Code": "InvalidChangeBatch", "Message": message, "Type": "Sender"},
                 "ResponseMetadata": {"HTTPStatusCode": 400}},
            )
        return None

    events = handler.fencer.balancer.client.meta.events
    events.register("provide-client-params.route-53.ChangeResourceRecordSets", run)
    events.register("before-call.route-53.ChangeResourceRecordSets", strict_deletes)
    return sent


@pytest.mark.parametrize("records", [WEIGHTED, [
    {"Type": "A", "SetIdentifier": "site-a", "Failover": "PRIMARY", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]},
    {"Type": "A", "SetIdentifier": "site-b", "Failover": "SECONDARY", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.2"}]},
]], ids=["weighted", "failover"])
def test_the_same_alert_twice_changes_nothing_the_second_time(make_world, records):
    world = make_world(["site-a"], other_accelerators=0)
    zone, name = zone_with(records)
    handler = route53_handler(world, zone)
    changes = before_change(handler, lambda n: None)

    first = fire(handler, site_offline("site-b", "site-a", accelerator=name))
    second = fire(handler, site_offline("site-b", "site-a", accelerator=name))

    assert (first["statusCode"], second["statusCode"]) == (200, 200), second["body"]
    assert len(changes) == 1  # the repeat deletes nothing
    assert results(second) == [("remove-endpoints", "nothing-to-remove"), ("take-backup-offline", "done")]
    assert record_sets(zone, name) == [("site-a", "A")]
    assert world.ispn["site-a"].status("site-b") == "offline"


def test_records_deleted_by_someone_else_meanwhile_count_as_removed(make_world):
    world = make_world(["site-a"], other_accelerators=0)
    zone, name = zone_with(WEIGHTED)
    handler = route53_handler(world, zone)
    r53 = boto3.client("route53", region_name="us-east-1")

    def operator_deletes_site_b(n: int) -> None:
        if n == 1:
            r53.change_resource_record_sets(
                HostedZoneId=zone,
                ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": {"Name": name, **WEIGHTED[1]}}]},
            )

    before_change(handler, operator_deletes_site_b)

    response = fire(handler, site_offline("site-b", "site-a", accelerator=name))

    assert response["statusCode"] == 200, response["body"]
    assert results(response) == [("remove-endpoints", "done"), ("take-backup-offline", "done")]
    assert decisions(response)[0]["already_gone"] == ["site-b"]
    assert record_sets(zone, name) == [("site-a", "A")]


def test_a_record_changed_meanwhile_is_deleted_as_it_is_now(make_world):
    world = make_world(["site-a"], other_accelerators=0)
    zone, name = zone_with(WEIGHTED)
    handler = route53_handler(world, zone)
    r53 = boto3.client("route53", region_name="us-east-1")

    def operator_drains_site_b(n: int) -> None:
        if n == 1:
            drained = {"Name": name, **WEIGHTED[1], "Weight": 0}
            r53.change_resource_record_sets(
                HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": drained}]}
            )

    changes = before_change(handler, operator_drains_site_b)

    response = fire(handler, site_offline("site-b", "site-a", accelerator=name))

    assert response["statusCode"] == 200, response["body"]
    assert record_sets(zone, name) == [("site-a", "A")]
    assert len(changes) == 2 and changes[1]["Changes"][0]["ResourceRecordSet"]["Weight"] == 0


def test_two_instances_without_a_shared_lock_never_delete_the_last_record(make_world, tmp_path):
    world = make_world(["site-a"], other_accelerators=0)
    zone, name = zone_with(WEIGHTED)
    first = route53_handler(world, zone, FENCING_LOCK_FILE=str(tmp_path / "host-1.lock"))
    second = route53_handler(world, zone, FENCING_LOCK_FILE=str(tmp_path / "host-2.lock"))
    responses: dict[str, dict] = {}

    def interleave(n: int) -> None:
        # site-a's call has read both records and is about to delete site-b's: site-b's call runs
        # now from the same state and deletes site-a's; then site-a's deletion goes through.
        if n == 1:
            responses["site-b"] = fire(second, site_offline("site-a", "site-b", accelerator=name))

    before_change(first, interleave)

    responses["site-a"] = fire(first, site_offline("site-b", "site-a", accelerator=name))

    assert record_sets(zone, name) == [("site-a", "A")]  # one record left, never none
    assert responses["site-b"]["statusCode"] == 200, responses["site-b"]["body"]
    assert responses["site-a"]["statusCode"] == 200, responses["site-a"]["body"]
    assert results(responses["site-a"]) == [
        ("remove-endpoints", "done"),
        ("restore-endpoints", "restored"),
        ("take-backup-offline", "done"),
    ]
    assert decisions(responses["site-a"])[1]["endpoints"] == ["site-a"]
    r53 = boto3.client("route53", region_name="us-east-1")
    restored = [r for r in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"] if r["Name"] == name]
    assert restored[0]["Weight"] == 128 and restored[0]["ResourceRecords"] == [{"Value": "192.0.2.1"}]


def test_route53_fence_through_the_function_url(make_world):
    world = make_world(["site-a"], other_accelerators=0)
    zone, name = zone_with(WEIGHTED)
    env = {**world.env, "LOAD_BALANCER": "route53", "ROUTE53_HOSTED_ZONE_ID": zone}
    runtime = FunctionRuntime([fencing_function(env)], log_sink=lambda name, rid, text: None)
    server = api.ApiServer(api.create_app(api.EngineBackend(runtime)), port=0)
    url = f"{server.start()}/lambda-url/site-fencing/"
    body = json.dumps(notification(site_offline("site-b", "site-a", accelerator=name))).encode()
    try:
        with httpx.Client(timeout=60) as client:
            post = lambda: client.post(url, content=body, headers={"content-type": "application/json"},  # noqa: E731
                                       auth=(WEBHOOK_USER, WEBHOOK_PASSWORD))
            fenced, repeated = post(), post()
    finally:
        server.stop()
        runtime.close()

    assert fenced.status_code == 200, fenced.text
    assert [(d["action"], d["result"]) for d in fenced.json()["decisions"]] == [
        ("remove-endpoints", "done"), ("take-backup-offline", "done")]
    assert repeated.status_code == 200
    assert [d["result"] for d in repeated.json()["decisions"]] == ["nothing-to-remove", "done"]
    assert record_sets(zone, name) == [("site-a", "A")]
