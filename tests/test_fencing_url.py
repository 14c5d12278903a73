"""End to end through triggerfish's own function URL server: Alertmanager's HTTP request reaches the
fencing handler in a worker process, exactly as configured in the README's YAML."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from fencing_support import (
    ISPN_PASSWORD,
    WEBHOOK_PASSWORD,
    WEBHOOK_USER,
    notification,
)
from fencing_support import alert as site_offline

api = pytest.importorskip("triggerfish.api")
from triggerfish.functions.config import FunctionConfig  # noqa: E402
from triggerfish.functions.runtime import FunctionRuntime  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def fencing_function(env: dict[str, str]) -> FunctionConfig:
    return FunctionConfig.from_dict(
        {
            "FunctionName": "site-fencing",
            "Handler": "triggerfish.functions.fencing.handler",
            "Timeout": 30,
            "Environment": {"Variables": env},
            "FunctionUrlConfig": {"AuthType": "NONE"},
            "ReservedConcurrentExecutions": 1,
        }
    )


def test_alertmanager_request_through_the_function_url(make_world):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    logs: list[str] = []
    runtime = FunctionRuntime([fencing_function(world.env)], log_sink=lambda name, rid, text: logs.append(text))
    server = api.ApiServer(api.create_app(api.EngineBackend(runtime)), port=0)
    base = server.start()
    url = f"{base}/lambda-url/site-fencing/"
    body = json.dumps(notification(site_offline("site-b", "site-a"))).encode()
    headers = {"content-type": "application/json", "user-agent": "Alertmanager/0.28.1"}
    try:
        with httpx.Client(timeout=60) as client:
            denied = client.post(url, content=body, headers=headers, auth=(WEBHOOK_USER, "nope"))
            anonymous = client.post(url, content=body, headers=headers)
            assert (denied.status_code, anonymous.status_code) == (403, 401)
            assert world.sites_left() == ["site-a", "site-b"]

            fenced = client.post(url, content=body, headers=headers, auth=(WEBHOOK_USER, WEBHOOK_PASSWORD))
            assert fenced.status_code == 200, fenced.text
            assert [d["result"] for d in fenced.json()["decisions"]] == ["done", "done"]
            assert world.sites_left() == ["site-a"]
            assert world.ispn["site-a"].status("site-b") == "offline"

            # Reserved concurrency 1: a call arriving while one runs is throttled by the URL server.
            world.ga.delay["ListAccelerators"] = 1.0
            before = len(world.ga.calls)
            slow: list[httpx.Response] = []
            first = threading.Thread(
                target=lambda: slow.append(client.post(url, content=body, headers=headers, auth=(WEBHOOK_USER, WEBHOOK_PASSWORD)))
            )
            first.start()
            while "ListAccelerators" not in world.ga.calls[before:]:  # the first call is in flight
                threading.Event().wait(0.02)
            second = client.post(url, content=body, headers=headers, auth=(WEBHOOK_USER, WEBHOOK_PASSWORD))
            first.join()
            assert second.status_code == 429 and slow[0].status_code == 200
    finally:
        server.stop()
        runtime.close()

    text = "".join(logs)
    assert '"action":"remove-endpoints","result":"done"' in text
    assert '"action":"authenticate","result":"rejected"' in text
    for secret in (WEBHOOK_PASSWORD, ISPN_PASSWORD, "nope"):
        assert secret not in text


def test_missing_configuration_fails_the_function_start_by_name(make_world):
    world = make_world(["site-a", "site-b"], other_accelerators=0)
    env = {k: v for k, v in world.env.items() if k != "INFINISPAN_SITE_ENDPOINTS"}
    runtime = FunctionRuntime([fencing_function(env)])
    try:
        result = runtime.invoke("site-fencing", json.dumps({"headers": {}, "body": ""}).encode())
    finally:
        runtime.close()
    assert result.error_type == "ConfigError"
    assert result.error["errorMessage"].startswith("INFINISPAN_SITE_ENDPOINTS: is not set")
