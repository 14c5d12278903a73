"""A small EC2 instance metadata service (IMDSv2 wire protocol) on 127.0.0.1 for credential-chain tests.

Modes: ``ok`` (token, role, credentials), ``hop_limit`` (the token PUT never answers, as when the
response's IP TTL can't reach a pod; v1 GETs get 401 because HttpTokens=required), ``no_role``.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "AQAEAFAKEIMDSTOKEN=="
ROLE = "node-instance-role"


class FakeImds:
    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: str = "") -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:  # noqa: N802
                fake.requests.append(("PUT", self.path))
                if fake.mode == "hop_limit":
                    time.sleep(3)  # the answer exists but never arrives in time
                    return
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    self._send(200, TOKEN)
                else:
                    self._send(400)

            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append(("GET", self.path))
                if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                    self._send(401)
                    return
                base = "/latest/meta-data/iam/security-credentials/"
                if self.path == base:
                    self._send(404 if fake.mode == "no_role" else 200, "" if fake.mode == "no_role" else ROLE)
                elif self.path == base + ROLE:
                    expires = (datetime.now(timezone.utc) + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
                    self._send(200, json.dumps({
                        "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIAFAKEIMDS00000000",
                        "SecretAccessKey": "fake-secret", "Token": "fake-session-token", "Expiration": expires,
                        "LastUpdated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    }))
                else:
                    self._send(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
