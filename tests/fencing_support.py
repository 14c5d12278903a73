"""Shared set-up for the site-fencing tests: fakes, moto resources, 2.0 events, Alertmanager payloads.

Fixtures here are imported by the ``test_fencing_*`` modules. AWS parts are real moto (server
mode) where moto implements the API (Secrets Manager, ELBv2, Route 53); Global Accelerator and
Infinispan are the local wire-protocol fakes next to this file.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import trustme

from fake_globalaccelerator import FakeGlobalAccelerator
from fake_infinispan import FakeInfinispan
from triggerfish.functions.fencing import FencingFunction, load_handler

LB_REGION = "eu-west-1"
SECRETS_REGION = "eu-west-1"
WEBHOOK_USER = "alertmanager"
WEBHOOK_PASSWORD = "hook-pw-" + uuid.uuid4().hex
ISPN_USER = "admin"
ISPN_PASSWORD = "ispn-pw-" + uuid.uuid4().hex
CACHES = ["actionTokens", "authenticationSessions", "loginFailures", "work"]
DNS = "a0123456789abcdef.awsglobalaccelerator.com"


@dataclass
class AwsResources:
    nlbs: dict[str, list[str]]  # tag value ("" = untagged) -> NLB ARNs
    webhook_secret_name: str
    ispn_secret_arn: str


@pytest.fixture(scope="session")
def aws(moto_server: str) -> AwsResources:
    """NLBs tagged with their site (ELBv2 in moto) and the two secrets (Secrets Manager in moto)."""
    ec2 = boto3.client("ec2", region_name=LB_REGION)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{LB_REGION}{az}")["Subnet"]["SubnetId"]
        for i, az in enumerate("ab")
    ]
    elb = boto3.client("elbv2", region_name=LB_REGION)
    nlbs: dict[str, list[str]] = {}
    for name, site in [("a1", "site-a"), ("b1", "site-b"), ("b2", "site-b"), ("c1", "site-c"), ("x1", "")]:
        tags = [{"Key": "accelerator", "Value": DNS}, {"Key": "namespace", "Value": "keycloak"}]
        if site:
            tags.append({"Key": "site", "Value": site})
        arn = elb.create_load_balancer(
            Name=f"fence-{name}-{uuid.uuid4().hex[:6]}", Subnets=subnets, Type="network", Scheme="internet-facing", Tags=tags
        )["LoadBalancers"][0]["LoadBalancerArn"]
        nlbs.setdefault(site, []).append(arn)

    sm = boto3.client("secretsmanager", region_name=SECRETS_REGION)
    webhook_name = f"webhook-password-{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=webhook_name, SecretString=WEBHOOK_PASSWORD)
    # A key/value secret as the console makes it (the original Lambda could not read this form).
    ispn_arn = sm.create_secret(
        Name=f"infinispan-admin-{uuid.uuid4().hex[:8]}", SecretString=json.dumps({"username": ISPN_USER, "password": ISPN_PASSWORD})
    )["ARN"]
    return AwsResources(nlbs, webhook_name, ispn_arn)


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, str]:
    authority = trustme.CA()
    path = tmp_path_factory.mktemp("fencing-ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return authority, str(path)


@pytest.fixture
def ga() -> Iterator[tuple[FakeGlobalAccelerator, str]]:
    fake = FakeGlobalAccelerator()
    url = fake.start()
    yield fake, url
    fake.stop()


@pytest.fixture
def infinispan(ca: tuple[trustme.CA, str]) -> Iterator[dict[str, FakeInfinispan]]:
    """One Infinispan cluster per site, each backing up to the other two."""
    sites = ["site-a", "site-b", "site-c"]
    fakes = {s: FakeInfinispan(s, [o for o in sites if o != s], CACHES, ISPN_USER, ISPN_PASSWORD, ca[0]) for s in sites}
    for fake in fakes.values():
        fake.start()
    yield fakes
    for fake in fakes.values():
        fake.stop()


@dataclass
class World:
    """An accelerator with endpoints of some sites, Infinispan per site, and the function's environment."""

    ga: FakeGlobalAccelerator
    group: str
    nlbs: dict[str, list[str]]
    ispn: dict[str, FakeInfinispan]
    env: dict[str, str]
    site_of: dict[str, str] = field(default_factory=dict)

    def handler(self, **overrides: str) -> FencingFunction:
        return load_handler({**self.env, **overrides})

    def endpoint_ids(self) -> list[str]:
        return self.ga.endpoint_ids(self.group)

    def sites_left(self) -> list[str]:
        return sorted(self.site_of[e] for e in self.endpoint_ids())

    def nlb(self, site: str, index: int = 0) -> str:
        return self.nlbs[site][index]


@pytest.fixture
def make_world(
    aws: AwsResources, ga: tuple[FakeGlobalAccelerator, str], infinispan: dict[str, FakeInfinispan], ca: tuple[trustme.CA, str], tmp_path: Path
):
    fake, url = ga

    def make(endpoints: list[str] | None = None, other_accelerators: int = 12, health: dict[str, str] | None = None) -> World:
        """``endpoints`` lists NLB keys like "site-a", "site-b#1" (second NLB of site-b) or "" (untagged)."""
        for i in range(other_accelerators):  # more than one page before ours
            other = fake.add_accelerator(f"other-{i}")
            fake.add_endpoint_group(fake.add_listener(other), LB_REGION, [])
        accelerator = fake.add_accelerator("keycloak", dns_name=DNS, dual_stack="a0123456789abcdef.dualstack.awsglobalaccelerator.com")
        listener = fake.add_listener(accelerator)
        site_of: dict[str, str] = {}
        descriptions = []
        for key in endpoints or ["site-a", "site-b"]:
            site, _, index = key.partition("#")
            arn = aws.nlbs[site][int(index or 0)]
            site_of[arn] = site or "(untagged)"
            description: dict[str, Any] = {"EndpointId": arn, "HealthState": (health or {}).get(key, "HEALTHY")}
            if description["HealthState"] == "UNHEALTHY":
                description["HealthReason"] = "Health checks failed"
            descriptions.append(description)
        group = fake.add_endpoint_group(listener, LB_REGION, descriptions)
        env = {
            "WEBHOOK_USER": WEBHOOK_USER,
            "WEBHOOK_USER_SECRET": aws.webhook_secret_name,
            "SECRETS_REGION": SECRETS_REGION,
            "INFINISPAN_USER": ISPN_USER,
            "INFINISPAN_USER_SECRET": aws.ispn_secret_arn,
            "INFINISPAN_SITE_ENDPOINTS": json.dumps({s: f.endpoint for s, f in infinispan.items()}),
            "INFINISPAN_CA_FILE": ca[1],
            "GLOBAL_ACCELERATOR_ENDPOINT_URL": url,
            "FENCING_LOCK_FILE": str(tmp_path / "fencing.lock"),
        }
        return World(fake, group, aws.nlbs, infinispan, env, site_of)

    return make


# ---- requests ---------------------------------------------------------------------------------


def alert(site: str, reporter: str, status: str = "firing", alertname: str = "SiteOffline", accelerator: str = DNS) -> dict[str, Any]:
    labels = {"alertname": alertname, "accelerator": accelerator, "namespace": "keycloak", "reporter": reporter, "severity": "critical", "site": site}
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": f"{site} is not in the cross-site view of {reporter}"},
        "startsAt": "2026-11-21T23:40:00.000Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-21T23:50:00.000Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
        "fingerprint": uuid.uuid4().hex[:16],
        "someFutureAlertField": {"ignored": True},
    }


def notification(*alerts: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}/{alertname="SiteOffline"}:{accelerator="' + DNS + '"}',
        "truncatedAlerts": 0,
        "status": status or ("firing" if any(a["status"] == "firing" for a in alerts) else "resolved"),
        "receiver": "keycloak/example-routing/default",
        "groupLabels": {"accelerator": DNS},
        "commonLabels": {"alertname": "SiteOffline"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "notification_reason": "new_alerts",  # Alertmanager 0.32+
        "routeLabels": {"team": "iam"},  # Alertmanager 0.34+
        "alerts": list(alerts),
    }


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def url_event(body: Any, authorization: str | None = None, base64_body: bool = False, method: str = "POST") -> dict[str, Any]:
    """A Lambda function URL event, payload format 2.0, as AWS builds it (header names lower-cased)."""
    text = body if isinstance(body, str) else json.dumps(body)
    headers = {
        "content-type": "application/json",
        "host": "abcdefghij.lambda-url.eu-west-1.on.aws",
        "user-agent": "Alertmanager/0.28.1",
        "x-amzn-trace-id": "Root=1-6740f1d0-0123456789abcdef01234567",
        "x-forwarded-for": "198.51.100.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if authorization is not None:
        headers["authorization"] = authorization
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghij",
            "domainName": "abcdefghij.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abcdefghij",
            "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "Alertmanager/0.28.1"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": base64.b64encode(text.encode()).decode() if base64_body else text,
        "isBase64Encoded": base64_body,
    }


def fire(handler: FencingFunction, *alerts: dict[str, Any], authorization: str | None = None, **kw: Any) -> dict[str, Any]:
    auth = authorization if authorization is not None else basic(WEBHOOK_USER, WEBHOOK_PASSWORD)
    return handler(url_event(notification(*alerts), auth, **kw), None)


def decisions(response: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(response["body"])["decisions"]


def results(response: dict[str, Any]) -> list[tuple[str, str]]:
    return [(d["action"], d["result"]) for d in decisions(response)]
