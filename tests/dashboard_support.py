"""Helpers for the dashboard tests: a triggerfish process's engine and functions behind the control API's
app on a free port (the app object at hand, to sample lag faster), and a SigV4-signed GET."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from api_support import lambda_client
from esm_helpers import RECORDER, function_config, write_handler
from triggerfish import App
from triggerfish.api.app import create_app
from triggerfish.api.engine import EngineBackend
from triggerfish.api.server import ApiServer
from triggerfish.api.sigv4 import AccessKey

#: A handler whose error text looks like markup: the dashboard must show it as text.
BOOM = """
def handler(event, context):
    raise ValueError("<img src=x onerror=alert(1)>")
"""


class DashStack:
    """Functions ``rec`` (records to $OUT) and ``boom`` (always fails), an engine, and the API app on a free port."""

    def __init__(self, tmp_path: Path, access_key: AccessKey | None = None, sample_s: float = 0.5) -> None:
        code = write_handler(tmp_path, "rec", RECORDER)
        write_handler(tmp_path, "boom", BOOM)
        self.out = tmp_path / "out.jsonl"
        env: dict[str, Any] = {"Environment": {"Variables": {"OUT": str(self.out)}}}
        functions = [function_config(code, "rec.handler", "rec", **env), function_config(code, "boom.handler", "boom")]
        self.app = App(functions, [], state=tmp_path / "state.db", api=False).start()
        self.api = create_app(EngineBackend(self.app.runtime, self.app.engine), access_key=access_key)
        self.api.state.dashboard.sampler.set_interval(sample_s)
        self.server = ApiServer(self.api, port=0)
        self.url = self.server.start()
        self.client = lambda_client(self.url, *((access_key.access_key_id, access_key.secret_access_key)
                                                if access_key else ()))

    def state(self) -> dict[str, Any]:
        answer = httpx.get(self.url + "/dashboard/state.json", timeout=10)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert isinstance(body, dict)
        return body

    def mapping(self, uuid: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [m for m in self.state()["Mappings"] if m["UUID"] == uuid]
        assert found, f"mapping {uuid} not on the dashboard"
        return found[0]

    def stop(self) -> None:
        self.server.stop()
        self.app.stop()


def signed_get(url: str, key_id: str, secret: str, region: str = "us-east-1") -> httpx.Response:
    """GET ``url`` signed the way boto3 signs a Lambda call."""
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(key_id, secret), "lambda", region).add_auth(request)
    return httpx.get(url, headers=dict(request.headers.items()), timeout=10)


def kafka_mapping(topic: str, bootstrap: str, function: str = "rec", **fields: Any) -> dict[str, Any]:
    return {"FunctionName": function, "Topics": [topic], "StartingPosition": "TRIM_HORIZON",
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [bootstrap]}},
            "MaximumBatchingWindowInSeconds": 0, **fields}
