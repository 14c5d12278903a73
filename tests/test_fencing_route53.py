"""The Route 53 backend (weighted and failover records in moto) behind the same handler."""

from __future__ import annotations

import uuid

import boto3
import pytest

from fencing_support import alert as site_offline
from fencing_support import fire, results

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
