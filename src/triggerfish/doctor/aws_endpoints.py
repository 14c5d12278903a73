"""``doctor aws-credentials``, the endpoint part: the STS and service endpoint URLs the SDK would call,
resolved and connected to, and (on request) ``sts get-caller-identity`` with its error explained."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Sequence
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from triggerfish.doctor import explain
from triggerfish.doctor.report import Check


def endpoints(region: str | None, services: Sequence[str], timeout: float = 2.0) -> list[Check]:
    """Resolve (and connect to) the endpoint URL boto3 would use for STS and each service."""
    if not region:
        return [Check.of("endpoint", "region", "fail", "no region: set AWS_REGION (or AWS_DEFAULT_REGION) or pass --region",
                         "without a region boto3 can't build regional endpoint URLs (NoRegionError)", "export AWS_REGION=us-east-1")]
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    checks: list[Check] = []
    session = boto3.session.Session(region_name=region)
    # Unsigned: building a signing client would walk the credential chain again (slow when a provider retries).
    unsigned = Config(signature_version=UNSIGNED)
    for service in ["sts", *[s for s in services if s != "sts"]]:
        try:
            url = session.client(service, region_name=region, config=unsigned).meta.endpoint_url
        except (BotoCoreError, ValueError) as exc:
            checks.append(Check.of("endpoint", service, "fail", f"{type(exc).__name__}: {exc}"))
            continue
        checks.append(_probe_endpoint(service, url, timeout))
    if os.environ.get("AWS_STS_REGIONAL_ENDPOINTS", "").lower() == "legacy":
        checks.append(Check.of("endpoint", "AWS_STS_REGIONAL_ENDPOINTS", "warn", "legacy: some regions use the global sts.amazonaws.com",
                               "a regional STS VPC endpoint does not serve the global name; without NAT it times out",
                               "export AWS_STS_REGIONAL_ENDPOINTS=regional"))
    return checks


def _probe_endpoint(service: str, url: str, timeout: float) -> Check:
    parsed = urlparse(url)
    host, port = parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addrs = sorted({str(a[4][0]) for a in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
    except socket.gaierror as exc:
        return Check.of("endpoint", url, "fail", f'EndpointConnectionError: Could not connect to the endpoint URL: "{url}"',
                        f"DNS: {host} does not resolve ({exc.strerror}): CoreDNS/VPC resolver, or no private DNS for the "
                        "VPC endpoint (enableDnsSupport/enableDnsHostnames)",
                        f"nslookup {host}; kubectl -n kube-system logs -l k8s-app=kube-dns")
    private = all(_is_private(a) for a in addrs)
    where = "private addresses (a VPC endpoint or local)" if private else "public addresses (needs NAT or internet)"
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return Check.of("endpoint", url, "fail", f'EndpointConnectionError / ConnectTimeoutError on "{url}"',
                        f"{host} resolves to {', '.join(addrs)} ({where}) but tcp/{port} fails: {exc}",
                        "check security groups / NACLs / routes on the path (triggerfish doctor aws-network)")
    return Check.of("endpoint", url, "ok", f"{service}: resolves and connects", f"{host} -> {', '.join(addrs)} ({where})")


def _is_private(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
        return ip.is_private or ip.is_loopback
    except ValueError:
        return False


def caller_identity(region: str | None) -> Check:
    import boto3

    try:
        ident = boto3.session.Session(region_name=region).client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as exc:
        text = f"{type(exc).__name__}: {exc}"
        hits = explain.explain(text)
        fix = hits[0].fix if hits else ""
        detail = hits[0].detail if hits else ""
        return Check.of("sts", "get-caller-identity", "fail", text, detail, fix)
    return Check.of("sts", "get-caller-identity", "ok", f"you are {ident['Arn']}", f"account {ident['Account']}")
