"""A small EC2 instance metadata service (IMDSv2 wire protocol) on 127.0.0.1 for credential-chain tests.

Modes: ``ok`` (token, role, credentials), ``hop_limit`` (the token PUT never answers, as when the
response's IP TTL can't reach a pod; v1 GETs get 401 because HttpTokens=required), ``no_role``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from http_fake import Reply, Request, serve

TOKEN = "AQAEAFAKEIMDSTOKEN=="
ROLE = "node-instance-role"
CREDENTIALS = "/latest/meta-data/iam/security-credentials/"


class FakeImds:
    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.requests: list[tuple[str, str]] = []
        self.server = serve(self._serve)
        self.url = self.server.url

    def close(self) -> None:
        self.server.close()

    def _serve(self, request: Request) -> Reply | None:
        self.requests.append((request.method, request.path))
        if request.method == "PUT":
            if self.mode == "hop_limit":
                time.sleep(3)  # the answer exists but never arrives in time
                return None
            ok = request.path == "/latest/api/token" and request.headers.get("x-aws-ec2-metadata-token-ttl-seconds")
            return Reply(200, body=TOKEN.encode()) if ok else Reply(400)
        if request.headers.get("x-aws-ec2-metadata-token") != TOKEN:
            return Reply(401)
        if request.path == CREDENTIALS:
            return Reply(404) if self.mode == "no_role" else Reply(200, body=ROLE.encode())
        if request.path != CREDENTIALS + ROLE:
            return Reply(404)
        expires = (datetime.now(UTC) + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Reply(200, body=json.dumps({
            "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIAFAKEIMDS00000000",
            "SecretAccessKey": "fake-secret", "Token": "fake-session-token", "Expiration": expires,
            "LastUpdated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }).encode())
