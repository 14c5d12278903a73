"""A local fake of MSK's GetBootstrapBrokers (``GET /v1/clusters/{clusterArn}/bootstrap-brokers``), which
moto does not implement. Same wire format as the real API: restJson, camelCase member names."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


class FakeMSK:
    """Serves ``clusters[arn] = {"BootstrapBrokerStringSaslIam": "...", ...}`` on 127.0.0.1 (port 0)."""

    def __init__(self) -> None:
        self.clusters: dict[str, dict[str, str]] = {}
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake.requests.append(self.path)
                prefix, suffix = "/v1/clusters/", "/bootstrap-brokers"
                arn = unquote(self.path[len(prefix):-len(suffix)]) if self.path.startswith(prefix) and \
                    self.path.endswith(suffix) else ""
                if arn not in fake.clusters:
                    body = {"message": f"Cluster {arn} not found"}
                    self._send(404, body, "NotFoundException")
                    return
                self._send(200, {k[0].lower() + k[1:]: v for k, v in fake.clusters[arn].items()})

            def _send(self, code: int, body: dict[str, str], error: str = "") -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if error:
                    self.send_header("x-amzn-ErrorType", error)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
