"""A small local fake of the AWS Global Accelerator API, speaking its real wire protocol.

moto does not implement Global Accelerator, so this serves the calls the fencing function uses —
ListAccelerators, ListListeners, ListEndpointGroups (all paginated), RemoveEndpoints and AddEndpoints — as
awsJson1_1: ``POST /`` with ``X-Amz-Target: GlobalAccelerator_V20180706.<Operation>``, errors as
``{"__type": ..., "Message": ...}``. Requests must be SigV4-signed for ``globalaccelerator`` in the
expected region (the signature itself is not checked). Bound to 127.0.0.1 on a free port.

Test hooks: ``fail_next`` queues error answers, ``delay`` slows an operation, ``calls`` records
every operation served, ``before[operation]`` runs a callable with the request's parameters just
before the operation is carried out (outside the fake's lock: it may block, or change the state as
another client would). ``missing_endpoint_error`` is the error code RemoveEndpoints answers for an
endpoint that is not in the group: ``InvalidArgumentException`` (the error botocore's model lists for
the operation) by default, ``EndpointNotFoundException`` (the service's "endpoint doesn't exist")
as the alternative a test can select. Either way nothing is removed (the call is all or nothing).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from http_fake import LocalServer, Reply, Request, serve

TARGET_PREFIX = "GlobalAccelerator_V20180706."
ACCOUNT = "123456789012"


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class FakeGlobalAccelerator:
    def __init__(self, region: str = "us-west-2", page_size: int = 5) -> None:
        self.region = region
        self.page_size = page_size  # AWS may return fewer items than MaxResults; this forces pagination
        self.accelerators: dict[str, dict[str, Any]] = {}
        self.listeners: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.delay: dict[str, float] = {}
        self.before: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.missing_endpoint_error = "InvalidArgumentException"
        self._failures: dict[str, list[ApiError]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: LocalServer | None = None

    # ---- state set-up -------------------------------------------------------------------------
    def add_accelerator(self, name: str, dns_name: str | None = None, dual_stack: str | None = None) -> str:
        arn = f"arn:aws:globalaccelerator::{ACCOUNT}:accelerator/{uuid.uuid4()}"
        now = time.time()
        self.accelerators[arn] = {
            "AcceleratorArn": arn,
            "Name": name,
            "IpAddressType": "DUAL_STACK" if dual_stack else "IPV4",
            "Enabled": True,
            "IpSets": [{"IpFamily": "IPv4", "IpAddresses": ["192.0.2.10", "192.0.2.11"]}],
            "DnsName": dns_name or f"a{next(self._ids):016x}.awsglobalaccelerator.com",
            "Status": "DEPLOYED",
            "CreatedTime": now,
            "LastModifiedTime": now,
            "Events": [],
        }
        if dual_stack:
            self.accelerators[arn]["DualStackDnsName"] = dual_stack
        return arn

    def add_listener(self, accelerator_arn: str, port: int = 443) -> str:
        arn = f"{accelerator_arn}/listener/{next(self._ids):08x}"
        self.listeners[arn] = {
            "accelerator": accelerator_arn,
            "ListenerArn": arn,
            "PortRanges": [{"FromPort": port, "ToPort": port}],
            "Protocol": "TCP",
            "ClientAffinity": "NONE",
        }
        return arn

    def add_endpoint_group(self, listener_arn: str, region: str, endpoints: list[dict[str, Any]]) -> str:
        arn = f"{listener_arn}/endpoint-group/{next(self._ids):012x}"
        self.groups[arn] = {
            "listener": listener_arn,
            "EndpointGroupArn": arn,
            "EndpointGroupRegion": region,
            "EndpointDescriptions": [
                {"Weight": 128, "HealthState": "HEALTHY", "ClientIPPreservationEnabled": False, **e} for e in endpoints
            ],
            "TrafficDialPercentage": 100.0,
            "HealthCheckPort": 443,
            "HealthCheckProtocol": "TCP",
            "HealthCheckIntervalSeconds": 30,
            "ThresholdCount": 3,
            "PortOverrides": [],
        }
        return arn

    def remove_endpoint(self, group_arn: str, endpoint_id: str) -> None:
        """Remove an endpoint as another client (an operator, another fence) would."""
        with self._lock:
            group = self.groups[group_arn]
            group["EndpointDescriptions"] = [d for d in group["EndpointDescriptions"] if d["EndpointId"] != endpoint_id]

    def endpoint_ids(self, group_arn: str) -> list[str]:
        with self._lock:
            return [d["EndpointId"] for d in self.groups[group_arn]["EndpointDescriptions"]]

    def set_health(self, group_arn: str, endpoint_id: str, state: str, reason: str | None = None) -> None:
        with self._lock:
            for description in self.groups[group_arn]["EndpointDescriptions"]:
                if description["EndpointId"] == endpoint_id:
                    description["HealthState"] = state
                    if reason:
                        description["HealthReason"] = reason

    def fail_next(self, operation: str, code: str, status: int = 400, times: int = 1) -> None:
        self._failures.setdefault(operation, []).extend(ApiError(code, "injected by the test", status) for _ in range(times))

    def mutating_calls(self) -> list[str]:
        return [c for c in self.calls if not c.startswith("List")]

    # ---- server -------------------------------------------------------------------------------
    def start(self) -> str:
        self._server = serve(self._serve)
        return self._server.url

    def stop(self) -> None:
        if self._server:
            self._server.close()

    # ---- protocol -----------------------------------------------------------------------------
    def _serve(self, request: Request) -> Reply:
        status, body = self._dispatch(request.headers, request.body)
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())}
        return Reply(status, headers, json.dumps(body).encode())

    def _dispatch(self, headers: Mapping[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        target = headers.get("x-amz-target", "")
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
        try:
            if headers.get("content-type", "").split(";")[0] != "application/x-amz-json-1.1":
                raise ApiError("SerializationException", "expected Content-Type application/x-amz-json-1.1")
            scope = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request", headers.get("authorization", ""))
            if not scope:
                raise ApiError("MissingAuthenticationTokenException", "request is not SigV4-signed", 403)
            if scope.group(2) != "globalaccelerator" or scope.group(1) != self.region:
                raise ApiError(
                    "InvalidSignatureException",
                    f"signed for {scope.group(2)} in {scope.group(1)}; expected globalaccelerator in {self.region}",
                    403,
                )
            method = getattr(self, f"_op_{operation}", None)
            if method is None:
                raise ApiError("UnknownOperationException", f"operation {target!r} is not served by this fake")
            params = json.loads(raw or b"{}")
            self.calls.append(operation)
            if self.delay.get(operation):
                time.sleep(self.delay[operation])
            hook = self.before.get(operation)
            if hook:
                hook(params)
            queued = self._failures.get(operation)
            if queued:
                raise queued.pop(0)
            with self._lock:
                return 200, method(params)
        except ApiError as exc:
            return exc.status, {"__type": exc.code, "Message": exc.message}

    def _page(self, items: list[dict[str, Any]], key: str, params: dict[str, Any]) -> dict[str, Any]:
        limit = params.get("MaxResults", 10)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            raise ApiError("InvalidArgumentException", "MaxResults must be between 1 and 100")
        start = 0
        if "NextToken" in params:
            try:
                start = int(params["NextToken"].removeprefix("page-"))
            except (ValueError, AttributeError):
                raise ApiError("InvalidNextTokenException", "the NextToken is not valid") from None
        size = min(limit, self.page_size)
        result: dict[str, Any] = {key: items[start : start + size]}
        if start + size < len(items):
            result["NextToken"] = f"page-{start + size}"
        return result

    def _op_ListAccelerators(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._page(list(self.accelerators.values()), "Accelerators", params)

    def _op_ListListeners(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params.get("AcceleratorArn")
        if arn not in self.accelerators:
            raise ApiError("AcceleratorNotFoundException", f"accelerator {arn} not found")
        listeners = [{k: v for k, v in lst.items() if k != "accelerator"} for lst in self.listeners.values() if lst["accelerator"] == arn]
        return self._page(listeners, "Listeners", params)

    def _op_ListEndpointGroups(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params.get("ListenerArn")
        if arn not in self.listeners:
            raise ApiError("ListenerNotFoundException", f"listener {arn} not found")
        groups = [
            json.loads(json.dumps({k: v for k, v in g.items() if k != "listener"}))
            for g in self.groups.values()
            if g["listener"] == arn
        ]
        return self._page(groups, "EndpointGroups", params)

    def _op_RemoveEndpoints(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params.get("EndpointGroupArn")
        if arn not in self.groups:
            raise ApiError("EndpointGroupNotFoundException", f"endpoint group {arn} not found")
        identifiers = params.get("EndpointIdentifiers") or []
        if not 1 <= len(identifiers) <= 10:
            raise ApiError("InvalidArgumentException", "EndpointIdentifiers must hold 1 to 10 items")
        descriptions = self.groups[arn]["EndpointDescriptions"]
        present = {d["EndpointId"] for d in descriptions}
        for identifier in identifiers:
            if set(identifier) - {"EndpointId", "ClientIPPreservationEnabled"}:
                raise ApiError("InvalidArgumentException", f"unknown field in {identifier}")
            if identifier.get("EndpointId") not in present:
                raise ApiError(self.missing_endpoint_error, f"endpoint {identifier.get('EndpointId')} is not in the group")
        gone = {i["EndpointId"] for i in identifiers}
        self.groups[arn]["EndpointDescriptions"] = [d for d in descriptions if d["EndpointId"] not in gone]
        return {}

    def _op_AddEndpoints(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = params.get("EndpointGroupArn")
        if arn not in self.groups:
            raise ApiError("EndpointGroupNotFoundException", f"endpoint group {arn} not found")
        configurations = params.get("EndpointConfigurations") or []
        if not 1 <= len(configurations) <= 10:
            raise ApiError("InvalidArgumentException", "EndpointConfigurations must hold 1 to 10 items")
        allowed = {"EndpointId", "Weight", "ClientIPPreservationEnabled", "AttachmentArn"}
        descriptions = self.groups[arn]["EndpointDescriptions"]
        for configuration in configurations:
            if set(configuration) - allowed or "EndpointId" not in configuration:
                raise ApiError("InvalidArgumentException", f"invalid endpoint configuration {configuration}")
            # Adding an endpoint that is already there updates it, as AddEndpoints does.
            descriptions[:] = [d for d in descriptions if d["EndpointId"] != configuration["EndpointId"]]
            descriptions.append({"Weight": 128, "ClientIPPreservationEnabled": False, **configuration, "HealthState": "INITIAL"})
        return {"EndpointDescriptions": json.loads(json.dumps(descriptions)), "EndpointGroupArn": arn}
